/* test_context.c - devices, context creation and release, accessors and
 * kernel variants. The only suite that makes its own contexts. */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <math.h>
#include <stdatomic.h>
#include <threads.h>

#include "internal.h" /* white box: the context's program table */
#include "support/testutil.h"

static void test_ctx_release_null(void) {
  clloss_context_release(NULL); /* a harmless no-op */
  CU_PASS("release(NULL) returned");
}

static void test_ctx_list_devices(void) {
  size_t count = 12345;
  clloss_status s = clloss_device_list(NULL, 0, &count);
  if (s == CLLOSS_NO_DEVICE) {
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(tu_device_count(), 0);
    tu_skip("no OpenCL device");
    return;
  }
  CU_ASSERT_EQUAL_FATAL(s, CLLOSS_SUCCESS);
  CU_ASSERT_TRUE_FATAL(count >= 1);
  /* A capacity of 1 still reports the total. */
  clloss_device_info one[1];
  size_t count1 = 0;
  CU_ASSERT_EQUAL(clloss_device_list(one, 1, &count1), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(count1, count);
  CU_ASSERT_EQUAL(clloss_device_list(NULL, 0, NULL), CLLOSS_INVALID_ARGUMENT);
}

static void check_info(const clloss_device_info *in) {
  CU_ASSERT_PTR_NOT_NULL(in->platform);
  CU_ASSERT_PTR_NOT_NULL(in->device);
  CU_ASSERT_TRUE(in->name[0] != '\0');
  CU_ASSERT_TRUE(in->platform_name[0] != '\0');
  CU_ASSERT_TRUE(memchr(in->name, '\0', sizeof in->name) != NULL);
  CU_ASSERT_TRUE(memchr(in->vendor, '\0', sizeof in->vendor) != NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(in->opencl_c_version, "OpenCL C"));
  CU_ASSERT_TRUE(in->opencl_c_major >= 1);
  CU_ASSERT_TRUE(in->opencl_c_minor >= 0 && in->opencl_c_minor <= 9);
  CU_ASSERT_TRUE(in->type != 0);
  CU_ASSERT_TRUE(in->has_fp64 == 0 || in->has_fp64 == 1);
  CU_ASSERT_TRUE(in->has_fp16 == 0 || in->has_fp16 == 1);
  CU_ASSERT_TRUE(in->max_work_group_size >= 1);
  CU_ASSERT_TRUE(in->local_mem_size > 0);
  CU_ASSERT_TRUE(in->global_mem_size > 0);
  CU_ASSERT_TRUE(in->max_alloc_size > 0 &&
                 in->max_alloc_size <= in->global_mem_size);
  CU_ASSERT_TRUE(in->compute_units >= 1);
  /* The version fields agree with the string ("OpenCL C 1.2 ..."). */
  int major = 0, minor = 0;
  if (sscanf(in->opencl_c_version, "OpenCL C %d.%d", &major, &minor) == 2) {
    CU_ASSERT_EQUAL(in->opencl_c_major, major);
    CU_ASSERT_EQUAL(in->opencl_c_minor, minor);
  }
  /* fp64 as the device itself reports it. */
  cl_device_fp_config fp64 = 0;
  clGetDeviceInfo(in->device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64,
                  NULL);
  CU_ASSERT_EQUAL(in->has_fp64, fp64 != 0);
  size_t wg = 0;
  clGetDeviceInfo(in->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg,
                  NULL);
  CU_ASSERT_EQUAL(in->max_work_group_size, wg);
}

static void test_ctx_device_info(void) {
  TU_REQUIRE_DEVICE();
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    const clloss_device_info *in = clloss_context_device_info(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    check_info(in);
    CU_ASSERT_PTR_EQUAL(in->device, clloss_context_device(ctx));
  }
}

static void test_ctx_create_default(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  clloss_status s = clloss_context_create_default(NULL, &ctx);
  CU_ASSERT_EQUAL_FATAL(s, CLLOSS_SUCCESS);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  CU_ASSERT_PTR_NOT_NULL(clloss_context_cl_context(ctx));
  CU_ASSERT_PTR_NOT_NULL(clloss_context_device(ctx));
  CU_ASSERT_PTR_NOT_NULL(clloss_context_queue(ctx));
  check_info(clloss_context_device_info(ctx));
  /* The queue belongs to the context's cl_context and device. */
  cl_context qctx = NULL;
  cl_device_id qdev = NULL;
  clGetCommandQueueInfo(clloss_context_queue(ctx), CL_QUEUE_CONTEXT,
                        sizeof qctx, &qctx, NULL);
  clGetCommandQueueInfo(clloss_context_queue(ctx), CL_QUEUE_DEVICE, sizeof qdev,
                        &qdev, NULL);
  CU_ASSERT_PTR_EQUAL(qctx, clloss_context_cl_context(ctx));
  CU_ASSERT_PTR_EQUAL(qdev, clloss_context_device(ctx));
  /* It can run a call: a small host-pointer mse. */
  float x[3] = {1, 2, 3}, y[3] = {1, 1, 1}, l = -1;
  CU_ASSERT_EQUAL(
      clloss_mse_loss_host(ctx, 3, CLLOSS_REDUCTION_SUM, x, y, &l, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(l, 5.0, 1e-6);
  clloss_context_release(ctx);
}

static void test_ctx_create_default_selectors(void) {
  TU_REQUIRE_DEVICE();
  clloss_device_info want;
  size_t index = 999;
  CU_ASSERT_EQUAL_FATAL(clloss_device_select("0", &want, &index),
                        CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(index, 0);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  CU_ASSERT_PTR_EQUAL(clloss_context_device(ctx), want.device);
  clloss_context_release(ctx);
  /* A case-insensitive substring of the device name. */
  char upper[8] = {0};
  size_t n = strlen(want.name) < 4 ? strlen(want.name) : 4;
  for (size_t k = 0; k < n; k++)
    upper[k] = (char)toupper((unsigned char)want.name[k]);
  ctx = NULL;
  CU_ASSERT_EQUAL(clloss_context_create_default(upper, &ctx), CLLOSS_SUCCESS);
  CU_ASSERT_PTR_NOT_NULL(ctx);
  clloss_context_release(ctx);
  /* Index through select_device, name of the platform. */
  clloss_device_info by_platform;
  CU_ASSERT_EQUAL(
      clloss_device_select(want.platform_name, &by_platform, &index),
      CLLOSS_SUCCESS);
}

static void test_ctx_bad_selector(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = (clloss_context *)&ctx; /* must be overwritten */
  clloss_status s = clloss_context_create_default("no-such-device-zq9x", &ctx);
  CU_ASSERT_EQUAL(s, CLLOSS_DEVICE_NOT_FOUND);
  CU_ASSERT_PTR_NULL(ctx);
  ctx = NULL;
  CU_ASSERT_EQUAL(clloss_context_create_default("4096", &ctx),
                  CLLOSS_DEVICE_NOT_FOUND);
  CU_ASSERT_PTR_NULL(ctx);
  clloss_device_info info;
  size_t index;
  CU_ASSERT_EQUAL(clloss_device_select("no-such-device-zq9x", &info, &index),
                  CLLOSS_DEVICE_NOT_FOUND);
  CU_ASSERT_EQUAL(clloss_context_create_default(NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
}

static void test_ctx_env_device(void) {
  TU_REQUIRE_DEVICE();
  /* NULL selector falls back to CLLOSS_DEVICE. */
  const char *old = getenv("CLLOSS_DEVICE");
  char saved[256] = {0};
  if (old)
    snprintf(saved, sizeof saved, "%s", old);
  setenv("CLLOSS_DEVICE", "no-such-device-zq9x", 1);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL(clloss_context_create_default(NULL, &ctx),
                  CLLOSS_DEVICE_NOT_FOUND);
  CU_ASSERT_EQUAL(clloss_context_create_default("", &ctx),
                  CLLOSS_DEVICE_NOT_FOUND);
  setenv("CLLOSS_DEVICE", "0", 1);
  CU_ASSERT_EQUAL(clloss_context_create_default(NULL, &ctx), CLLOSS_SUCCESS);
  clloss_context_release(ctx);
  if (old)
    setenv("CLLOSS_DEVICE", saved, 1);
  else
    unsetenv("CLLOSS_DEVICE");
}

static void test_ctx_create_retains(void) {
  TU_REQUIRE_DEVICE();
  /* The context retains the caller's cl_context, releases it at the end. */
  clloss_context *base = tu_context(0);
  cl_device_id dev = clloss_context_device(base);
  cl_int err;
  cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
  cl_uint before = 0, during = 0, after = 0;
  clGetContextInfo(cl, CL_CONTEXT_REFERENCE_COUNT, sizeof before, &before,
                   NULL);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create(cl, dev, &ctx), CLLOSS_SUCCESS);
  CU_ASSERT_PTR_EQUAL(clloss_context_cl_context(ctx), cl);
  CU_ASSERT_PTR_EQUAL(clloss_context_device(ctx), dev);
  clGetContextInfo(cl, CL_CONTEXT_REFERENCE_COUNT, sizeof during, &during,
                   NULL);
  CU_ASSERT_TRUE(during > before);
  clloss_context_release(ctx);
  /* PoCL drops the references of released queues and buffers a moment
   * later, on its own thread (the spec calls the count "immediately
   * stale"): wait up to a second for it to settle. */
  for (int tries = 0; tries < 100; tries++) {
    clGetContextInfo(cl, CL_CONTEXT_REFERENCE_COUNT, sizeof after, &after,
                     NULL);
    if (after == before)
      break;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  CU_ASSERT_EQUAL(after, before);
  clReleaseContext(cl);
}

static void test_ctx_create_invalid(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *base = tu_context(0);
  cl_device_id dev = clloss_context_device(base);
  cl_context cl = clloss_context_cl_context(base);
  clloss_context *ctx = (clloss_context *)&ctx;
  CU_ASSERT_EQUAL(clloss_context_create(NULL, dev, &ctx),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(ctx);
  CU_ASSERT_EQUAL(clloss_context_create(cl, NULL, &ctx),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_context_create(cl, dev, NULL),
                  CLLOSS_INVALID_ARGUMENT);
}

static void test_ctx_build_log_and_detail(void) {
  TU_REQUIRE_DEVICE();
  for (size_t i = 0; i < tu_device_count(); i++) {
    clloss_context *ctx = tu_context(i);
    const char *log = clloss_context_build_log(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    /* The kernels built: no failure to report. */
    CU_ASSERT_STRING_EQUAL(log, "");
    const char *detail = clloss_context_error_detail(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(detail);
    /* A failure leaves a sentence, a success clears it. */
    float x = 1, y = 2, l;
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
    d.count = 1, d.delta = -1.0f;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, &x, &y, NULL, NULL, NULL, &l, NULL),
        CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_TRUE(strlen(clloss_context_error_detail(ctx)) > 0);
    d.delta = 1.0f;
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, &x, &y, NULL, NULL, NULL, &l, NULL),
        CLLOSS_SUCCESS);
    CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(ctx), "");
    /* A layer's own failure (clloss_context_fail) reads the same way. */
    CU_ASSERT_EQUAL(
        clloss_context_fail(ctx, CLLOSS_COLLECTIVE_FAILURE, "rank 1 failed"),
        CLLOSS_COLLECTIVE_FAILURE);
    CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(ctx), "rank 1 failed");
    CU_ASSERT_EQUAL(clloss_context_fail(ctx, CLLOSS_SUCCESS, NULL),
                    CLLOSS_SUCCESS);
    CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(ctx), "");
  }
  CU_ASSERT_EQUAL(clloss_context_fail(NULL, CLLOSS_INVALID_ARGUMENT, "x"),
                  CLLOSS_INVALID_ARGUMENT);
}

static void test_ctx_set_variant(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  /* Before any call, no variant has run. */
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx), "");
  static const char *const good[] = {"item", "group", "split", "lanes", "auto"};
  for (int k = 0; k < 4; k++)
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, good[k]), CLLOSS_SUCCESS);
  static const char *const bad[] = {"fast", "ITEMS", "items",
                                    "grou", "auto ", "xyz"};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, bad[k]),
                    CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_context_set_variant(NULL, "item"),
                  CLLOSS_INVALID_ARGUMENT);
  /* A bad name leaves the previous choice: item still runs. */
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "item"), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "nope"),
                  CLLOSS_INVALID_ARGUMENT);
  float x[4] = {1, 2, 3, 4}, l[1];
  int64_t t[1] = {2};
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 1, d.classes = 4;
  CU_ASSERT_EQUAL(clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, l, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx), "item");
  clloss_context_release(ctx);
}

static void test_ctx_env_variant(void) {
  TU_REQUIRE_DEVICE();
  /* CLLOSS_VARIANT is read when a context is created. */
  const char *old = getenv("CLLOSS_VARIANT");
  char saved[64] = {0};
  if (old)
    snprintf(saved, sizeof saved, "%s", old);
  setenv("CLLOSS_VARIANT", "group", 1);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  if (old)
    setenv("CLLOSS_VARIANT", saved, 1);
  else
    unsetenv("CLLOSS_VARIANT");
  float x[6] = {1, 2, 3, 4, 5, 6}, l[1];
  int64_t t[2] = {2, 0};
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 2, d.classes = 3;
  CU_ASSERT_EQUAL(clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, l, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx), "group");
  clloss_context_release(ctx);
}

static void test_ctx_two_contexts(void) {
  TU_REQUIRE_DEVICE();
  /* Two contexts on one device are independent: a variant set on one does
   * not change the other, and releasing one leaves the other working. */
  clloss_context *a = NULL, *b = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &a), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &b), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_context_set_variant(a, "item"), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_context_set_variant(b, "group"), CLLOSS_SUCCESS);
  float x[4] = {0.5f, -1, 2, 0}, l = 0;
  int64_t t[1] = {3};
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 1, d.classes = 4;
  CU_ASSERT_EQUAL(clloss_cross_entropy_host(a, &d, x, t, NULL, NULL, &l, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(a), "item");
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(b), "");
  clloss_context_release(a);
  float l2 = 0;
  CU_ASSERT_EQUAL(clloss_cross_entropy_host(b, &d, x, t, NULL, NULL, &l2, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(b), "group");
  CU_ASSERT_DOUBLE_EQUAL(l, l2, 1e-6);
  clloss_context_release(b);
}

static void test_ctx_check_errors_invalid(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  uint64_t row;
  CU_ASSERT_EQUAL(
      clloss_check_device_errors(NULL, clloss_context_queue(ctx), &row),
      CLLOSS_INVALID_ARGUMENT);
  /* A NULL queue: refused, or the context's own queue (undocumented). */
  clloss_status s = clloss_check_device_errors(ctx, NULL, &row);
  CU_ASSERT_TRUE(s == CLLOSS_INVALID_ARGUMENT || s == CLLOSS_SUCCESS);
  /* Nothing ran wrong: success, on the context's own queue too. */
  CU_ASSERT_EQUAL(
      clloss_check_device_errors(ctx, clloss_context_queue(ctx), &row),
      CLLOSS_SUCCESS);
}

static void test_ctx_calls_ordered_across_queues(void) {
  TU_REQUIRE_DEVICE();
  /* Calls on one context share its scratch (partials, statistics), so a
   * call waits for the previous one even on another queue: call A on q1
   * waits for a user event, call B on q2 must not finish before it. Both
   * means must then be right. */
  clloss_context *ctx = tu_context(0);
  cl_context cl = clloss_context_cl_context(ctx);
  cl_device_id dev = clloss_context_device(ctx);
  cl_int err;
  cl_command_queue q1 = clCreateCommandQueue(cl, dev, 0, &err);
  cl_command_queue q2 = clCreateCommandQueue(cl, dev, 0, &err);
  cl_event gate = clCreateUserEvent(cl, &err);
  CU_ASSERT_TRUE_FATAL(q1 && q2 && gate);
  enum { N = 64, C = 300 };
  static float xa[N * C], xb[N * C];
  int64_t t[N];
  for (int i = 0; i < N * C; i++)
    xa[i] = (float)(i % 7) * 0.25f, xb[i] = (float)(i % 5) * -0.5f;
  for (int i = 0; i < N; i++)
    t[i] = (i * 11) % C;
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N, d.classes = C;
  cl_mem bxa = tu_buffer(ctx, sizeof xa, xa),
         bxb = tu_buffer(ctx, sizeof xb, xb);
  cl_mem bt = tu_buffer(ctx, sizeof t, t);
  cl_mem la = tu_buffer(ctx, sizeof(float), NULL);
  cl_mem lb = tu_buffer(ctx, sizeof(float), NULL);
  cl_event ea = NULL, eb = NULL;
  CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q1, &d, CLLOSS_BUFFER(bxa),
                                       CLLOSS_BUFFER(bt), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(la),
                                       CLLOSS_BUFFER_NONE, 1, &gate, &ea),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q2, &d, CLLOSS_BUFFER(bxb),
                                       CLLOSS_BUFFER(bt), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(lb),
                                       CLLOSS_BUFFER_NONE, 0, NULL, &eb),
                  CLLOSS_SUCCESS);
  clFlush(q1);
  clFlush(q2);
  struct timespec pause = {0, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);
  cl_int state = CL_COMPLETE;
  clGetEventInfo(eb, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state,
                 NULL);
  CU_ASSERT_NOT_EQUAL(state, CL_COMPLETE);
  clSetUserEventStatus(gate, CL_COMPLETE);
  clFinish(q1);
  clFinish(q2);
  float got_a = 0, got_b = 0, want_a = 0, want_b = 0;
  clEnqueueReadBuffer(q1, la, CL_TRUE, 0, sizeof got_a, &got_a, 0, NULL, NULL);
  clEnqueueReadBuffer(q2, lb, CL_TRUE, 0, sizeof got_b, &got_b, 0, NULL, NULL);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, xa, t, NULL, NULL, &want_a, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, xb, t, NULL, NULL, &want_b, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(got_a, want_a, 1e-5 * fabs(want_a));
  CU_ASSERT_DOUBLE_EQUAL(got_b, want_b, 1e-5 * fabs(want_b));
  cl_event evs[] = {ea, eb, gate};
  for (int i = 0; i < 3; i++)
    if (evs[i])
      clReleaseEvent(evs[i]);
  cl_mem mems[] = {bxa, bxb, bt, la, lb};
  for (int i = 0; i < 5; i++)
    clReleaseMemObject(mems[i]);
  clReleaseCommandQueue(q1);
  clReleaseCommandQueue(q2);
}

/* One thread's work: its own context, a few cross_entropy host calls. */
typedef struct worker {
  int seed;
  float loss[64];
  clloss_status status;
} worker;

static int work(void *arg) {
  worker *w = arg;
  clloss_context *ctx = NULL;
  w->status = clloss_context_create_default("0", &ctx);
  if (w->status != CLLOSS_SUCCESS)
    return 0;
  enum { N = 64, C = 300 };
  static float x[N * C];
  int64_t t[N];
  for (int k = 0; k < N; k++)
    t[k] = (k * 7 + w->seed) % C;
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N, d.classes = C, d.reduction = CLLOSS_REDUCTION_NONE;
  for (int rep = 0; rep < 5 && w->status == CLLOSS_SUCCESS; rep++)
    w->status =
        clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, w->loss, NULL);
  clloss_context_release(ctx);
  return 0;
}

static void test_ctx_threads(void) {
  TU_REQUIRE_DEVICE();
  /* Contexts are independent: two threads, one context each, at once. All
   * logits are 0, so every loss is log(300). */
  worker w[2] = {{.seed = 1}, {.seed = 2}};
  thrd_t th[2];
  for (int k = 0; k < 2; k++)
    CU_ASSERT_EQUAL_FATAL(thrd_create(&th[k], work, &w[k]), thrd_success);
  for (int k = 0; k < 2; k++)
    thrd_join(th[k], NULL);
  for (int k = 0; k < 2; k++) {
    CU_ASSERT_EQUAL(w[k].status, CLLOSS_SUCCESS);
    for (int i = 0; i < 64; i++)
      CU_ASSERT_DOUBLE_EQUAL(w[k].loss[i], log(300.0), 1e-5);
  }
}

/* Creating a context builds nothing; a call builds the one program it
 * needs, with the kernels of its variant only. */
static void test_ctx_lazy_build(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(ctx->program_count, 0);
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "item"), CLLOSS_SUCCESS);
  float x[6] = {1, 2, 3, 4, 5, 6}, l = 0;
  int32_t t[2] = {0, 2};
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 2, d.classes = 3, d.target_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &l, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL_FATAL(ctx->program_count, 1);
  const clloss__program *p = &ctx->programs[0];
  CU_ASSERT_STRING_EQUAL(p->key.source, "cross_entropy");
  CU_ASSERT_EQUAL(p->key.tgt_type, CLLOSS_INT32);
  CU_ASSERT_EQUAL(p->key.variant, CLLOSS__ITEM);
  char names[512] = "";
  CU_ASSERT_EQUAL(clGetProgramInfo(p->program, CL_PROGRAM_KERNEL_NAMES,
                                   sizeof names, names, NULL),
                  CL_SUCCESS);
  CU_ASSERT_PTR_NOT_NULL(strstr(names, "ce_item"));
  CU_ASSERT_PTR_NULL(strstr(names, "ce_group"));
  CU_ASSERT_PTR_NULL(strstr(names, "ce_split"));
  /* The same call again builds nothing more; another loss, one more. */
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &l, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(ctx->program_count, 1);
  CU_ASSERT_EQUAL(
      clloss_mse_loss_host(ctx, 6, CLLOSS_REDUCTION_SUM, x, x, &l, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(ctx->program_count, 2);
  clloss_context_release(ctx);
}

/* CLLOSS_VARIANT follows clloss_context_set_variant's rule. */
static void test_ctx_env_variant_unknown(void) {
  TU_REQUIRE_DEVICE();
  char *saved = tu_env_save("CLLOSS_VARIANT");
  setenv("CLLOSS_VARIANT", "bogus", 1);
  clloss_context *ctx = (clloss_context *)1;
  CU_ASSERT_EQUAL(clloss_context_create_default("0", &ctx),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(ctx);
  clloss_context *shared = tu_context(0);
  CU_ASSERT_EQUAL(clloss_context_create(clloss_context_cl_context(shared),
                                        clloss_context_device(shared), &ctx),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(ctx);
  setenv("CLLOSS_VARIANT", "split", 1);
  CU_ASSERT_EQUAL(clloss_context_create_default("0", &ctx), CLLOSS_SUCCESS);
  clloss_context_release(ctx);
  tu_env_restore("CLLOSS_VARIANT", saved);
}

/* Creating a context with `name`=`value` fails with
 * CLLOSS_INVALID_ARGUMENT and a detail that names the variable. */
static void check_env_refused(const char *name, const char *value) {
  char *saved = tu_env_save(name);
  setenv(name, value, 1);
  clloss_context *ctx = (clloss_context *)1;
  CU_ASSERT_EQUAL(clloss_context_create_default("0", &ctx),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NULL(ctx);
  const char *detail = clloss_context_error_detail(NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(detail, name));
  CU_ASSERT_PTR_NOT_NULL(strstr(detail, value));
  tu_env_restore(name, saved);
}

/* Creating a context with `name`=`value` succeeds, leaving no detail. */
static void check_env_accepted(const char *name, const char *value) {
  char *saved = tu_env_save(name);
  setenv(name, value, 1);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL(clloss_context_create_default("0", &ctx), CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(NULL), "");
  clloss_context_release(ctx);
  tu_env_restore(name, saved);
}

/* The switches take on/off/1/0/yes/no/true/false in any case; anything
 * else, an unknown variant and a kernel folder that is not there are
 * errors that name the variable (issue 21: OFF and no were ignored). */
static void test_ctx_env_checked(void) {
  TU_REQUIRE_DEVICE();
  static const char *const good[] = {"on",    "OFF", "No", "yes", "TRUE",
                                     "false", "0",   "1",  ""};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    check_env_accepted("CLLOSS_TUNE", good[i]);
    check_env_accepted("CLLOSS_CACHE", good[i]);
  }
  check_env_refused("CLLOSS_TUNE", "maybe");
  check_env_refused("CLLOSS_CACHE", "disabled");
  check_env_refused("CLLOSS_VARIANT", "bogus");
  check_env_refused("CLLOSS_KERNEL_DIR", "/nonexistent/clloss-kernels");
  /* The detail belongs to the failed creation: a success clears it. */
  check_env_refused("CLLOSS_TUNE", "2");
  check_env_accepted("CLLOSS_TUNE", "off");
}

/* Every entry point that takes a context leaves "" after a success, even
 * after a failure on that context. */
static void fail_once(clloss_context *ctx) {
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "bogus"),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_TRUE(clloss_context_error_detail(ctx)[0] != '\0');
}

static void test_ctx_detail_cleared(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  cl_command_queue q = clloss_context_queue(ctx);
  float x[6] = {1, 2, 3, 4, 5, 6}, l = 0;
  int64_t t[2] = {0, 2};
  cl_mem bx = tu_buffer(ctx, sizeof x, x), bt = tu_buffer(ctx, sizeof t, t);
  cl_mem bl = tu_buffer(ctx, sizeof l, NULL);
  clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  ce.rows = 2, ce.classes = 3;
  clloss_nll_loss_desc nll = CLLOSS_NLL_LOSS_DESC_INIT;
  nll.rows = 2, nll.classes = 3;
  clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
  pw.count = 6;
  clloss_softmax_desc sm = CLLOSS_SOFTMAX_DESC_INIT;
  sm.rows = 2, sm.classes = 3;
  float p[6];
  cl_mem bp = tu_buffer(ctx, sizeof p, NULL);
  const clloss_shard shard = {0, 3};
  cl_mem bs = tu_buffer(ctx, 2 * sizeof(clloss_ce_stats), NULL);
  cl_mem bs2 = tu_buffer(ctx, 2 * sizeof(clloss_ce_stats), NULL);
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &ce, &shard, CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bt),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bs2), 0, NULL, NULL),
                  CLLOSS_SUCCESS);
  uint64_t row;
  for (int k = 0; k < 15; k++) {
    fail_once(ctx);
    clloss_status s = CLLOSS_SUCCESS;
    switch (k) {
    case 0:
      s = clloss_context_set_variant(ctx, NULL);
      break;
    case 1:
      s = clloss_check_device_errors(ctx, q, &row);
      break;
    case 2:
      s = clloss_cross_entropy(ctx, q, &ce, CLLOSS_BUFFER(bx),
                               CLLOSS_BUFFER(bt), CLLOSS_BUFFER_NONE,
                               CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bl),
                               CLLOSS_BUFFER_NONE, 0, NULL, NULL);
      break;
    case 3:
      s = clloss_cross_entropy_host(ctx, &ce, x, t, NULL, NULL, &l, NULL);
      break;
    case 4:
      s = clloss_nll_loss(ctx, q, &nll, CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bt),
                          CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                          CLLOSS_BUFFER(bl), CLLOSS_BUFFER_NONE, 0, NULL, NULL);
      break;
    case 5:
      s = clloss_nll_loss_host(ctx, &nll, x, t, NULL, NULL, &l, NULL);
      break;
    case 6:
      s = clloss_pointwise(ctx, q, &pw, CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bx),
                           CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                           CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bl),
                           CLLOSS_BUFFER_NONE, 0, NULL, NULL);
      break;
    case 7:
      s = clloss_pointwise_host(ctx, &pw, x, x, NULL, NULL, NULL, &l, NULL);
      break;
    case 8:
      s = clloss_mse_loss_host(ctx, 6, CLLOSS_REDUCTION_SUM, x, x, &l, NULL);
      break;
    case 9:
      s = clloss_l1_loss_host(ctx, 6, CLLOSS_REDUCTION_SUM, x, x, &l, NULL);
      break;
    case 10:
      s = clloss_softmax(ctx, q, &sm, CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bp), 0,
                         NULL, NULL);
      break;
    case 11:
      s = clloss_softmax_host(ctx, &sm, x, p);
      break;
    case 12:
      s = clloss_cross_entropy_partial(ctx, q, &ce, &shard, CLLOSS_BUFFER(bx),
                                       CLLOSS_BUFFER(bt), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER(bs), 0, NULL, NULL);
      break;
    case 13:
      s = clloss_cross_entropy_combine(ctx, q, 2, CLLOSS_FLOAT32,
                                       CLLOSS_BUFFER(bs), CLLOSS_BUFFER(bs2), 0,
                                       NULL, NULL);
      break;
    default:
      s = clloss_cross_entropy_finish(
          ctx, q, &ce, &shard, CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bt),
          CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bs),
          CLLOSS_BUFFER(bl), CLLOSS_BUFFER_NONE, 0, NULL, NULL);
      break;
    }
    CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
    if (clloss_context_error_detail(ctx)[0] != '\0')
      printf("\n  entry point %d left \"%s\"", k,
             clloss_context_error_detail(ctx));
    CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(ctx), "");
  }
  clFinish(q);
  clReleaseMemObject(bx);
  clReleaseMemObject(bt);
  clReleaseMemObject(bl);
  clReleaseMemObject(bp);
  clReleaseMemObject(bs);
  clReleaseMemObject(bs2);
}

/* A cl_mem of another cl_context is refused, for inputs and outputs, and
 * nothing is written. */
static void test_ctx_foreign_buffer(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  cl_device_id dev = clloss_context_device(ctx);
  cl_int err;
  cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(other);
  float x[6] = {1, 2, 3, 4, 5, 6}, l = -7;
  int64_t t[2] = {0, 2};
  cl_mem mine_x = tu_buffer(ctx, sizeof x, x),
         mine_t = tu_buffer(ctx, sizeof t, t);
  cl_mem mine_l = tu_buffer(ctx, sizeof l, &l);
  cl_mem theirs = clCreateBuffer(
      other, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof x, x, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(theirs);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 2, d.classes = 3;
  cl_command_queue q = clloss_context_queue(ctx);
  CU_ASSERT_EQUAL(clloss_cross_entropy(
                      ctx, q, &d, CLLOSS_BUFFER(theirs), CLLOSS_BUFFER(mine_t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER(mine_l), CLLOSS_BUFFER_NONE, 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(clloss_context_error_detail(ctx), "another cl_context"));
  CU_ASSERT_EQUAL(clloss_cross_entropy(
                      ctx, q, &d, CLLOSS_BUFFER(mine_x), CLLOSS_BUFFER(mine_t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(theirs), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  pw.count = 6;
  CU_ASSERT_EQUAL(clloss_pointwise(ctx, q, &pw, CLLOSS_BUFFER(mine_x),
                                   CLLOSS_BUFFER(mine_x), CLLOSS_BUFFER_NONE,
                                   CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                                   CLLOSS_BUFFER(mine_l), CLLOSS_BUFFER(theirs),
                                   0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  float back[6] = {0}, lb = 0;
  clEnqueueReadBuffer(clloss_context_queue(ctx), mine_l, CL_TRUE, 0, sizeof lb,
                      &lb, 0, NULL, NULL);
  CU_ASSERT_EQUAL(lb, -7.0f);
  cl_command_queue oq = clCreateCommandQueue(other, dev, 0, &err);
  clEnqueueReadBuffer(oq, theirs, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL);
  CU_ASSERT_EQUAL(memcmp(back, x, sizeof x), 0);
  clReleaseCommandQueue(oq);
  cl_mem all[] = {mine_x, mine_t, mine_l, theirs};
  for (int i = 0; i < 4; i++)
    clReleaseMemObject(all[i]);
  clReleaseContext(other);
}

/* A queue of the context's cl_context but of another device (here two
 * sub-devices of one device, where the driver can partition it). */
/* Whether the device lists CL_DEVICE_PARTITION_EQUALLY among its
 * partition types and can make two sub-devices. */
static int can_partition_equally(cl_device_id dev) {
  cl_device_partition_property types[8] = {0};
  size_t size = 0;
  cl_uint max_subs = 0;
  if (clGetDeviceInfo(dev, CL_DEVICE_PARTITION_MAX_SUB_DEVICES, sizeof max_subs,
                      &max_subs, NULL) != CL_SUCCESS ||
      max_subs < 2 ||
      clGetDeviceInfo(dev, CL_DEVICE_PARTITION_PROPERTIES, sizeof types, types,
                      &size) != CL_SUCCESS)
    return 0;
  for (size_t i = 0; i < size / sizeof types[0]; i++)
    if (types[i] == CL_DEVICE_PARTITION_EQUALLY)
      return 1;
  return 0;
}

static void test_ctx_queue_other_device(void) {
  TU_REQUIRE_DEVICE();
  cl_device_id root = clloss_context_device(tu_context(0)), subs[2];
  cl_uint n = 0;
  const cl_device_partition_property props[] = {CL_DEVICE_PARTITION_EQUALLY, 1,
                                                0};
  /* Asked first: an implementation without partitioning may leave
   * clCreateSubDevices out of its dispatch table altogether (Rusticl in
   * Mesa 22.3: the ICD loader then calls a NULL pointer). */
  if (!can_partition_equally(root) ||
      clCreateSubDevices(root, props, 2, subs, &n) != CL_SUCCESS || n < 2) {
    tu_skip("the device cannot be partitioned into two sub-devices");
    return;
  }
  cl_int err;
  cl_context cl = clCreateContext(NULL, 2, subs, NULL, NULL, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create(cl, subs[0], &ctx),
                        CLLOSS_SUCCESS);
  cl_command_queue q = clCreateCommandQueue(cl, subs[1], 0, &err);
  float x[4] = {1, 2, 3, 4}, l = -7;
  cl_mem bx = tu_buffer(ctx, sizeof x, x), bl = tu_buffer(ctx, sizeof l, &l);
  clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  pw.count = 4;
  CU_ASSERT_EQUAL(clloss_pointwise(ctx, q, &pw, CLLOSS_BUFFER(bx),
                                   CLLOSS_BUFFER(bx), CLLOSS_BUFFER_NONE,
                                   CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                                   CLLOSS_BUFFER(bl), CLLOSS_BUFFER_NONE, 0,
                                   NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(clloss_context_error_detail(ctx), "another device"));
  clReleaseMemObject(bx);
  clReleaseMemObject(bl);
  clReleaseCommandQueue(q);
  clloss_context_release(ctx);
  clReleaseContext(cl);
  clReleaseDevice(subs[0]);
  clReleaseDevice(subs[1]);
}

/* Host-pointer calls return only when the device is done with the
 * caller's arrays, also on paths that copy nothing back (no rows, no
 * elements, reduction none): the context's queue is held behind a user
 * event that a thread completes 150 ms later, after setting a flag; the
 * call must not return before the flag is set. */
typedef struct opener {
  cl_event gate;
  atomic_int opened;
} opener;

static int open_later(void *arg) {
  opener *o = arg;
  struct timespec pause = {0, 150 * 1000 * 1000};
  nanosleep(&pause, NULL);
  atomic_store(&o->opened, 1);
  clSetUserEventStatus(o->gate, CL_COMPLETE);
  return 0;
}

static void hold_queue(clloss_context *ctx, opener *o, thrd_t *th) {
  cl_int err;
  o->gate = clCreateUserEvent(clloss_context_cl_context(ctx), &err);
  atomic_store(&o->opened, 0);
  CU_ASSERT_EQUAL(clEnqueueBarrierWithWaitList(clloss_context_queue(ctx), 1,
                                               &o->gate, NULL),
                  CL_SUCCESS);
  CU_ASSERT_EQUAL(thrd_create(th, open_later, o), thrd_success);
}

static void test_ctx_host_calls_wait(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  opener o;
  thrd_t th;
  float w[3] = {1, 2, 3}, x[1] = {0}, l[1] = {-1};
  int64_t t[1] = {0};
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 0, d.classes = 3, d.reduction = CLLOSS_REDUCTION_NONE;
  hold_queue(ctx, &o, &th);
  CU_ASSERT_EQUAL(clloss_cross_entropy_host(ctx, &d, x, t, w, NULL, l, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(atomic_load(&o.opened), 1);
  thrd_join(th, NULL);
  clReleaseEvent(o.gate);
  clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_BCE_WITH_LOGITS);
  pw.count = 0, pw.weight_count = 3, pw.reduction = CLLOSS_REDUCTION_NONE;
  hold_queue(ctx, &o, &th);
  CU_ASSERT_EQUAL(clloss_pointwise_host(ctx, &pw, x, x, w, NULL, NULL, l, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(atomic_load(&o.opened), 1);
  thrd_join(th, NULL);
  clReleaseEvent(o.gate);
  clloss_context_release(ctx);
}

int test_context_register(void) {
  TU_SUITE(
      "context", NULL, NULL, TU_TEST(test_ctx_release_null),
      TU_TEST(test_ctx_list_devices), TU_TEST(test_ctx_device_info),
      TU_TEST(test_ctx_create_default),
      TU_TEST(test_ctx_create_default_selectors),
      TU_TEST(test_ctx_bad_selector), TU_TEST(test_ctx_env_device),
      TU_TEST(test_ctx_create_retains), TU_TEST(test_ctx_create_invalid),
      TU_TEST(test_ctx_build_log_and_detail), TU_TEST(test_ctx_set_variant),
      TU_TEST(test_ctx_env_variant), TU_TEST(test_ctx_two_contexts),
      TU_TEST(test_ctx_check_errors_invalid),
      TU_TEST(test_ctx_calls_ordered_across_queues), TU_TEST(test_ctx_threads),
      TU_TEST(test_ctx_lazy_build), TU_TEST(test_ctx_env_variant_unknown),
      TU_TEST(test_ctx_env_checked), TU_TEST(test_ctx_detail_cleared),
      TU_TEST(test_ctx_foreign_buffer), TU_TEST(test_ctx_queue_other_device),
      TU_TEST(test_ctx_host_calls_wait));
}
