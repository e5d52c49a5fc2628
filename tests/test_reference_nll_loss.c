/* test_reference_nll_loss.c - the CPU reference of nll_loss against
 * hand-computed values, cross_entropy, PyTorch's edge cases and finite
 * differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"

static clloss_nll_loss_desc desc_of(size_t rows, size_t classes,
                                    clloss_reduction reduction) {
  clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
  d.rows = rows;
  d.classes = classes;
  d.reduction = reduction;
  return d;
}

/* x = [[-1, -2, -3], [-0.5, -1.5, -2.5]], t = [2, 0], w = [1, 2, 3]:
 *   none = [-w2 x02, -w0 x10] = [3*3, 1*0.5] = [9, 0.5], sum = 9.5,
 *   D = w2 + w0 = 4, mean = 9.5 / 4 = 2.375;
 *   mean gradient: -w[t]/D at (i, t_i): (0,2) = -0.75, (1,0) = -0.25.
 * With t = [2, -100] (row 1 ignored): none = [9, 0], sum = 9, mean = 9/3
 * = 3 and the gradient is -1 at (0, 2), 0 elsewhere. */
static void test_nll_hand(void) {
  const float x[6] = {-1, -2, -3, -0.5f, -1.5f, -2.5f}, w[3] = {1, 2, 3};
  const int64_t t[2] = {2, 0};
  const int32_t ti[2] = {2, -100};
  float loss[2], grad[6];
  clloss_nll_loss_desc d = desc_of(2, 3, CLLOSS_REDUCTION_NONE);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, w, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  const float none[2] = {9, 0.5f};
  CU_ASSERT_EQUAL(tu_compare_f("none", loss, none, 2, 0, 0), 0);
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, w, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss[0], 9.5f);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, w, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss[0], 2.375f);
  const float g[6] = {0, 0, -0.75f, -0.25f, 0, 0};
  CU_ASSERT_EQUAL(tu_compare_f("grad", grad, g, 6, 0, 0), 0);
  d.target_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, ti, w, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss[0], 3.0f);
  const float gi[6] = {0, 0, -1, 0, 0, 0};
  CU_ASSERT_EQUAL(tu_compare_f("ignored grad", grad, gi, 6, 0, 0), 0);
}

/* nll_loss(log_softmax(x)) equals cross_entropy(x), loss and gradient
 * through the chain rule (dCE/dx = dNLL/dlogp - p sum_j dNLL/dlogp_j). */
static void test_nll_matches_cross_entropy(void) {
  enum { N = 5, C = 4 };
  tu_rng r = tu_rng_make(21);
  float x[N * C], lp[N * C], w[C] = {0.5f, 1, 2, 1.5f};
  tu_fill_uniform(&r, x, N * C, -3, 3);
  for (int i = 0; i < N; i++) {
    double m = -INFINITY, s = 0;
    for (int j = 0; j < C; j++)
      m = fmax(m, x[i * C + j]);
    for (int j = 0; j < C; j++)
      s += exp(x[i * C + j] - m);
    for (int j = 0; j < C; j++)
      lp[i * C + j] = (float)(x[i * C + j] - m - log(s));
  }
  const int64_t t[N] = {1, 3, -100, 0, 2};
  clloss_cross_entropy_desc cd = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  cd.rows = N;
  cd.classes = C;
  clloss_nll_loss_desc nd = desc_of(N, C, CLLOSS_REDUCTION_MEAN);
  float lc, ln, gc[N * C], gn[N * C];
  CU_ASSERT_EQUAL(clloss_reference_cross_entropy(&cd, x, t, w, NULL, &lc, gc),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&nd, lp, t, w, NULL, &ln, gn),
                  CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(lc, ln, 1e-5);
  double chain[N * C];
  for (int i = 0; i < N; i++) {
    double s = 0;
    for (int j = 0; j < C; j++)
      s += gn[i * C + j];
    for (int j = 0; j < C; j++)
      chain[i * C + j] = gn[i * C + j] - exp(lp[i * C + j]) * s;
  }
  CU_ASSERT_EQUAL(
      tu_compare("chain", gc, CLLOSS_FLOAT32, chain, N * C, 1e-6, 1e-5), 0);
}

/* All rows ignored: mean NaN with a zero gradient, sum 0; rows = 0: mean
 * NaN, sum 0, none writes nothing. */
static void test_nll_all_ignored_and_empty(void) {
  float x[6] = {1, 2, 3, 4, 5, 6}, loss[1 + TU_CANARY], grad[6 + TU_CANARY];
  const int64_t t[2] = {-100, -100};
  clloss_nll_loss_desc d = desc_of(2, 3, CLLOSS_REDUCTION_MEAN);
  memset(grad, 0x7f, sizeof grad);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss[0]));
  for (int k = 0; k < 6; k++)
    CU_ASSERT_EQUAL(grad[k], 0.0f);
  d.reduction = CLLOSS_REDUCTION_SUM;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss[0], 0.0f);
  d.rows = 0;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss[0], 0.0f);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss[0]));
  d.reduction = CLLOSS_REDUCTION_NONE;
  tu_canary_fill(loss, sizeof(float));
  tu_canary_fill(grad, sizeof(float));
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  CU_ASSERT(tu_canary_intact(loss, sizeof(float)));
  CU_ASSERT(tu_canary_intact(grad, sizeof(float)));
}

/* Only the target's log-probability matters: -inf there gives +inf, NaN
 * gives NaN, NaN elsewhere in the row is not read (as in PyTorch). */
static void test_nll_extreme_inputs(void) {
  const float x[6] = {-INFINITY, 0, NAN, NAN, -1e4f, 0};
  const int64_t t[2] = {0, 1};
  float loss[2];
  clloss_nll_loss_desc d = desc_of(2, 3, CLLOSS_REDUCTION_NONE);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, loss, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT(isinf(loss[0]) && loss[0] > 0);
  CU_ASSERT_EQUAL(loss[1], 1e4f);
  const int64_t tn[2] = {2, 1};
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, tn, NULL, NULL, loss, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT(isnan(loss[0]));
}

static void test_nll_invalid_target_untouched(void) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t bad[2] = {0, 3};
  const int32_t bad32[2] = {-2, 0};
  float loss[2], grad[6];
  clloss_nll_loss_desc d = desc_of(2, 3, CLLOSS_REDUCTION_NONE);
  memset(loss, 0x5a, sizeof loss);
  memset(grad, 0x5a, sizeof grad);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, bad, NULL, NULL, loss, grad),
                  CLLOSS_INVALID_TARGET);
  d.target_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(
      clloss_reference_nll_loss(&d, x, bad32, NULL, NULL, loss, grad),
      CLLOSS_INVALID_TARGET);
  for (size_t k = 0; k < sizeof loss; k++)
    CU_ASSERT_EQUAL(((unsigned char *)loss)[k], 0x5a);
  for (size_t k = 0; k < sizeof grad; k++)
    CU_ASSERT_EQUAL(((unsigned char *)grad)[k], 0x5a);
}

static void test_nll_invalid_arguments(void) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t t[2] = {0, 1};
  float loss[2], grad[6];
  clloss_nll_loss_desc ok = desc_of(2, 3, CLLOSS_REDUCTION_MEAN), d;
#define EXPECT_INVALID(dd, in, tg, lo, gr)                                     \
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(dd, in, tg, NULL, NULL, lo, gr),   \
                  CLLOSS_INVALID_ARGUMENT)
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&ok, x, t, NULL, NULL, loss, grad),
                  CLLOSS_SUCCESS);
  EXPECT_INVALID(NULL, x, t, loss, grad);
  EXPECT_INVALID(&ok, NULL, t, loss, grad);
  EXPECT_INVALID(&ok, x, NULL, loss, grad);
  EXPECT_INVALID(&ok, x, t, NULL, NULL);
  d = ok, d.classes = 0;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.row_stride = 1;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.target_type = CLLOSS_FLOAT32; /* no probability targets */
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.input_type = CLLOSS_INT64;
  EXPECT_INVALID(&d, x, t, loss, grad);
  d = ok, d.reduction = CLLOSS_REDUCTION_BATCHMEAN;
  EXPECT_INVALID(&d, x, t, loss, grad);
#undef EXPECT_INVALID
}

/* Central differences (float64) with weights, ignore_index, row_stride and
 * every reduction with a non-trivial grad_output. */
static void test_nll_finite_differences(void) {
  enum { N = 5, C = 4, LD = 6 };
  const double h = 1e-6;
  tu_rng r = tu_rng_make(22);
  double x[N * LD], w[C], go[N], grad[N * LD], expect[N * LD], l[N];
  for (int k = 0; k < N * LD; k++)
    x[k] = tu_uniform(&r, -3, 0);
  for (int k = 0; k < C; k++)
    w[k] = tu_uniform(&r, 0.2f, 2);
  for (int k = 0; k < N; k++)
    go[k] = tu_uniform(&r, -2, 2);
  const int64_t t[N] = {3, -100, 0, 2, 0};
  for (int red = 0; red < 3; red++)
    for (int ld = C; ld <= LD; ld += LD - C) {
      clloss_nll_loss_desc d = desc_of(N, C, (clloss_reduction)red);
      d.input_type = CLLOSS_FLOAT64;
      d.row_stride = (size_t)ld;
      size_t nl = red == CLLOSS_REDUCTION_NONE ? N : 1;
      memset(grad, 0, sizeof grad);
      memset(expect, 0, sizeof expect);
      CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, w, go, NULL, grad),
                      CLLOSS_SUCCESS);
      for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
          double J[2], x0 = x[i * ld + j];
          for (int s = 0; s < 2; s++) {
            x[i * ld + j] = x0 + (s ? -h : h);
            clloss_reference_nll_loss(&d, x, t, w, NULL, l, NULL);
            J[s] = 0;
            for (size_t k = 0; k < nl; k++)
              J[s] += go[k] * l[k];
          }
          x[i * ld + j] = x0;
          expect[i * ld + j] = (J[0] - J[1]) / (2 * h);
        }
      CU_ASSERT_EQUAL(
          tu_compare("fd", grad, CLLOSS_FLOAT64, expect, N * LD, 1e-7, 1e-6),
          0);
    }
}

/* row_stride > C leaves the gradient's padding untouched; 16-bit storage
 * gives the float32 result on the rounded values. */
static void test_nll_row_stride_and_16bit(void) {
  enum { N = 3, C = 4, LD = 5 };
  float x[N * LD], g[N * LD], lf[N], gf[N * LD], lh[N];
  uint16_t xh[N * LD], gh[N * LD];
  tu_rng r = tu_rng_make(23);
  tu_fill_uniform(&r, x, N * LD, -4, 0);
  const int64_t t[N] = {1, -100, 3};
  for (int k = 0; k < N * LD; k++)
    g[k] = 123.0f;
  clloss_nll_loss_desc d = desc_of(N, C, CLLOSS_REDUCTION_SUM);
  d.row_stride = LD;
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, lf, g),
                  CLLOSS_SUCCESS);
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < C; j++)
      CU_ASSERT_EQUAL(g[i * LD + j], (t[i] == j) ? -1.0f : 0.0f);
    CU_ASSERT_EQUAL(g[i * LD + C], 123.0f);
  }
  d.reduction = CLLOSS_REDUCTION_NONE;
  for (int bf = 0; bf < 2; bf++) {
    for (int k = 0; k < N * LD; k++) {
      xh[k] = bf ? clloss_float_to_bfloat16(x[k]) : clloss_float_to_half(x[k]);
      x[k] = bf ? clloss_bfloat16_to_float(xh[k]) : clloss_half_to_float(xh[k]);
    }
    const float go[N] = {0.5f, 2, -3};
    d.input_type = CLLOSS_FLOAT32;
    CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, go, lf, gf),
                    CLLOSS_SUCCESS);
    d.input_type = bf ? CLLOSS_BFLOAT16 : CLLOSS_FLOAT16;
    CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, xh, t, NULL, go, lh, gh),
                    CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(tu_compare_f("loss", lh, lf, N, 0, 0), 0);
    for (int i = 0; i < N; i++)
      for (int j = 0; j < C; j++) {
        float want = gf[i * LD + j];
        float got = bf ? clloss_bfloat16_to_float(gh[i * LD + j])
                       : clloss_half_to_float(gh[i * LD + j]);
        CU_ASSERT_EQUAL(got, want);
      }
  }
}

/* In place: the gradient overwrites the input, same results. */
static void test_nll_in_place(void) {
  float x[6] = {-1, -2, -3, -4, -5, -6}, l0, l1, g0[6];
  const int64_t t[2] = {1, 2};
  clloss_nll_loss_desc d = desc_of(2, 3, CLLOSS_REDUCTION_MEAN);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, &l0, g0),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&d, x, t, NULL, NULL, &l1, x),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(l0, 4.0f); /* (2 + 6) / 2 */
  CU_ASSERT_EQUAL(l1, 4.0f);
  CU_ASSERT_EQUAL(memcmp(x, g0, sizeof x), 0);
}

int test_reference_nll_loss_register(void) {
  TU_SUITE(
      "reference_nll_loss", NULL, NULL, TU_TEST(test_nll_hand),
      TU_TEST(test_nll_matches_cross_entropy),
      TU_TEST(test_nll_all_ignored_and_empty), TU_TEST(test_nll_extreme_inputs),
      TU_TEST(test_nll_invalid_target_untouched),
      TU_TEST(test_nll_invalid_arguments), TU_TEST(test_nll_finite_differences),
      TU_TEST(test_nll_row_stride_and_16bit), TU_TEST(test_nll_in_place));
}
