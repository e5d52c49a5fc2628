/* test_fixtures.c - the CPU reference against PyTorch: loss and gradient of
 * the cases in tests/data/fixtures.txt (written by make_fixtures.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"

#ifndef CLLOSS_TEST_DATA_DIR
#define CLLOSS_TEST_DATA_DIR "tests/data"
#endif
#define FIXTURE_FILE CLLOSS_TEST_DATA_DIR "/fixtures.txt"

enum { MAX_PARAMS = 16, MAX_ARRAYS = 8, MAX_CASES = 128 };

typedef struct fx_array {
  char name[32];
  size_t n;
  double *v;
} fx_array;

typedef struct fx_case {
  char name[64], op[32];
  char key[MAX_PARAMS][32];
  double val[MAX_PARAMS];
  int nparams, narrays;
  fx_array arr[MAX_ARRAYS];
} fx_case;

static fx_case *g_cases;
static int g_count, g_load_failed;

static double param(const fx_case *c, const char *key, double dflt) {
  for (int i = 0; i < c->nparams; i++)
    if (!strcmp(c->key[i], key))
      return c->val[i];
  return dflt;
}

static const fx_array *array(const fx_case *c, const char *name) {
  for (int i = 0; i < c->narrays; i++)
    if (!strcmp(c->arr[i].name, name))
      return &c->arr[i];
  return NULL;
}

static const double *values(const fx_case *c, const char *name) {
  const fx_array *a = array(c, name);
  return a ? a->v : NULL;
}

/* Reads the whole file; returns 0 on success. */
static int load(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("\n  cannot open %s\n", path);
    return -1;
  }
  g_cases = calloc(MAX_CASES, sizeof *g_cases);
  char tok[64];
  fx_case *c = NULL;
  int ok = g_cases != NULL;
  while (ok && fscanf(f, "%63s", tok) == 1) {
    if (tok[0] == '#') {
      int ch;
      while ((ch = fgetc(f)) != '\n' && ch != EOF)
        ;
    } else if (!strcmp(tok, "case")) {
      ok = g_count < MAX_CASES;
      if (ok) {
        c = &g_cases[g_count++];
        ok = fscanf(f, "%63s %31s", c->name, c->op) == 2;
      }
    } else if (!strcmp(tok, "param") && c && c->nparams < MAX_PARAMS) {
      ok = fscanf(f, "%31s %lf", c->key[c->nparams], &c->val[c->nparams]) == 2;
      c->nparams++;
    } else if (!strcmp(tok, "array") && c && c->narrays < MAX_ARRAYS) {
      fx_array *a = &c->arr[c->narrays++];
      ok = fscanf(f, "%31s %zu", a->name, &a->n) == 2 &&
           (a->v = malloc((a->n ? a->n : 1) * sizeof *a->v)) != NULL;
      for (size_t i = 0; ok && i < a->n; i++) {
        /* strtod, unlike some scanf, reads "nan", "inf" and "-inf" */
        ok = fscanf(f, "%63s", tok) == 1;
        a->v[i] = strtod(tok, NULL);
      }
    } else if (!strcmp(tok, "end")) {
      c = NULL;
    } else {
      ok = 0;
    }
  }
  fclose(f);
  if (!ok)
    printf("\n  %s: malformed near case %d\n", path, g_count);
  return ok ? 0 : -1;
}

static int suite_init(void) {
  g_load_failed = load(FIXTURE_FILE) != 0;
  return 0; /* a missing file fails the tests, not the registry */
}

static int suite_clean(void) {
  for (int i = 0; g_cases && i < g_count; i++)
    for (int k = 0; k < g_cases[i].narrays; k++)
      free(g_cases[i].arr[k].v);
  free(g_cases);
  g_cases = NULL;
  g_count = 0;
  return 0;
}

/* PyTorch and the reference both work in double: they agree to rounding. */
#define ATOL 1e-10
#define RTOL 1e-9

/* Compares the outputs of one case; the canaries after them must hold. */
static void compare(const fx_case *c, const char *tag, const double *loss,
                    size_t nl, const double *grad, size_t ng) {
  char what[128];
  const fx_array *el = array(c, "loss"), *eg = array(c, "grad");
  CU_ASSERT_FATAL(el && eg);
  CU_ASSERT_EQUAL(el->n, nl);
  CU_ASSERT_EQUAL(eg->n, ng);
  snprintf(what, sizeof what, "%s %s loss", c->name, tag);
  CU_ASSERT_EQUAL(tu_compare(what, loss, CLLOSS_FLOAT64, el->v, nl, ATOL, RTOL),
                  0);
  snprintf(what, sizeof what, "%s %s grad", c->name, tag);
  CU_ASSERT_EQUAL(tu_compare(what, grad, CLLOSS_FLOAT64, eg->v, ng, ATOL, RTOL),
                  0);
  CU_ASSERT(tu_canary_intact(loss + nl, sizeof(double)));
  CU_ASSERT(tu_canary_intact(grad + ng, sizeof(double)));
}

/* Output buffers with room for a canary after each. */
static double *outputs(size_t n) {
  double *p = calloc(n + TU_CANARY, sizeof *p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  tu_canary_fill(p + n, sizeof *p);
  return p;
}

/* Class-index targets of a case in int64 and int32. */
static void targets(const fx_case *c, size_t n, int64_t *t64, int32_t *t32) {
  const double *t = values(c, "target");
  for (size_t i = 0; i < n; i++) {
    t64[i] = (int64_t)t[i];
    t32[i] = (int32_t)t[i];
  }
}

static void run_cross_entropy(const fx_case *c) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = (size_t)param(c, "rows", 0);
  d.classes = (size_t)param(c, "classes", 0);
  d.reduction = (clloss_reduction)param(c, "reduction", 0);
  d.ignore_index = (int64_t)param(c, "ignore_index", -100);
  d.label_smoothing = (float)param(c, "label_smoothing", 0);
  d.z_loss = (float)param(c, "z_loss", 0);
  d.softcap = (float)param(c, "softcap", 0);
  d.normalizer = (float)param(c, "normalizer", 0);
  d.input_type = CLLOSS_FLOAT64;
  int prob = param(c, "prob", 0) != 0;
  size_t nl = d.reduction == CLLOSS_REDUCTION_NONE ? d.rows : 1;
  size_t ng = d.rows * d.classes;
  double *loss = outputs(nl), *grad = outputs(ng);
  const double *x = values(c, "input"), *w = values(c, "weight");
  const double *go = values(c, "grad_output");
  CU_ASSERT_FATAL(x && go && array(c, "target"));
  if (prob) {
    d.target_type = CLLOSS_FLOAT64;
    CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, values(c, "target"),
                                                   w, go, loss, grad),
                    CLLOSS_SUCCESS);
    compare(c, "prob", loss, nl, grad, ng);
  } else {
    int64_t *t64 = malloc(d.rows * sizeof *t64 + 1);
    int32_t *t32 = malloc(d.rows * sizeof *t32 + 1);
    CU_ASSERT_FATAL(t64 && t32);
    targets(c, d.rows, t64, t32);
    CU_ASSERT_EQUAL(
        clloss_reference_cross_entropy(&d, x, t64, w, go, loss, grad),
        CLLOSS_SUCCESS);
    compare(c, "int64", loss, nl, grad, ng);
    d.target_type = CLLOSS_INT32;
    CU_ASSERT_EQUAL(
        clloss_reference_cross_entropy(&d, x, t32, w, go, loss, grad),
        CLLOSS_SUCCESS);
    compare(c, "int32", loss, nl, grad, ng);
    free(t64);
    free(t32);
  }
  free(loss);
  free(grad);
}

static void run_nll_loss(const fx_case *c) {
  clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
  d.rows = (size_t)param(c, "rows", 0);
  d.classes = (size_t)param(c, "classes", 0);
  d.reduction = (clloss_reduction)param(c, "reduction", 0);
  d.ignore_index = (int64_t)param(c, "ignore_index", -100);
  d.input_type = CLLOSS_FLOAT64;
  size_t nl = d.reduction == CLLOSS_REDUCTION_NONE ? d.rows : 1;
  size_t ng = d.rows * d.classes;
  double *loss = outputs(nl), *grad = outputs(ng);
  const double *x = values(c, "input"), *w = values(c, "weight");
  const double *go = values(c, "grad_output");
  CU_ASSERT_FATAL(x && go && array(c, "target"));
  int64_t *t64 = malloc(d.rows * sizeof *t64 + 1);
  int32_t *t32 = malloc(d.rows * sizeof *t32 + 1);
  CU_ASSERT_FATAL(t64 && t32);
  targets(c, d.rows, t64, t32);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t64, w, go, loss, grad),
                  CLLOSS_SUCCESS);
  compare(c, "int64", loss, nl, grad, ng);
  d.target_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t32, w, go, loss, grad),
                  CLLOSS_SUCCESS);
  compare(c, "int32", loss, nl, grad, ng);
  free(t64);
  free(t32);
  free(loss);
  free(grad);
}

static void run_pointwise(const fx_case *c) {
  clloss_pointwise_desc d =
      CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)param(c, "loss", 0));
  d.count = (size_t)param(c, "count", 0);
  d.reduction = (clloss_reduction)param(c, "reduction", 0);
  d.delta = (float)param(c, "delta", 1);
  d.beta = (float)param(c, "beta", 1);
  d.log_target = (int)param(c, "log_target", 0);
  d.batch = (size_t)param(c, "batch", 0);
  d.weight_count = (size_t)param(c, "weight_count", 0);
  d.pos_weight_count = (size_t)param(c, "pos_weight_count", 0);
  d.input_type = CLLOSS_FLOAT64;
  size_t nl = d.reduction == CLLOSS_REDUCTION_NONE ? d.count : 1;
  double *loss = outputs(nl), *grad = outputs(d.count);
  const double *x = values(c, "input"), *y = values(c, "target");
  const double *go = values(c, "grad_output");
  CU_ASSERT_FATAL(x && y && go);
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, values(c, "weight"),
                                             values(c, "pos_weight"), go, loss,
                                             grad),
                  CLLOSS_SUCCESS);
  compare(c, "", loss, nl, grad, d.count);
  free(loss);
  free(grad);
}

/* Runs every case of one op; there must be some. */
static void run_op(const char *op, void (*run)(const fx_case *)) {
  CU_ASSERT_FALSE_FATAL(g_load_failed);
  int n = 0;
  for (int i = 0; i < g_count; i++)
    if (!strcmp(g_cases[i].op, op)) {
      run(&g_cases[i]);
      n++;
    }
  CU_ASSERT(n >= 3);
}

static void test_fixtures_loaded(void) {
  CU_ASSERT_FALSE(g_load_failed);
  CU_ASSERT(g_count >= 40);
  for (int i = 0; i < g_count; i++) {
    CU_ASSERT_PTR_NOT_NULL(array(&g_cases[i], "loss"));
    CU_ASSERT_PTR_NOT_NULL(array(&g_cases[i], "grad"));
  }
}

static void test_fixtures_cross_entropy(void) {
  run_op("cross_entropy", run_cross_entropy);
}

static void test_fixtures_nll_loss(void) {
  run_op("nll_loss", run_nll_loss);
}

static void test_fixtures_pointwise(void) {
  run_op("pointwise", run_pointwise);
}

int test_fixtures_register(void) {
  TU_SUITE("fixtures", suite_init, suite_clean, TU_TEST(test_fixtures_loaded),
           TU_TEST(test_fixtures_cross_entropy),
           TU_TEST(test_fixtures_nll_loss), TU_TEST(test_fixtures_pointwise));
}
