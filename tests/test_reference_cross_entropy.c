/* test_reference_cross_entropy.c - the CPU reference of cross_entropy against
 * hand-computed values, PyTorch's edge cases and central finite differences.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"

#define LN2 0.69314718055994531
#define LN3 1.0986122886681098

static clloss_cross_entropy_desc desc_of(size_t rows, size_t classes,
                                         clloss_reduction reduction) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows;
  d.classes = classes;
  d.reduction = reduction;
  return d;
}

static void fill_d(tu_rng *r, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++)
    x[i] = tu_uniform(r, (float)lo, (float)hi);
}

/* Random probability rows (each sums to 1). */
static void fill_prob(tu_rng *r, double *y, size_t rows, size_t classes) {
  for (size_t i = 0; i < rows; i++) {
    double s = 0.0;
    for (size_t j = 0; j < classes; j++)
      s += y[i * classes + j] = tu_uniform(r, 0.01f, 1.0f);
    for (size_t j = 0; j < classes; j++)
      y[i * classes + j] /= s;
  }
}

/* ---- finite differences (float64 storage) ----
 * J(x) = sum_k v_k loss_k with v = grad_output (1 when NULL) is the scalar
 * whose gradient the reference returns in grad_input. */
static double objective(const clloss_cross_entropy_desc *d, const double *x,
                        const void *t, const double *w, const double *go) {
  size_t nl = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  double loss[64];
  CU_ASSERT_FATAL(nl <= 64);
  CU_ASSERT_EQUAL_FATAL(
      clloss_reference_cross_entropy(d, x, t, w, NULL, loss, NULL),
      CLLOSS_SUCCESS);
  double J = 0.0;
  for (size_t k = 0; k < nl; k++)
    J += (go ? go[k] : 1.0) * loss[k];
  return J;
}

static void fd_check(const char *what, const clloss_cross_entropy_desc *d,
                     const double *x, const void *t, const double *w,
                     const double *go) {
  const double h = 1e-6;
  size_t ld = d->row_stride ? d->row_stride : d->classes;
  size_t n = d->rows * ld;
  double *grad = calloc(n, sizeof *grad), *expect = calloc(n, sizeof *expect);
  double *xp = malloc(n * sizeof *xp);
  CU_ASSERT_FATAL(grad && expect && xp);
  memcpy(xp, x, n * sizeof *xp);
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(d, x, t, w, go, NULL, grad),
                  CLLOSS_SUCCESS);
  for (size_t i = 0; i < d->rows; i++)
    for (size_t j = 0; j < d->classes; j++) {
      size_t k = i * ld + j;
      xp[k] = x[k] + h;
      double jp = objective(d, xp, t, w, go);
      xp[k] = x[k] - h;
      double jm = objective(d, xp, t, w, go);
      xp[k] = x[k];
      expect[k] = (jp - jm) / (2.0 * h);
    }
  CU_ASSERT_EQUAL(tu_compare(what, grad, CLLOSS_FLOAT64, expect, n, 1e-7, 1e-6),
                  0);
  free(grad);
  free(expect);
  free(xp);
}

/* ---- hand-computed values ---- */

/* x = [[1, 2, 3], [0, 0, 0]], t = [2, 0]:
 *   row 0: lse = 3 + ln(1 + e^-1 + e^-2) = 3.40760596444438,
 *          loss = lse - 3 = 0.40760596444438,
 *          p = [0.0900305732, 0.2447284711, 0.6652409558]
 *   row 1: lse = ln 3, loss = ln 3 = 1.09861228866811, p = 1/3 each
 *   sum = 1.50621825311249, mean = sum / 2 = 0.75310912655625
 *   mean gradient: (p - onehot) / 2
 *     row 0: [0.0450152866, 0.1223642355, -0.1673795221]
 *     row 1: [-1/3, 1/6, 1/6] */
static void test_ce_hand_2x3(void) {
  const float x[6] = {1, 2, 3, 0, 0, 0};
  const int64_t t[2] = {2, 0};
  const double none[2] = {0.40760596444438, LN3};
  const double sum = 1.50621825311249, mean = 0.75310912655625;
  const double gmean[6] = {0.0450152866, 0.1223642355, -0.1673795221,
                           -1.0 / 3.0,   1.0 / 6.0,    1.0 / 6.0};
  float loss[2], grad[6];
  clloss_cross_entropy_desc d = desc_of(2, 3, CLLOSS_REDUCTION_MEAN);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(
      tu_compare("mean", loss, CLLOSS_FLOAT32, &mean, 1, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(
      tu_compare("grad", grad, CLLOSS_FLOAT32, gmean, 6, 1e-7, 1e-6), 0);
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare("sum", loss, CLLOSS_FLOAT32, &sum, 1, 1e-6, 1e-6),
                  0);
  d.reduction = CLLOSS_REDUCTION_NONE;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare("none", loss, CLLOSS_FLOAT32, none, 2, 1e-6, 1e-6),
                  0);
}

/* Label smoothing e = 0.3, weights w = [1, 2, 0.5] (W = 3.5) and
 * ignore_index together; x = [[0, 0, 0], [0, 0, ln 2], [5, 6, 7]],
 * t = [1, 2, -100]:
 *   row 0: lse - x_c = ln 3 for every c;
 *     loss = 0.7*2*ln3 + (0.3/3)*(1 + 2 + 0.5)*ln3 = 1.75 ln 3 = 1.92257150517
 *   row 1: p = [1/4, 1/4, 1/2], lse = ln 4, lse - x = [ln4, ln4, ln2];
 *     loss = 0.7*0.5*ln2 + 0.1*(1*ln4 + 2*ln4 + 0.5*ln2)
 *          = 0.35 ln2 + 0.65 ln2 = ln 2 = 0.69314718056
 *   row 2: ignored, 0.
 *   D = w[1] + w[2] = 2.5; sum = 2.61571868573, mean = 1.04628747429
 *   mean gradient, s = 1/D = 0.4,
 *   g_j = s [0.7 w_t (p_j - [j=t]) + 0.1 (3.5 p_j - w_j)]:
 *     row 0: [0.4*(0.466667 + 0.016667), 0.4*(-0.933333 - 0.083333),
 *             0.4*(0.466667 + 0.066667)] = [0.193333, -0.406667, 0.213333]
 *     row 1: [0.4*(0.0875 - 0.0125), 0.4*(0.0875 - 0.1125),
 *             0.4*(-0.175 + 0.125)] = [0.03, -0.01, -0.02]
 *     row 2: 0 */
static void test_ce_hand_smoothing_weights_ignore(void) {
  const float x[9] = {0, 0, 0, 0, 0, (float)LN2, 5, 6, 7};
  const int64_t t[3] = {1, 2, -100};
  const float w[3] = {1.0f, 2.0f, 0.5f};
  const double none[3] = {1.75 * LN3, LN2, 0.0};
  const double sum = 1.75 * LN3 + LN2, mean = sum / 2.5;
  const double g[9] = {0.58 / 3.0, -1.22 / 3.0, 0.64 / 3.0, 0.03, -0.01,
                       -0.02,      0,           0,          0};
  float loss[3], grad[9];
  clloss_cross_entropy_desc d = desc_of(3, 3, CLLOSS_REDUCTION_MEAN);
  d.label_smoothing = 0.3f;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(
      tu_compare("mean", loss, CLLOSS_FLOAT32, &mean, 1, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(tu_compare("grad", grad, CLLOSS_FLOAT32, g, 9, 1e-6, 1e-6),
                  0);
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, NULL, loss, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare("sum", loss, CLLOSS_FLOAT32, &sum, 1, 1e-6, 1e-6),
                  0);
  d.reduction = CLLOSS_REDUCTION_NONE;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, NULL, loss, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare("none", loss, CLLOSS_FLOAT32, none, 3, 1e-6, 1e-6),
                  0);
}

/* Probability targets, x = [0, 0, ln 2] (p = [1/4, 1/4, 1/2]),
 * y = [0.5, 0.5, 0]: loss = 0.5 ln 4 + 0.5 ln 4 = ln 4 = 1.38629436112,
 * gradient p - y = [-0.25, -0.25, 0.5]. With w = [2, 1, 1] and a second
 * row equal to the first, mean divides by N = 2, not by the weights:
 * loss_i = 2*0.5*ln4 + 1*0.5*ln4 = 1.5 ln 4, mean = 1.5 ln 4 = 2.07944154168
 * and the gradient (sum_c w_c y_c) p - w y = 1.5 p - w y = [-0.625, -0.125,
 * 0.75], halved by the mean. With label smoothing 0.3 and no weights,
 * y' = 0.7 y + 0.1 = [0.45, 0.45, 0.1]: loss = 0.45 ln4 + 0.45 ln4 +
 * 0.1 ln2 = 1.9 ln 2 = 1.31697964, gradient p - y' = [-0.2, -0.2, 0.4]. */
static void test_ce_hand_probability_targets(void) {
  const float x[6] = {0, 0, (float)LN2, 0, 0, (float)LN2};
  const float y[6] = {0.5f, 0.5f, 0, 0.5f, 0.5f, 0};
  const float w[3] = {2, 1, 1};
  float loss[2], grad[6];
  clloss_cross_entropy_desc d = desc_of(1, 3, CLLOSS_REDUCTION_SUM);
  d.target_type = CLLOSS_FLOAT32;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, y, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  const double l1 = 2 * LN2, g1[3] = {-0.25, -0.25, 0.5};
  CU_ASSERT_EQUAL(tu_compare("loss", loss, CLLOSS_FLOAT32, &l1, 1, 1e-6, 1e-6),
                  0);
  CU_ASSERT_EQUAL(tu_compare("grad", grad, CLLOSS_FLOAT32, g1, 3, 1e-6, 1e-6),
                  0);
  d.rows = 2;
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, y, w, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  const double l2 = 3 * LN2;
  const double g2[6] = {-0.3125, -0.0625, 0.375, -0.3125, -0.0625, 0.375};
  CU_ASSERT_EQUAL(tu_compare("mean", loss, CLLOSS_FLOAT32, &l2, 1, 1e-6, 1e-6),
                  0);
  CU_ASSERT_EQUAL(tu_compare("grad", grad, CLLOSS_FLOAT32, g2, 6, 1e-6, 1e-6),
                  0);
  d.rows = 1;
  d.reduction = CLLOSS_REDUCTION_SUM;
  d.label_smoothing = 0.3f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, y, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  const double l3 = 1.9 * LN2, g3[3] = {-0.2, -0.2, 0.4};
  CU_ASSERT_EQUAL(
      tu_compare("ls loss", loss, CLLOSS_FLOAT32, &l3, 1, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(
      tu_compare("ls grad", grad, CLLOSS_FLOAT32, g3, 3, 1e-6, 1e-6), 0);
}

/* z-loss and softcap by hand on one row x = [0, 0, 0], t = 0, z = 0.1:
 * loss = ln 3 + 0.1 (ln 3)^2 = 1.21930742891, gradient (p - onehot) +
 * 2*0.1*ln3*p = [-2/3 + 0.0732408, 1/3 + 0.0732408, 1/3 + 0.0732408].
 * Softcap c = 1 on x = [0, 0, 0] changes nothing in the loss (tanh 0 = 0)
 * and multiplies the gradient by 1 - tanh^2(0) = 1; on x = [100, 0, 0]
 * with c = 1 the logits become [tanh 100 = 1, 0, 0], lse = ln(e + 2), and
 * the gradient of x_0 is 0 (1 - tanh^2(100) = 0). */
static void test_ce_hand_zloss_softcap(void) {
  float x[3] = {0, 0, 0}, loss, grad[3];
  const int64_t t[1] = {0};
  clloss_cross_entropy_desc d = desc_of(1, 3, CLLOSS_REDUCTION_SUM);
  d.z_loss = 0.1f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  const double zl = LN3 + 0.1 * LN3 * LN3, zp = 0.2 * LN3 / 3.0;
  const double zg[3] = {-2.0 / 3.0 + zp, 1.0 / 3.0 + zp, 1.0 / 3.0 + zp};
  CU_ASSERT_EQUAL(
      tu_compare("z loss", &loss, CLLOSS_FLOAT32, &zl, 1, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(tu_compare("z grad", grad, CLLOSS_FLOAT32, zg, 3, 1e-6, 1e-6),
                  0);
  d.z_loss = 0.0f;
  d.softcap = 1.0f;
  x[0] = 100.0f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  const double e = exp(1.0), cl = log(e + 2.0) - 1.0;
  const double cg[3] = {0.0, 1.0 / (e + 2.0), 1.0 / (e + 2.0)};
  CU_ASSERT_EQUAL(
      tu_compare("cap loss", &loss, CLLOSS_FLOAT32, &cl, 1, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(
      tu_compare("cap grad", grad, CLLOSS_FLOAT32, cg, 3, 1e-6, 1e-6), 0);
}

/* int32 and int64 targets give identical results. */
static void test_ce_int32_matches_int64(void) {
  enum { N = 7, C = 5 };
  tu_rng r = tu_rng_make(11);
  float x[N * C], l32[N], l64[N], g32[N * C], g64[N * C];
  tu_fill_uniform(&r, x, N * C, -3, 3);
  const int32_t t32[N] = {0, 4, -100, 2, 1, 3, 4};
  const int64_t t64[N] = {0, 4, -100, 2, 1, 3, 4};
  clloss_cross_entropy_desc d = desc_of(N, C, CLLOSS_REDUCTION_NONE);
  d.label_smoothing = 0.1f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t64, NULL, NULL, l64, g64),
      CLLOSS_SUCCESS);
  d.target_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t32, NULL, NULL, l32, g32),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(memcmp(l32, l64, sizeof l32), 0);
  CU_ASSERT_EQUAL(memcmp(g32, g64, sizeof g32), 0);
}

/* none sums to sum; mean = sum / D; the gradients scale with g. */
static void test_ce_reductions_agree(void) {
  enum { N = 6, C = 4 };
  tu_rng r = tu_rng_make(12);
  float x[N * C], w[C] = {0.5f, 1.5f, 2.0f, 1.0f}, none[N], s, m;
  float gn[N * C], gs[N * C];
  tu_fill_uniform(&r, x, N * C, -2, 2);
  const int64_t t[N] = {3, 0, -100, 1, 2, 1};
  clloss_cross_entropy_desc d = desc_of(N, C, CLLOSS_REDUCTION_NONE);
  d.label_smoothing = 0.2f;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, NULL, none, gn),
                  CLLOSS_SUCCESS);
  d.reduction = CLLOSS_REDUCTION_SUM;
  const float g = 0.75f;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, &g, &s, gs),
                  CLLOSS_SUCCESS);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, NULL, &m, NULL),
                  CLLOSS_SUCCESS);
  double total = 0.0, D = w[3] + w[0] + w[1] + w[2] + w[1];
  for (int i = 0; i < N; i++)
    total += none[i];
  CU_ASSERT_EQUAL(none[2], 0.0f);
  CU_ASSERT_EQUAL(tu_compare("sum", &s, CLLOSS_FLOAT32, &total, 1, 1e-6, 1e-6),
                  0);
  double mean = total / D;
  CU_ASSERT_EQUAL(tu_compare("mean", &m, CLLOSS_FLOAT32, &mean, 1, 1e-6, 1e-6),
                  0);
  double scaled[N * C];
  for (int k = 0; k < N * C; k++)
    scaled[k] = (double)g * gn[k];
  CU_ASSERT_EQUAL(
      tu_compare("sum grad", gs, CLLOSS_FLOAT32, scaled, N * C, 1e-7, 1e-6), 0);
}

/* PyTorch: mean over a batch whose rows are all ignored is NaN with a zero
 * gradient; sum is 0; with a normalizer the mean is 0 (0 / n). */
static void test_ce_all_ignored(void) {
  float x[6] = {1, 2, 3, 4, 5, 6}, loss, grad[6];
  const int64_t t[2] = {-100, -100};
  clloss_cross_entropy_desc d = desc_of(2, 3, CLLOSS_REDUCTION_MEAN);
  d.label_smoothing = 0.1f;
  memset(grad, 0x7f, sizeof grad);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss));
  for (int k = 0; k < 6; k++)
    CU_ASSERT_EQUAL(grad[k], 0.0f);
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss, 0.0f);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  d.normalizer = 4.0f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss, 0.0f);
  for (int k = 0; k < 6; k++)
    CU_ASSERT_EQUAL(grad[k], 0.0f);
}

/* Valid rows whose weights are all 0 make D = 0 too: PyTorch gives a NaN
 * loss and NaN gradients on those rows (g / 0 * 0). */
static void test_ce_zero_weight_mean_is_nan(void) {
  float x[6] = {1, 2, 3, 4, 5, 6}, loss, grad[6];
  const int64_t t[2] = {0, -100};
  const float w[3] = {0, 1, 1};
  clloss_cross_entropy_desc d = desc_of(2, 3, CLLOSS_REDUCTION_MEAN);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, w, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss));
  for (int k = 0; k < 3; k++)
    CU_ASSERT(isnan(grad[k]));
  for (int k = 3; k < 6; k++)
    CU_ASSERT_EQUAL(grad[k], 0.0f);
}

/* rows = 0: sum 0, mean NaN (0/0), none writes nothing. */
static void test_ce_empty(void) {
  float x[1] = {0}, loss[1 + TU_CANARY], grad[1 + TU_CANARY];
  const int64_t t[1] = {0};
  clloss_cross_entropy_desc d = desc_of(0, 3, CLLOSS_REDUCTION_SUM);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss[0], 0.0f);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss[0]));
  d.reduction = CLLOSS_REDUCTION_NONE;
  tu_canary_fill(loss, sizeof(float));
  tu_canary_fill(grad, sizeof(float));
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT(tu_canary_intact(loss, sizeof(float)));
  CU_ASSERT(tu_canary_intact(grad, sizeof(float)));
}

/* Extreme logits, values from PyTorch 1.13 (float64):
 *   [-inf, 0, 1], t = 1: loss 1.31326168752, grad [0, -0.73105857863,
 *     0.73105857863] (a -inf logit is a class of probability 0);
 *   [-inf, -inf, -inf], t = 0: NaN loss and gradient;
 *   [1e4, -1e4, 0], t = 0: loss 0, gradient 0;
 *   [NaN, 0, 0], t = 1: NaN loss and gradient.
 * With label smoothing 0.1 the -inf logit makes the loss +inf while the
 * gradient of the first row stays finite: [-0.0333333, -0.6643919,
 * 0.6977252]. */
static void test_ce_extreme_logits(void) {
  const float inf = INFINITY;
  const float x[12] = {-inf, 0, 1, -inf, -inf, -inf, 1e4f, -1e4f, 0, NAN, 0, 0};
  const int64_t t[4] = {1, 0, 0, 1};
  float loss[4], grad[12];
  clloss_cross_entropy_desc d = desc_of(4, 3, CLLOSS_REDUCTION_NONE);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  const double el[4] = {1.31326168752, NAN, 0.0, NAN};
  const double eg[12] = {
      0, -0.73105857863, 0.73105857863, NAN, NAN, NAN, 0, 0, 0, NAN, NAN, NAN};
  CU_ASSERT_EQUAL(tu_compare("loss", loss, CLLOSS_FLOAT32, el, 4, 1e-6, 1e-6),
                  0);
  CU_ASSERT_EQUAL(tu_compare("grad", grad, CLLOSS_FLOAT32, eg, 12, 1e-6, 1e-6),
                  0);
  d.label_smoothing = 0.1f;
  d.rows = 1;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  const double sl = INFINITY, sg[3] = {-0.0333333, -0.6643919, 0.6977252};
  CU_ASSERT_EQUAL(tu_compare("ls loss", loss, CLLOSS_FLOAT32, &sl, 1, 0, 0), 0);
  CU_ASSERT_EQUAL(
      tu_compare("ls grad", grad, CLLOSS_FLOAT32, sg, 3, 1e-6, 1e-5), 0);
}

/* A bad target returns CLLOSS_INVALID_TARGET and leaves both outputs as
 * they were, for int32 and int64, above and below the range. */
static void test_ce_invalid_target_untouched(void) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t bad64[3][2] = {{0, 3}, {-1, 0}, {-100, 0}};
  const int32_t bad32[2] = {1, 7};
  float loss[2], grad[6];
  clloss_cross_entropy_desc d = desc_of(2, 3, CLLOSS_REDUCTION_NONE);
  for (int c = 0; c < 3; c++) {
    if (c == 2)
      d.ignore_index = -1; /* -100 is now out of range */
    memset(loss, 0x5a, sizeof loss);
    memset(grad, 0x5a, sizeof grad);
    CU_ASSERT_EQUAL(
        clloss_reference_cross_entropy(&d, x, bad64[c], NULL, NULL, loss, grad),
        CLLOSS_INVALID_TARGET);
    for (size_t k = 0; k < sizeof loss; k++)
      CU_ASSERT_EQUAL(((unsigned char *)loss)[k], 0x5a);
    for (size_t k = 0; k < sizeof grad; k++)
      CU_ASSERT_EQUAL(((unsigned char *)grad)[k], 0x5a);
  }
  d.target_type = CLLOSS_INT32;
  d.reduction = CLLOSS_REDUCTION_MEAN;
  memset(loss, 0x5a, sizeof loss);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, bad32, NULL, NULL, loss, NULL),
      CLLOSS_INVALID_TARGET);
  CU_ASSERT_EQUAL(((unsigned char *)loss)[0], 0x5a);
}

/* Every invalid argument gives CLLOSS_INVALID_ARGUMENT. */
static void test_ce_invalid_arguments(void) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t t[2] = {0, 1};
  float loss[2], grad[6];
#define EXPECT_INVALID(dd, in, tg, lo, gr)                                     \
  CU_ASSERT_EQUAL(                                                             \
      clloss_reference_cross_entropy(dd, in, tg, NULL, NULL, lo, gr),          \
      CLLOSS_INVALID_ARGUMENT)
  clloss_cross_entropy_desc ok = desc_of(2, 3, CLLOSS_REDUCTION_MEAN), d;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&ok, x, t, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  EXPECT_INVALID(NULL, x, t, loss, grad);
  EXPECT_INVALID(&ok, NULL, t, loss, grad);
  EXPECT_INVALID(&ok, x, NULL, loss, grad);
  EXPECT_INVALID(&ok, x, t, NULL, NULL);
  d = ok, d.classes = 0;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.row_stride = 2;
  EXPECT_INVALID(&d, x, t, loss, grad);
  const float bad_eps[3] = {-0.1f, 1.5f, NAN};
  for (int k = 0; k < 3; k++) {
    d = ok, d.label_smoothing = bad_eps[k];
    EXPECT_INVALID(&d, x, t, loss, grad);
  }
  d = ok, d.z_loss = -1.0f;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.softcap = -1.0f;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.normalizer = INFINITY;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.normalizer = -2.0f;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.input_type = CLLOSS_INT32;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.target_type = CLLOSS_FLOAT16; /* not the input_type */
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.reduction = CLLOSS_REDUCTION_BATCHMEAN;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.input_type = (clloss_dtype)42;
  EXPECT_INVALID(&d, x, t, loss, grad);
#undef EXPECT_INVALID
}

/* ---- finite differences for every option (float64 storage) ---- */

typedef struct fd_case {
  const char *what;
  clloss_reduction reduction;
  int weights, probs;
  float eps, z, cap, norm;
  size_t stride;
} fd_case;

static void run_fd(const fd_case *c) {
  enum { N = 5, C = 4, MAXLD = 6 };
  tu_rng r = tu_rng_make(100 + (uint64_t)c->reduction);
  double x[N * MAXLD], y[N * C], w[C], go[N];
  int64_t t[N] = {1, -100, 3, 0, 2};
  fill_d(&r, x, N * MAXLD, -3, 3);
  fill_prob(&r, y, N, C);
  fill_d(&r, w, C, 0.2, 2.0);
  fill_d(&r, go, N, -1.5, 1.5);
  clloss_cross_entropy_desc d = desc_of(N, C, c->reduction);
  d.input_type = CLLOSS_FLOAT64;
  d.target_type = c->probs ? CLLOSS_FLOAT64 : CLLOSS_INT64;
  d.label_smoothing = c->eps;
  d.z_loss = c->z;
  d.softcap = c->cap;
  d.normalizer = c->norm;
  d.row_stride = c->stride;
  fd_check(c->what, &d, x, c->probs ? (const void *)y : (const void *)t,
           c->weights ? w : NULL, go);
}

static void test_ce_fd_weights_ignore(void) {
  const fd_case c[] = {
      {"weights mean", CLLOSS_REDUCTION_MEAN, 1, 0, 0, 0, 0, 0, 0},
      {"weights sum", CLLOSS_REDUCTION_SUM, 1, 0, 0, 0, 0, 0, 0},
      {"weights none", CLLOSS_REDUCTION_NONE, 1, 0, 0, 0, 0, 0, 0},
      {"plain mean", CLLOSS_REDUCTION_MEAN, 0, 0, 0, 0, 0, 0, 0}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

static void test_ce_fd_label_smoothing(void) {
  const fd_case c[] = {
      {"ls mean", CLLOSS_REDUCTION_MEAN, 0, 0, 0.2f, 0, 0, 0, 0},
      {"ls weights none", CLLOSS_REDUCTION_NONE, 1, 0, 0.35f, 0, 0, 0, 0},
      {"ls weights sum", CLLOSS_REDUCTION_SUM, 1, 0, 1.0f, 0, 0, 0, 0}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

static void test_ce_fd_z_loss(void) {
  const fd_case c[] = {
      {"z mean", CLLOSS_REDUCTION_MEAN, 1, 0, 0, 0.05f, 0, 0, 0},
      {"z none ls", CLLOSS_REDUCTION_NONE, 0, 0, 0.1f, 0.3f, 0, 0, 0}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

static void test_ce_fd_softcap(void) {
  const fd_case c[] = {
      {"cap sum", CLLOSS_REDUCTION_SUM, 0, 0, 0, 0, 2.5f, 0, 0},
      {"cap all", CLLOSS_REDUCTION_MEAN, 1, 0, 0.1f, 0.01f, 1.5f, 0, 0}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

static void test_ce_fd_probability_targets(void) {
  const fd_case c[] = {
      {"prob mean", CLLOSS_REDUCTION_MEAN, 0, 1, 0, 0, 0, 0, 0},
      {"prob weights ls none", CLLOSS_REDUCTION_NONE, 1, 1, 0.2f, 0, 0, 0, 0},
      {"prob all sum", CLLOSS_REDUCTION_SUM, 1, 1, 0.1f, 0.02f, 3.0f, 0, 0}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

static void test_ce_fd_normalizer(void) {
  const fd_case c[] = {
      {"norm mean", CLLOSS_REDUCTION_MEAN, 1, 0, 0.1f, 0, 0, 7.0f, 0},
      {"norm prob", CLLOSS_REDUCTION_MEAN, 0, 1, 0, 0, 0, 3.0f, 0}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

static void test_ce_fd_row_stride(void) {
  const fd_case c[] = {
      {"stride mean", CLLOSS_REDUCTION_MEAN, 1, 0, 0.1f, 0, 0, 0, 6},
      {"stride prob none", CLLOSS_REDUCTION_NONE, 0, 1, 0, 0, 0, 0, 5}};
  for (size_t k = 0; k < sizeof c / sizeof *c; k++)
    run_fd(&c[k]);
}

/* The normalizer divides the mean by n instead of D; sum and none ignore
 * it. */
static void test_ce_normalizer_value(void) {
  const float x[6] = {1, 2, 3, 0, 0, 0};
  const int64_t t[2] = {2, 0};
  float l0, l1, g0[6], g1[6];
  clloss_cross_entropy_desc d = desc_of(2, 3, CLLOSS_REDUCTION_MEAN);
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &l0, g0),
                  CLLOSS_SUCCESS);
  d.normalizer = 8.0f; /* D = 2: everything is 4 times smaller */
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &l1, g1),
                  CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(l1, l0 / 4.0, 1e-7);
  for (int k = 0; k < 6; k++)
    CU_ASSERT_DOUBLE_EQUAL(g1[k], g0[k] / 4.0, 1e-7);
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &l1, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(l1, 2.0 * l0, 1e-6);
}

/* float16 and bfloat16 storage: the result equals the float32 reference on
 * the same (rounded) values, with the gradient rounded to the storage type.
 * Probability targets are stored in the input type too. */
static void test_ce_half_bfloat16_storage(void) {
  enum { N = 4, C = 5 };
  tu_rng r = tu_rng_make(13);
  float xf[N * C], yf[N * C], lf[N], gf[N * C], lh[N];
  uint16_t xh[N * C], yh[N * C], gh[N * C];
  const int64_t t[N] = {4, 0, -100, 2};
  tu_fill_uniform(&r, xf, N * C, -4, 4);
  tu_fill_uniform(&r, yf, N * C, 0, 0.4f);
  const clloss_dtype types[2] = {CLLOSS_FLOAT16, CLLOSS_BFLOAT16};
  for (int k = 0; k < 2; k++)
    for (int prob = 0; prob < 2; prob++) {
      int half = types[k] == CLLOSS_FLOAT16;
      for (int i = 0; i < N * C; i++) {
        xh[i] = half ? clloss_float_to_half(xf[i])
                     : clloss_float_to_bfloat16(xf[i]);
        yh[i] = half ? clloss_float_to_half(yf[i])
                     : clloss_float_to_bfloat16(yf[i]);
      }
      float xr[N * C], yr[N * C];
      for (int i = 0; i < N * C; i++) {
        xr[i] = half ? clloss_half_to_float(xh[i])
                     : clloss_bfloat16_to_float(xh[i]);
        yr[i] = half ? clloss_half_to_float(yh[i])
                     : clloss_bfloat16_to_float(yh[i]);
      }
      clloss_cross_entropy_desc d = desc_of(N, C, CLLOSS_REDUCTION_NONE);
      d.label_smoothing = 0.1f;
      d.target_type = prob ? CLLOSS_FLOAT32 : CLLOSS_INT64;
      CU_ASSERT_EQUAL(clloss_reference_cross_entropy(
                          &d, xr, prob ? (const void *)yr : (const void *)t,
                          NULL, NULL, lf, gf),
                      CLLOSS_SUCCESS);
      d.input_type = types[k];
      d.target_type = prob ? types[k] : CLLOSS_INT64;
      CU_ASSERT_EQUAL(clloss_reference_cross_entropy(
                          &d, xh, prob ? (const void *)yh : (const void *)t,
                          NULL, NULL, lh, gh),
                      CLLOSS_SUCCESS);
      CU_ASSERT_EQUAL(tu_compare_f("loss", lh, lf, N, 1e-6, 1e-6), 0);
      for (int i = 0; i < N * C; i++) {
        uint16_t want = half ? clloss_float_to_half(gf[i])
                             : clloss_float_to_bfloat16(gf[i]);
        CU_ASSERT_EQUAL(gh[i], want);
      }
    }
}

/* row_stride > C: results equal the dense ones and the gradient's padding
 * is left untouched. */
static void test_ce_row_stride_padding(void) {
  enum { N = 3, C = 4, LD = 7 };
  tu_rng r = tu_rng_make(14);
  float dense[N * C], strided[N * LD], ld[N], ls[N], gd[N * C], gs[N * LD];
  tu_fill_uniform(&r, dense, N * C, -2, 2);
  tu_fill_uniform(&r, strided, N * LD, -2, 2);
  for (int i = 0; i < N; i++)
    memcpy(strided + i * LD, dense + i * C, C * sizeof(float));
  const int64_t t[N] = {3, -100, 1};
  for (int k = 0; k < N * LD; k++)
    gs[k] = -777.0f;
  clloss_cross_entropy_desc d = desc_of(N, C, CLLOSS_REDUCTION_NONE);
  d.label_smoothing = 0.1f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, dense, t, NULL, NULL, ld, gd),
      CLLOSS_SUCCESS);
  d.row_stride = LD;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, strided, t, NULL, NULL, ls, gs),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(memcmp(ld, ls, sizeof ld), 0);
  for (int i = 0; i < N; i++) {
    CU_ASSERT_EQUAL(memcmp(gd + i * C, gs + i * LD, C * sizeof(float)), 0);
    for (int j = C; j < LD; j++)
      CU_ASSERT_EQUAL(gs[i * LD + j], -777.0f);
  }
}

/* The gradient may overwrite the input (in place); either output may be
 * omitted. */
static void test_ce_in_place_and_single_output(void) {
  enum { N = 4, C = 6 };
  tu_rng r = tu_rng_make(15);
  float x[N * C], buf[N * C], l0, l1, g0[N * C];
  tu_fill_uniform(&r, x, N * C, -3, 3);
  const int64_t t[N] = {5, 0, -100, 2};
  clloss_cross_entropy_desc d = desc_of(N, C, CLLOSS_REDUCTION_MEAN);
  d.label_smoothing = 0.15f;
  d.z_loss = 0.01f;
  d.softcap = 4.0f;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &l0, g0),
                  CLLOSS_SUCCESS);
  memcpy(buf, x, sizeof x);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, buf, t, NULL, NULL, &l1, buf),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(l0, l1);
  CU_ASSERT_EQUAL(memcmp(buf, g0, sizeof buf), 0);
  l1 = -1.0f;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &l1, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(l0, l1);
  memset(buf, 0, sizeof buf);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, NULL, buf),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(memcmp(buf, g0, sizeof buf), 0);
}

/* float64 input: loss, weight and grad_output are float64 as well. */
static void test_ce_float64_types(void) {
  const double x[6] = {1, 2, 3, 0, 0, 0}, w[3] = {1, 1, 2}, g = 2.0;
  const int32_t t[2] = {2, 0};
  double loss, grad[6];
  clloss_cross_entropy_desc d = desc_of(2, 3, CLLOSS_REDUCTION_SUM);
  d.input_type = CLLOSS_FLOAT64;
  d.target_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&d, x, t, w, &g, &loss, grad),
                  CLLOSS_SUCCESS);
  /* loss = w[2] 0.40760596444438 + w[0] ln 3 (g scales only the gradient:
   * grad = g w[2] (p_2 - 1) on row 0's target) */
  CU_ASSERT_DOUBLE_EQUAL(loss, 2.0 * 0.40760596444438 + LN3, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(grad[2], 2.0 * 2.0 * (0.6652409557748217 - 1.0),
                         1e-12);
}

int test_reference_cross_entropy_register(void) {
  TU_SUITE(
      "reference_cross_entropy", NULL, NULL, TU_TEST(test_ce_hand_2x3),
      TU_TEST(test_ce_hand_smoothing_weights_ignore),
      TU_TEST(test_ce_hand_probability_targets),
      TU_TEST(test_ce_hand_zloss_softcap), TU_TEST(test_ce_int32_matches_int64),
      TU_TEST(test_ce_reductions_agree), TU_TEST(test_ce_all_ignored),
      TU_TEST(test_ce_zero_weight_mean_is_nan), TU_TEST(test_ce_empty),
      TU_TEST(test_ce_extreme_logits),
      TU_TEST(test_ce_invalid_target_untouched),
      TU_TEST(test_ce_invalid_arguments), TU_TEST(test_ce_fd_weights_ignore),
      TU_TEST(test_ce_fd_label_smoothing), TU_TEST(test_ce_fd_z_loss),
      TU_TEST(test_ce_fd_softcap), TU_TEST(test_ce_fd_probability_targets),
      TU_TEST(test_ce_fd_normalizer), TU_TEST(test_ce_fd_row_stride),
      TU_TEST(test_ce_normalizer_value), TU_TEST(test_ce_half_bfloat16_storage),
      TU_TEST(test_ce_row_stride_padding),
      TU_TEST(test_ce_in_place_and_single_output),
      TU_TEST(test_ce_float64_types));
}
