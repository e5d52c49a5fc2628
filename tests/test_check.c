/* test_check.c - argument checks shared by the device calls and the CPU
 * reference: sizes whose byte counts overflow size_t are invalid arguments
 * that say so (not a "buffer too small" with a wrapped size), at every call
 * level. */
#include <stdint.h>
#include <string.h>

#include "support/testutil.h"

/* The first device's context and a 64-byte buffer on it (every call below
 * must fail before looking at it); NULL, with a note, without a device. */
static clloss_context *device(const char *test, cl_mem *tiny) {
  if (tu_device_count() == 0) {
    (void)test;
    tu_skip("no OpenCL device");
    return NULL;
  }
  clloss_context *ctx = tu_context(0);
  *tiny = tu_buffer(ctx, 64, NULL);
  return ctx;
}

static void expect_overflow(clloss_context *ctx, clloss_status s) {
  CU_ASSERT_EQUAL(s, CLLOSS_INVALID_ARGUMENT);
  if (ctx)
    CU_ASSERT_PTR_NOT_NULL(
        strstr(clloss_context_error_detail(ctx), "more bytes than size_t"));
}

/* Probability targets, 2^61 rows of 2 classes: 2^62 float32 elements. */
static void test_check_probability_targets_bytes(void) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = (size_t)1 << 61;
  d.classes = 2;
  d.target_type = CLLOSS_FLOAT32;
  float x[2] = {0}, loss;
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, x, NULL, NULL, &loss, NULL),
      CLLOSS_INVALID_ARGUMENT);
  cl_mem m;
  clloss_context *ctx = device(__func__, &m);
  if (!ctx)
    return;
  expect_overflow(ctx,
                  clloss_cross_entropy(
                      ctx, clloss_context_queue(ctx), &d, CLLOSS_BUFFER(m),
                      CLLOSS_BUFFER(m), CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER(m), CLLOSS_BUFFER_NONE, 0, NULL, NULL));
  expect_overflow(
      ctx, clloss_cross_entropy_host(ctx, &d, x, x, NULL, NULL, &loss, NULL));
  clReleaseMemObject(m);
}

/* float64 rows 2^61 + 1 elements apart: two rows span more than 2^64
 * bytes. */
static void test_check_row_stride_bytes(void) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 2;
  d.classes = 1;
  d.row_stride = ((size_t)1 << 61) + 1;
  d.input_type = CLLOSS_FLOAT64;
  clloss_nll_loss_desc n = CLLOSS_NLL_LOSS_DESC_INIT;
  n.rows = 2;
  n.classes = 1;
  n.row_stride = ((size_t)1 << 61) + 1;
  n.input_type = CLLOSS_FLOAT64;
  double x[2] = {0}, loss;
  int64_t t[2] = {0, 0};
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, NULL),
      CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_reference_nll_loss(&n, x, t, NULL, NULL, &loss, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  cl_mem m;
  clloss_context *ctx = device(__func__, &m);
  if (!ctx)
    return;
  cl_command_queue q = clloss_context_queue(ctx);
  expect_overflow(ctx,
                  clloss_cross_entropy(ctx, q, &d, CLLOSS_BUFFER(m),
                                       CLLOSS_BUFFER(m), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(m),
                                       CLLOSS_BUFFER_NONE, 0, NULL, NULL));
  expect_overflow(ctx, clloss_nll_loss(ctx, q, &n, CLLOSS_BUFFER(m),
                                       CLLOSS_BUFFER(m), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(m),
                                       CLLOSS_BUFFER_NONE, 0, NULL, NULL));
  expect_overflow(
      ctx, clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL));
  expect_overflow(ctx,
                  clloss_nll_loss_host(ctx, &n, x, t, NULL, NULL, &loss, NULL));
  clReleaseMemObject(m);
}

/* binary_cross_entropy_with_logits of no elements with a weight of 2^62
 * elements (which broadcasts over 0 elements). */
static void test_check_weight_bytes(void) {
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  d.count = 0;
  d.weight_count = (size_t)1 << 62;
  d.reduction = CLLOSS_REDUCTION_SUM;
  float x[1] = {0}, loss;
  CU_ASSERT_EQUAL(
      clloss_reference_pointwise(&d, x, x, x, NULL, NULL, &loss, NULL),
      CLLOSS_INVALID_ARGUMENT);
  if (tu_device_count() == 0) {
    tu_skip("no OpenCL device");
    return;
  }
  clloss_context *ctx = tu_context(0);
  expect_overflow(
      ctx, clloss_pointwise_host(ctx, &d, x, x, x, NULL, NULL, &loss, NULL));
}

int test_check_register(void) {
  TU_SUITE("check", NULL, NULL, TU_TEST(test_check_probability_targets_bytes),
           TU_TEST(test_check_row_stride_bytes),
           TU_TEST(test_check_weight_bytes));
}
