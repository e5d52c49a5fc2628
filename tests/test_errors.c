/* test_errors.c - the statuses that need an unusual environment: a kernel
 * that fails to build, a device without fp64, an allocation beyond the
 * device's limit, and a machine without any OpenCL platform. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h" /* white box: a context that pretends to lack fp64 */
#include "support/testutil.h"

/* Writes `text` to dir/name. */
static int write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f)
    return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

static void remove_file(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  remove(path);
}

/* Kernel sources from CLLOSS_KERNEL_DIR: a syntax error gives
 * CLLOSS_BUILD_FAILURE with the compiler's log kept in the context, and a
 * missing file gives it too; nothing is written to the outputs. */
static void test_build_failure(void) {
  TU_REQUIRE_DEVICE();
  char dir[] = "/tmp/clloss-kernels-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  CU_ASSERT_TRUE(write_file(dir, "params.h", "/* empty */\n"));
  CU_ASSERT_TRUE(write_file(dir, "common.cl", "/* empty */\n"));
  CU_ASSERT_TRUE(write_file(dir, "reduce.cl", "/* empty */\n"));
  CU_ASSERT_TRUE(
      write_file(dir, "pointwise.cl", "__kernel void pw_item( { oops }\n"));
  char *saved_dir = tu_env_save("CLLOSS_KERNEL_DIR");
  char *saved_cache = tu_env_save("CLLOSS_CACHE");
  setenv("CLLOSS_KERNEL_DIR", dir, 1);
  setenv("CLLOSS_CACHE", "off", 1);

  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  const float x[3] = {1, 2, 3}, y[3] = {0, 0, 0};
  float loss = -7, grad[3] = {-7, -7, -7};
  CU_ASSERT_EQUAL(
      clloss_mse_loss_host(ctx, 3, CLLOSS_REDUCTION_SUM, x, y, &loss, grad),
      CLLOSS_BUILD_FAILURE);
  CU_ASSERT_TRUE(strlen(clloss_context_build_log(ctx)) > 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "build"));
  CU_ASSERT_EQUAL(loss, -7);
  CU_ASSERT_EQUAL(grad[2], -7);
  /* No nll_loss.cl in the folder at all. */
  clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
  d.rows = 1;
  d.classes = 3;
  const int64_t t[1] = {1};
  CU_ASSERT_EQUAL(clloss_nll_loss_host(ctx, &d, x, t, NULL, NULL, &loss, grad),
                  CLLOSS_BUILD_FAILURE);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(clloss_context_error_detail(ctx), "nll_loss.cl"));
  clloss_context_release(ctx);

  tu_env_restore("CLLOSS_KERNEL_DIR", saved_dir);
  tu_env_restore("CLLOSS_CACHE", saved_cache);
  remove_file(dir, "params.h");
  remove_file(dir, "common.cl");
  remove_file(dir, "reduce.cl");
  remove_file(dir, "pointwise.cl");
  rmdir(dir);
}

/* float64 where the device has no fp64: CLLOSS_UNSUPPORTED at both call
 * levels and for every loss, before anything is enqueued. The device here
 * may well have fp64, so the context is told it has not. */
static void test_unsupported_fp64(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  ctx->info.has_fp64 = 0;
  const double x[4] = {1, 2, 3, 4}, y[4] = {0, 0, 0, 0};
  double loss = -7, grad[4] = {-7, -7, -7, -7};
  const int64_t t[2] = {0, 1};

  clloss_pointwise_desc pd = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  pd.count = 4;
  pd.input_type = CLLOSS_FLOAT64;
  CU_ASSERT_EQUAL(
      clloss_pointwise_host(ctx, &pd, x, y, NULL, NULL, NULL, &loss, grad),
      CLLOSS_UNSUPPORTED);
  clloss_cross_entropy_desc cd = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  cd.rows = 2;
  cd.classes = 2;
  cd.input_type = CLLOSS_FLOAT64;
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &cd, x, t, NULL, NULL, &loss, grad),
      CLLOSS_UNSUPPORTED);
  clloss_nll_loss_desc nd = CLLOSS_NLL_LOSS_DESC_INIT;
  nd.rows = 2;
  nd.classes = 2;
  nd.input_type = CLLOSS_FLOAT64;
  CU_ASSERT_EQUAL(clloss_nll_loss_host(ctx, &nd, x, t, NULL, NULL, &loss, grad),
                  CLLOSS_UNSUPPORTED);
  CU_ASSERT_EQUAL(loss, -7);
  CU_ASSERT_EQUAL(grad[0], -7);

  /* Device-buffer level. */
  cl_mem bx = tu_buffer(ctx, sizeof x, x), bl = tu_buffer(ctx, 8, NULL);
  CU_ASSERT_EQUAL(clloss_pointwise(ctx, clloss_context_queue(ctx), &pd,
                                   CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bx),
                                   CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                                   CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(bl),
                                   CLLOSS_BUFFER_NONE, 0, NULL, NULL),
                  CLLOSS_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "fp64"));
  clReleaseMemObject(bx);
  clReleaseMemObject(bl);
  clloss_context_release(ctx);
}

/* More than the device can allocate in one buffer: the pooled buffer of
 * the host-pointer call cannot be made, CLLOSS_OUT_OF_DEVICE_MEMORY. The
 * OpenCL spec makes clCreateBuffer fail for a size above
 * CL_DEVICE_MAX_MEM_ALLOC_SIZE, and the call allocates every buffer before
 * it copies anything, so the small host arrays are never read past. */
static void test_out_of_device_memory(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  const clloss_device_info *info = clloss_context_device_info(ctx);
  size_t count = (size_t)(info->max_alloc_size / sizeof(float)) + 64;
  const float x[4] = {0}, y[4] = {0};
  float loss = -7;
  clloss_status s =
      clloss_mse_loss_host(ctx, count, CLLOSS_REDUCTION_SUM, x, y, &loss, NULL);
  CU_ASSERT_EQUAL(s, CLLOSS_OUT_OF_DEVICE_MEMORY);
  CU_ASSERT_EQUAL(loss, -7);
  /* The context still works afterwards. */
  const float a[2] = {1, 2}, b[2] = {0, 0};
  CU_ASSERT_EQUAL(
      clloss_mse_loss_host(ctx, 2, CLLOSS_REDUCTION_SUM, a, b, &loss, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(loss, 5.0f);
}

/* No OpenCL platform at all: the ICD loader reads its vendor list once per
 * process, so a child process runs `clloss devices` (which must say so and
 * exit 0) and `clloss run --device 0` (exit 1) with an empty vendor folder.
 */
static void test_no_device(void) {
  char tool[512], cmd[1400];
  snprintf(tool, sizeof tool, "%s/tools/clloss", CLLOSS_BINARY_DIR);
  if (access(tool, X_OK) != 0) {
    tu_skip("%s is not built", tool);
    return;
  }
  char dir[] = "/tmp/clloss-no-icd-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  static const char *const subcommands[] = {"devices", "selftest"};
  static const int expect_rc[] = {0, 1};
  for (int k = 0; k < 2; k++) {
    snprintf(cmd, sizeof cmd,
             "OCL_ICD_VENDORS=%s OCL_ICD_FILENAMES= %s %s 2>&1", dir, tool,
             subcommands[k]);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    CU_ASSERT_TRUE(rc != -1 && WEXITSTATUS(rc) == expect_rc[k]);
    /* selftest prints the library's own message for CLLOSS_NO_DEVICE. */
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, k ? clloss_status_string(CLLOSS_NO_DEVICE)
                      : "No OpenCL device found"));
  }
  rmdir(dir);
}

int test_errors_register(void) {
  TU_SUITE("errors", NULL, NULL, TU_TEST(test_build_failure),
           TU_TEST(test_unsupported_fp64), TU_TEST(test_out_of_device_memory),
           TU_TEST(test_no_device));
}
