/* test_queues.c - calls on several queues of one context: what reads the
 * device error word waits for the calls that write it, and a host-pointer
 * call after a device call on the caller's queue completes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "internal.h"
#include "support/testutil.h"

enum { N = 16, C = 40 };

/* Opens a user event after a pause, from another thread: whatever waits
 * for it in the meantime must really wait. */
static int open_gate_later(void *gate) {
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);
  clSetUserEventStatus((cl_event)gate, CL_COMPLETE);
  return 0;
}

static void fill(float *x, int64_t *t, int bad_row) {
  for (int i = 0; i < N * C; i++)
    x[i] = (float)((i * 7) % 13) * 0.125f;
  for (int i = 0; i < N; i++)
    t[i] = i == bad_row ? C + 5 : (i * 3) % C;
}

static void test_queues_error_word_waits(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  cl_context cl = clloss_context_cl_context(ctx);
  cl_device_id dev = clloss_context_device(ctx);
  cl_int err;
  cl_command_queue qb = clCreateCommandQueue(cl, dev, 0, &err);
  cl_event gate = clCreateUserEvent(cl, &err);
  CU_ASSERT_TRUE_FATAL(qb && gate);
  CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, NULL, NULL), CLLOSS_SUCCESS);
  static float x[N * C];
  int64_t t[N];
  fill(x, t, 9);
  cl_mem bx = tu_buffer(ctx, sizeof x, x), bt = tu_buffer(ctx, sizeof t, t);
  cl_mem bl = tu_buffer(ctx, sizeof(float), NULL);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N, d.classes = C;
  /* The call on qb cannot run before the gate opens; the check on the
   * context's own queue must wait for it and see row 9. */
  CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, qb, &d, CLLOSS_BUFFER(bx),
                                       CLLOSS_BUFFER(bt), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bl),
                                       CLLOSS_BUFFER_NONE, 1, &gate, NULL),
                  CLLOSS_SUCCESS);
  thrd_t opener;
  CU_ASSERT_EQUAL_FATAL(thrd_create(&opener, open_gate_later, gate),
                        thrd_success);
  uint64_t bad = 0;
  CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, NULL, &bad),
                  CLLOSS_INVALID_TARGET);
  CU_ASSERT_EQUAL(bad, 9);
  thrd_join(opener, NULL);
  clFinish(qb);
  clReleaseMemObject(bx);
  clReleaseMemObject(bt);
  clReleaseMemObject(bl);
  clReleaseEvent(gate);
  clReleaseCommandQueue(qb);
}

static void test_queues_host_call_after_device_call(void) {
  TU_REQUIRE_DEVICE();
  /* A device call left unflushed on the caller's queue, then a
   * host-pointer call (the context's queue), which waits for it: clloss
   * must flush the caller's queue, or a driver that does not flush by
   * itself waits forever. Both results must be right. */
  clloss_context *ctx = tu_context(0);
  cl_context cl = clloss_context_cl_context(ctx);
  cl_device_id dev = clloss_context_device(ctx);
  cl_int err;
  cl_command_queue qb = clCreateCommandQueue(cl, dev, 0, &err);
  CU_ASSERT_TRUE_FATAL(qb != NULL);
  static float x[N * C];
  int64_t t[N];
  fill(x, t, -1);
  cl_mem bx = tu_buffer(ctx, sizeof x, x), bt = tu_buffer(ctx, sizeof t, t);
  cl_mem bl = tu_buffer(ctx, sizeof(float), NULL);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N, d.classes = C;
  CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, qb, &d, CLLOSS_BUFFER(bx),
                                       CLLOSS_BUFFER(bt), CLLOSS_BUFFER_NONE,
                                       CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bl),
                                       CLLOSS_BUFFER_NONE, 0, NULL, NULL),
                  CLLOSS_SUCCESS);
  float host_loss = 0, dev_loss = 0, want = 0;
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &host_loss, NULL),
      CLLOSS_SUCCESS);
  clEnqueueReadBuffer(qb, bl, CL_TRUE, 0, sizeof dev_loss, &dev_loss, 0, NULL,
                      NULL);
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &want, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(host_loss, want, 1e-6 * fabs(want));
  CU_ASSERT_EQUAL(host_loss, dev_loss);
  clReleaseMemObject(bx);
  clReleaseMemObject(bt);
  clReleaseMemObject(bl);
  clReleaseCommandQueue(qb);
}

/* A call waits for the previous call's last kernel only where it must
 * (clloss__must_wait): not on the same in-order queue, not once it is
 * complete; on another queue while it is pending. Every wait links the
 * call's events to the previous call's, and Rusticl releases such a chain
 * recursively: 20,000 calls of a loop that never waits overflowed the
 * stack of its queue's thread at clloss_context_release. */
static void test_queues_wait_only_when_needed(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  cl_context cl = clloss_context_cl_context(ctx);
  cl_device_id dev = clloss_context_device(ctx);
  cl_int err;
  cl_command_queue q1 = clCreateCommandQueue(cl, dev, 0, &err);
  cl_command_queue q2 = clCreateCommandQueue(cl, dev, 0, &err);
  cl_event gate = clCreateUserEvent(cl, &err), pending = NULL;
  CU_ASSERT_TRUE_FATAL(q1 && q2 && gate);
  CU_ASSERT_EQUAL_FATAL(clEnqueueMarkerWithWaitList(q1, 1, &gate, &pending),
                        CL_SUCCESS);
  CU_ASSERT_FALSE(clloss__must_wait(pending, q1)); /* in order on q1 */
  CU_ASSERT_TRUE(clloss__must_wait(pending, q2));
  clSetUserEventStatus(gate, CL_COMPLETE);
  CU_ASSERT_EQUAL(clFinish(q1), CL_SUCCESS);
  CU_ASSERT_FALSE(clloss__must_wait(pending, q2)); /* complete */
  clReleaseEvent(pending);
  clReleaseEvent(gate);
  clReleaseCommandQueue(q1);
  clReleaseCommandQueue(q2);
}

/* The loop itself: 25,000 device calls that never wait, then the context
 * released (a crash fails the suite). About a minute on Rusticl, where it
 * crashed: with CLLOSS_TEST_LARGE=1 only. */
static void test_queues_long_loop_released(void) {
  TU_REQUIRE_DEVICE();
  const char *large = getenv("CLLOSS_TEST_LARGE");
  if (!large || strcmp(large, "1") != 0) {
    tu_skip("set CLLOSS_TEST_LARGE=1 (25,000 calls, a minute on Rusticl)");
    return;
  }
  cl_device_id dev = clloss_context_device(tu_context(0));
  cl_int err;
  cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  CU_ASSERT_EQUAL_FATAL(err, CL_SUCCESS);
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create(cl, dev, &ctx), CLLOSS_SUCCESS);
  static float x[N * C];
  int64_t t[N];
  fill(x, t, -1);
  cl_mem bx = tu_buffer(ctx, sizeof x, x), bt = tu_buffer(ctx, sizeof t, t);
  cl_mem bl = tu_buffer(ctx, N * sizeof(float), NULL);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N, d.classes = C, d.reduction = CLLOSS_REDUCTION_NONE;
  int failed = 0;
  for (int i = 0; i < 25000 && !failed; i++)
    failed = clloss_cross_entropy(ctx, clloss_context_queue(ctx), &d,
                                  CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bt),
                                  CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                                  CLLOSS_BUFFER(bl), CLLOSS_BUFFER_NONE, 0,
                                  NULL, NULL) != CLLOSS_SUCCESS;
  CU_ASSERT_FALSE(failed);
  CU_ASSERT_EQUAL(clFinish(clloss_context_queue(ctx)), CL_SUCCESS);
  clloss_context_release(ctx);
  clReleaseMemObject(bx);
  clReleaseMemObject(bt);
  clReleaseMemObject(bl);
  clReleaseContext(cl);
}

int test_queues_register(void) {
  TU_SUITE("queues", NULL, NULL, TU_TEST(test_queues_error_word_waits),
           TU_TEST(test_queues_host_call_after_device_call),
           TU_TEST(test_queues_wait_only_when_needed),
           TU_TEST(test_queues_long_loop_released));
}
