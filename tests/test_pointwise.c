/* test_pointwise.c - the element-wise losses on every device against the CPU
 * reference, at the device-buffer and the host-pointer level. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/devcheck.h"
#include "support/testutil.h"

static const clloss_reduction reds[] = {
    CLLOSS_REDUCTION_NONE, CLLOSS_REDUCTION_SUM, CLLOSS_REDUCTION_MEAN};
static const size_t sizes[] = {0, 1, 7, 1000003};

static void pw_check(const clloss_pointwise_desc *d, uint64_t salt,
                     const dc_opts *o) {
  dc_data p;
  dc_pw_case pc = dc_make_pw(&p, d, salt, 1);
  dc_check_pw_all(&pc, o);
  dc_data_free(&p);
}

/* Every size and reduction; all variants up to 7 elements and for the
 * large size with sum (to keep the run short). */
static void pw_sweep(clloss_pointwise_desc d, uint64_t salt) {
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    for (int k = 0; k < 3; k++) {
      d.count = sizes[s];
      d.reduction = reds[k];
      if (d.loss == CLLOSS_KL_DIV)
        d.batch = sizes[s] ? 1 : 0;
      dc_opts o = {.all_variants =
                       sizes[s] < 100 || reds[k] == CLLOSS_REDUCTION_SUM};
      pw_check(&d, salt + 10 * s + (uint64_t)k, &o);
    }
  }
}

static void test_pw_mse(void) {
  TU_REQUIRE_DEVICE();
  pw_sweep((clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS),
           1000);
}

static void test_pw_l1(void) {
  TU_REQUIRE_DEVICE();
  /* Includes elements with d = 0 exactly: their gradient is 0. */
  pw_sweep((clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_L1_LOSS),
           1100);
}

static void test_pw_huber(void) {
  TU_REQUIRE_DEVICE();
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
  pw_sweep(d, 1200);
  static const float deltas[] = {0.5f, 2.0f, 1e-3f};
  for (int k = 0; k < 3; k++) {
    d.delta = deltas[k];
    d.count = 1001, d.reduction = CLLOSS_REDUCTION_NONE;
    dc_opts o = {.all_variants = 1};
    pw_check(&d, 1250 + (uint64_t)k, &o);
  }
}

static void test_pw_smooth_l1(void) {
  TU_REQUIRE_DEVICE();
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_SMOOTH_L1_LOSS);
  pw_sweep(d, 1300);
  /* beta = 0 is l1 (no division by zero); small and large beta. */
  static const float betas[] = {0.0f, 0.25f, 4.0f};
  for (int k = 0; k < 3; k++) {
    d.beta = betas[k];
    for (int r = 0; r < 3; r++) {
      d.count = 1001, d.reduction = reds[r];
      dc_opts o = {.all_variants = 1};
      pw_check(&d, 1350 + 3 * (uint64_t)k + (uint64_t)r, &o);
    }
  }
}

static void test_pw_smooth_l1_beta0_is_l1(void) {
  TU_REQUIRE_DEVICE();
  /* The device's smooth_l1 with beta 0 equals its own l1, value by value. */
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_SMOOTH_L1_LOSS);
  d.beta = 0.0f, d.count = 777, d.reduction = CLLOSS_REDUCTION_NONE;
  dc_data p;
  dc_pw_case pc = dc_make_pw(&p, &d, 1390, 0);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result a = dc_run_pw(tu_context(i), q, &pc, NULL);
    pc.desc.loss = CLLOSS_L1_LOSS;
    dc_result b = dc_run_pw(tu_context(i), q, &pc, NULL);
    pc.desc.loss = CLLOSS_SMOOTH_L1_LOSS;
    CU_ASSERT_EQUAL(a.status, CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(b.status, CLLOSS_SUCCESS);
    if (a.loss && b.loss && a.grad && b.grad) {
      CU_ASSERT_EQUAL(
          tu_compare_f("smooth_l1(0) vs l1 loss", a.loss, b.loss, 777, 0, 1e-6),
          0);
      CU_ASSERT_EQUAL(
          tu_compare_f("smooth_l1(0) vs l1 grad", a.grad, b.grad, 777, 0, 0),
          0);
    }
    dc_result_free(&a);
    dc_result_free(&b);
    clReleaseCommandQueue(q);
  }
  dc_data_free(&p);
}

static void test_pw_bce(void) {
  TU_REQUIRE_DEVICE();
  pw_sweep(
      (clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS),
      1400);
}

static void test_pw_bce_broadcast_weights(void) {
  TU_REQUIRE_DEVICE();
  /* weight and pos_weight of the last dimension (C = 13) over 97 rows. */
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = 97 * 13;
  for (int r = 0; r < 3; r++) {
    d.reduction = reds[r];
    d.weight_count = 13, d.pos_weight_count = 13;
    dc_opts o = {.all_variants = 1};
    pw_check(&d, 1500 + (uint64_t)r, &o);
    /* Only one of the two. */
    d.weight_count = 0;
    pw_check(&d, 1510 + (uint64_t)r, &o);
    d.weight_count = 13, d.pos_weight_count = 0;
    pw_check(&d, 1520 + (uint64_t)r, &o);
  }
}

static void test_pw_bce_full_weights(void) {
  TU_REQUIRE_DEVICE();
  /* weight and pos_weight of the input's full shape. */
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = 5003;
  d.weight_count = 5003, d.pos_weight_count = 5003;
  for (int r = 0; r < 3; r++) {
    d.reduction = reds[r];
    dc_opts o = {.all_variants = 1};
    pw_check(&d, 1600 + (uint64_t)r, &o);
  }
  /* Mixed: full weight, broadcast pos_weight (5003 = 1 x 5003 here, so use
   * a shape with a last dimension of 7: 7 x 715 = 5005). */
  d.count = 5005, d.weight_count = 5005, d.pos_weight_count = 7;
  d.reduction = CLLOSS_REDUCTION_SUM;
  dc_opts o = {0};
  pw_check(&d, 1610, &o);
}

static void test_pw_bce_extreme_logits(void) {
  TU_REQUIRE_DEVICE();
  /* Logits of +-100 and beyond: the stable form stays finite. */
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = 64, d.reduction = CLLOSS_REDUCTION_NONE;
  d.pos_weight_count = 64;
  dc_data p;
  dc_pw_case pc = dc_make_pw(&p, &d, 1700, 0);
  for (size_t i = 0; i < 64; i++)
    p.x[i] = (i % 2 ? 1.0f : -1.0f) * (float)(i + 1) * 5.0f;
  dc_opts o = {.all_variants = 1};
  dc_check_pw_all(&pc, &o);
  dc_data_free(&p);
}

static void test_pw_kl_div(void) {
  TU_REQUIRE_DEVICE();
  /* y = 0 elements contribute 0 (not 0 * -inf). */
  pw_sweep((clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_KL_DIV),
           1800);
}

static void test_pw_kl_div_log_target(void) {
  TU_REQUIRE_DEVICE();
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_KL_DIV);
  d.log_target = 1;
  pw_sweep(d, 1900);
}

static void test_pw_kl_div_batchmean(void) {
  TU_REQUIRE_DEVICE();
  /* batchmean divides by the size of dimension 0 (here 37 x 101). */
  for (int lt = 0; lt < 2; lt++) {
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_KL_DIV);
    d.count = 37 * 101, d.batch = 37, d.log_target = lt;
    d.reduction = CLLOSS_REDUCTION_BATCHMEAN;
    dc_opts o = {.all_variants = 1};
    pw_check(&d, 2000 + (uint64_t)lt, &o);
  }
  /* And it is sum / batch of the same inputs on the device itself. */
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_KL_DIV);
  d.count = 40 * 25, d.batch = 40, d.reduction = CLLOSS_REDUCTION_BATCHMEAN;
  dc_data p;
  dc_pw_case pc = dc_make_pw(&p, &d, 2010, 0);
  dc_opts only_loss = {.no_grad = 1};
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result bm = dc_run_pw(tu_context(i), q, &pc, &only_loss);
    pc.desc.reduction = CLLOSS_REDUCTION_SUM;
    dc_result sum = dc_run_pw(tu_context(i), q, &pc, &only_loss);
    pc.desc.reduction = CLLOSS_REDUCTION_BATCHMEAN;
    if (bm.loss && sum.loss)
      CU_ASSERT_DOUBLE_EQUAL(((float *)bm.loss)[0],
                             ((float *)sum.loss)[0] / 40.0,
                             1e-6 * fabs(((float *)sum.loss)[0]));
    dc_result_free(&bm);
    dc_result_free(&sum);
    clReleaseCommandQueue(q);
  }
  dc_data_free(&p);
}

static void test_pw_offsets(void) {
  TU_REQUIRE_DEVICE();
  /* Every buffer at its own offset, BCE so that all seven are used. */
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = 11 * 19, d.weight_count = 19, d.pos_weight_count = 11 * 19;
  d.reduction = CLLOSS_REDUCTION_NONE;
  dc_opts o = {.all_variants = 1, .off = {3, 5, 7, 2, 9, 4, 6}};
  pw_check(&d, 2100, &o);
  d.reduction = CLLOSS_REDUCTION_MEAN;
  pw_check(&d, 2101, &o);
  clloss_pointwise_desc m = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  m.count = 1000, m.reduction = CLLOSS_REDUCTION_SUM;
  dc_opts o2 = {.all_variants = 1, .off = {1, 2, 0, 0, 3, 1, 5}};
  pw_check(&m, 2102, &o2);
}

static void test_pw_in_place(void) {
  TU_REQUIRE_DEVICE();
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
  d.count = 4097, d.reduction = CLLOSS_REDUCTION_MEAN;
  dc_opts o = {.all_variants = 1, .in_place = 1, .off = {3}};
  pw_check(&d, 2150, &o);
}

static void test_pw_only_one_output(void) {
  TU_REQUIRE_DEVICE();
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_SMOOTH_L1_LOSS);
  d.count = 3001;
  for (int r = 0; r < 3; r++) {
    d.reduction = reds[r];
    dc_opts a = {.all_variants = 1, .no_grad = 1};
    pw_check(&d, 2200 + (uint64_t)r, &a);
    dc_opts b = {.all_variants = 1, .no_loss = 1};
    pw_check(&d, 2210 + (uint64_t)r, &b);
  }
}

static void test_pw_dtypes(void) {
  TU_REQUIRE_DEVICE();
  static const clloss_pointwise_loss losses[] = {
      CLLOSS_MSE_LOSS,       CLLOSS_L1_LOSS,         CLLOSS_HUBER_LOSS,
      CLLOSS_SMOOTH_L1_LOSS, CLLOSS_BCE_WITH_LOGITS, CLLOSS_KL_DIV};
  static const clloss_dtype types[] = {CLLOSS_FLOAT16, CLLOSS_BFLOAT16};
  for (int t = 0; t < 2; t++) {
    for (int l = 0; l < 6; l++) {
      clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(losses[l]);
      d.input_type = types[t];
      d.count = 2049;
      d.reduction = l % 2 ? CLLOSS_REDUCTION_NONE : CLLOSS_REDUCTION_MEAN;
      if (losses[l] == CLLOSS_BCE_WITH_LOGITS)
        d.pos_weight_count = 2049;
      dc_opts o = {.all_variants = l < 2, .off = {1, 3, 0, 2, 1, 1, 5}};
      pw_check(&d, 2300 + 10 * (uint64_t)t + (uint64_t)l, &o);
    }
  }
}

static void test_pw_float64(void) {
  TU_REQUIRE_DEVICE();
  for (size_t i = 0; i < tu_device_count(); i++) {
    const clloss_device_info *info = clloss_context_device_info(tu_context(i));
    for (int l = 0; l < 6; l++) {
      clloss_pointwise_desc d =
          CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)l);
      d.input_type = CLLOSS_FLOAT64, d.count = 1025;
      d.reduction = l % 2 ? CLLOSS_REDUCTION_SUM : CLLOSS_REDUCTION_NONE;
      if (l == CLLOSS_BCE_WITH_LOGITS)
        d.weight_count = 41; /* 1025 = 25 x 41 */
      dc_data p;
      dc_pw_case pc = dc_make_pw(&p, &d, 2400 + (uint64_t)l, 1);
      if (!info->has_fp64) {
        if (l == 0)
          tu_skip_part("float64 on %s: no fp64 (CLLOSS_UNSUPPORTED checked)",
                       info->name);
        cl_command_queue q = dc_queue(tu_context(i));
        dc_result r = dc_run_pw(tu_context(i), q, &pc, NULL);
        CU_ASSERT_EQUAL(r.status, CLLOSS_UNSUPPORTED);
        dc_result_free(&r);
        clReleaseCommandQueue(q);
      } else {
        dc_opts o = {.all_variants = l == 0, .off = {2, 1, 3, 0, 1, 4, 2}};
        dc_check_pw(i, &pc, &o);
      }
      dc_data_free(&p);
    }
  }
}

static void test_pw_nan_propagates(void) {
  TU_REQUIRE_DEVICE();
  /* A NaN input gives a NaN loss element and gradient element, and a NaN
   * sum; its neighbours are unaffected. */
  for (int l = 0; l < 6; l++) {
    clloss_pointwise_desc d =
        CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)l);
    d.count = 300, d.reduction = CLLOSS_REDUCTION_NONE;
    dc_data p;
    dc_pw_case pc = dc_make_pw(&p, &d, 2500 + (uint64_t)l, 0);
    p.x[123] = NAN;
    dc_opts o = {0};
    dc_check_pw_all(&pc, &o);
    for (size_t i = 0; i < tu_device_count(); i++) {
      cl_command_queue q = dc_queue(tu_context(i));
      dc_result r = dc_run_pw(tu_context(i), q, &pc, NULL);
      if (r.loss && r.grad) {
        CU_ASSERT_TRUE(isnan(((float *)r.loss)[123]));
        /* The gradient of mse (2d) and BCE (sigmoid) carries the NaN; the
         * others follow the reference (sign(NaN), kl_div's -y). */
        if (l == CLLOSS_MSE_LOSS || l == CLLOSS_BCE_WITH_LOGITS)
          CU_ASSERT_TRUE(isnan(((float *)r.grad)[123]));
        CU_ASSERT_TRUE(!isnan(((float *)r.loss)[122]));
        CU_ASSERT_TRUE(!isnan(((float *)r.grad)[124]));
      }
      dc_result_free(&r);
      pc.desc.reduction = CLLOSS_REDUCTION_SUM;
      r = dc_run_pw(tu_context(i), q, &pc, NULL);
      if (r.loss)
        CU_ASSERT_TRUE(isnan(((float *)r.loss)[0]));
      dc_result_free(&r);
      pc.desc.reduction = CLLOSS_REDUCTION_NONE;
      clReleaseCommandQueue(q);
    }
    dc_data_free(&p);
  }
}

static void test_pw_special_values(void) {
  TU_REQUIRE_DEVICE();
  /* Infinities in input and target, -inf log-targets, +-inf logits: the
   * device agrees with the reference (NaN with NaN, Inf with the same Inf),
   * whichever variant runs. */
  const float specials[] = {INFINITY, -INFINITY, 0.0f, -0.0f, 1e30f, -1e30f};
  for (int l = 0; l < 6; l++) {
    for (int lt = 0; lt < (l == CLLOSS_KL_DIV ? 2 : 1); lt++) {
      clloss_pointwise_desc d =
          CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)l);
      d.count = 72, d.reduction = CLLOSS_REDUCTION_NONE, d.log_target = lt;
      dc_data p;
      dc_pw_case pc =
          dc_make_pw(&p, &d, 2550 + 2 * (uint64_t)l + (uint64_t)lt, 0);
      for (size_t i = 0; i < 36; i++) {
        p.x[i] = specials[i % 6];
        if (l != CLLOSS_BCE_WITH_LOGITS && l != CLLOSS_KL_DIV)
          p.y[i + 36] = specials[(i / 6) % 6];
      }
      if (lt)
        p.y[40] = -INFINITY, p.y[41] = -INFINITY;
      dc_opts o = {.all_variants = 1};
      dc_check_pw_all(&pc, &o);
      dc_data_free(&p);
    }
  }
}

static void test_pw_big(void) {
  TU_REQUIRE_DEVICE();
  /* 2^24 elements (mse and l1 only, to keep the run short): more
   * work-groups than a single reduction pass holds. */
  static const clloss_pointwise_loss losses[] = {CLLOSS_MSE_LOSS,
                                                 CLLOSS_L1_LOSS};
  for (int l = 0; l < 2; l++) {
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(losses[l]);
    d.count = (size_t)1 << 24;
    d.reduction = l ? CLLOSS_REDUCTION_MEAN : CLLOSS_REDUCTION_SUM;
    dc_opts o = {0};
    pw_check(&d, 2600 + (uint64_t)l, &o);
  }
}

static void test_pw_determinism(void) {
  TU_REQUIRE_DEVICE();
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = 1000003, d.reduction = CLLOSS_REDUCTION_MEAN;
  d.pos_weight_count = 1000003;
  dc_opts o = {.all_variants = 1, .determinism = 1};
  pw_check(&d, 2700, &o);
}

static void test_pw_host(void) {
  TU_REQUIRE_DEVICE();
  for (int l = 0; l < 6; l++) {
    clloss_pointwise_desc d =
        CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)l);
    d.count = 1000 + 7 * (size_t)l;
    d.reduction = reds[l % 3];
    if (l == CLLOSS_BCE_WITH_LOGITS)
      d.weight_count = d.count, d.pos_weight_count = d.count;
    dc_opts o = {.host = 1};
    pw_check(&d, 2800 + (uint64_t)l, &o);
  }
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  d.count = 5, d.input_type = CLLOSS_FLOAT16;
  dc_opts o = {.host = 1};
  pw_check(&d, 2810, &o);
}

static void test_pw_host_wrappers(void) {
  TU_REQUIRE_DEVICE();
  /* mse_loss_host / l1_loss_host against the reference, canaries after
   * both outputs. */
  enum { N = 999 };
  float *x = dc_alloc(N * sizeof *x), *y = dc_alloc(N * sizeof *y);
  tu_rng r = tu_rng_make(2900);
  tu_fill_uniform(&r, x, N, -2, 2);
  tu_fill_uniform(&r, y, N, -2, 2);
  float *loss = dc_alloc((N + TU_CANARY) * sizeof *loss);
  float *grad = dc_alloc((N + TU_CANARY) * sizeof *grad);
  float *el = dc_alloc(N * sizeof *el), *eg = dc_alloc(N * sizeof *eg);
  for (size_t i = 0; i < tu_device_count(); i++) {
    for (int l = 0; l < 2; l++) {
      for (int k = 0; k < 3; k++) {
        clloss_pointwise_desc d =
            CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)l);
        d.count = N, d.reduction = reds[k];
        size_t nl = reds[k] == CLLOSS_REDUCTION_NONE ? N : 1;
        tu_canary_fill(loss + nl, sizeof *loss);
        tu_canary_fill(grad + N, sizeof *grad);
        clloss_status s = l == 0
                              ? clloss_mse_loss_host(tu_context(i), N, reds[k],
                                                     x, y, loss, grad)
                              : clloss_l1_loss_host(tu_context(i), N, reds[k],
                                                    x, y, loss, grad);
        CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
        CU_ASSERT_EQUAL(
            clloss_reference_pointwise(&d, x, y, NULL, NULL, NULL, el, eg),
            CLLOSS_SUCCESS);
        CU_ASSERT_EQUAL(
            tu_compare_f(l ? "l1_loss_host loss" : "mse_loss_host loss", loss,
                         el, nl, 1e-5, 1e-5),
            0);
        CU_ASSERT_EQUAL(
            tu_compare_f(l ? "l1_loss_host grad" : "mse_loss_host grad", grad,
                         eg, N, 1e-7, 1e-5),
            0);
        CU_ASSERT_TRUE(tu_canary_intact(loss + nl, sizeof *loss));
        CU_ASSERT_TRUE(tu_canary_intact(grad + N, sizeof *grad));
        /* Only the loss. */
        s = l == 0 ? clloss_mse_loss_host(tu_context(i), N, reds[k], x, y, loss,
                                          NULL)
                   : clloss_l1_loss_host(tu_context(i), N, reds[k], x, y, loss,
                                         NULL);
        CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
        CU_ASSERT_EQUAL(
            tu_compare_f("wrapper loss only", loss, el, nl, 1e-5, 1e-5), 0);
      }
    }
    CU_ASSERT_EQUAL(clloss_mse_loss_host(tu_context(i), N, CLLOSS_REDUCTION_SUM,
                                         x, y, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
  }
  free(x);
  free(y);
  free(loss);
  free(grad);
  free(el);
  free(eg);
}

static void test_pw_invalid(void) {
  TU_REQUIRE_DEVICE();
  enum { N = 12 };
  float x[N] = {0}, y[N] = {0}, l[N], g[N];
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
    d.count = N;
    d.reduction = CLLOSS_REDUCTION_BATCHMEAN; /* kl_div only */
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    d = (clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
    d.count = N, d.delta = 0.0f;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    d = (clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(
        CLLOSS_SMOOTH_L1_LOSS);
    d.count = N, d.beta = -1.0f;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    d = (clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(
        CLLOSS_BCE_WITH_LOGITS);
    d.count = N, d.weight_count = 5; /* does not divide 12 */
    CU_ASSERT_EQUAL(clloss_pointwise_host(ctx, &d, x, y, x, NULL, NULL, l, g),
                    CLLOSS_INVALID_ARGUMENT);
    d = (clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_KL_DIV);
    d.count = N, d.reduction = CLLOSS_REDUCTION_BATCHMEAN, d.batch = 5;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    d = (clloss_pointwise_desc)CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
    d.count = N;
    d.input_type = CLLOSS_INT32;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    d.input_type = CLLOSS_FLOAT32;
    d.loss = (clloss_pointwise_loss)6;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    d.loss = CLLOSS_MSE_LOSS;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, NULL, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, NULL, NULL),
        CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(NULL, &d, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, NULL, x, y, NULL, NULL, NULL, l, g),
        CLLOSS_INVALID_ARGUMENT);
    /* Device-buffer level: NULL queue, no outputs, no input. */
    cl_command_queue q = dc_queue(ctx);
    cl_mem mx = tu_buffer(ctx, sizeof x, x), ml = tu_buffer(ctx, 4, NULL);
    clloss_buffer in = {mx, 0}, loss = {ml, 0}, none = {NULL, 0};
    d.reduction = CLLOSS_REDUCTION_SUM;
    CU_ASSERT_EQUAL(clloss_pointwise(ctx, NULL, &d, in, in, none, none, none,
                                     loss, none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_pointwise(ctx, q, &d, in, in, none, none, none, none,
                                     none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_pointwise(ctx, q, &d, none, in, none, none, none,
                                     loss, none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_pointwise(ctx, q, &d, in, in, none, none, none, loss,
                                     none, 0, NULL, NULL),
                    CLLOSS_SUCCESS);
    clFinish(q);
    clReleaseMemObject(mx);
    clReleaseMemObject(ml);
    clReleaseCommandQueue(q);
  }
}

static void test_pw_buffer_too_small(void) {
  TU_REQUIRE_DEVICE();
  /* One buffer short at a time (by a byte, or by its offset): the call
   * refuses and names that buffer. */
  enum { N = 40 };
  static const struct {
    int b;
    const char *name;
  } cases[] = {{DC_INPUT, "input"},
               {DC_TARGET, "target"},
               {DC_WEIGHT, "weight"},
               {DC_POS_WEIGHT, "pos_weight"},
               {DC_GRAD_OUTPUT, "grad_output"},
               {DC_LOSS, "loss"},
               {DC_GRAD, "grad_input"}};
  float v[N];
  for (int k = 0; k < N; k++)
    v[k] = 0.5f;
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = N, d.weight_count = N, d.pos_weight_count = N;
  d.reduction = CLLOSS_REDUCTION_NONE;
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      for (int use_offset = 0; use_offset < 2; use_offset++) {
        cl_mem m[DC_NBUF];
        clloss_buffer b[DC_NBUF];
        for (int j = 0; j < DC_NBUF; j++) {
          int short_one = j == cases[k].b;
          m[j] = tu_buffer(ctx, sizeof v - (short_one && !use_offset), v);
          b[j].mem = m[j];
          b[j].offset = short_one && use_offset;
        }
        clloss_status s =
            clloss_pointwise(ctx, q, &d, b[DC_INPUT], b[DC_TARGET],
                             b[DC_WEIGHT], b[DC_POS_WEIGHT], b[DC_GRAD_OUTPUT],
                             b[DC_LOSS], b[DC_GRAD], 0, NULL, NULL);
        const char *detail = clloss_context_error_detail(ctx);
        if (s != CLLOSS_BUFFER_TOO_SMALL || !strstr(detail, cases[k].name))
          printf("\n  %s short (offset %d): %s, detail \"%s\"", cases[k].name,
                 use_offset, clloss_status_name(s), detail);
        CU_ASSERT_EQUAL(s, CLLOSS_BUFFER_TOO_SMALL);
        CU_ASSERT_PTR_NOT_NULL(strstr(detail, cases[k].name));
        if (cases[k].b == DC_WEIGHT)
          CU_ASSERT_PTR_NULL(strstr(detail, "pos_weight"));
        clFinish(q);
        for (int j = 0; j < DC_NBUF; j++)
          clReleaseMemObject(m[j]);
      }
    }
    clReleaseCommandQueue(q);
  }
}

/* More than 2^31 elements, run only with CLLOSS_TEST_LARGE=1.
 *
 * The cheapest real case: mse_loss with reduction sum on 2^31 + 17 float16
 * elements, loss only (no gradient buffer): two device buffers of 4 GiB
 * each and no host copies (filled with clEnqueueFillBuffer, a few elements
 * written individually). The input is 0 everywhere except x[0] = 1 and
 * x[i] = 2 for the last 17 elements, the target is 0, so the sum is exactly
 * 1 + 17 * 4 = 69 and the mean 69 / (2^31 + 17): elements beyond 2^31 are
 * counted only when the kernels index with 64 bits. Needs max_alloc_size
 * of 4 GiB or more, else skipped with a note. */
static void test_pw_more_than_2g_elements(void) {
  TU_REQUIRE_DEVICE();
  const char *env = getenv("CLLOSS_TEST_LARGE");
  if (!env || strcmp(env, "1") != 0) {
    tu_skip("set CLLOSS_TEST_LARGE=1 (needs 8.6 GB of device memory)");
    return;
  }
  const size_t n = ((size_t)1 << 31) + 17, bytes = n * 2;
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    const clloss_device_info *info = clloss_context_device_info(ctx);
    if (info->max_alloc_size < bytes || info->global_mem_size < 2 * bytes) {
      tu_skip_part("%s: max_alloc_size %llu < %zu", info->name,
                   (unsigned long long)info->max_alloc_size, bytes);
      continue;
    }
    cl_int err;
    cl_context cl = clloss_context_cl_context(ctx);
    cl_command_queue q = dc_queue(ctx);
    cl_mem x = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem y = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem l = tu_buffer(ctx, 8 + 4 * TU_CANARY, NULL);
    if (!x || !y) {
      tu_skip_part("%s: could not allocate 2 x %zu bytes", info->name, bytes);
    } else {
      const uint16_t zero = 0, one = clloss_float_to_half(1.0f);
      uint16_t two[17];
      for (int k = 0; k < 17; k++)
        two[k] = clloss_float_to_half(2.0f);
      CU_ASSERT_EQUAL(
          clEnqueueFillBuffer(q, x, &zero, 2, 0, bytes, 0, NULL, NULL),
          CL_SUCCESS);
      CU_ASSERT_EQUAL(
          clEnqueueFillBuffer(q, y, &zero, 2, 0, bytes, 0, NULL, NULL),
          CL_SUCCESS);
      clEnqueueWriteBuffer(q, x, CL_TRUE, 0, 2, &one, 0, NULL, NULL);
      clEnqueueWriteBuffer(q, x, CL_TRUE, bytes - sizeof two, sizeof two, two,
                           0, NULL, NULL);
      clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
      d.count = n, d.input_type = CLLOSS_FLOAT16;
      clloss_buffer none = {NULL, 0};
      for (int red = 0; red < 2; red++) {
        d.reduction = red ? CLLOSS_REDUCTION_MEAN : CLLOSS_REDUCTION_SUM;
        float got = -1.0f;
        clloss_status s = clloss_pointwise(
            ctx, q, &d, (clloss_buffer){x, 0}, (clloss_buffer){y, 0}, none,
            none, none, (clloss_buffer){l, 1}, none, 0, NULL, NULL);
        CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
        clEnqueueReadBuffer(q, l, CL_TRUE, 4, 4, &got, 0, NULL, NULL);
        double want = red ? 69.0 / (double)n : 69.0;
        printf("\n  %zu float16 elements, %s: %.9g (expected %.9g)", n,
               clloss_reduction_name(d.reduction), got, want);
        CU_ASSERT_DOUBLE_EQUAL(got, want, 1e-5 * want);
      }
    }
    if (x)
      clReleaseMemObject(x);
    if (y)
      clReleaseMemObject(y);
    clReleaseMemObject(l);
    clReleaseCommandQueue(q);
  }
}

int test_pointwise_register(void) {
  TU_SUITE("pointwise", NULL, NULL, TU_TEST(test_pw_mse), TU_TEST(test_pw_l1),
           TU_TEST(test_pw_huber), TU_TEST(test_pw_smooth_l1),
           TU_TEST(test_pw_smooth_l1_beta0_is_l1), TU_TEST(test_pw_bce),
           TU_TEST(test_pw_bce_broadcast_weights),
           TU_TEST(test_pw_bce_full_weights),
           TU_TEST(test_pw_bce_extreme_logits), TU_TEST(test_pw_kl_div),
           TU_TEST(test_pw_kl_div_log_target),
           TU_TEST(test_pw_kl_div_batchmean), TU_TEST(test_pw_offsets),
           TU_TEST(test_pw_in_place), TU_TEST(test_pw_only_one_output),
           TU_TEST(test_pw_dtypes), TU_TEST(test_pw_float64),
           TU_TEST(test_pw_nan_propagates), TU_TEST(test_pw_special_values),
           TU_TEST(test_pw_big), TU_TEST(test_pw_determinism),
           TU_TEST(test_pw_host), TU_TEST(test_pw_host_wrappers),
           TU_TEST(test_pw_invalid), TU_TEST(test_pw_buffer_too_small),
           TU_TEST(test_pw_more_than_2g_elements));
}
