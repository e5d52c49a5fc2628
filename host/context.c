/* context.c - creating and releasing a clloss_context, its accessors, the
 * device error word, and the buffers it owns (scratch and pool). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

void clloss__enter(clloss_context *ctx) {
  if (ctx)
    ctx->detail[0] = '\0';
}

clloss_status clloss__enter_call(clloss_context *ctx, cl_event *event) {
  if (event)
    *event = NULL;
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  return CLLOSS_SUCCESS;
}

clloss_status clloss__fail(clloss_context *ctx, clloss_status status,
                           const char *fmt, ...) {
  if (ctx) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->detail, sizeof ctx->detail, fmt, ap);
    va_end(ap);
  }
  return status;
}

clloss_status clloss__cl_status(cl_int err) {
  switch (err) {
  case CL_SUCCESS:
    return CLLOSS_SUCCESS;
  case CL_MEM_OBJECT_ALLOCATION_FAILURE:
  case CL_INVALID_BUFFER_SIZE:
    return CLLOSS_OUT_OF_DEVICE_MEMORY;
  case CL_OUT_OF_HOST_MEMORY:
    return CLLOSS_OUT_OF_HOST_MEMORY;
  default:
    return (clloss_status)err;
  }
}

static cl_mem make_buffer(clloss_context *ctx, size_t bytes, cl_int *err) {
  return clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, err);
}

static clloss_status reset_error_word(clloss_context *ctx,
                                      cl_command_queue queue) {
  const cl_uint init[2] = {0u, 0xffffffffu};
  return clloss__cl_status(clEnqueueWriteBuffer(
      queue, ctx->err, CL_TRUE, 0, sizeof init, init, 0, NULL, NULL));
}

/* -cl-std: the device's OpenCL C version, capped at the 1.2 we are written
 * in (1.0 devices get no option). */
static void pick_cl_std(clloss_context *ctx) {
  int major = ctx->info.opencl_c_major, minor = ctx->info.opencl_c_minor;
  if (major > 1 || (major == 1 && minor > 2)) {
    major = 1;
    minor = 2;
  }
  ctx->cl_std_major = major;
  ctx->cl_std_minor = minor;
}

static const char *const variant_names[] = {"auto", "item", "group", "split",
                                            "lanes"};
#define VARIANTS (sizeof variant_names / sizeof *variant_names)

static clloss__variant variant_from_name(const char *name, int *ok) {
  *ok = 1;
  if (!name || !*name)
    return CLLOSS__AUTO;
  for (size_t i = 0; i < VARIANTS; i++)
    if (strcmp(name, variant_names[i]) == 0)
      return (clloss__variant)i;
  *ok = 0;
  return CLLOSS__AUTO;
}

const char *clloss__variant_name(clloss__variant v) {
  return variant_names[v];
}

/* Why the calling thread's last context creation failed: there is no
 * context to hold the sentence, so each thread has its own (as errno),
 * and clloss_context_error_detail(NULL) reads it. */
static _Thread_local char create_detail[CLLOSS_DETAIL_SIZE];

static clloss_status create_fail(clloss_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static clloss_status create_fail(clloss_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(create_detail, sizeof create_detail, fmt, ap);
  va_end(ap);
  return status;
}

/* Every variable a context reads, checked when it is created: a misspelt
 * value is an error naming it, never a setting silently ignored.
 * CLLOSS_VARIANT follows clloss_context_set_variant's rule. */
static clloss_status check_environment(void) {
  int ok;
  const char *variant = getenv("CLLOSS_VARIANT");
  variant_from_name(variant, &ok);
  if (!ok)
    return create_fail(CLLOSS_INVALID_ARGUMENT,
                       "CLLOSS_VARIANT=%s is not a variant (auto, item, "
                       "group, split, lanes)",
                       variant);
  return clloss__check_environment(create_detail);
}

clloss_status clloss_context_create(cl_context cl_ctx, cl_device_id device,
                                    clloss_context **out) {
  create_detail[0] = '\0';
  if (!out)
    return create_fail(CLLOSS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!cl_ctx || !device)
    return create_fail(CLLOSS_INVALID_ARGUMENT, "%s is NULL",
                       cl_ctx ? "device" : "cl_ctx");
  CLLOSS__TRY(check_environment());
  clloss_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return CLLOSS_OUT_OF_HOST_MEMORY;
  cl_platform_id platform = NULL;
  clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
  clloss_status s = clloss__query_device(platform, device, &ctx->info);
  if (s != CLLOSS_SUCCESS) {
    free(ctx);
    return create_fail(s, "querying the device failed: %s",
                       clloss_status_name(s));
  }
  clRetainContext(cl_ctx);
  clRetainDevice(device);
  ctx->cl = cl_ctx;
  ctx->device = device;
  ctx->last_variant = "";
  pick_cl_std(ctx);
  ctx->wg_size =
      ctx->info.max_work_group_size < 256 ? ctx->info.max_work_group_size : 256;
  if (clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT,
                      sizeof ctx->native_float, &ctx->native_float,
                      NULL) != CL_SUCCESS)
    ctx->native_float = 0;
  if (clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE,
                      sizeof ctx->native_double, &ctx->native_double,
                      NULL) != CL_SUCCESS)
    ctx->native_double = 0;
  /* Mesa's llvmpipe (Rusticl, Clover) compiles every loop with one counter
   * shared by all loops of the kernel, and leaves the loop being run once
   * a work-item has run 65535 iterations in all (gallivm's
   * LP_MAX_TGSI_LOOP_ITERATIONS, Mesa 22.3 and since): a longer loop
   * stops early without a word, and a row of 131072 logits in one
   * work-item got half a gradient. The plans keep each work-item's loops
   * below it there (clloss__loop_budget). */
  if (strncmp(ctx->info.name, "llvmpipe", 8) == 0)
    ctx->loop_limit = 65535;
  int ok;
  ctx->variant = variant_from_name(getenv("CLLOSS_VARIANT"), &ok);
  ctx->tune = clloss__env_switch("CLLOSS_TUNE", 1) == 1;

  cl_int err;
  ctx->queue = clCreateCommandQueue(cl_ctx, device, 0, &err);
  if (ctx->queue)
    ctx->stats = make_buffer(ctx, 2 * sizeof(double), &err);
  if (ctx->stats)
    ctx->err = make_buffer(ctx, 2 * sizeof(cl_uint), &err);
  if (ctx->err)
    ctx->dummy = make_buffer(ctx, 64, &err);
  if (!ctx->dummy ||
      (s = reset_error_word(ctx, ctx->queue)) != CLLOSS_SUCCESS) {
    s = ctx->dummy ? s : clloss__cl_status(err);
    clloss_context_release(ctx);
    return create_fail(s,
                       "creating the context's queue and buffers failed: "
                       "%s",
                       clloss_status_name(s));
  }
  *out = ctx;
  return CLLOSS_SUCCESS;
}

clloss_status clloss_context_create_default(const char *selector,
                                            clloss_context **out) {
  create_detail[0] = '\0';
  if (!out)
    return create_fail(CLLOSS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  clloss_device_info info;
  clloss_status s = clloss_device_select(selector, &info, NULL);
  const char *env = getenv("CLLOSS_DEVICE");
  if (s == CLLOSS_DEVICE_NOT_FOUND && (!selector || !*selector))
    return create_fail(s, "CLLOSS_DEVICE=%s matches no device", env);
  if (s == CLLOSS_DEVICE_NOT_FOUND)
    return create_fail(s, "\"%s\" matches no device", selector);
  if (s != CLLOSS_SUCCESS)
    return create_fail(s, "no OpenCL device (%s)", clloss_status_name(s));
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   (cl_context_properties)info.platform, 0};
  cl_int err;
  cl_context cl = clCreateContext(props, 1, &info.device, NULL, NULL, &err);
  if (!cl)
    return create_fail(clloss__cl_status(err), "clCreateContext failed: %s",
                       clloss_status_name(err));
  s = clloss_context_create(cl, info.device, out);
  clReleaseContext(cl); /* the clloss context holds its own reference */
  return s;
}

void clloss_context_release(clloss_context *ctx) {
  if (!ctx)
    return;
  if (ctx->queue)
    clFinish(ctx->queue);
  /* The layers above: programs (waiting for a build of their own thread),
   * tuning, linear_cross_entropy's workspace. */
  for (size_t i = 0; i < ctx->on_release_count; i++)
    ctx->on_release[i].fn(ctx, ctx->on_release[i].data);
  if (ctx->last_call)
    clReleaseEvent(ctx->last_call);
  cl_mem mems[] = {ctx->partials, ctx->segments, ctx->exps,
                   ctx->stats,    ctx->err,      ctx->dummy};
  for (size_t i = 0; i < sizeof mems / sizeof *mems; i++)
    if (mems[i])
      clReleaseMemObject(mems[i]);
  for (int i = 0; i < CLLOSS__POOL_COUNT; i++)
    if (ctx->pool[i])
      clReleaseMemObject(ctx->pool[i]);
  if (ctx->queue)
    clReleaseCommandQueue(ctx->queue);
  clReleaseDevice(ctx->device);
  clReleaseContext(ctx->cl);
  free(ctx->build_log);
  free(ctx);
}

clloss_status clloss__context_on_release(clloss_context *ctx,
                                         clloss__release_fn fn, void *data) {
  for (size_t i = 0; i < ctx->on_release_count; i++)
    if (ctx->on_release[i].fn == fn && ctx->on_release[i].data == data)
      return CLLOSS_SUCCESS;
  if (ctx->on_release_count == CLLOSS__RELEASE_HOOKS)
    return clloss__fail(ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "the context's %d release hooks are taken",
                        CLLOSS__RELEASE_HOOKS);
  ctx->on_release[ctx->on_release_count].fn = fn;
  ctx->on_release[ctx->on_release_count].data = data;
  ctx->on_release_count++;
  return CLLOSS_SUCCESS;
}

cl_context clloss_context_cl_context(const clloss_context *ctx) {
  return ctx ? ctx->cl : NULL;
}
cl_device_id clloss_context_device(const clloss_context *ctx) {
  return ctx ? ctx->device : NULL;
}
cl_command_queue clloss_context_queue(const clloss_context *ctx) {
  return ctx ? ctx->queue : NULL;
}
const clloss_device_info *
clloss_context_device_info(const clloss_context *ctx) {
  return ctx ? &ctx->info : NULL;
}
const char *clloss_context_build_log(const clloss_context *ctx) {
  return ctx && ctx->build_log ? ctx->build_log : "";
}
const char *clloss_context_error_detail(const clloss_context *ctx) {
  return ctx ? ctx->detail : create_detail;
}

clloss_status clloss_context_fail(clloss_context *ctx, clloss_status status,
                                  const char *detail) {
  return clloss__fail(ctx, status, "%s", detail ? detail : "");
}

clloss_status clloss_context_set_variant(clloss_context *ctx,
                                         const char *variant) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  int ok;
  clloss__variant v = variant_from_name(variant, &ok);
  if (!ok)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "unknown variant \"%s\" (auto, item, group, split, "
                        "lanes)",
                        variant);
  ctx->variant = v;
  return CLLOSS_SUCCESS;
}

const char *clloss_context_last_variant(const clloss_context *ctx) {
  return ctx ? ctx->last_variant : "";
}

clloss_status clloss_check_device_errors(clloss_context *ctx,
                                         cl_command_queue queue,
                                         uint64_t *bad_row) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  if (!queue)
    queue = ctx->queue;
  /* After the calls that write the word, whichever queue they are on
   * (each was flushed as it ended: clloss__launch_end). */
  cl_event after = ctx->last_call;
  cl_uint word[2];
  cl_int err =
      clEnqueueReadBuffer(queue, ctx->err, CL_TRUE, 0, sizeof word, word,
                          after ? 1 : 0, after ? &after : NULL, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, clloss__cl_status(err),
                        "reading the device error word failed: %s",
                        clloss_status_name(err));
  if (!word[0])
    return CLLOSS_SUCCESS;
  if (bad_row)
    *bad_row = word[1];
  CLLOSS__TRY(reset_error_word(ctx, queue));
  return clloss__fail(ctx, CLLOSS_INVALID_TARGET,
                      "row %u has a target outside [0, C) that is not "
                      "ignore_index",
                      word[1]);
}

clloss_status clloss__reserve(clloss_context *ctx, cl_mem *mem, size_t *bytes,
                              size_t count, size_t elem_size) {
  size_t want = (count ? count : 1) * elem_size;
  if (want <= *bytes)
    return CLLOSS_SUCCESS;
  if (*mem)
    clReleaseMemObject(*mem);
  *bytes = 0;
  cl_int err;
  *mem = make_buffer(ctx, want, &err);
  if (!*mem)
    return clloss__fail(ctx, clloss__cl_status(err),
                        "cannot allocate %zu bytes of reduction scratch", want);
  *bytes = want;
  return CLLOSS_SUCCESS;
}

clloss_status clloss__pool_get(clloss_context *ctx, int role, size_t bytes,
                               cl_mem *out) {
  if (bytes == 0)
    bytes = 1;
  if (bytes > ctx->pool_bytes[role]) {
    if (ctx->pool[role])
      clReleaseMemObject(ctx->pool[role]);
    ctx->pool_bytes[role] = 0;
    cl_int err;
    ctx->pool[role] = make_buffer(ctx, bytes, &err);
    if (!ctx->pool[role])
      return clloss__fail(ctx, clloss__cl_status(err),
                          "cannot allocate a %zu-byte device buffer", bytes);
    ctx->pool_bytes[role] = bytes;
  }
  *out = ctx->pool[role];
  return CLLOSS_SUCCESS;
}

clloss_status clloss__pool_upload(clloss_context *ctx, int role,
                                  const void *src, size_t bytes,
                                  clloss_buffer *out) {
  out->mem = NULL;
  out->offset = 0;
  if (!src)
    return CLLOSS_SUCCESS;
  CLLOSS__TRY(clloss__pool_get(ctx, role, bytes, &out->mem));
  if (bytes == 0)
    return CLLOSS_SUCCESS;
  /* Blocking: a host-pointer call must not return while the device may
   * still read the caller's memory, and some paths (no rows, nothing to
   * copy back) would otherwise return before the copy ran. */
  cl_int err = clEnqueueWriteBuffer(ctx->queue, out->mem, CL_TRUE, 0, bytes,
                                    src, 0, NULL, NULL);
  return err == CL_SUCCESS
             ? CLLOSS_SUCCESS
             : clloss__fail(ctx, clloss__cl_status(err),
                            "copying %zu bytes to the device failed", bytes);
}

clloss_status clloss__pool_download(clloss_context *ctx, clloss_buffer buf,
                                    void *dst, size_t bytes) {
  if (!dst || bytes == 0)
    return CLLOSS_SUCCESS;
  cl_int err = clEnqueueReadBuffer(ctx->queue, buf.mem, CL_TRUE, 0, bytes, dst,
                                   0, NULL, NULL);
  return err == CL_SUCCESS
             ? CLLOSS_SUCCESS
             : clloss__fail(ctx, clloss__cl_status(err),
                            "copying %zu bytes from the device failed", bytes);
}
