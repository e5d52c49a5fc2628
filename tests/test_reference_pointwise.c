/* test_reference_pointwise.c - the CPU reference of the element-wise losses
 * against hand-computed values, PyTorch's edge cases and finite
 * differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"

static clloss_pointwise_desc desc_of(clloss_pointwise_loss loss, size_t count,
                                     clloss_reduction reduction) {
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(loss);
  d.count = count;
  d.reduction = reduction;
  return d;
}

/* Runs d with reduction none, sum and mean on float32 data and checks the
 * per-element loss `el` and derivative `eg` (before g and 1/n). */
static void check_all_reductions(const char *what, clloss_pointwise_desc d,
                                 const float *x, const float *y,
                                 const double *el, const double *eg) {
  enum { MAXN = 8 };
  size_t n = d.count;
  float loss[MAXN], grad[MAXN];
  double e[MAXN], total = 0.0;
  CU_ASSERT_FATAL(n <= MAXN);
  d.reduction = CLLOSS_REDUCTION_NONE;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare(what, loss, CLLOSS_FLOAT32, el, n, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(tu_compare(what, grad, CLLOSS_FLOAT32, eg, n, 1e-6, 1e-6), 0);
  for (size_t i = 0; i < n; i++)
    total += el[i];
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare(what, loss, CLLOSS_FLOAT32, &total, 1, 1e-6, 1e-6),
                  0);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  double mean = total / (double)n;
  for (size_t i = 0; i < n; i++)
    e[i] = eg[i] / (double)n;
  CU_ASSERT_EQUAL(tu_compare(what, loss, CLLOSS_FLOAT32, &mean, 1, 1e-6, 1e-6),
                  0);
  CU_ASSERT_EQUAL(tu_compare(what, grad, CLLOSS_FLOAT32, e, n, 1e-6, 1e-6), 0);
}

/* x = [1, 2, 3, 4], y = [0, 2, 5, 3.5], d = [1, 0, -2, 0.5]:
 *   mse: d^2 = [1, 0, 4, 0.25] (sum 5.25, mean 1.3125), 2d = [2, 0, -4, 1]
 *   l1:  |d| = [1, 0, 2, 0.5] (sum 3.5, mean 0.875), sign d = [1, 0, -1, 1]
 *        (sign(0) = 0). */
static const float hx[4] = {1, 2, 3, 4}, hy[4] = {0, 2, 5, 3.5f};

static void test_pw_hand_mse_l1(void) {
  const double mse[4] = {1, 0, 4, 0.25}, gmse[4] = {2, 0, -4, 1};
  const double l1[4] = {1, 0, 2, 0.5}, gl1[4] = {1, 0, -1, 1};
  check_all_reductions("mse", desc_of(CLLOSS_MSE_LOSS, 4, 0), hx, hy, mse,
                       gmse);
  check_all_reductions("l1", desc_of(CLLOSS_L1_LOSS, 4, 0), hx, hy, l1, gl1);
}

/* d = [1, 0, -2, 0.5]:
 *   huber delta 1:   [1 - 0.5, 0, 2 - 0.5, 0.5 * 0.25] = [0.5, 0, 1.5, 0.125],
 *                    grad [1, 0, -1, 0.5] (d if |d| < delta else delta sign)
 *   huber delta 0.5: [0.5 (1 - 0.25), 0, 0.5 (2 - 0.25), 0.5 (0.5 - 0.25)]
 *                    = [0.375, 0, 0.875, 0.125], grad [0.5, 0, -0.5, 0.5]
 *   smooth_l1 beta 1:   same as huber delta 1
 *   smooth_l1 beta 0.5: [1 - 0.25, 0, 2 - 0.25, 0.5 - 0.25]
 *                       = [0.75, 0, 1.75, 0.25], grad [1, 0, -1, 1]
 *   smooth_l1 beta 0:   l1, grad sign(d) with sign(0) = 0. */
static void test_pw_hand_huber_smooth_l1(void) {
  clloss_pointwise_desc d = desc_of(CLLOSS_HUBER_LOSS, 4, 0);
  const double h1[4] = {0.5, 0, 1.5, 0.125}, gh1[4] = {1, 0, -1, 0.5};
  check_all_reductions("huber 1", d, hx, hy, h1, gh1);
  d.delta = 0.5f;
  const double h2[4] = {0.375, 0, 0.875, 0.125}, gh2[4] = {0.5, 0, -0.5, 0.5};
  check_all_reductions("huber 0.5", d, hx, hy, h2, gh2);
  d = desc_of(CLLOSS_SMOOTH_L1_LOSS, 4, 0);
  check_all_reductions("smooth_l1 1", d, hx, hy, h1, gh1);
  d.beta = 0.5f;
  const double s2[4] = {0.75, 0, 1.75, 0.25}, gs2[4] = {1, 0, -1, 1};
  check_all_reductions("smooth_l1 0.5", d, hx, hy, s2, gs2);
  d.beta = 0.0f;
  const double s0[4] = {1, 0, 2, 0.5}, gs0[4] = {1, 0, -1, 1};
  check_all_reductions("smooth_l1 0", d, hx, hy, s0, gs0);
}

/* BCE with logits, x = [0, 2, -1], y = [1, 0, 0.5]:
 *   loss = (1 - y) x + log1p(exp(-|x|)) + max(-x, 0)
 *        = [ln 2, 2 + log1p(e^-2), -0.5 + log1p(e^-1) + 1]
 *        = [0.693147181, 2.126928011, 0.813261688]
 *   grad = sigmoid(x) - y = [-0.5, 0.880797078, -0.231058579]
 * With pos_weight 2 (one value, broadcast): lw = 1 + y = [2, 1, 1.5]
 *   loss = [2 ln 2, 2.126928011, -0.5 + 1.5 (log1p(e^-1) + 1)]
 *        = [1.386294361, 2.126928011, 1.469892531]
 *   grad = lw sigmoid(x) - 2y = [-1, 0.880797078, -0.596587868]
 * With weight [1, 0.5, 3] on top, each element is multiplied by w. */
static void test_pw_hand_bce(void) {
  const float x[3] = {0, 2, -1}, y[3] = {1, 0, 0.5f};
  clloss_pointwise_desc d = desc_of(CLLOSS_BCE_WITH_LOGITS, 3, 0);
  const double l[3] = {0.693147181, 2.126928011, 0.813261688};
  const double g[3] = {-0.5, 0.880797078, -0.231058579};
  check_all_reductions("bce", d, x, y, l, g);
  const float pw = 2.0f, w[3] = {1, 0.5f, 3};
  const double lp[3] = {1.386294361, 2.126928011, 1.469892531};
  const double gp[3] = {-1, 0.880797078, -0.596587868};
  double lw[3], gw[3];
  for (int i = 0; i < 3; i++)
    lw[i] = w[i] * lp[i], gw[i] = w[i] * gp[i];
  float loss[3], grad[3];
  d.reduction = CLLOSS_REDUCTION_NONE;
  d.pos_weight_count = 1;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, &pw, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(
      tu_compare("pw loss", loss, CLLOSS_FLOAT32, lp, 3, 1e-6, 1e-6), 0);
  CU_ASSERT_EQUAL(
      tu_compare("pw grad", grad, CLLOSS_FLOAT32, gp, 3, 1e-6, 1e-6), 0);
  d.weight_count = 3;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, w, &pw, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare("w loss", loss, CLLOSS_FLOAT32, lw, 3, 1e-6, 1e-6),
                  0);
  CU_ASSERT_EQUAL(tu_compare("w grad", grad, CLLOSS_FLOAT32, gw, 3, 1e-6, 1e-6),
                  0);
}

/* kl_div, x = log q = ln [0.5, 0.25, 0.25], y = p = [0.25, 0.75, 0]:
 *   loss = y (ln y - x) = [0.25 ln 0.5, 0.75 ln 3, 0]
 *        = [-0.173286795, 0.823959217, 0], grad -y.
 * log_target with y = ln [0.25, 0.75, 0.5]: e^y (y - x)
 *        = [0.25 ln 0.5, 0.75 ln 3, 0.5 ln 2]
 *        = [-0.173286795, 0.823959217, 0.346573590], grad -e^y.
 * batchmean with batch 3 (a [3, 1] tensor) divides the sum by 3 (as mean
 * does here); with batch 1 it is the sum. */
static void test_pw_hand_kl_div(void) {
  const float x[3] = {(float)log(0.5), (float)log(0.25), (float)log(0.25)};
  const float y[3] = {0.25f, 0.75f, 0};
  const float yl[3] = {(float)log(0.25), (float)log(0.75), (float)log(0.5)};
  clloss_pointwise_desc d = desc_of(CLLOSS_KL_DIV, 3, 0);
  const double l[3] = {-0.173286795, 0.823959217, 0}, g[3] = {-0.25, -0.75, 0};
  check_all_reductions("kl", d, x, y, l, g);
  d.log_target = 1;
  const double ll[3] = {-0.173286795, 0.823959217, 0.346573590};
  const double gl[3] = {-0.25, -0.75, -0.5};
  check_all_reductions("kl log", d, x, yl, ll, gl);
  float loss, grad[3];
  d.reduction = CLLOSS_REDUCTION_BATCHMEAN;
  d.batch = 1;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, yl, NULL, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(loss, ll[0] + ll[1] + ll[2], 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(grad[2], -0.5, 1e-7);
  d.batch = 3;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, yl, NULL, NULL, NULL, &loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(loss, (ll[0] + ll[1] + ll[2]) / 3, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(grad[2], -0.5 / 3, 1e-7);
}

/* BCE weight and pos_weight broadcast over the last dimension equal the
 * same values repeated to the full shape. */
static void test_pw_bce_broadcast(void) {
  enum { ROWS = 3, INNER = 4, N = ROWS * INNER };
  tu_rng r = tu_rng_make(31);
  float x[N], y[N], w[INNER], pw[INNER], wf[N], pwf[N];
  float l1[N], l2[N], g1[N], g2[N];
  tu_fill_uniform(&r, x, N, -4, 4);
  tu_fill_uniform(&r, y, N, 0, 1);
  tu_fill_uniform(&r, w, INNER, 0.1f, 2);
  tu_fill_uniform(&r, pw, INNER, 0.5f, 3);
  for (int i = 0; i < N; i++)
    wf[i] = w[i % INNER], pwf[i] = pw[i % INNER];
  clloss_pointwise_desc d =
      desc_of(CLLOSS_BCE_WITH_LOGITS, N, CLLOSS_REDUCTION_NONE);
  d.weight_count = INNER;
  d.pos_weight_count = INNER;
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, w, pw, NULL, l1, g1),
                  CLLOSS_SUCCESS);
  d.weight_count = N;
  d.pos_weight_count = N;
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, wf, pwf, NULL, l2, g2),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(memcmp(l1, l2, sizeof l1), 0);
  CU_ASSERT_EQUAL(memcmp(g1, g2, sizeof g1), 0);
  /* and the weight does change the result */
  d.weight_count = 0;
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, NULL, pwf, NULL, l2, g2),
                  CLLOSS_SUCCESS);
  CU_ASSERT_NOT_EQUAL(memcmp(l1, l2, sizeof l1), 0);
}

/* grad_output: none multiplies element-wise, sum by g, mean by g / n,
 * batchmean by g / batch. */
static void test_pw_grad_output_scaling(void) {
  enum { N = 6 };
  const float x[N] = {1, -2, 0.5f, 3, -1, 2}, y[N] = {0, 0, 1, 1, 2, -2};
  const float gn[N] = {1, -2, 0.5f, 3, 0, -1}, g = -2.5f;
  float loss[N], grad[N];
  clloss_pointwise_desc d = desc_of(CLLOSS_MSE_LOSS, N, CLLOSS_REDUCTION_NONE);
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, gn, loss, grad),
      CLLOSS_SUCCESS);
  for (int i = 0; i < N; i++) {
    CU_ASSERT_DOUBLE_EQUAL(grad[i], 2.0 * (x[i] - y[i]) * gn[i], 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(loss[i], (x[i] - y[i]) * (x[i] - y[i]), 1e-6);
  }
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, &g, loss, grad),
      CLLOSS_SUCCESS);
  for (int i = 0; i < N; i++)
    CU_ASSERT_DOUBLE_EQUAL(grad[i], 2.0 * (x[i] - y[i]) * g, 1e-6);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, &g, loss, grad),
      CLLOSS_SUCCESS);
  for (int i = 0; i < N; i++)
    CU_ASSERT_DOUBLE_EQUAL(grad[i], 2.0 * (x[i] - y[i]) * g / N, 1e-6);
  d = desc_of(CLLOSS_KL_DIV, N, CLLOSS_REDUCTION_BATCHMEAN);
  d.log_target = 1;
  d.batch = 2;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, NULL, NULL, &g, loss, grad),
      CLLOSS_SUCCESS);
  for (int i = 0; i < N; i++)
    CU_ASSERT_DOUBLE_EQUAL(grad[i], -exp(y[i]) * g / 2, 1e-5);
}

/* count = 0: sum 0, mean NaN (0/0), batchmean with batch 0 NaN, none
 * writes nothing. */
static void test_pw_empty(void) {
  float x[1] = {0}, loss[1 + TU_CANARY], grad[1 + TU_CANARY];
  for (int k = 0; k <= CLLOSS_KL_DIV; k++) {
    clloss_pointwise_desc d =
        desc_of((clloss_pointwise_loss)k, 0, CLLOSS_REDUCTION_SUM);
    CU_ASSERT_EQUAL(
        clloss_reference_pointwise(&d, x, x, NULL, NULL, NULL, loss, grad),
        CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(loss[0], 0.0f);
    d.reduction = CLLOSS_REDUCTION_MEAN;
    CU_ASSERT_EQUAL(
        clloss_reference_pointwise(&d, x, x, NULL, NULL, NULL, loss, grad),
        CLLOSS_SUCCESS);
    CU_ASSERT(isnan(loss[0]));
    d.reduction = CLLOSS_REDUCTION_NONE;
    tu_canary_fill(loss, sizeof(float));
    tu_canary_fill(grad, sizeof(float));
    CU_ASSERT_EQUAL(
        clloss_reference_pointwise(&d, x, x, NULL, NULL, NULL, loss, grad),
        CLLOSS_SUCCESS);
    CU_ASSERT(tu_canary_intact(loss, sizeof(float)));
    CU_ASSERT(tu_canary_intact(grad, sizeof(float)));
  }
  clloss_pointwise_desc d =
      desc_of(CLLOSS_KL_DIV, 0, CLLOSS_REDUCTION_BATCHMEAN);
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, x, NULL, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss[0]));
}

/* NaN and Inf as PyTorch 1.13 (float64) gives them:
 *   mse (inf - 0): loss inf, grad inf; (NaN): NaN, NaN
 *   l1 NaN: loss NaN, grad 0 (torch.sign(NaN) = 0, as OpenCL's sign)
 *   huber / smooth_l1 NaN: loss NaN, grad NaN
 *   bce x = +inf, y = 0: loss inf, grad 1; x = -inf, y = 1: loss NaN
 *     (max(-x, 0) = inf meets -inf), grad -1
 *   kl_div y = 0: loss 0 for finite x, NaN for x = -inf (0 * -inf); grad -0 */
static void test_pw_nan_inf(void) {
  const float inf = INFINITY;
  float loss[2], grad[2];
  struct {
    clloss_pointwise_loss loss;
    float x[2], y[2];
    double el[2], eg[2];
  } c[] = {
      {CLLOSS_MSE_LOSS, {inf, NAN}, {0, 0}, {INFINITY, NAN}, {INFINITY, NAN}},
      {CLLOSS_L1_LOSS, {NAN, 1}, {0, NAN}, {NAN, NAN}, {0, 0}},
      {CLLOSS_HUBER_LOSS, {NAN, 1}, {0, NAN}, {NAN, NAN}, {NAN, NAN}},
      {CLLOSS_SMOOTH_L1_LOSS, {NAN, inf}, {0, 0}, {NAN, INFINITY}, {NAN, 1}},
      {CLLOSS_BCE_WITH_LOGITS, {inf, -inf}, {0, 1}, {INFINITY, NAN}, {1, -1}},
      {CLLOSS_KL_DIV, {-3, -inf}, {0, 0}, {0, NAN}, {0, 0}},
  };
  for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
    clloss_pointwise_desc d = desc_of(c[k].loss, 2, CLLOSS_REDUCTION_NONE);
    CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, c[k].x, c[k].y, NULL, NULL,
                                               NULL, loss, grad),
                    CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(
        tu_compare("loss", loss, CLLOSS_FLOAT32, c[k].el, 2, 1e-7, 0), 0);
    CU_ASSERT_EQUAL(
        tu_compare("grad", grad, CLLOSS_FLOAT32, c[k].eg, 2, 1e-7, 0), 0);
  }
}

static void test_pw_invalid_arguments(void) {
  const float x[4] = {1, 2, 3, 4}, w[2] = {1, 1};
  float loss[4], grad[4];
  clloss_pointwise_desc ok = desc_of(CLLOSS_MSE_LOSS, 4, 0), d;
#define EXPECT_INVALID(dd, in, tg, wt, lo, gr)                                 \
  CU_ASSERT_EQUAL(                                                             \
      clloss_reference_pointwise(dd, in, tg, wt, NULL, NULL, lo, gr),          \
      CLLOSS_INVALID_ARGUMENT)
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&ok, x, x, NULL, NULL, NULL, loss, grad),
      CLLOSS_SUCCESS);
  EXPECT_INVALID(NULL, x, x, NULL, loss, grad);
  EXPECT_INVALID(&ok, NULL, x, NULL, loss, grad);
  EXPECT_INVALID(&ok, x, NULL, NULL, loss, grad);
  EXPECT_INVALID(&ok, x, x, NULL, NULL, NULL);
  d = ok, d.loss = (clloss_pointwise_loss)6;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  d = ok, d.input_type = CLLOSS_INT32;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  d = ok, d.reduction = (clloss_reduction)7;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  d = ok, d.reduction = CLLOSS_REDUCTION_BATCHMEAN, d.batch = 2;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad); /* batchmean is kl_div only */
  d = ok, d.loss = CLLOSS_KL_DIV, d.reduction = CLLOSS_REDUCTION_BATCHMEAN;
  d.batch = 3; /* does not divide 4 */
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  d.batch = 0;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  const float bad_delta[3] = {0.0f, -1.0f, NAN};
  for (int k = 0; k < 3; k++) {
    d = ok, d.loss = CLLOSS_HUBER_LOSS, d.delta = bad_delta[k];
    EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  }
  d = ok, d.loss = CLLOSS_SMOOTH_L1_LOSS, d.beta = -0.5f;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  d.beta = NAN;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad);
  d = ok, d.loss = CLLOSS_BCE_WITH_LOGITS, d.weight_count = 3;
  EXPECT_INVALID(&d, x, x, w, loss, grad); /* 3 does not divide 4 */
  d.weight_count = 2;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad); /* weight missing */
  d.weight_count = 0, d.pos_weight_count = 2;
  EXPECT_INVALID(&d, x, x, NULL, loss, grad); /* pos_weight missing */
#undef EXPECT_INVALID
}

/* ---- central differences (float64) for every loss and option ---- */

typedef struct fd_case {
  const char *what;
  clloss_pointwise_loss loss;
  clloss_reduction reduction;
  float delta, beta;
  int log_target;
  size_t batch, weight_count, pos_weight_count;
} fd_case;

static void run_fd(const fd_case *c) {
  enum { N = 12 };
  const double h = 1e-6;
  tu_rng r = tu_rng_make(200 + (uint64_t)c->loss);
  double x[N], y[N], w[N], pw[N], go[N], grad[N], expect[N], l[N];
  for (int i = 0; i < N; i++) {
    x[i] = tu_uniform(&r, -3, 3);
    w[i] = tu_uniform(&r, 0.2f, 2);
    pw[i] = tu_uniform(&r, 0.5f, 3);
    go[i] = tu_uniform(&r, -2, 2);
    if (c->loss == CLLOSS_BCE_WITH_LOGITS ||
        (c->loss == CLLOSS_KL_DIV && !c->log_target))
      y[i] = tu_uniform(&r, 0, 1);
    else
      y[i] = tu_uniform(&r, -3, 3);
    if (i == 3)
      y[i] = 0; /* kl_div's y = 0 branch */
    /* keep |d| away from the kinks at 0, delta and beta */
    double dd = x[i] - y[i], k[3] = {0, c->delta, c->beta};
    for (int j = 0; j < 3; j++)
      if (fabs(fabs(dd) - k[j]) < 1e-3)
        x[i] += 0.01;
  }
  clloss_pointwise_desc d = desc_of(c->loss, N, c->reduction);
  d.input_type = CLLOSS_FLOAT64;
  d.delta = c->delta;
  d.beta = c->beta;
  d.log_target = c->log_target;
  d.batch = c->batch;
  d.weight_count = c->weight_count;
  d.pos_weight_count = c->pos_weight_count;
  size_t nl = c->reduction == CLLOSS_REDUCTION_NONE ? N : 1;
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, w, pw, go, NULL, grad),
                  CLLOSS_SUCCESS);
  for (int i = 0; i < N; i++) {
    double J[2], x0 = x[i];
    for (int s = 0; s < 2; s++) {
      x[i] = x0 + (s ? -h : h);
      CU_ASSERT_EQUAL(
          clloss_reference_pointwise(&d, x, y, w, pw, NULL, l, NULL),
          CLLOSS_SUCCESS);
      J[s] = 0;
      for (size_t k = 0; k < nl; k++)
        J[s] += go[k] * l[k];
    }
    x[i] = x0;
    expect[i] = (J[0] - J[1]) / (2 * h);
  }
  CU_ASSERT_EQUAL(
      tu_compare(c->what, grad, CLLOSS_FLOAT64, expect, N, 1e-7, 1e-6), 0);
}

#define FD_CASES(cases)                                                        \
  for (size_t k_ = 0; k_ < sizeof cases / sizeof *cases; k_++)                 \
  run_fd(&cases[k_])

static void test_pw_fd_mse_l1(void) {
  const fd_case c[] = {
      {"mse none", CLLOSS_MSE_LOSS, CLLOSS_REDUCTION_NONE, 1, 1, 0, 0, 0, 0},
      {"mse mean", CLLOSS_MSE_LOSS, CLLOSS_REDUCTION_MEAN, 1, 1, 0, 0, 0, 0},
      {"l1 sum", CLLOSS_L1_LOSS, CLLOSS_REDUCTION_SUM, 1, 1, 0, 0, 0, 0},
      {"l1 none", CLLOSS_L1_LOSS, CLLOSS_REDUCTION_NONE, 1, 1, 0, 0, 0, 0}};
  FD_CASES(c);
}

static void test_pw_fd_huber_smooth_l1(void) {
  const fd_case c[] = {
      {"huber 1 mean", CLLOSS_HUBER_LOSS, 0, 1, 1, 0, 0, 0, 0},
      {"huber 0.4 none", CLLOSS_HUBER_LOSS, 2, 0.4f, 1, 0, 0, 0, 0},
      {"huber 2.5 sum", CLLOSS_HUBER_LOSS, 1, 2.5f, 1, 0, 0, 0, 0},
      {"smooth_l1 1 mean", CLLOSS_SMOOTH_L1_LOSS, 0, 1, 1, 0, 0, 0, 0},
      {"smooth_l1 0.3 none", CLLOSS_SMOOTH_L1_LOSS, 2, 1, 0.3f, 0, 0, 0, 0},
      {"smooth_l1 0 sum", CLLOSS_SMOOTH_L1_LOSS, 1, 1, 0, 0, 0, 0, 0}};
  FD_CASES(c);
}

static void test_pw_fd_bce(void) {
  const fd_case c[] = {
      {"bce mean", CLLOSS_BCE_WITH_LOGITS, 0, 1, 1, 0, 0, 0, 0},
      {"bce weight none", CLLOSS_BCE_WITH_LOGITS, 2, 1, 1, 0, 0, 12, 0},
      {"bce pos_weight sum", CLLOSS_BCE_WITH_LOGITS, 1, 1, 1, 0, 0, 0, 4},
      {"bce both bcast", CLLOSS_BCE_WITH_LOGITS, 0, 1, 1, 0, 0, 3, 6}};
  FD_CASES(c);
}

static void test_pw_fd_kl_div(void) {
  const fd_case c[] = {
      {"kl none", CLLOSS_KL_DIV, CLLOSS_REDUCTION_NONE, 1, 1, 0, 0, 0, 0},
      {"kl batchmean", CLLOSS_KL_DIV, CLLOSS_REDUCTION_BATCHMEAN, 1, 1, 0, 4, 0,
       0},
      {"kl log mean", CLLOSS_KL_DIV, CLLOSS_REDUCTION_MEAN, 1, 1, 1, 0, 0, 0},
      {"kl log batchmean", CLLOSS_KL_DIV, CLLOSS_REDUCTION_BATCHMEAN, 1, 1, 1,
       3, 0, 0},
      {"kl log sum", CLLOSS_KL_DIV, CLLOSS_REDUCTION_SUM, 1, 1, 1, 0, 0, 0}};
  FD_CASES(c);
}

/* float16 / bfloat16 storage of input, target and gradient: the float32
 * result on the rounded values, the gradient rounded to the storage. */
static void test_pw_half_bfloat16_storage(void) {
  enum { N = 16 };
  tu_rng r = tu_rng_make(32);
  float x[N], y[N], xr[N], yr[N], lf[N], gf[N], lh[N];
  uint16_t xh[N], yh[N], gh[N];
  tu_fill_uniform(&r, x, N, -3, 3);
  tu_fill_uniform(&r, y, N, 0, 1);
  for (int bf = 0; bf < 2; bf++)
    for (int k = 0; k <= CLLOSS_KL_DIV; k++) {
      for (int i = 0; i < N; i++) {
        xh[i] =
            bf ? clloss_float_to_bfloat16(x[i]) : clloss_float_to_half(x[i]);
        yh[i] =
            bf ? clloss_float_to_bfloat16(y[i]) : clloss_float_to_half(y[i]);
        xr[i] =
            bf ? clloss_bfloat16_to_float(xh[i]) : clloss_half_to_float(xh[i]);
        yr[i] =
            bf ? clloss_bfloat16_to_float(yh[i]) : clloss_half_to_float(yh[i]);
      }
      clloss_pointwise_desc d =
          desc_of((clloss_pointwise_loss)k, N, CLLOSS_REDUCTION_NONE);
      d.delta = 0.7f;
      d.beta = 0.3f;
      CU_ASSERT_EQUAL(
          clloss_reference_pointwise(&d, xr, yr, NULL, NULL, NULL, lf, gf),
          CLLOSS_SUCCESS);
      d.input_type = bf ? CLLOSS_BFLOAT16 : CLLOSS_FLOAT16;
      CU_ASSERT_EQUAL(
          clloss_reference_pointwise(&d, xh, yh, NULL, NULL, NULL, lh, gh),
          CLLOSS_SUCCESS);
      CU_ASSERT_EQUAL(tu_compare_f("loss", lh, lf, N, 0, 0), 0);
      for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(gh[i], bf ? clloss_float_to_bfloat16(gf[i])
                                  : clloss_float_to_half(gf[i]));
    }
}

/* In place (gradient over the input) and single outputs give the same
 * values; float64 input uses float64 loss, weight and grad_output. */
static void test_pw_in_place_single_output_float64(void) {
  enum { N = 8 };
  tu_rng r = tu_rng_make(33);
  float x[N], y[N], buf[N], g0[N], l0, l1, w[2] = {0.5f, 2};
  tu_fill_uniform(&r, x, N, -2, 2);
  tu_fill_uniform(&r, y, N, 0, 1);
  clloss_pointwise_desc d =
      desc_of(CLLOSS_BCE_WITH_LOGITS, N, CLLOSS_REDUCTION_MEAN);
  d.weight_count = 2;
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, w, NULL, NULL, &l0, g0),
                  CLLOSS_SUCCESS);
  memcpy(buf, x, sizeof x);
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, buf, y, w, NULL, NULL, &l1, buf),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(l0, l1);
  CU_ASSERT_EQUAL(memcmp(buf, g0, sizeof buf), 0);
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, w, NULL, NULL, NULL, buf),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(memcmp(buf, g0, sizeof buf), 0);
  l1 = 0;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, y, w, NULL, NULL, &l1, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(l0, l1);

  double xd[N], yd[N], wd[2] = {0.5, 2}, gd[N], ld, god = 3.0;
  for (int i = 0; i < N; i++)
    xd[i] = x[i], yd[i] = y[i];
  d.input_type = CLLOSS_FLOAT64;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, xd, yd, wd, NULL, &god, &ld, gd),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(ld, l0, 1e-6);
  for (int i = 0; i < N; i++)
    CU_ASSERT_DOUBLE_EQUAL(gd[i], 3.0 * g0[i], 1e-6);
}

int test_reference_pointwise_register(void) {
  TU_SUITE("reference_pointwise", NULL, NULL, TU_TEST(test_pw_hand_mse_l1),
           TU_TEST(test_pw_hand_huber_smooth_l1), TU_TEST(test_pw_hand_bce),
           TU_TEST(test_pw_hand_kl_div), TU_TEST(test_pw_bce_broadcast),
           TU_TEST(test_pw_grad_output_scaling), TU_TEST(test_pw_empty),
           TU_TEST(test_pw_nan_inf), TU_TEST(test_pw_invalid_arguments),
           TU_TEST(test_pw_fd_mse_l1), TU_TEST(test_pw_fd_huber_smooth_l1),
           TU_TEST(test_pw_fd_bce), TU_TEST(test_pw_fd_kl_div),
           TU_TEST(test_pw_half_bfloat16_storage),
           TU_TEST(test_pw_in_place_single_output_float64));
}
