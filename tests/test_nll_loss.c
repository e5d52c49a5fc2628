/* test_nll_loss.c - nll_loss on every device against the CPU reference, at
 * the device-buffer and the host-pointer level. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* white box: a device's loop limit */
#include "support/devcheck.h"
#include "support/testutil.h"

static const clloss_reduction reds[] = {
    CLLOSS_REDUCTION_MEAN, CLLOSS_REDUCTION_SUM, CLLOSS_REDUCTION_NONE};

typedef struct nll_data {
  dc_data v;
  dc_nll_case c;
} nll_data;

static clloss_nll_loss_desc nll_desc(size_t rows, size_t classes,
                                     clloss_reduction red) {
  clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
  d.rows = rows, d.classes = classes, d.reduction = red;
  return d;
}

/* ---- case tables (support/devcheck.h) ----
 * A tenth of the rows ignored, grad_output (none: per row; sum, mean:
 * 0.7), each reduction in turn. */
#define NLL_GEN(salt)                                                          \
  { salt, 0, 0, 0.1, 0, 1, 0 }

static void test_nll_shapes(void) {
  TU_REQUIRE_DEVICE();
  static const dc_row_case cases[] = {
      {"1x1", 1, 1, .each_reduction = 1, .g = NLL_GEN(5000),
       .o = {.all_variants = 1}},
      {"1x5", 1, 5, .each_reduction = 1, .g = NLL_GEN(5010),
       .o = {.all_variants = 1}},
      {"33x2", 33, 2, .each_reduction = 1, .g = NLL_GEN(5020),
       .o = {.all_variants = 1}},
      {"7x4099", 7, 4099, .each_reduction = 1, .g = NLL_GEN(5030),
       .o = {.all_variants = 1}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

static void test_nll_many_rows(void) {
  TU_REQUIRE_DEVICE();
  static const dc_row_case cases[] = {
      {"many_rows", 65536, 10, CLLOSS_REDUCTION_MEAN,
       .g = {5100, 0, 0, 0.05, 1, 1, 0},
       .o = {.all_variants = 1, .determinism = 1}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

/* A device whose loops stop after a number of iterations (Mesa's llvmpipe:
 * a gradient row of 600000 was zeroed only to 262140 by one work-item)
 * gets a work-group per row instead: the limit planted on every device,
 * so that any device checks the planning and its results. */
static void test_nll_loop_budget(void) {
  TU_REQUIRE_DEVICE();
  clloss_nll_loss_desc d = nll_desc(5, 4099, CLLOSS_REDUCTION_SUM);
  nll_data data;
  data.c = dc_make_nll(&data.v, &d, &(dc_gen){5170, 0, 0, 0.1, 1, 1, 0});
  size_t saved[16];
  for (size_t i = 0; i < tu_device_count() && i < 16; i++) {
    clloss_context *ctx = tu_context(i);
    saved[i] = ctx->loop_limit;
    ctx->loop_limit = 4; /* item: 4099 / VW, lanes: 4099 / 64 VW, over 2 */
    cl_command_queue q = dc_queue(ctx);
    for (int v = 0; v < 2; v++) {
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, v ? "lanes" : "item"),
                      CLLOSS_SUCCESS);
      dc_result r = dc_run_nll(ctx, q, &data.c, NULL);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      if (strcmp(clloss_context_last_variant(ctx), "group") != 0)
        printf("\n  asked for %s, ran %s", v ? "lanes" : "item",
               clloss_context_last_variant(ctx));
      CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx), "group");
      dc_result_free(&r);
    }
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
    clReleaseCommandQueue(q);
  }
  dc_opts o = {.all_variants = 1};
  dc_check_nll_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count() && i < 16; i++)
    tu_context(i)->loop_limit = saved[i];
  dc_data_free(&data.v);
}

static void test_nll_rows_beyond_grid(void) {
  TU_REQUIRE_DEVICE();
  /* More rows than a one-group-per-row grid launches at once. */
  static const dc_row_case cases[] = {
      {"beyond_grid sum", 70001, 3, CLLOSS_REDUCTION_SUM,
       .g = {5150, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1}},
      {"beyond_grid none", 70001, 3, CLLOSS_REDUCTION_NONE,
       .g = {5151, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

static void test_nll_weights_ignore_int32(void) {
  TU_REQUIRE_DEVICE();
  for (int k = 0; k < 3; k++) {
    clloss_nll_loss_desc d = nll_desc(41, 97, reds[k]);
    d.target_type = CLLOSS_INT32;
    d.ignore_index = 0; /* a valid class used as ignore_index */
    dc_opts o = {.all_variants = 1};
    nll_data data;
    data.c = dc_make_nll(&data.v, &d,
                         &(dc_gen){5200 + (uint64_t)k, 0, 0, 0.3, 1, 1, 0});
    dc_check_nll_all(&data.c, &o);
    dc_data_free(&data.v);
  }
}

#define NLL_OFFSETS .off = {5, 3, 7, 0, 11, 2, 9}

static void test_nll_offsets_row_stride(void) {
  TU_REQUIRE_DEVICE();
  static const dc_row_case cases[] = {
      {"offsets none", 13, 50, CLLOSS_REDUCTION_NONE, .row_stride = 57,
       .g = {5300, 0, 0, 0.2, 1, 1, 0}, .o = {.all_variants = 1, NLL_OFFSETS}},
      {"offsets mean int32", 13, 50, CLLOSS_REDUCTION_MEAN, .row_stride = 57,
       .int32_targets = 1, .g = {5301, 0, 0, 0.2, 1, 1, 0},
       .o = {.all_variants = 1, NLL_OFFSETS}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

static void test_nll_in_place(void) {
  TU_REQUIRE_DEVICE();
  static const dc_row_case cases[] = {
      {"in_place", 19, 70, CLLOSS_REDUCTION_SUM, .row_stride = 72,
       .g = {5400, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .in_place = 1, .off = {3}}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

static void test_nll_only_one_output(void) {
  TU_REQUIRE_DEVICE();
  static const dc_row_case cases[] = {
      {"no_grad", 19, 70, CLLOSS_REDUCTION_MEAN,
       .g = {5500, 0, 0, 0.1, 1, 0, 0}, .o = {.all_variants = 1, .no_grad = 1}},
      {"no_loss", 19, 70, CLLOSS_REDUCTION_MEAN,
       .g = {5501, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1, .no_loss = 1}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

static void test_nll_all_ignored(void) {
  TU_REQUIRE_DEVICE();
  /* mean: NaN loss, gradient exactly 0; sum: 0. */
  clloss_nll_loss_desc d = nll_desc(9, 20, CLLOSS_REDUCTION_MEAN);
  nll_data data;
  data.c = dc_make_nll(&data.v, &d, &(dc_gen){5600, 0, 0, 1.0, 1, 0, 0});
  dc_opts o = {.all_variants = 1};
  dc_check_nll_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result r = dc_run_nll(tu_context(i), q, &data.c, NULL);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    if (r.loss)
      CU_ASSERT_TRUE(isnan(((float *)r.loss)[0]));
    for (size_t k = 0; r.grad && k < r.grad_count; k++)
      CU_ASSERT_EQUAL(((float *)r.grad)[k], 0.0f);
    dc_result_free(&r);
    clReleaseCommandQueue(q);
  }
  data.c.desc.reduction = CLLOSS_REDUCTION_SUM;
  dc_check_nll_all(&data.c, &o);
  dc_data_free(&data.v);
}

static void test_nll_special_values(void) {
  TU_REQUIRE_DEVICE();
  /* -inf at a target gives +inf; NaN at a target gives NaN; NaN elsewhere
   * in the row is never read. */
  clloss_nll_loss_desc d = nll_desc(6, 9, CLLOSS_REDUCTION_NONE);
  nll_data data;
  data.c = dc_make_nll(&data.v, &d, &(dc_gen){5700, 0, 0, 0.0, 0, 0, 0});
  data.v.x[1 * 9 + (size_t)data.v.t[1]] = -INFINITY;
  data.v.x[2 * 9 + (size_t)data.v.t[2]] = NAN;
  data.v.x[3 * 9 + ((size_t)data.v.t[3] + 1) % 9] = NAN;
  dc_opts o = {.all_variants = 1};
  dc_check_nll_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result r = dc_run_nll(tu_context(i), q, &data.c, NULL);
    if (r.loss) {
      const float *l = r.loss;
      CU_ASSERT_TRUE(isinf(l[1]) && l[1] > 0);
      CU_ASSERT_TRUE(isnan(l[2]));
      CU_ASSERT_TRUE(isfinite(l[3]));
    }
    dc_result_free(&r);
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

static void test_nll_dtypes(void) {
  TU_REQUIRE_DEVICE();
  static const clloss_dtype types[] = {CLLOSS_FLOAT16, CLLOSS_BFLOAT16,
                                       CLLOSS_FLOAT64};
  for (size_t i = 0; i < tu_device_count(); i++) {
    const clloss_device_info *info = clloss_context_device_info(tu_context(i));
    for (int t = 0; t < 3; t++) {
      clloss_nll_loss_desc d = nll_desc(23, 301, reds[t]);
      d.input_type = types[t];
      nll_data data;
      data.c = dc_make_nll(&data.v, &d,
                           &(dc_gen){5800 + (uint64_t)t, 0, 0, 0.1, 1, 1, 0});
      if (types[t] == CLLOSS_FLOAT64 && !info->has_fp64) {
        tu_skip_part("float64 on %s: no fp64 (CLLOSS_UNSUPPORTED checked)",
                     info->name);
        cl_command_queue q = dc_queue(tu_context(i));
        dc_result r = dc_run_nll(tu_context(i), q, &data.c, NULL);
        CU_ASSERT_EQUAL(r.status, CLLOSS_UNSUPPORTED);
        dc_result_free(&r);
        clReleaseCommandQueue(q);
      } else {
        dc_opts o = {.all_variants = 1, .off = {1, 2, 3, 0, 1, 0, 3}};
        dc_check_nll(i, &data.c, &o);
      }
      dc_data_free(&data.v);
    }
  }
}

static void test_nll_host(void) {
  TU_REQUIRE_DEVICE();
  static const dc_row_case cases[] = {
      {"host", 31, 200, .each_reduction = 1, .g = {5900, 0, 0, 0.2, 1, 1, 0},
       .o = {.host = 1}},
      {"host float16 int32", 31, 200, CLLOSS_REDUCTION_SUM,
       .input_type = CLLOSS_FLOAT16, .int32_targets = 1,
       .g = {5910, 0, 0, 0.2, 0, 0, 0}, .o = {.host = 1, .no_grad = 1}},
  };
  DC_RUN_CASES(DC_NLL, cases);
}

static void test_nll_host_bad_target(void) {
  TU_REQUIRE_DEVICE();
  enum { N = 5, C = 4 };
  float x[N * C] = {0}, loss[N], grad[N * C];
  const int64_t bads[] = {C, -1, -99};
  for (size_t i = 0; i < tu_device_count(); i++) {
    for (size_t b = 0; b < 3; b++) {
      int64_t t[N] = {0, 1, -100, bads[b], 3};
      clloss_nll_loss_desc d = nll_desc(N, C, CLLOSS_REDUCTION_NONE);
      memset(loss, 0x5B, sizeof loss);
      memset(grad, 0x5B, sizeof grad);
      CU_ASSERT_EQUAL(
          clloss_nll_loss_host(tu_context(i), &d, x, t, NULL, NULL, loss, grad),
          CLLOSS_INVALID_TARGET);
      unsigned char want[sizeof grad];
      memset(want, 0x5B, sizeof want);
      CU_ASSERT_EQUAL(memcmp(loss, want, sizeof loss), 0);
      CU_ASSERT_EQUAL(memcmp(grad, want, sizeof grad), 0);
    }
  }
}

static void test_nll_device_bad_target(void) {
  TU_REQUIRE_DEVICE();
  clloss_nll_loss_desc d = nll_desc(10, 8, CLLOSS_REDUCTION_NONE);
  nll_data data;
  data.c = dc_make_nll(&data.v, &d, &(dc_gen){6000, 0, 0, 0.0, 0, 0, 0});
  data.v.t[6] = 8, data.v.t[8] = -3, data.v.t[1] = -100;
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    uint64_t bad_row = 999;
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                    CLLOSS_SUCCESS);
    for (int v = 0; v < DC_VARIANTS; v++) {
      clloss_context_set_variant(ctx, dc_variants[v]);
      dc_result r = dc_run_nll(ctx, q, &data.c, NULL);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      if (r.loss) {
        const float *l = r.loss;
        for (size_t k = 0; k < d.rows; k++)
          CU_ASSERT_EQUAL(isnan(l[k]) != 0, k == 6 || k == 8);
        CU_ASSERT_EQUAL(l[1], 0.0f);
      }
      dc_result_free(&r);
      CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                      CLLOSS_INVALID_TARGET);
      if (bad_row != 6)
        printf("\n  nll [%s]: bad_row %llu, expected 6", dc_variants[v],
               (unsigned long long)bad_row);
      CU_ASSERT_EQUAL(bad_row, 6);
      CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                      CLLOSS_SUCCESS);
    }
    clloss_context_set_variant(ctx, "auto");
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

static void test_nll_invalid(void) {
  TU_REQUIRE_DEVICE();
  enum { N = 4, C = 5 };
  float x[N * C] = {0}, w[C] = {1, 1, 1, 1, 1};
  int64_t t[N] = {0, 1, 2, 3};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    clloss_nll_loss_desc d = nll_desc(N, C, CLLOSS_REDUCTION_SUM);
    cl_mem mx = tu_buffer(ctx, sizeof x, x);
    cl_mem mx_short = tu_buffer(ctx, sizeof x - 4, x);
    cl_mem mt = tu_buffer(ctx, sizeof t, t);
    cl_mem mw_short = tu_buffer(ctx, sizeof w - 4, w);
    cl_mem ml = tu_buffer(ctx, 4, NULL);
    clloss_buffer none = {NULL, 0}, in = {mx, 0}, tg = {mt, 0}, loss = {ml, 0};
    clloss_status s =
        clloss_nll_loss(ctx, q, &d, (clloss_buffer){mx_short, 0}, tg, none,
                        none, loss, none, 0, NULL, NULL);
    CU_ASSERT_EQUAL(s, CLLOSS_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "input"));
    s = clloss_nll_loss(ctx, q, &d, in, tg, (clloss_buffer){mw_short, 0}, none,
                        loss, none, 0, NULL, NULL);
    CU_ASSERT_EQUAL(s, CLLOSS_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "weight"));
    s = clloss_nll_loss(ctx, q, &d, in, tg, none, none, (clloss_buffer){ml, 1},
                        none, 0, NULL, NULL);
    CU_ASSERT_EQUAL(s, CLLOSS_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "loss"));
    CU_ASSERT_EQUAL(clloss_nll_loss(ctx, q, &d, in, tg, none, none, none, none,
                                    0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_nll_loss(NULL, q, &d, in, tg, none, none, loss, none,
                                    0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_nll_loss(ctx, NULL, &d, in, tg, none, none, loss,
                                    none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_nll_loss(ctx, q, NULL, in, tg, none, none, loss,
                                    none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    clloss_nll_loss_desc bad = d;
    bad.target_type = CLLOSS_FLOAT32; /* no probability targets */
    CU_ASSERT_EQUAL(clloss_nll_loss(ctx, q, &bad, in, tg, none, none, loss,
                                    none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    bad = d, bad.classes = 0;
    CU_ASSERT_EQUAL(clloss_nll_loss(ctx, q, &bad, in, tg, none, none, loss,
                                    none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    float l;
    CU_ASSERT_EQUAL(
        clloss_nll_loss_host(ctx, &d, x, NULL, NULL, NULL, &l, NULL),
        CLLOSS_INVALID_ARGUMENT);
    clFinish(q);
    clReleaseMemObject(mx);
    clReleaseMemObject(mx_short);
    clReleaseMemObject(mt);
    clReleaseMemObject(mw_short);
    clReleaseMemObject(ml);
    clReleaseCommandQueue(q);
  }
}

int test_nll_loss_register(void) {
  TU_SUITE("nll_loss", NULL, NULL, TU_TEST(test_nll_shapes),
           TU_TEST(test_nll_many_rows), TU_TEST(test_nll_loop_budget),
           TU_TEST(test_nll_rows_beyond_grid),
           TU_TEST(test_nll_weights_ignore_int32),
           TU_TEST(test_nll_offsets_row_stride), TU_TEST(test_nll_in_place),
           TU_TEST(test_nll_only_one_output), TU_TEST(test_nll_all_ignored),
           TU_TEST(test_nll_special_values), TU_TEST(test_nll_dtypes),
           TU_TEST(test_nll_host), TU_TEST(test_nll_host_bad_target),
           TU_TEST(test_nll_device_bad_target), TU_TEST(test_nll_invalid));
}
