/* context.h - the context's layout and what the context layer itself
 * provides (context.c, and the device and environment queries it is built
 * from: device.c, env.c): failures and their details, the reduction
 * scratch, the pooled buffers of the host-pointer calls, and the hooks
 * through which the layers above release their state with it. It declares
 * nothing of those layers: the fields that hold their state are data the
 * context carries for them. Not installed. */
#ifndef CLLOSS_CONTEXT_H
#define CLLOSS_CONTEXT_H
#include <stdio.h>

#include "check.h" /* CLLOSS_DETAIL_SIZE */
#include "clloss.h"

/* Which kernel of a family runs. */
typedef enum clloss__variant {
  CLLOSS__AUTO = 0,
  CLLOSS__ITEM,
  CLLOSS__GROUP,
  CLLOSS__SPLIT,
  CLLOSS__LANES
} clloss__variant;

/* Pooled device buffers of the host-pointer calls, one per role. */
enum {
  CLLOSS__POOL_INPUT,
  CLLOSS__POOL_TARGET,
  CLLOSS__POOL_WEIGHT,
  CLLOSS__POOL_POS_WEIGHT,
  CLLOSS__POOL_GRAD_OUTPUT,
  CLLOSS__POOL_LOSS,
  CLLOSS__POOL_GRAD,
  CLLOSS__POOL_COUNT
};

/* Most release hooks a context holds (clloss__context_on_release). */
#define CLLOSS__RELEASE_HOOKS 8

struct clloss_context {
  cl_context cl;
  cl_device_id device;
  cl_command_queue queue; /* ours, in order */
  clloss_device_info info;
  int cl_std_major, cl_std_minor;      /* the -cl-std we build with */
  size_t wg_size;                      /* WG_SIZE the programs are built with */
  cl_uint native_float, native_double; /* CL_DEVICE_NATIVE_VECTOR_WIDTH_* */
  /* Loop iterations a work-item may run in one kernel, all its loops
   * together, before the device ends them (clloss__loop_budget); 0 for no
   * such limit. */
  size_t loop_limit;

  /* One entry per configuration that calls on this device can request
   * (clloss__program_configs), allocated with the context. */
  struct clloss__program *programs;
  size_t program_count, program_capacity;
  struct clloss__prebuild *prebuild; /* programs built on a thread, or NULL */
  char *build_log;
  char detail[CLLOSS_DETAIL_SIZE];

  clloss__variant variant; /* forced, or AUTO */
  int tune;                /* the CLLOSS_TUNE switch is not off */
  int measuring;           /* inside tune.c's measurement */
  int build_to_measure;    /* tests: build variants to measure them on a
                              CPU device too (tune.c) */
  const char *last_variant;

  /* Reduction scratch, owned and grown by the context, never per call. */
  cl_mem partials; /* per-group or per-row partial losses */
  size_t partials_bytes;
  cl_mem segments; /* split variant: statistics of each row segment */
  size_t segments_bytes;
  cl_mem exps; /* item variant, 16-bit storage: a row of exps per item */
  size_t exps_bytes;
  /* The last kernel of the last call: the next call's first kernel waits
   * for it, so that calls on different queues never share the scratch
   * below at the same time. */
  cl_event last_call;
  cl_mem stats; /* [0] weight sum D, [1] class-weight sum W (doubles) */
  cl_mem err;   /* device error word: flag, lowest bad row */
  cl_mem dummy; /* stands in for arguments that are not given */

  cl_mem pool[CLLOSS__POOL_COUNT];
  size_t pool_bytes[CLLOSS__POOL_COUNT];

  /* linear_cross_entropy's workspace and pools (host/linear.h), NULL
   * until its first call; released by its own hook (below). */
  struct clloss__linear *linear;

  /* What the layers above the context release with it, in the order they
   * registered (clloss__context_on_release). */
  struct clloss__release_hook {
    void (*fn)(clloss_context *ctx, void *data);
    void *data;
  } on_release[CLLOSS__RELEASE_HOOKS];
  size_t on_release_count;
};

/* Registers fn(ctx, data) to run when ctx is released, after its queue
 * has finished and before the context's own buffers go: each layer above
 * the context (programs, tuning, linear_cross_entropy) releases its own
 * state that way, so that context.c knows nothing of them. A pair already
 * registered is not registered again. Hooks run in the order registered
 * and must not depend on one another. CLLOSS_OUT_OF_HOST_MEMORY (with a
 * detail) when the table is full. */
typedef void (*clloss__release_fn)(clloss_context *ctx, void *data);
clloss_status clloss__context_on_release(clloss_context *ctx,
                                         clloss__release_fn fn, void *data);

/* Records a failure's sentence in ctx->detail and returns `status`. */
clloss_status clloss__fail(clloss_context *ctx, clloss_status status,
                           const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Every entry point that takes a context calls this first: the detail of
 * an earlier failure is cleared, so that it is "" after a success. */
void clloss__enter(clloss_context *ctx);
/* The start of an entry point that returns an event: *event NULL (when
 * given), ctx required (else CLLOSS_INVALID_ARGUMENT), the detail cleared. */
clloss_status clloss__enter_call(clloss_context *ctx, cl_event *event);
/* Maps an OpenCL error of an allocation or enqueue to a status. */
clloss_status clloss__cl_status(cl_int err);

/* Device queries (device.c). */
clloss_status clloss__query_device(cl_platform_id platform, cl_device_id device,
                                   clloss_device_info *info);

/* Grows a scratch buffer of the context (*mem of *bytes) to `count`
 * values of `elem_size`; never shrinks it. */
clloss_status clloss__reserve(clloss_context *ctx, cl_mem *mem, size_t *bytes,
                              size_t count, size_t elem_size);
#define clloss__reserve_partials(ctx, count, elem_size)                        \
  clloss__reserve((ctx), &(ctx)->partials, &(ctx)->partials_bytes, (count),    \
                  (elem_size))

/* Environment variables (env.c). A switch: 1 for on, 1, yes, true and 0
 * for off, 0, no, false (any case), `fallback` when unset or empty, -1 for
 * any other value. */
int clloss__env_switch(const char *name, int fallback);
/* The variables that context creation checks besides CLLOSS_VARIANT: the
 * switches and CLLOSS_KERNEL_DIR (a folder that opens).
 * CLLOSS_INVALID_ARGUMENT with a sentence naming the variable and its value
 * in `detail`. */
clloss_status clloss__check_environment(char detail[CLLOSS_DETAIL_SIZE]);
/* Its name: "auto", "item", "group", "split", "lanes". */
const char *clloss__variant_name(clloss__variant v);

/* Pooled buffer of at least `bytes` for `role` (host-pointer calls). */
clloss_status clloss__pool_get(clloss_context *ctx, int role, size_t bytes,
                               cl_mem *out);

/* Copies `bytes` from host `src` into the pooled buffer of `role`
 * (blocking: src may be reused when it returns); a NULL src gives a buffer
 * with a NULL mem. */
clloss_status clloss__pool_upload(clloss_context *ctx, int role,
                                  const void *src, size_t bytes,
                                  clloss_buffer *out);
/* Blocking copy back to the host; a NULL dst copies nothing. */
clloss_status clloss__pool_download(clloss_context *ctx, clloss_buffer buf,
                                    void *dst, size_t bytes);

#define CLLOSS__TRY(expr)                                                      \
  do {                                                                         \
    clloss_status s_ = (expr);                                                 \
    if (s_ != CLLOSS_SUCCESS)                                                  \
      return s_;                                                               \
  } while (0)

#endif
