/* test_accuracy.c - every loss in every storage type on the device against
 * the CPU reference: prints the table of largest relative errors (loss and
 * gradient) and asserts a bound per storage type.
 *
 * Relative error: |dev - ref| / max(|ref|, 0.01 max|ref|), the floor keeping
 * near-zero gradient entries from dominating. The reference is given the
 * same (rounded) 16-bit inputs, so the error measured is the device's
 * arithmetic plus the rounding of its gradient to the storage type. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference/reference.h"
#include "support/testutil.h"

enum { ROWS = 29, COLS = 517, N = ROWS * COLS };

typedef enum { CE, CE_PROBS, NLL, PW } family;

typedef struct acc_case {
  const char *name;
  family fam;
  clloss_pointwise_loss pw;
} acc_case;

static const acc_case cases[] = {
    {"cross_entropy", CE, 0},
    {"cross_entropy (probs)", CE_PROBS, 0},
    {"nll_loss", NLL, 0},
    {"mse_loss", PW, CLLOSS_MSE_LOSS},
    {"l1_loss", PW, CLLOSS_L1_LOSS},
    {"huber_loss", PW, CLLOSS_HUBER_LOSS},
    {"smooth_l1_loss", PW, CLLOSS_SMOOTH_L1_LOSS},
    {"bce_with_logits", PW, CLLOSS_BCE_WITH_LOGITS},
    {"kl_div", PW, CLLOSS_KL_DIV},
};

static const clloss_dtype types[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16,
                                     CLLOSS_BFLOAT16, CLLOSS_FLOAT64};
/* Bounds on the relative error, per storage type: a few roundings of the
 * type (float16 eps 2^-10, bfloat16 2^-7) or float32 arithmetic. */
static const double bounds[] = {1e-4, 4e-3, 3e-2, 1e-9};

/* Loads and stores in every storage type: the reference's own helpers. */
#define get clloss__ref_load
#define put clloss__ref_store

static double max_rel(const void *got, const void *want, clloss_dtype t,
                      size_t n) {
  double peak = 0, worst = 0;
  for (size_t i = 0; i < n; i++)
    peak = fmax(peak, fabs(get(want, t, i)));
  for (size_t i = 0; i < n; i++) {
    double r = get(want, t, i), d = fabs(get(got, t, i) - r);
    worst = fmax(worst, d / fmax(fabs(r), 0.01 * peak));
  }
  return worst;
}

/* Runs one case on ctx and the reference; returns 0 on a status error. */
static int run_case(clloss_context *ctx, const acc_case *c, clloss_dtype t,
                    double *loss_err, double *grad_err) {
  tu_rng r = tu_rng_make(0xacc0 + (uint64_t)c->fam * 16 + c->pw * 4 + t);
  const size_t es = clloss_dtype_size(t);
  const clloss_dtype lt = clloss_loss_dtype(t);
  const size_t ls = clloss_dtype_size(lt);
  unsigned char *x = malloc(N * es), *y = malloc(N * es);
  unsigned char *g_dev = malloc(N * es), *g_ref = malloc(N * es);
  int64_t tgt[ROWS];
  double w[COLS > 64 ? COLS : 64];
  unsigned char loss_dev[8], loss_ref[8], wbuf[COLS * 8];
  for (size_t i = 0; i < N; i++) {
    double v = tu_uniform(&r, -4, 4);
    if (c->fam == PW && c->pw == CLLOSS_KL_DIV)
      v = -fabs(v) - 0.1; /* log-probabilities */
    put(x, t, i, v);
    double u = tu_uniform(&r, 0, 1);
    if (c->fam == CE_PROBS)
      u /= COLS / 2.0;
    else if (c->fam == PW && c->pw != CLLOSS_BCE_WITH_LOGITS &&
             c->pw != CLLOSS_KL_DIV)
      u = tu_uniform(&r, -4, 4);
    put(y, t, i, u);
  }
  for (size_t i = 0; i < ROWS; i++)
    tgt[i] = (int64_t)(tu_next(&r) % COLS);
  tgt[3] = -100; /* one ignored row */
  for (size_t k = 0; k < COLS; k++) {
    w[k % 64] = tu_uniform(&r, 0.5, 2);
    put(wbuf, lt, k, w[k % 64]);
  }
  clloss_status s1, s2;
  if (c->fam == CE || c->fam == CE_PROBS) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = ROWS;
    d.classes = COLS;
    d.input_type = t;
    d.label_smoothing = 0.1f;
    d.target_type = c->fam == CE_PROBS ? t : CLLOSS_INT64;
    const void *target = c->fam == CE_PROBS ? (const void *)y : tgt;
    s1 = clloss_cross_entropy_host(ctx, &d, x, target, wbuf, NULL, loss_dev,
                                   g_dev);
    s2 = clloss_reference_cross_entropy(&d, x, target, wbuf, NULL, loss_ref,
                                        g_ref);
  } else if (c->fam == NLL) {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    d.rows = ROWS;
    d.classes = COLS;
    d.input_type = t;
    s1 = clloss_nll_loss_host(ctx, &d, x, tgt, wbuf, NULL, loss_dev, g_dev);
    s2 = clloss_reference_nll_loss(&d, x, tgt, wbuf, NULL, loss_ref, g_ref);
  } else {
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(c->pw);
    d.count = N;
    d.input_type = t;
    d.delta = 1.5f;
    d.beta = 0.5f;
    const void *wp = NULL;
    if (c->pw == CLLOSS_BCE_WITH_LOGITS) {
      d.weight_count = COLS; /* broadcast over the last dimension */
      wp = wbuf;
    }
    s1 = clloss_pointwise_host(ctx, &d, x, y, wp, NULL, NULL, loss_dev, g_dev);
    s2 = clloss_reference_pointwise(&d, x, y, wp, NULL, NULL, loss_ref, g_ref);
  }
  int ok = s1 == CLLOSS_SUCCESS && s2 == CLLOSS_SUCCESS;
  if (ok) {
    *loss_err = max_rel(loss_dev, loss_ref, lt, 1);
    *grad_err = max_rel(g_dev, g_ref, t, N);
  } else {
    printf("\n  %s %s: device %s, reference %s", c->name, clloss_dtype_name(t),
           clloss_status_name(s1), clloss_status_name(s2));
  }
  (void)ls;
  free(x);
  free(y);
  free(g_dev);
  free(g_ref);
  return ok;
}

static void test_accuracy_matrix(void) {
  TU_REQUIRE_DEVICE();
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    const clloss_device_info *info = clloss_context_device_info(ctx);
    printf("\n  largest relative error vs the reference on %s "
           "(loss / gradient):\n  %-22s",
           info->name, "loss");
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
      printf(" %-19s", clloss_dtype_name(types[k]));
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
      printf("\n  %-22s", cases[i].name);
      for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        if (!tu_runs_type(ctx, types[k])) {
          printf(" %-19s", "(no fp64)");
          continue;
        }
        double le = 0, ge = 0;
        int ok = run_case(ctx, &cases[i], types[k], &le, &ge);
        CU_ASSERT_TRUE(ok);
        printf(" %8.1e / %8.1e", le, ge);
        CU_ASSERT_TRUE(le <= bounds[k]);
        CU_ASSERT_TRUE(ge <= bounds[k]);
        if (le > bounds[k] || ge > bounds[k])
          printf(" (bound %g!)", bounds[k]);
      }
    }
    printf("\n");
  }
}

int test_accuracy_register(void) {
  TU_SUITE("accuracy", NULL, NULL, TU_TEST(test_accuracy_matrix));
}
