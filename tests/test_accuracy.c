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

#include "support/devcheck.h"
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

static double max_rel(const void *got, const void *want, clloss_dtype t,
                      size_t n) {
  double peak = 0, worst = 0;
  for (size_t i = 0; i < n; i++)
    peak = fmax(peak, fabs(dc_get(t, want, i)));
  for (size_t i = 0; i < n; i++) {
    double r = dc_get(t, want, i), d = fabs(dc_get(t, got, i) - r);
    worst = fmax(worst, d / fmax(fabs(r), 0.01 * peak));
  }
  return worst;
}

/* Runs one case through the host-pointer call on ctx and the reference
 * (the harness's, each storing the values in type t); returns 0 on a
 * status error. */
static int run_case(clloss_context *ctx, const acc_case *c, clloss_dtype t,
                    double *loss_err, double *grad_err) {
  tu_rng r = tu_rng_make(0xacc0 + (uint64_t)c->fam * 16 + c->pw * 4 + t);
  float *x = dc_alloc(N * sizeof *x), *y = dc_alloc(N * sizeof *y), w[COLS];
  int64_t tgt[ROWS];
  for (size_t i = 0; i < N; i++) {
    double v = tu_uniform(&r, -4, 4);
    if (c->fam == PW && c->pw == CLLOSS_KL_DIV)
      v = -fabs(v) - 0.1; /* log-probabilities */
    x[i] = (float)v;
    double u = tu_uniform(&r, 0, 1);
    if (c->fam == CE_PROBS)
      u /= COLS / 2.0;
    else if (c->fam == PW && c->pw != CLLOSS_BCE_WITH_LOGITS &&
             c->pw != CLLOSS_KL_DIV)
      u = tu_uniform(&r, -4, 4);
    y[i] = (float)u;
  }
  for (size_t i = 0; i < ROWS; i++)
    tgt[i] = (int64_t)(tu_next(&r) % COLS);
  tgt[3] = -100; /* one ignored row */
  for (size_t k = 0; k < COLS; k++)
    w[k] = tu_uniform(&r, 0.5, 2);
  dc_result dev, ref;
  if (c->fam == CE || c->fam == CE_PROBS) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = ROWS, d.classes = COLS, d.input_type = t;
    d.label_smoothing = 0.1f;
    d.target_type = c->fam == CE_PROBS ? t : CLLOSS_INT64;
    const dc_ce_case k = {d, x, tgt, y, w, NULL};
    dev = dc_run_ce(ctx, NULL, &k, NULL), ref = dc_run_ce(NULL, NULL, &k, NULL);
  } else if (c->fam == NLL) {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    d.rows = ROWS, d.classes = COLS, d.input_type = t;
    const dc_nll_case k = {d, x, tgt, w, NULL};
    dev = dc_run_nll(ctx, NULL, &k, NULL);
    ref = dc_run_nll(NULL, NULL, &k, NULL);
  } else {
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(c->pw);
    d.count = N, d.input_type = t, d.delta = 1.5f, d.beta = 0.5f;
    /* BCE's weight broadcast over the last dimension */
    const int bce = c->pw == CLLOSS_BCE_WITH_LOGITS;
    d.weight_count = bce ? COLS : 0;
    const dc_pw_case k = {d, x, y, bce ? w : NULL, NULL, NULL};
    dev = dc_run_pw(ctx, NULL, &k, NULL), ref = dc_run_pw(NULL, NULL, &k, NULL);
  }
  int ok = dev.status == CLLOSS_SUCCESS && ref.status == CLLOSS_SUCCESS;
  if (ok) {
    *loss_err = max_rel(dev.loss, ref.loss, clloss_loss_dtype(t), 1);
    *grad_err = max_rel(dev.grad, ref.grad, t, N);
  } else {
    printf("\n  %s %s: device %s, reference %s", c->name, clloss_dtype_name(t),
           clloss_status_name(dev.status), clloss_status_name(ref.status));
  }
  dc_result_free(&dev);
  dc_result_free(&ref);
  free(x);
  free(y);
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
