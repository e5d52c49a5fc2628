/* test_cross_entropy.c - cross_entropy on every device against the CPU
 * reference, at the device-buffer and the host-pointer level. */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "internal.h" /* white box: a device's loop limit */
#include "support/devcheck.h"
#include "support/testutil.h"

/* The byte every output array starts as: a finite value in every type. */
#define FILL_BYTE_FOR_TEST 0x5B

/* ---- random cases ---- */
typedef struct ce_data {
  dc_data v;
  dc_ce_case c;
} ce_data;

static clloss_cross_entropy_desc ce_desc(size_t rows, size_t classes,
                                         clloss_reduction red) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows, d.classes = classes, d.reduction = red;
  return d;
}

/* ---- case tables (support/devcheck.h) ---- */
typedef dc_row_case ce_case;
#define CE_RUN_CASES(cases) DC_RUN_CASES(DC_CE, cases)

/* Non-trivial grad_output (none: per row, of both signs; sum, mean: 0.7),
 * a tenth of the rows ignored. */
#define CE_GEN_REDUCTIONS(salt)                                                \
  { salt, 0, 0, 0.1, 0, 1, 0 }

static void test_ce_shape_cases(void) {
  TU_REQUIRE_DEVICE();
  static const ce_case cases[] = {
      {"one_row", 1, 5, .each_reduction = 1, .g = CE_GEN_REDUCTIONS(101),
       .o = {.all_variants = 1}},
      /* C = 1: the loss and gradient are exactly 0 for every valid row. */
      {"one_class", 9, 1, .each_reduction = 1, .g = CE_GEN_REDUCTIONS(111),
       .o = {.all_variants = 1}},
      {"two_classes", 33, 2, .each_reduction = 1, .g = CE_GEN_REDUCTIONS(121),
       .o = {.all_variants = 1}},
      /* 4099 is prime: not a multiple of any vector width or group size. */
      {"c4099", 7, 4099, .each_reduction = 1, .g = CE_GEN_REDUCTIONS(131),
       .o = {.all_variants = 1}},
      {"c50257", 8, 50257, CLLOSS_REDUCTION_MEAN,
       .g = {141, -6.0f, 6.0f, 0.0, 1, 0, 0}, .o = {.all_variants = 1}},
      {"c131072_few_rows", 4, 131072, CLLOSS_REDUCTION_NONE,
       .g = {151, 0, 0, 0.0, 0, 1, 0}, .o = {.all_variants = 1}},
      /* N = 65536, C = 10: the mean's denominator and the two-stage
       * reduction over many partials. */
      {"many_rows mean", 65536, 10, CLLOSS_REDUCTION_MEAN,
       .g = {161, 0, 0, 0.05, 1, 1, 0}, .o = {.all_variants = 1}},
      {"many_rows sum", 65536, 10, CLLOSS_REDUCTION_SUM,
       .g = {161, 0, 0, 0.05, 1, 1, 0}},
      /* 70001 rows of 3: more rows than a one-group-per-row grid launches
       * at once, so the group kernels loop. */
      {"rows_beyond_grid none", 70001, 3, CLLOSS_REDUCTION_NONE,
       .g = {165, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1}},
      {"rows_beyond_grid mean", 70001, 3, CLLOSS_REDUCTION_MEAN,
       .g = {165, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1}},
      /* N = 0: sum is 0, mean is 0/0 = NaN as in PyTorch, none has nothing
       * to write but still returns an event. */
      {"zero_rows mean", 0, 7, CLLOSS_REDUCTION_MEAN, .g = {171}},
      {"zero_rows sum", 0, 7, CLLOSS_REDUCTION_SUM, .g = {171}},
      {"zero_rows none", 0, 7, CLLOSS_REDUCTION_NONE, .g = {171}},
      /* Twice the same call: bit-identical loss and gradient, every
       * variant. */
      {"determinism 300x4099", 300, 4099, CLLOSS_REDUCTION_MEAN,
       .g = {431, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .determinism = 1}},
      {"determinism 3x70000", 3, 70000, CLLOSS_REDUCTION_SUM,
       .g = {431, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .determinism = 1}},
  };
  CE_RUN_CASES(cases);
}

/* Every buffer at its own non-zero element offset; none reduction so that
 * grad_output and loss have one element per row. */
#define CE_OFFSETS                                                             \
  .off = {[DC_INPUT] = 5,        [DC_TARGET] = 3, [DC_WEIGHT] = 7,             \
          [DC_GRAD_OUTPUT] = 11, [DC_LOSS] = 2,   [DC_GRAD] = 9}

static void test_ce_buffer_cases(void) {
  TU_REQUIRE_DEVICE();
  static const ce_case cases[] = {
      {"offsets none", 13, 77, CLLOSS_REDUCTION_NONE,
       .g = {181, 0, 0, 0.2, 1, 1, 0}, .o = {.all_variants = 1, CE_OFFSETS}},
      {"offsets mean int32", 13, 77, CLLOSS_REDUCTION_MEAN, .int32_targets = 1,
       .g = {181, 0, 0, 0.2, 1, 1, 0}, .o = {.all_variants = 1, CE_OFFSETS}},
      /* The gradient written over the logits (same cl_mem and offset),
       * with a row stride whose padding must survive. */
      {"in_place stride", 17, 300, CLLOSS_REDUCTION_MEAN, .row_stride = 301,
       .g = {201, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .in_place = 1, .off = {[DC_INPUT] = 4}}},
      {"in_place none", 17, 300, CLLOSS_REDUCTION_NONE,
       .g = {201, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .in_place = 1, .off = {[DC_INPUT] = 4}}},
      {"only_loss mean", 19, 1000, CLLOSS_REDUCTION_MEAN,
       .g = {211, 0, 0, 0.1, 1, 0, 0}, .o = {.all_variants = 1, .no_grad = 1}},
      {"only_loss none", 19, 1000, CLLOSS_REDUCTION_NONE,
       .g = {211, 0, 0, 0.1, 1, 0, 0}, .o = {.all_variants = 1, .no_grad = 1}},
      {"only_grad mean", 19, 1000, CLLOSS_REDUCTION_MEAN,
       .g = {221, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1, .no_loss = 1}},
      {"only_grad none", 19, 1000, CLLOSS_REDUCTION_NONE,
       .g = {221, 0, 0, 0.1, 1, 1, 0}, .o = {.all_variants = 1, .no_loss = 1}},
  };
  CE_RUN_CASES(cases);
}

static void test_ce_option_cases(void) {
  TU_REQUIRE_DEVICE();
  static const ce_case cases[] = {
      {"int32_targets", 29, 513, CLLOSS_REDUCTION_NONE, .int32_targets = 1,
       .g = {231, 0, 0, 0.2, 1, 1, 0}, .o = {.all_variants = 1}},
      /* none with per-row g of both signs, sum and mean with g = 0.7. */
      {"reduction_grad_output", 45, 257, .each_reduction = 1,
       .g = CE_GEN_REDUCTIONS(251)},
      /* A valid class index (3) used as ignore_index. */
      {"weights_ignore_smoothing", 37, 129, .each_reduction = 1,
       .ignore_index = 3, .label_smoothing = 0.15f,
       .g = {261, 0, 0, 0.25, 1, 1, 0}, .o = {.all_variants = 1}},
      /* epsilon = 1: the target no longer matters, only the uniform
       * part. */
      {"label_smoothing_one", 10, 31, CLLOSS_REDUCTION_MEAN,
       .label_smoothing = 1.0f, .g = {271, 0, 0, 0.0, 1, 0, 0}},
      {"probability_targets", 21, 130, .each_reduction = 1,
       .g = {281, 0, 0, 0.0, 0, 1, 1}, .o = {.all_variants = 1}},
      /* Mean divides by N with probability targets, not by the weights. */
      {"probability_weights_smoothing", 21, 130, CLLOSS_REDUCTION_MEAN,
       .label_smoothing = 0.2f, .g = {291, 0, 0, 0.0, 1, 1, 1},
       .o = {.off = {2, 6, 1, 0, 0, 3, 5}}},
      {"z_loss mean", 23, 1025, CLLOSS_REDUCTION_MEAN, .z_loss = 1e-2f,
       .g = {301, 0, 0, 0.2, 1, 1, 0}, .o = {.all_variants = 1}},
      {"z_loss none smoothing", 23, 1025, CLLOSS_REDUCTION_NONE,
       .label_smoothing = 0.1f, .z_loss = 1e-2f, .g = {301, 0, 0, 0.2, 1, 1, 0},
       .o = {.all_variants = 1}},
      /* Logits up to +-60 through a cap of 30: the tanh saturates for
       * some. */
      {"softcap sum", 23, 1025, CLLOSS_REDUCTION_SUM, .softcap = 30.0f,
       .g = {311, -60.0f, 60.0f, 0.1, 1, 1, 0}, .o = {.all_variants = 1}},
      {"softcap none z_loss", 23, 1025, CLLOSS_REDUCTION_NONE, .z_loss = 1e-3f,
       .softcap = 30.0f, .g = {311, -60.0f, 60.0f, 0.1, 1, 1, 0},
       .o = {.all_variants = 1}},
      {"normalizer", 23, 300, CLLOSS_REDUCTION_MEAN, .normalizer = 4096.0f,
       .g = {321, 0, 0, 0.3, 1, 1, 0}, .o = {.all_variants = 1}},
      /* Every row ignored (mean: test_ce_all_ignored_mean). */
      {"all_ignored sum", 9, 50, CLLOSS_REDUCTION_SUM,
       .g = {351, 0, 0, 1.0, 1, 1, 0}, .o = {.all_variants = 1}},
      {"all_ignored none", 9, 50, CLLOSS_REDUCTION_NONE,
       .g = {351, 0, 0, 1.0, 1, 1, 0}, .o = {.all_variants = 1}},
  };
  CE_RUN_CASES(cases);
}

static void test_ce_type_cases(void) {
  TU_REQUIRE_DEVICE();
  static const ce_case cases[] = {
      {"float16 mean", 13, 1031, CLLOSS_REDUCTION_MEAN,
       .input_type = CLLOSS_FLOAT16, .g = {391, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .off = {3, 1, 2, 0, 1, 0, 5}}},
      {"float16 none smoothing", 13, 1031, CLLOSS_REDUCTION_NONE,
       .input_type = CLLOSS_FLOAT16, .label_smoothing = 0.1f,
       .g = {391, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .off = {3, 1, 2, 0, 1, 0, 5}}},
      /* Probability targets in float16 too. */
      {"float16 probabilities", 13, 1031, CLLOSS_REDUCTION_NONE,
       .input_type = CLLOSS_FLOAT16, .label_smoothing = 0.1f,
       .g = {391, 0, 0, 0.1, 1, 1, 1},
       .o = {.all_variants = 1, .off = {3, 1, 2, 0, 1, 0, 5}}},
      {"bfloat16 sum int32", 13, 1031, CLLOSS_REDUCTION_SUM,
       .input_type = CLLOSS_BFLOAT16, .int32_targets = 1,
       .g = {401, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .off = {1, 2, 3, 0, 4, 0, 6}}},
      {"bfloat16 none z_loss", 13, 1031, CLLOSS_REDUCTION_NONE,
       .input_type = CLLOSS_BFLOAT16, .int32_targets = 1, .z_loss = 1e-3f,
       .g = {401, 0, 0, 0.1, 1, 1, 0},
       .o = {.all_variants = 1, .off = {1, 2, 3, 0, 4, 0, 6}}},
      {"float16_in_place", 9, 257, CLLOSS_REDUCTION_MEAN, .row_stride = 260,
       .input_type = CLLOSS_FLOAT16, .g = {411, 0, 0, 0.1, 0, 0, 0},
       .o = {.in_place = 1, .off = {1}}},
  };
  CE_RUN_CASES(cases);
}

static void test_ce_host_cases(void) {
  TU_REQUIRE_DEVICE();
  static const ce_case cases[] = {
      {"host", 25, 333, .each_reduction = 1, .label_smoothing = 0.05f,
       .g = {451, 0, 0, 0.2, 1, 1, 0}, .o = {.host = 1}},
      /* Twice more on other shapes: the pooled buffers are reused and
       * resized. */
      {"host 2x9000 int32", 2, 9000, CLLOSS_REDUCTION_NONE, .int32_targets = 1,
       .g = {455, 0, 0, 0, 0, 1, 0}, .o = {.host = 1}},
      {"host 3x7", 3, 7, CLLOSS_REDUCTION_MEAN, .g = {455, 0, 0, 0, 0, 1, 0},
       .o = {.host = 1}},
      {"host_only_loss", 25, 333, CLLOSS_REDUCTION_SUM,
       .g = {461, 0, 0, 0.2, 1, 0, 0}, .o = {.host = 1, .no_grad = 1}},
      {"host_only_grad", 25, 333, CLLOSS_REDUCTION_SUM,
       .g = {461, 0, 0, 0.2, 1, 0, 0}, .o = {.host = 1, .no_loss = 1}},
      {"host float16", 25, 333, CLLOSS_REDUCTION_MEAN,
       .input_type = CLLOSS_FLOAT16, .g = {471, 0, 0, 0.2, 1, 0, 0},
       .o = {.host = 1}},
      {"host bfloat16", 25, 333, CLLOSS_REDUCTION_MEAN,
       .input_type = CLLOSS_BFLOAT16, .g = {471, 0, 0, 0.2, 1, 0, 0},
       .o = {.host = 1}},
      {"host probabilities", 25, 333, CLLOSS_REDUCTION_MEAN,
       .g = {471, 0, 0, 0.2, 1, 0, 1}, .o = {.host = 1}},
  };
  CE_RUN_CASES(cases);
}

/* ---- shapes ---- */
/* A device whose loops stop after a number of iterations (Mesa's llvmpipe:
 * 65535 per work-item, all loops together) gets plans within it: the
 * limit is planted on every device here, so that any device checks the
 * planning. With a limit of 4096, three passes of one work-item over a
 * row of 20000 (5000 vectors or more) do not fit, so forced item runs
 * another variant; with 64, a group's share of a row does not either,
 * and split cuts the rows short. Every variant's results stay right. */
static void test_ce_loop_budget(void) {
  TU_REQUIRE_DEVICE();
  clloss_cross_entropy_desc d = ce_desc(3, 20000, CLLOSS_REDUCTION_SUM);
  dc_gen g = {167, 0, 0, 0.1, 1, 1, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  static const size_t limits[] = {4096, 64};
  for (int k = 0; k < 2; k++) {
    size_t saved[16];
    for (size_t i = 0; i < tu_device_count() && i < 16; i++) {
      clloss_context *ctx = tu_context(i);
      saved[i] = ctx->loop_limit;
      ctx->loop_limit = limits[k];
      cl_command_queue q = dc_queue(ctx);
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "item"), CLLOSS_SUCCESS);
      dc_result r = dc_run_ce(ctx, q, &data.c, NULL);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      const char *ran = clloss_context_last_variant(ctx);
      CU_ASSERT_STRING_NOT_EQUAL(ran, "item");
      if (k == 1)
        CU_ASSERT_STRING_EQUAL(ran, "split");
      dc_result_free(&r);
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
      clReleaseCommandQueue(q);
    }
    dc_opts o = {.all_variants = 1};
    dc_check_ce_all(&data.c, &o);
    for (size_t i = 0; i < tu_device_count() && i < 16; i++)
      tu_context(i)->loop_limit = saved[i];
  }
  dc_data_free(&data.v);
  /* The one-group sums (the targets' weights, the partials) take 16
   * elements of each work-item per iteration: 5000 rows fit a group of 256
   * with a budget of 2 iterations, not of 1, and then the call says so
   * rather than return a wrong mean. */
  clloss_cross_entropy_desc m = ce_desc(5000, 3, CLLOSS_REDUCTION_MEAN);
  data.c = dc_make_ce(&data.v, &m, &g);
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    const size_t saved = ctx->loop_limit;
    ctx->loop_limit = 2;
    cl_command_queue q = dc_queue(ctx);
    dc_result r = dc_run_ce(ctx, q, &data.c, NULL);
    const size_t local = ctx->wg_size;
    if (5000 / (CLLOSS__REDUCE_UNROLL * local) >= 1)
      CU_ASSERT_EQUAL(r.status, CLLOSS_UNSUPPORTED);
    dc_result_free(&r);
    ctx->loop_limit = saved;
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

/* ---- buffers ---- */
static void test_ce_row_stride(void) {
  TU_REQUIRE_DEVICE();
  /* Rows 70 elements apart, 61 used: the padding of the gradient must stay
   * untouched and the padding of the input must not be read. */
  clloss_cross_entropy_desc d = ce_desc(11, 61, CLLOSS_REDUCTION_SUM);
  d.row_stride = 70;
  dc_gen g = {191, 0, 0, 0.1, 1, 1, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  for (size_t i = 0; i < d.rows; i++)
    for (size_t j = d.classes; j < d.row_stride; j++)
      data.v.x[i * d.row_stride + j] = NAN; /* poison: must not be read */
  dc_opts o = {.all_variants = 1};
  o.off[DC_INPUT] = 3, o.off[DC_GRAD] = 1;
  dc_check_ce_all(&data.c, &o);
  dc_data_free(&data.v);
}

static void test_ce_runs_of_rows(void) {
  TU_REQUIRE_DEVICE();
  /* Enough rows that a CPU's item kernel takes them in runs (up to 16
   * compute units), where one row's sum-exp pass also finds the next row's
   * max: neighbouring rows of very different scales, NaN, +-inf, rows all
   * -inf but the target, ignored rows, a padded row stride whose padding
   * (NaN) must not be read, offsets, in place; and the last run short. */
  clloss_cross_entropy_desc d = ce_desc(8197, 37, CLLOSS_REDUCTION_NONE);
  d.row_stride = 40;
  dc_gen g = {395, 0, 0, 0.05, 1, 1, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  tu_rng r = tu_rng_make(396);
  for (size_t i = 0; i < d.rows; i++) {
    float *row = data.v.x + i * d.row_stride;
    for (size_t j = d.classes; j < d.row_stride; j++)
      row[j] = NAN; /* poison */
    switch (tu_next(&r) % 8) {
    case 0: /* far above its neighbours, then far below */
      for (size_t j = 0; j < d.classes; j++)
        row[j] += (i & 1) ? 60.0f : -60.0f;
      break;
    case 1:
      row[tu_next(&r) % d.classes] = NAN;
      break;
    case 2:
      row[tu_next(&r) % d.classes] = INFINITY;
      break;
    case 3:
      for (size_t j = 0; j < d.classes; j++)
        if ((int64_t)j != data.v.t[i])
          row[j] = -INFINITY;
      break;
    default:
      break;
    }
  }
  dc_opts o = {.all_variants = 1};
  o.off[DC_INPUT] = 3, o.off[DC_GRAD] = 5, o.off[DC_LOSS] = 1;
  dc_check_ce_all(&data.c, &o);
  dc_opts in_place = {.all_variants = 1, .in_place = 1};
  in_place.off[DC_INPUT] = 2;
  data.c.desc.reduction = CLLOSS_REDUCTION_SUM;
  dc_check_ce_all(&data.c, &in_place);
  dc_data_free(&data.v);
}

/* ---- options ---- */
static void test_ce_int64_targets(void) {
  TU_REQUIRE_DEVICE();
  /* int64 targets with an ignore_index that does not fit in 32 bits: its
   * low word (5) is a valid class and must not be taken for it. */
  clloss_cross_entropy_desc d = ce_desc(29, 513, CLLOSS_REDUCTION_SUM);
  d.ignore_index = ((int64_t)1 << 32) + 5;
  dc_gen g = {241, 0, 0, 0.3, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  data.v.t[0] = 5, data.v.t[1] = 512, data.v.t[2] = 0;
  dc_opts o = {.all_variants = 1};
  dc_check_ce_all(&data.c, &o);
  dc_data_free(&data.v);
}

static void test_ce_zero_weights(void) {
  TU_REQUIRE_DEVICE();
  /* Weights 0 for every target class: D = 0 with valid rows, so mean is
   * NaN as in PyTorch; sum is 0. Some zero weights elsewhere only. */
  clloss_cross_entropy_desc d = ce_desc(12, 20, CLLOSS_REDUCTION_MEAN);
  dc_gen g = {267, 0, 0, 0.0, 1, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  for (size_t i = 0; i < d.rows; i++)
    data.v.t[i] = (int64_t)(i % 4);
  for (int k = 0; k < 4; k++)
    data.v.w[k] = 0.0f;
  dc_opts o = {.all_variants = 1};
  dc_check_ce_all(&data.c, &o);
  data.c.desc.reduction = CLLOSS_REDUCTION_SUM;
  dc_check_ce_all(&data.c, &o);
  data.v.t[0] = 7; /* one row with a non-zero weight: mean is finite */
  data.c.desc.reduction = CLLOSS_REDUCTION_MEAN;
  dc_check_ce_all(&data.c, &o);
  dc_data_free(&data.v);
}

static void test_ce_normalizer_all_ignored(void) {
  TU_REQUIRE_DEVICE();
  /* With an external normaliser an all-ignored batch gives 0, not NaN. */
  clloss_cross_entropy_desc d = ce_desc(6, 40, CLLOSS_REDUCTION_MEAN);
  d.normalizer = 10.0f;
  dc_gen g = {331, 0, 0, 1.0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  dc_opts o = {0};
  dc_check_ce_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result r = dc_run_ce(tu_context(i), q, &data.c, &o);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    if (r.loss)
      CU_ASSERT_EQUAL(((float *)r.loss)[0], 0.0f);
    dc_result_free(&r);
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

/* ---- special values ---- */
static void test_ce_all_ignored_mean(void) {
  TU_REQUIRE_DEVICE();
  /* D = 0: loss NaN, gradient exactly 0 (never NaN or Inf). */
  clloss_cross_entropy_desc d = ce_desc(9, 50, CLLOSS_REDUCTION_MEAN);
  dc_gen g = {341, 0, 0, 1.0, 1, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  dc_opts o = {.all_variants = 1};
  dc_check_ce_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    for (int v = 0; v < DC_VARIANTS; v++) {
      clloss_context_set_variant(tu_context(i), dc_variants[v]);
      dc_result r = dc_run_ce(tu_context(i), q, &data.c, &o);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      if (r.loss)
        CU_ASSERT_TRUE(isnan(((float *)r.loss)[0]));
      size_t nonzero = 0;
      for (size_t k = 0; r.grad && k < r.grad_count; k++)
        nonzero += ((float *)r.grad)[k] != 0.0f;
      if (nonzero)
        printf("\n  all ignored [%s]: %zu gradient values are not 0",
               dc_variants[v], nonzero);
      CU_ASSERT_EQUAL(nonzero, 0);
      dc_result_free(&r);
    }
    clloss_context_set_variant(tu_context(i), "auto");
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

static void test_ce_extreme_logits(void) {
  TU_REQUIRE_DEVICE();
  /* +-1e4 logits: the max-subtraction keeps everything finite. lse near
   * 1e4 has an ulp of 1e-3 in float32, so the tolerances are wider. */
  clloss_cross_entropy_desc d = ce_desc(16, 67, CLLOSS_REDUCTION_NONE);
  dc_gen g = {361, -3.0f, 3.0f, 0.0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  tu_rng r = tu_rng_make(362);
  for (size_t i = 0; i < d.rows; i++)
    for (int k = 0; k < 3; k++)
      data.v.x[i * d.classes + tu_next(&r) % d.classes] =
          (tu_next(&r) & 1) ? 1e4f : -1e4f;
  data.v.x[0 * 67 + (size_t)data.v.t[0]] = 1e4f;  /* the target is the max */
  data.v.x[1 * 67 + (size_t)data.v.t[1]] = -1e4f; /* loss about 1e4 */
  dc_tol tol = {2e-6, 1e-5, 1e-5, 2e-3};
  dc_opts o = {.all_variants = 1, .tol = &tol};
  dc_check_ce_all(&data.c, &o);
  data.c.desc.reduction = CLLOSS_REDUCTION_SUM;
  dc_check_ce_all(&data.c, &o);
  dc_data_free(&data.v);
}

/* The kernels' exp (exp_nonpos in kernels/common.cl) over its whole range:
 * row i's logits are 0 (the target, the max) and -gap with gaps from 0 to
 * 110 in steps of about 0.08, plus both sides of its underflow point
 * (87.33) and of float's (103.97). Each gradient entry p_j = exp(x_j - lse)
 * but the target's is within 4 ulp (plus the rounding of its argument) of
 * the double reference where that is a normal float, and below FLT_MIN
 * where it is not; C = 37 takes the vector
 * loop and the scalar tail. */
static void test_ce_exp_range(void) {
  TU_REQUIRE_DEVICE();
  const size_t rows = 41, c = 37;
  clloss_cross_entropy_desc d = ce_desc(rows, c, CLLOSS_REDUCTION_NONE);
  dc_gen g = {397, 0, 0, 0.0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  const float edges[] = {87.32f, 87.33f, 87.34f, 87.5f, 103.9f, 104.0f, 120.0f};
  for (size_t i = 0; i < rows; i++) {
    data.v.t[i] = 0;
    data.v.x[i * c] = 0.0f;
    for (size_t j = 1; j < c; j++) {
      size_t k = (i * (c - 1) + j - 1);
      float gap = (float)((double)k * 110.0 / (double)((rows - 1) * (c - 1)));
      if (i == rows - 1)
        gap = edges[(j - 1) % (sizeof edges / sizeof *edges)];
      data.v.x[i * c + j] = -gap;
    }
  }
  float *ref_loss = dc_alloc(rows * sizeof *ref_loss);
  float *ref_grad = dc_alloc(rows * c * sizeof *ref_grad);
  CU_ASSERT_EQUAL_FATAL(clloss_reference_cross_entropy(&d, data.v.x, data.v.t,
                                                       NULL, NULL, ref_loss,
                                                       ref_grad),
                        CLLOSS_SUCCESS);
  dc_opts o = {0};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    for (int v = 0; v < DC_VARIANTS; v++) {
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, dc_variants[v]),
                      CLLOSS_SUCCESS);
      dc_result r = dc_run_ce(ctx, q, &data.c, &o);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      /* The item kernel keeps exp(x - max), whose argument is exact here
       * (max = 0), and scales it. */
      const int kept = strcmp(clloss_context_last_variant(ctx), "item") == 0;
      size_t bad = 0;
      for (size_t e = 0; r.grad && e < rows * c; e++) {
        double got = ((const float *)r.grad)[e], want = ref_grad[e];
        /* Besides exp's own error, rounding an argument x - lse (half an
         * ulp of it) moves exp by as much, relatively. The target's entry,
         * p - 1, cancels: a few ulp of 1, absolute, as for the loss. */
        double arg = fabs((double)data.v.x[e] - ref_loss[e / c]);
        double rtol = 4.8e-7 + (kept ? 0 : arg * 6e-8);
        int ok = e % c == 0              ? fabs(got - want) <= 4.8e-7
                 : fabs(want) >= FLT_MIN ? fabs(got - want) <= rtol * fabs(want)
                                         : fabs(got) < FLT_MIN;
        if (!ok && bad++ < 5)
          printf("\n  %s: grad[%zu][%zu] (x %g) %.9g, reference %.9g",
                 dc_variants[v], e / c, e % c, (double)data.v.x[e], got, want);
      }
      for (size_t k = 0; r.loss && k < rows; k++) {
        double got = ((const float *)r.loss)[k], want = ref_loss[k];
        if (!(fabs(got - want) <= 4.8e-7 + 1e-6 * fabs(want)) && bad++ < 5)
          printf("\n  %s: loss[%zu] %.9g, reference %.9g", dc_variants[v], k,
                 got, want);
      }
      CU_ASSERT_TRUE(r.grad && r.loss);
      CU_ASSERT_EQUAL(bad, 0);
      dc_result_free(&r);
    }
    clloss_context_set_variant(ctx, "auto");
    clReleaseCommandQueue(q);
  }
  free(ref_loss);
  free(ref_grad);
  dc_data_free(&data.v);
}

static void test_ce_neg_inf_logits(void) {
  TU_REQUIRE_DEVICE();
  /* -inf logits are classes of probability 0; a row whose target is -inf
   * has an infinite loss. */
  clloss_cross_entropy_desc d = ce_desc(12, 45, CLLOSS_REDUCTION_NONE);
  dc_gen g = {371, 0, 0, 0.0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  for (size_t i = 0; i < d.rows; i++)
    for (size_t j = 0; j < d.classes; j += 1 + i % 4)
      if ((int64_t)j != data.v.t[i])
        data.v.x[i * d.classes + j] = -INFINITY;
  /* Row 5: only its target is finite, so its loss is exactly 0. */
  for (size_t j = 0; j < d.classes; j++)
    if ((int64_t)j != data.v.t[5])
      data.v.x[5 * d.classes + j] = -INFINITY;
  data.v.x[7 * d.classes + (size_t)data.v.t[7]] = -INFINITY; /* loss +inf */
  dc_opts o = {.all_variants = 1};
  /* Through a softcap, -inf becomes -c: finite, whatever the reference
   * says about it, the device must agree. */
  data.c.desc.softcap = 20.0f;
  dc_check_ce_all(&data.c, &o);
  data.c.desc.softcap = 0.0f;
  dc_check_ce_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result r = dc_run_ce(tu_context(i), q, &data.c, &o);
    if (r.loss) {
      const float *l = r.loss;
      CU_ASSERT_EQUAL(l[5], 0.0f);
      CU_ASSERT_TRUE(isinf(l[7]) && l[7] > 0);
      for (size_t k = 0; k < d.rows; k++)
        if (k != 7)
          CU_ASSERT_TRUE(isfinite(l[k]));
    }
    dc_result_free(&r);
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

static void test_ce_nan_propagates(void) {
  TU_REQUIRE_DEVICE();
  /* A NaN logit makes its row's loss and gradient NaN, and the reduced
   * loss NaN; other rows are unaffected. */
  clloss_cross_entropy_desc d = ce_desc(10, 300, CLLOSS_REDUCTION_NONE);
  dc_gen g = {381, 0, 0, 0.0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  data.v.x[3 * 300 + 17] = NAN;
  data.v.x[8 * 300 + (size_t)data.v.t[8]] = NAN;
  dc_opts o = {.all_variants = 1};
  dc_check_ce_all(&data.c, &o);
  for (size_t i = 0; i < tu_device_count(); i++) {
    cl_command_queue q = dc_queue(tu_context(i));
    dc_result r = dc_run_ce(tu_context(i), q, &data.c, &o);
    if (r.loss && r.grad) {
      const float *l = r.loss, *gr = r.grad;
      for (size_t k = 0; k < d.rows; k++)
        CU_ASSERT_EQUAL(isnan(l[k]) != 0, k == 3 || k == 8);
      CU_ASSERT_TRUE(isnan(gr[3 * 300 + 0]));
      CU_ASSERT_TRUE(isnan(gr[8 * 300 + 299]));
      CU_ASSERT_TRUE(isfinite(gr[4 * 300 + 17]));
    }
    dc_result_free(&r);
    data.c.desc.reduction = CLLOSS_REDUCTION_MEAN;
    r = dc_run_ce(tu_context(i), q, &data.c, &o);
    if (r.loss)
      CU_ASSERT_TRUE(isnan(((float *)r.loss)[0]));
    dc_result_free(&r);
    data.c.desc.reduction = CLLOSS_REDUCTION_NONE;
    clReleaseCommandQueue(q);
  }
  data.c.desc.reduction = CLLOSS_REDUCTION_MEAN;
  dc_check_ce_all(&data.c, &o);
  dc_data_free(&data.v);
}

/* ---- storage types ---- */
/* Item kernel, 16-bit storage, reduction none: every gradient entry within
 * rtol of the double reference on the same (rounded) logits, or within
 * atol where the storage type is subnormal. */
static void check_16bit_item(clloss_cross_entropy_desc d, uint64_t salt,
                             double rtol, double atol) {
  dc_gen g = {salt, 0, 0, 0.0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  const size_t n = d.rows * d.classes;
  void *stored = dc_from_float(d.input_type, data.v.x, n);
  float *x = dc_alloc(n * sizeof *x), *ref = dc_alloc(n * sizeof *ref);
  for (size_t e = 0; e < n; e++)
    x[e] = (float)dc_get(d.input_type, stored, e);
  clloss_cross_entropy_desc d32 = d;
  d32.input_type = CLLOSS_FLOAT32;
  CU_ASSERT_EQUAL_FATAL(
      clloss_reference_cross_entropy(&d32, x, data.v.t, NULL, NULL, NULL, ref),
      CLLOSS_SUCCESS);
  dc_opts o = {0};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "item"), CLLOSS_SUCCESS);
    dc_result r = dc_run_ce(ctx, q, &data.c, &o);
    CU_ASSERT_TRUE_FATAL(r.status == CLLOSS_SUCCESS && r.grad);
    size_t bad = 0;
    for (size_t e = 0; e < n; e++) {
      double got = dc_get(d.input_type, r.grad, e), want = ref[e];
      if (!(fabs(got - want) <= rtol * fabs(want) + atol) && bad++ < 5)
        printf("\n  grad[%zu][%zu] %.9g, reference %.9g", e / d.classes,
               e % d.classes, got, want);
    }
    CU_ASSERT_EQUAL(bad, 0);
    dc_result_free(&r);
    clloss_context_set_variant(ctx, "auto");
    clReleaseCommandQueue(q);
  }
  free(stored);
  free(x);
  free(ref);
  dc_data_free(&data.v);
}

static void test_ce_16bit_exps(void) {
  TU_REQUIRE_DEVICE();
  /* The item kernel keeps each row's exps in float32 rows of its own, up
   * to 64 MiB in all (host/cross_entropy.c): 7 rows of 3001 do; 3 rows of
   * 5592406 do not, so pass 3 computes its exps again. Either way each
   * entry is within an ulp of the 16-bit type (half of one for rounding,
   * the rest for the float sum of a long row). */
  clloss_cross_entropy_desc d = ce_desc(7, 3001, CLLOSS_REDUCTION_NONE);
  for (int big = 0; big < 2; big++) {
    if (big)
      d.rows = 3, d.classes = 5592406;
    d.input_type = CLLOSS_BFLOAT16;
    check_16bit_item(d, 403, 0x1p-7, 0);
    d.input_type = CLLOSS_FLOAT16;
    check_16bit_item(d, 404, 0x1p-10, 0x1p-24);
  }
}

static void test_ce_float64(void) {
  TU_REQUIRE_DEVICE();
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    const clloss_device_info *info = clloss_context_device_info(ctx);
    clloss_cross_entropy_desc d = ce_desc(11, 523, CLLOSS_REDUCTION_MEAN);
    d.input_type = CLLOSS_FLOAT64;
    dc_gen g = {421, 0, 0, 0.1, 1, 1, 0};
    ce_data data;
    data.c = dc_make_ce(&data.v, &d, &g);
    if (!info->has_fp64) {
      tu_skip_part("float64 on %s: no fp64 (CLLOSS_UNSUPPORTED checked)",
                   info->name);
      cl_command_queue q = dc_queue(ctx);
      dc_result r = dc_run_ce(ctx, q, &data.c, NULL);
      CU_ASSERT_EQUAL(r.status, CLLOSS_UNSUPPORTED);
      dc_result_free(&r);
      clReleaseCommandQueue(q);
    } else {
      dc_opts o = {.all_variants = 1, .off = {2, 1, 3, 0, 1, 0, 4}};
      dc_check_ce(i, &data.c, &o);
      data.c.desc.reduction = CLLOSS_REDUCTION_NONE;
      data.c.desc.target_type = CLLOSS_FLOAT64;
      free(data.v.g);
      data.v.g = NULL, data.c.g = NULL;
      data.v.p = dc_alloc(11 * 523 * sizeof *data.v.p);
      for (size_t k = 0; k < 11 * 523; k++)
        data.v.p[k] = 1.0f / 523.0f;
      data.c.p = data.v.p;
      dc_check_ce(i, &data.c, &o);
    }
    dc_data_free(&data.v);
  }
}

/* ---- determinism and variants ---- */
static void test_ce_variant_reported(void) {
  TU_REQUIRE_DEVICE();
  clloss_cross_entropy_desc d = ce_desc(4, 5000, CLLOSS_REDUCTION_MEAN);
  dc_gen g = {441, 0, 0, 0, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    for (int v = 0; v < DC_VARIANTS; v++) {
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, dc_variants[v]),
                      CLLOSS_SUCCESS);
      dc_result r = dc_run_ce(ctx, q, &data.c, NULL);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      const char *ran = clloss_context_last_variant(ctx);
      CU_ASSERT_PTR_NOT_NULL_FATAL(ran);
      if (v < DC_VARIANTS - 1) {
        if (strcmp(ran, dc_variants[v]) != 0)
          printf("\n  asked for %s, last_variant says \"%s\"", dc_variants[v],
                 ran);
        CU_ASSERT_STRING_EQUAL(ran, dc_variants[v]);
      } else {
        CU_ASSERT_TRUE(!strcmp(ran, "item") || !strcmp(ran, "group") ||
                       !strcmp(ran, "split") || !strcmp(ran, "lanes"));
      }
      dc_result_free(&r);
    }
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

/* ---- host-pointer calls ---- */
static void test_ce_host_bad_target(void) {
  TU_REQUIRE_DEVICE();
  /* Targets are checked before anything runs: outputs stay untouched. */
  enum { N = 6, C = 10 };
  float x[N * C], loss[N], grad[N * C];
  int64_t t[N] = {1, 2, 3, C, 4, 5};
  for (int k = 0; k < N * C; k++)
    x[k] = (float)(k % 7) * 0.25f;
  const int64_t bad[] = {C, -1, -101, INT64_MAX};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
      t[3] = bad[b];
      clloss_cross_entropy_desc d = ce_desc(N, C, CLLOSS_REDUCTION_NONE);
      memset(loss, FILL_BYTE_FOR_TEST, sizeof loss);
      memset(grad, FILL_BYTE_FOR_TEST, sizeof grad);
      clloss_status s =
          clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, loss, grad);
      CU_ASSERT_EQUAL(s, CLLOSS_INVALID_TARGET);
      CU_ASSERT_TRUE(clloss_context_error_detail(ctx)[0] != '\0');
      unsigned char want[sizeof grad];
      memset(want, FILL_BYTE_FOR_TEST, sizeof want);
      CU_ASSERT_EQUAL(memcmp(loss, want, sizeof loss), 0);
      CU_ASSERT_EQUAL(memcmp(grad, want, sizeof grad), 0);
      /* int32 targets too. */
      int32_t t32[N];
      for (int k = 0; k < N; k++)
        t32[k] = (int32_t)(t[k] == INT64_MAX ? INT32_MAX : t[k]);
      d.target_type = CLLOSS_INT32;
      s = clloss_cross_entropy_host(ctx, &d, x, t32, NULL, NULL, loss, grad);
      CU_ASSERT_EQUAL(s, CLLOSS_INVALID_TARGET);
      CU_ASSERT_EQUAL(memcmp(grad, want, sizeof grad), 0);
    }
  }
}

/* ---- device-side target errors ---- */
static void test_ce_device_bad_target(void) {
  TU_REQUIRE_DEVICE();
  /* A device-buffer call cannot know: it succeeds, writes NaN for the bad
   * rows, touches nothing out of bounds, and records the lowest bad row in
   * the error word, which a check reads and clears. */
  clloss_cross_entropy_desc d = ce_desc(12, 50, CLLOSS_REDUCTION_NONE);
  dc_gen g = {481, 0, 0, 0.1, 0, 0, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  data.v.t[9] = 50;       /* == C */
  data.v.t[4] = -7;       /* negative, not ignore_index */
  data.v.t[10] = 1 << 30; /* far out of bounds */
  data.v.t[2] = -100;     /* ignore_index: fine */
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    uint64_t bad_row = 12345;
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                    CLLOSS_SUCCESS);
    for (int v = 0; v < DC_VARIANTS; v++) {
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, dc_variants[v]),
                      CLLOSS_SUCCESS);
      /* int64 and int32 targets in turn. */
      data.c.desc.target_type = v % 2 ? CLLOSS_INT32 : CLLOSS_INT64;
      dc_opts o = {.off = {1, 2, 0, 0, 0, 3, 4}};
      dc_result r = dc_run_ce(ctx, q, &data.c, &o);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      if (r.loss && r.grad) {
        const float *l = r.loss, *gr = r.grad;
        for (size_t k = 0; k < d.rows; k++) {
          int is_bad = k == 4 || k == 9 || k == 10;
          if ((isnan(l[k]) != 0) != is_bad)
            printf("\n  [%s] row %zu: loss %g", dc_variants[v], k, l[k]);
          CU_ASSERT_EQUAL(isnan(l[k]) != 0, is_bad);
          CU_ASSERT_EQUAL(isnan(gr[k * 50 + 13]) != 0, is_bad);
        }
        CU_ASSERT_EQUAL(l[2], 0.0f);
      }
      dc_result_free(&r);
      bad_row = 12345;
      clloss_status s = clloss_check_device_errors(ctx, q, &bad_row);
      CU_ASSERT_EQUAL(s, CLLOSS_INVALID_TARGET);
      if (bad_row != 4)
        printf("\n  [%s] bad_row %llu, expected 4", dc_variants[v],
               (unsigned long long)bad_row);
      CU_ASSERT_EQUAL(bad_row, 4);
      CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                      CLLOSS_SUCCESS);
      CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, NULL), CLLOSS_SUCCESS);
    }
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
    data.c.desc.target_type = CLLOSS_INT64;
    /* The first failing call's row is kept until the check. */
    data.c.desc.reduction = CLLOSS_REDUCTION_MEAN;
    dc_result r = dc_run_ce(ctx, q, &data.c, NULL);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    dc_result_free(&r);
    int64_t saved = data.v.t[4];
    data.v.t[4] = 1;
    r = dc_run_ce(ctx, q, &data.c, NULL);
    dc_result_free(&r);
    data.v.t[4] = saved;
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                    CLLOSS_INVALID_TARGET);
    CU_ASSERT_EQUAL(bad_row, 4);
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                    CLLOSS_SUCCESS);
    /* The other way round: the first failing call's lowest bad row is 9,
     * a later call's is 4; the header promises the lowest over all calls
     * since the last check. */
    data.v.t[4] = 1;
    r = dc_run_ce(ctx, q, &data.c, NULL);
    dc_result_free(&r);
    data.v.t[4] = saved;
    r = dc_run_ce(ctx, q, &data.c, NULL);
    dc_result_free(&r);
    bad_row = 12345;
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                    CLLOSS_INVALID_TARGET);
    if (bad_row != 4)
      printf("\n  two failing calls (rows 9, then 4): bad_row %llu, the "
             "lowest is 4",
             (unsigned long long)bad_row);
    CU_ASSERT_EQUAL(bad_row, 4);
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, &bad_row),
                    CLLOSS_SUCCESS);
    data.c.desc.reduction = CLLOSS_REDUCTION_NONE;
    clReleaseCommandQueue(q);
  }
  dc_data_free(&data.v);
}

/* ---- invalid calls ---- */
typedef struct small_case {
  int buffer;       /* which buffer is one element short */
  const char *name; /* what the error detail must mention */
} small_case;

static void test_ce_buffer_too_small(void) {
  TU_REQUIRE_DEVICE();
  enum { N = 8, C = 33 };
  static const small_case cases[] = {
      {DC_INPUT, "input"},   {DC_TARGET, "target"},
      {DC_WEIGHT, "weight"}, {DC_GRAD_OUTPUT, "grad_output"},
      {DC_LOSS, "loss"},     {DC_GRAD, "grad_input"}};
  float x[N * C], w[C], go[N];
  int64_t t[N];
  for (int k = 0; k < N * C; k++)
    x[k] = (float)(k % 5);
  for (int k = 0; k < C; k++)
    w[k] = 1.0f;
  for (int k = 0; k < N; k++)
    t[k] = k, go[k] = 1.0f;
  const size_t bytes[DC_NBUF] = {sizeof x,  sizeof t, sizeof w, 0,
                                 sizeof go, N * 4,    sizeof x};
  const void *init[DC_NBUF] = {x, t, w, NULL, go, NULL, NULL};
  clloss_cross_entropy_desc d = ce_desc(N, C, CLLOSS_REDUCTION_NONE);
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      for (int use_offset = 0; use_offset < 2; use_offset++) {
        cl_mem m[DC_NBUF] = {0};
        clloss_buffer b[DC_NBUF];
        memset(b, 0, sizeof b);
        for (int j = 0; j < DC_NBUF; j++) {
          if (j == DC_POS_WEIGHT)
            continue;
          /* Either one byte short, or the right size at offset 1. */
          size_t sz = bytes[j] - (j == cases[k].buffer && !use_offset);
          m[j] = tu_buffer(ctx, sz, init[j]);
          b[j].mem = m[j];
          b[j].offset = j == cases[k].buffer && use_offset;
        }
        clloss_status s = clloss_cross_entropy(
            ctx, q, &d, b[DC_INPUT], b[DC_TARGET], b[DC_WEIGHT],
            b[DC_GRAD_OUTPUT], b[DC_LOSS], b[DC_GRAD], 0, NULL, NULL);
        const char *detail = clloss_context_error_detail(ctx);
        if (s != CLLOSS_BUFFER_TOO_SMALL || !strstr(detail, cases[k].name))
          printf("\n  %s short (offset %d): %s, detail \"%s\"", cases[k].name,
                 use_offset, clloss_status_name(s), detail);
        CU_ASSERT_EQUAL(s, CLLOSS_BUFFER_TOO_SMALL);
        CU_ASSERT_PTR_NOT_NULL(strstr(detail, cases[k].name));
        if (cases[k].buffer == DC_INPUT || cases[k].buffer == DC_LOSS)
          CU_ASSERT_PTR_NULL(strstr(detail, "grad_input"));
        clFinish(q);
        for (int j = 0; j < DC_NBUF; j++)
          if (m[j])
            clReleaseMemObject(m[j]);
      }
    }
    clReleaseCommandQueue(q);
  }
}

static void test_ce_buffer_sizes_by_type(void) {
  TU_REQUIRE_DEVICE();
  /* Sizes count elements of each buffer's own type: float16 input and
   * gradient, float16 probability targets [N, C], float32 weight and loss.
   * Buffers of exactly the needed size work; one byte less is refused and
   * names the buffer. */
  enum { N = 5, C = 21 };
  uint16_t x[N * C], p[N * C];
  float w[C], go[N];
  for (int k = 0; k < N * C; k++) {
    x[k] = clloss_float_to_half((float)(k % 9) * 0.5f - 2.0f);
    p[k] = clloss_float_to_half(1.0f / C);
  }
  for (int k = 0; k < C; k++)
    w[k] = 1.0f + (float)k / C;
  for (int k = 0; k < N; k++)
    go[k] = 0.5f;
  clloss_cross_entropy_desc d = ce_desc(N, C, CLLOSS_REDUCTION_NONE);
  d.input_type = CLLOSS_FLOAT16, d.target_type = CLLOSS_FLOAT16;
  const size_t bytes[DC_NBUF] = {sizeof x,  sizeof p, sizeof w, 0,
                                 sizeof go, N * 4,    sizeof x};
  const void *init[DC_NBUF] = {x, p, w, NULL, go, NULL, NULL};
  static const char *const names[DC_NBUF] = {
      "input", "target", "weight", "", "grad_output", "loss", "grad_input"};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    for (int short_one = -1; short_one < DC_NBUF; short_one++) {
      if (short_one == DC_POS_WEIGHT)
        continue;
      cl_mem m[DC_NBUF] = {0};
      clloss_buffer b[DC_NBUF];
      memset(b, 0, sizeof b);
      for (int j = 0; j < DC_NBUF; j++) {
        if (j == DC_POS_WEIGHT)
          continue;
        m[j] = tu_buffer(ctx, bytes[j] - (j == short_one), init[j]);
        b[j].mem = m[j];
      }
      clloss_status s = clloss_cross_entropy(
          ctx, q, &d, b[DC_INPUT], b[DC_TARGET], b[DC_WEIGHT],
          b[DC_GRAD_OUTPUT], b[DC_LOSS], b[DC_GRAD], 0, NULL, NULL);
      const char *detail = clloss_context_error_detail(ctx);
      if (short_one < 0) {
        if (s != CLLOSS_SUCCESS)
          printf("\n  exact sizes: %s (%s)", clloss_status_name(s), detail);
        CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
      } else {
        if (s != CLLOSS_BUFFER_TOO_SMALL || !strstr(detail, names[short_one]))
          printf("\n  %s one byte short: %s (%s)", names[short_one],
                 clloss_status_name(s), detail);
        CU_ASSERT_EQUAL(s, CLLOSS_BUFFER_TOO_SMALL);
        CU_ASSERT_PTR_NOT_NULL(strstr(detail, names[short_one]));
      }
      clFinish(q);
      for (int j = 0; j < DC_NBUF; j++)
        if (m[j])
          clReleaseMemObject(m[j]);
    }
    clReleaseCommandQueue(q);
  }
}

static void test_ce_invalid_arguments(void) {
  TU_REQUIRE_DEVICE();
  enum { N = 4, C = 6 };
  float x[N * C] = {0};
  int64_t t[N] = {0, 1, 2, 3};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    cl_mem mx = tu_buffer(ctx, sizeof x, x), mt = tu_buffer(ctx, sizeof t, t);
    cl_mem ml = tu_buffer(ctx, 4, NULL), mg = tu_buffer(ctx, sizeof x, NULL);
    clloss_buffer in = {mx, 0}, tg = {mt, 0}, none = {NULL, 0};
    clloss_buffer loss = {ml, 0}, grad = {mg, 0};
    clloss_cross_entropy_desc d = ce_desc(N, C, CLLOSS_REDUCTION_MEAN);
    CU_ASSERT_EQUAL(clloss_cross_entropy(NULL, q, &d, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, NULL, &d, in, tg, none, none,
                                         loss, grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, NULL, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    /* Both outputs absent. */
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &d, in, tg, none, none, none,
                                         none, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_TRUE(clloss_context_error_detail(ctx)[0] != '\0');
    /* Input or target not given. */
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &d, none, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &d, in, none, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    /* A wait list of 1 with no list. */
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &d, in, tg, none, none, loss,
                                         grad, 1, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    /* Bad descriptors. */
    clloss_cross_entropy_desc bad = d;
    bad.label_smoothing = 1.5f;
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &bad, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    bad = d, bad.classes = 0;
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &bad, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    bad = d, bad.row_stride = C - 1;
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &bad, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    bad = d, bad.reduction = CLLOSS_REDUCTION_BATCHMEAN;
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &bad, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    bad = d, bad.target_type = CLLOSS_FLOAT16; /* neither index nor input */
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &bad, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    bad = d, bad.softcap = -1.0f;
    CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &bad, in, tg, none, none, loss,
                                         grad, 0, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    /* Host calls: NULL input, both outputs NULL. */
    float l;
    CU_ASSERT_EQUAL(
        clloss_cross_entropy_host(ctx, &d, NULL, t, NULL, NULL, &l, NULL),
        CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(
        clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, NULL, NULL),
        CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(
        clloss_cross_entropy_host(NULL, &d, x, t, NULL, NULL, &l, NULL),
        CLLOSS_INVALID_ARGUMENT);
    /* After a success the detail is empty again. */
    CU_ASSERT_EQUAL(
        clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &l, NULL),
        CLLOSS_SUCCESS);
    CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(ctx), "");
    clReleaseMemObject(mx);
    clReleaseMemObject(mt);
    clReleaseMemObject(ml);
    clReleaseMemObject(mg);
    clReleaseCommandQueue(q);
  }
}

static void test_ce_wrong_queue(void) {
  TU_REQUIRE_DEVICE();
  /* A queue of another cl_context than the clloss context's: refused
   * before anything is enqueued (INVALID_ARGUMENT), or at worst OpenCL's
   * own CL_INVALID_CONTEXT; never success. */
  enum { N = 2, C = 3 };
  float x[N * C] = {0};
  int64_t t[N] = {0, 1};
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_device_id dev = clloss_context_device(ctx);
    cl_int err;
    cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    cl_command_queue oq = clCreateCommandQueue(other, dev, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(oq);
    cl_mem mx = tu_buffer(ctx, sizeof x, x), mt = tu_buffer(ctx, sizeof t, t);
    cl_mem ml = tu_buffer(ctx, 4, NULL);
    clloss_buffer none = {NULL, 0};
    clloss_cross_entropy_desc d = ce_desc(N, C, CLLOSS_REDUCTION_SUM);
    clloss_status s = clloss_cross_entropy(
        ctx, oq, &d, (clloss_buffer){mx, 0}, (clloss_buffer){mt, 0}, none, none,
        (clloss_buffer){ml, 0}, none, 0, NULL, NULL);
    if (s != CLLOSS_INVALID_ARGUMENT)
      printf("\n  queue of another context: %s", clloss_status_name(s));
    CU_ASSERT_TRUE(s == CLLOSS_INVALID_ARGUMENT ||
                   (int)s == CL_INVALID_CONTEXT);
    clFinish(oq);
    clReleaseMemObject(mx);
    clReleaseMemObject(mt);
    clReleaseMemObject(ml);
    clReleaseCommandQueue(oq);
    clReleaseContext(other);
  }
}

static void test_ce_out_of_order_queue(void) {
  TU_REQUIRE_DEVICE();
  /* On an out-of-order queue the library's own kernels (targets, rows,
   * final sum) must still run in order: the results equal, bit for bit,
   * those of an in-order queue. */
  clloss_cross_entropy_desc d = ce_desc(300, 4099, CLLOSS_REDUCTION_MEAN);
  dc_gen g = {601, 0, 0, 0.1, 1, 1, 0};
  ce_data data;
  data.c = dc_make_ce(&data.v, &d, &g);
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_int err;
    cl_command_queue ooo = clCreateCommandQueue(
        clloss_context_cl_context(ctx), clloss_context_device(ctx),
        CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (!ooo) {
      tu_skip_part("out-of-order queues on %s (error %d)",
                   clloss_context_device_info(ctx)->name, err);
      continue;
    }
    cl_command_queue q = dc_queue(ctx);
    for (int v = 0; v < DC_VARIANTS; v++) {
      clloss_context_set_variant(ctx, dc_variants[v]);
      dc_result a = dc_run_ce(ctx, q, &data.c, NULL);
      dc_result b = dc_run_ce(ctx, ooo, &data.c, NULL);
      CU_ASSERT_EQUAL(b.status, CLLOSS_SUCCESS);
      if (a.loss && b.loss && a.grad && b.grad) {
        int same_loss = memcmp(a.loss, b.loss, 4) == 0;
        int same_grad = memcmp(a.grad, b.grad, a.grad_count * 4) == 0;
        if (!same_loss || !same_grad)
          printf("\n  [%s] out-of-order queue: loss %.9g vs %.9g, grad %s",
                 dc_variants[v], ((float *)b.loss)[0], ((float *)a.loss)[0],
                 same_grad ? "same" : "differs");
        CU_ASSERT_TRUE(same_loss);
        CU_ASSERT_TRUE(same_grad);
      }
      dc_result_free(&a);
      dc_result_free(&b);
    }
    clloss_context_set_variant(ctx, "auto");
    clReleaseCommandQueue(q);
    clReleaseCommandQueue(ooo);
  }
  dc_data_free(&data.v);
}

/* ---- events ---- */
typedef struct gate {
  cl_event ev;
  atomic_int released;
} gate;

static int open_gate(void *arg) {
  gate *g = arg;
  struct timespec ts = {0, 500 * 1000 * 1000};
  thrd_sleep(&ts, NULL);
  atomic_store(&g->released, 1);
  clSetUserEventStatus(g->ev, CL_COMPLETE);
  return 0;
}

static void test_ce_wait_list_no_blocking(void) {
  TU_REQUIRE_DEVICE();
  /* The call waits for its wait list on the device, not on the host: it
   * must return while a user event in the list is still pending. */
  enum { N = 5, C = 40 };
  float x[N * C], loss[N], expect[N];
  int64_t t[N] = {0, 9, 19, 29, 39};
  for (int k = 0; k < N * C; k++)
    x[k] = (float)((k * 7) % 11) * 0.3f;
  clloss_cross_entropy_desc d = ce_desc(N, C, CLLOSS_REDUCTION_NONE);
  CU_ASSERT_EQUAL_FATAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, expect, NULL),
      CLLOSS_SUCCESS);
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    cl_command_queue q = dc_queue(ctx);
    /* Warm up: the program for these types is built on first use, which
     * may take longer than the gate stays closed. */
    CU_ASSERT_EQUAL(
        clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, loss, NULL),
        CLLOSS_SUCCESS);
    cl_int err;
    gate g;
    g.ev = clCreateUserEvent(clloss_context_cl_context(ctx), &err);
    atomic_init(&g.released, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g.ev);
    cl_mem mx = tu_buffer(ctx, sizeof x, x), mt = tu_buffer(ctx, sizeof t, t);
    cl_mem ml = tu_buffer(ctx, sizeof loss, NULL);
    thrd_t th;
    CU_ASSERT_EQUAL_FATAL(thrd_create(&th, open_gate, &g), thrd_success);
    cl_event done = NULL;
    clloss_buffer none = {NULL, 0};
    clloss_status s = clloss_cross_entropy(
        ctx, q, &d, (clloss_buffer){mx, 0}, (clloss_buffer){mt, 0}, none, none,
        (clloss_buffer){ml, 0}, none, 1, &g.ev, &done);
    int returned_early = !atomic_load(&g.released);
    CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
    if (!returned_early)
      printf("\n  the call blocked until its wait list completed");
    CU_ASSERT_TRUE(returned_early);
    thrd_join(th, NULL);
    if (done) {
      CU_ASSERT_EQUAL(clWaitForEvents(1, &done), CL_SUCCESS);
      clReleaseEvent(done);
    }
    CU_ASSERT_EQUAL(clEnqueueReadBuffer(q, ml, CL_TRUE, 0, sizeof loss, loss, 0,
                                        NULL, NULL),
                    CL_SUCCESS);
    CU_ASSERT_EQUAL(
        tu_compare_f("loss after wait list", loss, expect, N, 1e-5, 1e-5), 0);
    clReleaseEvent(g.ev);
    clReleaseMemObject(mx);
    clReleaseMemObject(mt);
    clReleaseMemObject(ml);
    clReleaseCommandQueue(q);
  }
}

int test_cross_entropy_register(void) {
  TU_SUITE(
      "cross_entropy", NULL, NULL, TU_TEST(test_ce_shape_cases),
      TU_TEST(test_ce_buffer_cases), TU_TEST(test_ce_option_cases),
      TU_TEST(test_ce_type_cases), TU_TEST(test_ce_host_cases),
      TU_TEST(test_ce_loop_budget), TU_TEST(test_ce_row_stride),
      TU_TEST(test_ce_runs_of_rows), TU_TEST(test_ce_int64_targets),
      TU_TEST(test_ce_zero_weights), TU_TEST(test_ce_normalizer_all_ignored),
      TU_TEST(test_ce_all_ignored_mean), TU_TEST(test_ce_extreme_logits),
      TU_TEST(test_ce_exp_range), TU_TEST(test_ce_neg_inf_logits),
      TU_TEST(test_ce_nan_propagates), TU_TEST(test_ce_16bit_exps),
      TU_TEST(test_ce_float64), TU_TEST(test_ce_variant_reported),
      TU_TEST(test_ce_host_bad_target), TU_TEST(test_ce_device_bad_target),
      TU_TEST(test_ce_buffer_too_small), TU_TEST(test_ce_buffer_sizes_by_type),
      TU_TEST(test_ce_invalid_arguments), TU_TEST(test_ce_wrong_queue),
      TU_TEST(test_ce_out_of_order_queue),
      TU_TEST(test_ce_wait_list_no_blocking));
}
