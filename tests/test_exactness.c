/* test_exactness.c - cross_entropy at any logit scale: rows of logits all
 * at -1e4, at +-1e4 and +-1e6, mixed with -inf, with label smoothing,
 * z-loss and probability targets. Loss and gradient must be within the
 * error bound of ul_ce_bound (support/ulps.c, README "Error bounds": what
 * holds for every variant on any conformant device) of the double
 * reference (16-bit storage: plus one ulp of its own, the rounding of the
 * stored gradient), in every variant and storage type, at both call
 * levels. The reference is given the very values the storage holds, in
 * float64. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/devcheck.h"
#include "support/testutil.h"
#include "support/ulps.h"

/* One case in float values: rows x C logits (dense), class targets t or
 * probability targets p (rows x C). desc has float32 storage; each check
 * sets the storage type it runs. */
typedef struct ex_case {
  clloss_cross_entropy_desc desc;
  float *x, *p;
  int64_t *t;
  int no_float16; /* values beyond float16's range */
} ex_case;

static void ex_free(ex_case *c) {
  free(c->x);
  free(c->p);
  free(c->t);
}

static const clloss_dtype ex_types[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16,
                                        CLLOSS_BFLOAT16, CLLOSS_FLOAT64};

/* Rows at scale `big`, by kind i % 4: all near +big; all near -big; each
 * near +big or -big at random (the target may be on either side: loss
 * about 2 big); as the last with the target the row's maximum. Near means
 * within 8 below, which the storage may round away. With `neg_inf`, a
 * third of each row but its target is -inf, and the last row is -inf but
 * its target (loss and gradient exactly 0). */
static ex_case ex_rows(size_t rows, size_t classes, float big, int neg_inf,
                       uint64_t salt) {
  ex_case c;
  memset(&c, 0, sizeof c);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows, d.classes = classes, d.reduction = CLLOSS_REDUCTION_NONE;
  c.desc = d;
  tu_rng r = tu_rng_make(salt);
  c.x = dc_alloc(rows * classes * sizeof *c.x);
  c.t = dc_alloc(rows * sizeof *c.t);
  for (size_t i = 0; i < rows; i++) {
    float *x = c.x + i * classes;
    c.t[i] = (int64_t)(tu_next(&r) % classes);
    for (size_t j = 0; j < classes; j++) {
      float sign = i % 4 == 1 ? -1.0f : 1.0f;
      if (i % 4 >= 2 && (tu_next(&r) & 1))
        sign = -1.0f;
      x[j] = sign * big + tu_uniform(&r, -8.0f, 0.0f);
    }
    if (i % 4 == 3)
      x[c.t[i]] = big;
    for (size_t j = 0; neg_inf && j < classes; j++)
      if ((int64_t)j != c.t[i] && (i + 1 == rows || tu_next(&r) % 3 == 0))
        x[j] = -INFINITY;
  }
  return c;
}

/* Probability targets instead of the class indices: rows of a softmax of
 * values in [-3, 3]. */
static void ex_probabilities(ex_case *c, uint64_t salt) {
  size_t n = c->desc.rows, k = c->desc.classes;
  tu_rng r = tu_rng_make(salt);
  c->p = dc_alloc(n * k * sizeof *c->p);
  dc_fill_probabilities(&r, c->p, n, k);
  free(c->t);
  c->t = NULL;
}

/* The double reference of a case stored as `type`, and per gradient
 * element what its tolerance needs: the size of its terms before they
 * cancel, T_j = |s| ((|A| + |2 z lse|) p_j + b_j) for a gradient
 * s (A p_j - b_j), and the argument x_j - m of its exp (m the row's
 * max), whose float32 rounding (half an ulp of it) moves p_j by as much
 * relatively: exact for the logits near the max, and at +-1e4 the only
 * ones whose p_j is not 0, but not in general. */
typedef struct ex_ref {
  double *loss, *grad, *scale, *arg;
  double *lscale; /* the loss's: max(|L|, A0 + |2 z lse|), mean: of rows */
} ex_ref;

static void ex_ref_free(ex_ref *r) {
  free(r->loss);
  free(r->lscale);
  free(r->grad);
  free(r->scale);
  free(r->arg);
}

static double *ex_stored(clloss_dtype type, const float *v, size_t n) {
  double *out = dc_alloc(n * sizeof *out);
  for (size_t i = 0; i < n; i++)
    out[i] = ul_stored(type, v[i]);
  return out;
}

static ex_ref ex_reference(const ex_case *c, clloss_dtype type) {
  clloss_cross_entropy_desc d = c->desc;
  const size_t n = d.rows, k = d.classes;
  const int mean = d.reduction == CLLOSS_REDUCTION_MEAN;
  d.input_type = CLLOSS_FLOAT64;
  if (c->p)
    d.target_type = CLLOSS_FLOAT64;
  double *x = ex_stored(type, c->x, n * k);
  double *p = c->p ? ex_stored(type, c->p, n * k) : NULL;
  ex_ref r;
  r.loss = dc_alloc((mean ? 1 : n) * sizeof *r.loss);
  r.lscale = dc_alloc((mean ? 1 : n) * sizeof *r.lscale);
  double *row_loss = dc_alloc(n * sizeof *row_loss);
  r.grad = dc_alloc(n * k * sizeof *r.grad);
  r.scale = dc_alloc(n * k * sizeof *r.scale);
  r.arg = dc_alloc(n * k * sizeof *r.arg);
  CU_ASSERT_EQUAL_FATAL(clloss_reference_cross_entropy(
                            &d, x, p ? (const void *)p : (const void *)c->t,
                            NULL, NULL, r.loss, r.grad),
                        CLLOSS_SUCCESS);
  const double e = d.label_smoothing, z = d.z_loss;
  const double s = mean ? 1.0 / (double)n : 1.0;
  if (mean) {
    d.reduction = CLLOSS_REDUCTION_NONE;
    CU_ASSERT_EQUAL_FATAL(clloss_reference_cross_entropy(
                              &d, x, p ? (const void *)p : (const void *)c->t,
                              NULL, NULL, row_loss, NULL),
                          CLLOSS_SUCCESS);
  } else {
    memcpy(row_loss, r.loss, n * sizeof *row_loss);
  }
  if (mean)
    r.lscale[0] = 0;
  for (size_t i = 0; i < n; i++) {
    const double *xi = x + i * k;
    double m = -INFINITY, sum = 0.0, wy = 0.0;
    for (size_t j = 0; j < k; j++)
      m = xi[j] > m ? xi[j] : m;
    for (size_t j = 0; j < k; j++)
      sum += exp(xi[j] - m);
    const double lse = m + log(sum);
    for (size_t j = 0; p && j < k; j++)
      wy += (1 - e) * p[i * k + j] + e / (double)k;
    for (size_t j = 0; j < k; j++) {
      double pj = exp(xi[j] - lse), b;
      if (p)
        b = (1 - e) * p[i * k + j] + e / (double)k;
      else
        b = (1 - e) * ((int64_t)j == c->t[i]) + e / (double)k;
      double a = (p ? wy : 1.0) + fabs(2 * z * lse);
      r.scale[i * k + j] = s * (a * pj + b);
      r.arg[i * k + j] = pj > 0 ? fabs(xi[j] - m) : 0.0;
    }
    const double a0 = (p ? wy : 1.0) + fabs(2 * z * lse);
    const double li = fmax(fabs(row_loss[i]), a0);
    if (mean)
      r.lscale[0] += li / (double)n;
    else
      r.lscale[i] = li;
  }
  free(row_loss);
  free(x);
  free(p);
  return r;
}

/* The worst errors seen per storage type, printed at the end of a test. */
typedef struct ex_stats {
  ul_worst loss[4], grad[4];
  ul_bound bound;
} ex_stats;

static int ex_type_index(clloss_dtype type) {
  for (int i = 0; i < 4; i++)
    if (ex_types[i] == type)
      return i;
  return 0;
}

/* The bound's options for a case. */
static ul_ce_opts ex_opts(const ex_case *c) {
  const clloss_cross_entropy_desc *d = &c->desc;
  ul_ce_opts o = {
      d->classes, d->rows, d->label_smoothing, d->z_loss, c->p != NULL, 0,
      0,          0};
  o.reduce = d->reduction == CLLOSS_REDUCTION_MEAN  ? 1
             : d->reduction == CLLOSS_REDUCTION_SUM ? 2
                                                    : 0;
  return o;
}

/* Loss: ul_ce_bound's ulps of max(|loss|, A0 + |2 z lse|) (below 1 the
 * rounding of S, a sum near 1, is what remains of log S). Gradient: its
 * ulps of T_j plus the rounding of exp's argument, plus one storage ulp
 * for 16-bit storage, plus FLT_MIN (subnormal exps are 0,
 * docs/LOSSES.md). */
static size_t ex_compare(const ex_case *c, clloss_dtype type, const ex_ref *ref,
                         const void *loss, const void *grad, const char *how,
                         ex_stats *st) {
  const size_t n = c->desc.rows, k = c->desc.classes;
  const size_t nl = c->desc.reduction == CLLOSS_REDUCTION_NONE ? n : 1;
  const clloss_dtype lt = clloss_loss_dtype(type);
  const int sixteen = type == CLLOSS_FLOAT16 || type == CLLOSS_BFLOAT16;
  ul_worst *wl = &st->loss[ex_type_index(type)];
  ul_worst *wg = &st->grad[ex_type_index(type)];
  const ul_ce_opts opts = ex_opts(c);
  const ul_bound bound = ul_ce_bound(&opts);
  st->bound = bound;
  size_t bad = wl->bad + wg->bad;
  char what[200];
  snprintf(what, sizeof what, "%s %s loss", how, clloss_dtype_name(type));
  for (size_t i = 0; loss && i < nl; i++)
    ul_check(wl, what, i, dc_get(lt, loss, i), ref->loss[i], ref->lscale[i],
             bound.loss, 0.0);
  snprintf(what, sizeof what, "%s %s grad", how, clloss_dtype_name(type));
  for (size_t e = 0; grad && e < n * k; e++) {
    double extra = ref->arg[e] * 0x1p-24 * ref->scale[e] + FLT_MIN;
    if (sixteen)
      extra += ul_ulp(type, ref->grad[e]);
    ul_check(wg, what, e, dc_get(type, grad, e), ref->grad[e], ref->scale[e],
             bound.grad, extra);
  }
  bad = wl->bad + wg->bad - bad;
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

/* Options of one run over the storage types and variants. */
enum {
  EX_IN_PLACE = 1,  /* also with the gradient written over the logits */
  EX_LOSS_ONLY = 2, /* also without a gradient */
};

/* The device call on q, in the modes of `flags`; q NULL: the host-pointer
 * call. */
static void ex_device(clloss_context *ctx, cl_command_queue q, const ex_case *c,
                      const clloss_cross_entropy_desc *d, const ex_ref *ref,
                      const char *how, unsigned flags, ex_stats *st) {
  dc_ce_case cc = {*d, c->x, c->t, c->p, NULL, NULL};
  for (int mode = 0; mode < 3; mode++) {
    dc_opts o;
    memset(&o, 0, sizeof o);
    if ((mode == 1 && !(flags & EX_IN_PLACE)) ||
        (mode == 2 && !(flags & EX_LOSS_ONLY)))
      continue;
    o.in_place = mode == 1, o.no_grad = mode == 2;
    char label[160];
    snprintf(label, sizeof label, "%s%s", how,
             mode == 1   ? " in place"
             : mode == 2 ? " loss only"
                         : "");
    dc_result r = dc_run_ce(ctx, q, &cc, &o);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    if (r.status == CLLOSS_SUCCESS)
      ex_compare(c, d->input_type, ref, r.loss, r.grad, label, st);
    else
      printf("\n  %s: %s (%s)", label, clloss_status_name(r.status),
             clloss_context_error_detail(ctx));
    dc_result_free(&r);
  }
}

/* Every storage type (float64 where the device has it) and variant, at
 * both call levels, on every device. */
static void ex_run(const char *name, const ex_case *c, unsigned flags) {
  ex_stats st;
  memset(&st, 0, sizeof st);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    cl_command_queue q = dc_queue(ctx);
    for (int ti = 0; ti < 4; ti++) {
      clloss_dtype type = ex_types[ti];
      if ((type == CLLOSS_FLOAT16 && c->no_float16) || !tu_runs_type(ctx, type))
        continue;
      clloss_cross_entropy_desc d = c->desc;
      d.input_type = type;
      if (c->p)
        d.target_type = type;
      ex_ref ref = ex_reference(c, type);
      for (int v = 0; v < DC_VARIANTS - 1; v++) {
        char how[128];
        CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, dc_variants[v]),
                        CLLOSS_SUCCESS);
        snprintf(how, sizeof how, "%s [%s]", name, dc_variants[v]);
        ex_device(ctx, q, c, &d, &ref, how, flags, &st);
        CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx),
                               dc_variants[v]);
        snprintf(how, sizeof how, "%s [%s, host call]", name, dc_variants[v]);
        ex_device(ctx, NULL, c, &d, &ref, how, 0, &st);
      }
      ex_ref_free(&ref);
    }
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
    clReleaseCommandQueue(q);
  }
  printf("\n  %s, worst ulps (float32's) of loss / gradient (bound %.0f / "
         "%.0f), as a fraction of the allowed:",
         name, st.bound.loss, st.bound.grad);
  for (int ti = 0; ti < 4; ti++)
    if (st.grad[ti].count)
      printf(" %s %.2f / %.2f (%.4f / %.4f);", clloss_dtype_name(ex_types[ti]),
             st.loss[ti].ulps, st.grad[ti].ulps, st.loss[ti].ratio,
             st.grad[ti].ratio);
  printf("\n");
}

/* ---- the cases ---- */

/* The example: a row of C = 1000 logits all -1e4 with target 0 has
 * the loss log(1000) (float32 once gave 6.9082031 for 6.9077553). Checked
 * against log(C) itself as well as the reference, and rows all +1e4. */
static void test_ex_all_equal_rows(void) {
  TU_REQUIRE_DEVICE();
  const size_t rows = 4, classes = 1000;
  ex_case c = ex_rows(rows, classes, 1e4f, 0, 1201);
  for (size_t i = 0; i < rows; i++) {
    for (size_t j = 0; j < classes; j++)
      c.x[i * classes + j] = i < 3 ? -1e4f : 1e4f;
    c.t[i] = i == 0 ? 0 : (int64_t)(i * 331 % classes);
  }
  ex_run("all -1e4", &c, EX_IN_PLACE | EX_LOSS_ONLY);
  const double want = log((double)classes);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    cl_command_queue q = dc_queue(ctx);
    for (int v = 0; v < DC_VARIANTS - 1; v++) {
      clloss_context_set_variant(ctx, dc_variants[v]);
      dc_ce_case cc = {c.desc, c.x, c.t, NULL, NULL, NULL};
      dc_opts o;
      memset(&o, 0, sizeof o);
      dc_result r = dc_run_ce(ctx, q, &cc, &o);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      ul_worst w = {0, 0, 0, 0};
      const ul_ce_opts bo = ex_opts(&c);
      const double ulps = ul_ce_bound(&bo).loss;
      for (size_t i = 0; r.loss && i < rows; i++)
        ul_check(&w, dc_variants[v], i, ((const float *)r.loss)[i], want, want,
                 ulps, 0.0);
      CU_ASSERT_EQUAL(w.bad, 0);
      dc_result_free(&r);
    }
    clloss_context_set_variant(ctx, "auto");
    clReleaseCommandQueue(q);
  }
  ex_free(&c);
}

static void test_ex_1e4(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(8, 600, 1e4f, 0, 1211);
  ex_run("+-1e4", &c, EX_IN_PLACE | EX_LOSS_ONLY);
  c.desc.reduction = CLLOSS_REDUCTION_MEAN;
  ex_run("+-1e4 mean", &c, 0);
  ex_free(&c);
}

/* float16 holds at most 65504: it gets rows at +-6e4 instead. */
static void test_ex_1e6(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(8, 600, 1e6f, 0, 1221);
  c.no_float16 = 1;
  ex_run("+-1e6", &c, EX_LOSS_ONLY);
  ex_free(&c);
  c = ex_rows(8, 600, 6e4f, 0, 1222);
  ex_run("+-6e4", &c, EX_LOSS_ONLY);
  ex_free(&c);
}

static void test_ex_neg_inf(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(8, 300, 1e4f, 1, 1231);
  ex_run("+-1e4 with -inf", &c, EX_IN_PLACE);
  c.desc.z_loss = 1e-4f;
  ex_run("+-1e4 with -inf, z_loss", &c, 0);
  ex_free(&c);
}

static void test_ex_label_smoothing(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(8, 600, 1e4f, 0, 1241);
  c.desc.label_smoothing = 0.1f;
  ex_run("+-1e4 label_smoothing", &c, EX_LOSS_ONLY);
  c.desc.reduction = CLLOSS_REDUCTION_MEAN;
  ex_run("+-1e4 label_smoothing mean", &c, 0);
  ex_free(&c);
}

static void test_ex_z_loss(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(8, 600, 1e4f, 0, 1251);
  c.desc.z_loss = 1e-4f;
  ex_run("+-1e4 z_loss", &c, EX_LOSS_ONLY);
  c.desc.label_smoothing = 0.05f;
  ex_run("+-1e4 z_loss label_smoothing", &c, 0);
  ex_free(&c);
}

static void test_ex_probability_targets(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(8, 600, 1e4f, 0, 1261);
  ex_probabilities(&c, 1262);
  ex_run("+-1e4 probabilities", &c, EX_LOSS_ONLY);
  c.desc.label_smoothing = 0.1f;
  ex_run("+-1e4 probabilities label_smoothing", &c, 0);
  ex_free(&c);
}

/* Rows longer than the group variant keeps in local memory (48 KiB), and
 * cut into many segments by split. */
static void test_ex_long_rows(void) {
  TU_REQUIRE_DEVICE();
  ex_case c = ex_rows(2, 13001, 1e4f, 0, 1271);
  c.x[13000] = 1e4f;
  c.t[0] = 13000;
  ex_run("+-1e4 C=13001", &c, 0);
  ex_free(&c);
}

int test_exactness_register(void) {
  TU_SUITE("exactness", NULL, NULL, TU_TEST(test_ex_all_equal_rows),
           TU_TEST(test_ex_1e4), TU_TEST(test_ex_1e6), TU_TEST(test_ex_neg_inf),
           TU_TEST(test_ex_label_smoothing), TU_TEST(test_ex_z_loss),
           TU_TEST(test_ex_probability_targets), TU_TEST(test_ex_long_rows));
}
