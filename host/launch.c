/* launch.c - what every launcher shares: buffer checks, kernel arguments,
 * event chaining on the caller's queue, work sizes, and the final
 * reduction. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernel_args.h"

clloss_status clloss__launch_begin(clloss__launch *l, clloss_context *ctx,
                                   cl_command_queue queue, cl_uint num_events,
                                   const cl_event *wait_list) {
  memset(l, 0, sizeof *l);
  if (!queue)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "queue is NULL");
  if ((num_events == 0) != (wait_list == NULL))
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "num_events and wait_list disagree");
  cl_context qctx = NULL;
  cl_int err =
      clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof qctx, &qctx, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, err, "queue is not a valid command queue");
  if (qctx != ctx->cl)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "queue belongs to another cl_context");
  /* The programs are built for the context's device only. */
  cl_device_id qdev = NULL;
  err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof qdev, &qdev, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, err, "queue is not a valid command queue");
  if (qdev != ctx->device)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "queue belongs to another device than the context's");
  l->ctx = ctx;
  l->queue = queue;
  l->num_events = num_events;
  l->wait_list = wait_list;
  return CLLOSS_SUCCESS;
}

int clloss__must_wait(cl_event prev, cl_command_queue q) {
  cl_int status;
  if (clGetEventInfo(prev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                     &status, NULL) == CL_SUCCESS &&
      status == CL_COMPLETE)
    return 0;
  cl_command_queue pq;
  cl_command_queue_properties props;
  return !(clGetEventInfo(prev, CL_EVENT_COMMAND_QUEUE, sizeof pq, &pq, NULL) ==
               CL_SUCCESS &&
           pq == q &&
           clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props,
                                 NULL) == CL_SUCCESS &&
           !(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE));
}

/* The first kernel of a call waits for the caller's wait list and, where
 * it must, for the previous call's last kernel (ctx->last_call). */
static cl_int enqueue_first(clloss__launch *l, cl_kernel k, size_t global,
                            size_t local, cl_event *done) {
  cl_event prev = l->ctx->last_call;
  if (!prev || !clloss__must_wait(prev, l->queue))
    return clEnqueueNDRangeKernel(l->queue, k, 1, NULL, &global, &local,
                                  l->num_events, l->wait_list, done);
  /* prev's queue was flushed when its call ended (clloss__launch_end). */
  cl_int err;
  cl_event few[16], *all = few;
  if (l->num_events + 1 > sizeof few / sizeof *few &&
      !(all = malloc((l->num_events + 1) * sizeof *all)))
    return CL_OUT_OF_HOST_MEMORY;
  if (l->num_events)
    memcpy(all, l->wait_list, l->num_events * sizeof *all);
  all[l->num_events] = prev;
  err = clEnqueueNDRangeKernel(l->queue, k, 1, NULL, &global, &local,
                               l->num_events + 1, all, done);
  if (all != few)
    free(all);
  return err;
}

clloss_status clloss__launch_kernel(clloss__launch *l, cl_kernel k,
                                    size_t global, size_t local) {
  cl_event done = NULL;
  cl_int err;
  if (l->last)
    err = clEnqueueNDRangeKernel(l->queue, k, 1, NULL, &global, &local, 1,
                                 &l->last, &done);
  else
    err = enqueue_first(l, k, global, local, &done);
  if (err != CL_SUCCESS)
    return clloss__fail(l->ctx, clloss__cl_status(err),
                        "enqueueing a kernel failed: %s",
                        clloss_status_name(err));
  if (l->last)
    clReleaseEvent(l->last);
  l->last = done;
  return CLLOSS_SUCCESS;
}

clloss_status clloss__launch_end(clloss__launch *l, clloss_status status,
                                 cl_event *event) {
  /* A call that ran kernels (l->last is so far a kernel's) becomes the one
   * the next call waits for, even if a later step failed: its kernels may
   * still be using the scratch. OpenCL 1.2 (5.13) wants the queue of an
   * event flushed before another queue waits for it, or some drivers wait
   * forever: a call on the caller's queue is flushed now, while that queue
   * surely exists, since the next call may be on another one. */
  if (l->last && l->queue != l->ctx->queue)
    clFlush(l->queue);
  if (l->last && clRetainEvent(l->last) == CL_SUCCESS) {
    if (l->ctx->last_call)
      clReleaseEvent(l->ctx->last_call);
    l->ctx->last_call = l->last;
  }
  /* Nothing to compute (an empty input): a marker still gives the caller
   * an event that completes after its wait list. */
  if (status == CLLOSS_SUCCESS && event && !l->last && l->queue) {
    cl_int err = clEnqueueMarkerWithWaitList(l->queue, l->num_events,
                                             l->wait_list, &l->last);
    if (err != CL_SUCCESS)
      status = clloss__fail(l->ctx, clloss__cl_status(err),
                            "enqueueing a marker failed");
  }
  if (event)
    *event = status == CLLOSS_SUCCESS ? l->last : NULL;
  if (l->last && (!event || status != CLLOSS_SUCCESS))
    clReleaseEvent(l->last);
  l->last = NULL;
  return status;
}

cl_int clloss__set_kernel_args(cl_kernel k, const cl_mem *mems, cl_uint count,
                               cl_mem dummy, const void *params, size_t size,
                               size_t local_bytes) {
  cl_int err = CL_SUCCESS;
  for (cl_uint i = 0; i < count && err == CL_SUCCESS; i++) {
    cl_mem m = mems[i] ? mems[i] : dummy;
    err = clSetKernelArg(k, i, sizeof m, &m);
  }
  if (err == CL_SUCCESS)
    err = clSetKernelArg(k, count, size, params);
  if (err == CL_SUCCESS && local_bytes)
    err = clSetKernelArg(k, count + 1, local_bytes, NULL);
  return err;
}

clloss_status clloss__check_buffer(clloss_context *ctx, const char *name,
                                   clloss_buffer buf, size_t count,
                                   size_t elem_size, int required) {
  if (!buf.mem) {
    if (required)
      return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "%s is NULL", name);
    return CLLOSS_SUCCESS;
  }
  size_t size = 0;
  cl_context owner = NULL;
  cl_int err =
      clGetMemObjectInfo(buf.mem, CL_MEM_SIZE, sizeof size, &size, NULL);
  if (err == CL_SUCCESS)
    err =
        clGetMemObjectInfo(buf.mem, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, err, "%s is not a valid buffer", name);
  /* A buffer of another cl_context is not ours to read or write, even where
   * a driver would take it. */
  if (owner != ctx->cl)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "%s belongs to another cl_context", name);
  size_t cap = size / elem_size;
  if (buf.offset > cap || count > cap - buf.offset)
    return clloss__fail(ctx, CLLOSS_BUFFER_TOO_SMALL,
                        "%s holds %zu elements; the call needs %zu at "
                        "offset %zu",
                        name, cap, count, buf.offset);
  return CLLOSS_SUCCESS;
}

clloss_status clloss__check_outputs(clloss_context *ctx, int has_loss,
                                    int has_grad) {
  if (!has_loss && !has_grad)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "neither loss nor grad_input is given");
  return CLLOSS_SUCCESS;
}

clloss_status clloss__check_accumulate(clloss_context *ctx, int accumulate,
                                       int in_place) {
  if (accumulate && in_place)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "accumulate adds to grad_input, which cannot be the "
                        "input itself");
  return CLLOSS_SUCCESS;
}

clloss_status clloss__check_fp64(clloss_context *ctx, clloss_dtype type) {
  if (type == CLLOSS_FLOAT64 && !ctx->info.has_fp64)
    return clloss__fail(ctx, CLLOSS_UNSUPPORTED,
                        "float64 needs a device with fp64; %s has none",
                        ctx->info.name);
  return CLLOSS_SUCCESS;
}

cl_mem clloss__mem_or_dummy(const clloss_context *ctx, clloss_buffer b) {
  return b.mem ? b.mem : ctx->dummy;
}

/* GPUs: 16-byte loads (float4, double2), which coalesce. CPU devices:
 * the device's native vector width (AVX2: 8 floats, AVX-512: 16), one
 * register a vector. Wider vectors than the native width cost no speed
 * there but change the calling convention of vector helpers, which
 * clang-based drivers warn about at every build. */
int clloss__vector_width(const clloss_context *ctx, clloss_dtype type) {
  const int dbl = type == CLLOSS_FLOAT64;
  if (!(ctx->info.type & CL_DEVICE_TYPE_CPU))
    return dbl ? 2 : 4;
  cl_uint native = dbl ? ctx->native_double : ctx->native_float;
  int vw = dbl ? 2 : 4;
  while (vw < 16 && (cl_uint)vw * 2 <= native)
    vw *= 2;
  return vw;
}

size_t clloss__loop_budget(const clloss_context *ctx) {
  return ctx->loop_limit ? ctx->loop_limit / 2 : SIZE_MAX;
}

clloss_status clloss__check_one_group(clloss_context *ctx, size_t count,
                                      size_t local) {
  const size_t budget = clloss__loop_budget(ctx);
  if (budget == SIZE_MAX || count / (CLLOSS__REDUCE_UNROLL * local) < budget)
    return CLLOSS_SUCCESS;
  return clloss__fail(ctx, CLLOSS_UNSUPPORTED,
                      "%zu rows in one call: %s stops every loop of a "
                      "work-item after %zu iterations, and one work-group of "
                      "%zu sums at most %zu",
                      count, ctx->info.name, ctx->loop_limit, local,
                      budget * CLLOSS__REDUCE_UNROLL * local);
}

size_t clloss__item_local_size(const clloss_context *ctx, size_t items,
                               size_t kernel_max) {
  /* CPUs: enough groups to keep every compute unit busy (4 per unit), at
   * most 64 work-items each. GPUs schedule whole warps or wavefronts: a
   * group smaller than 64 leaves lanes idle whatever the number of
   * groups, so 64 (the kernel allowing). */
  size_t local = 64;
  if (ctx->info.type & CL_DEVICE_TYPE_CPU) {
    size_t want = items / (4 * (size_t)ctx->info.compute_units);
    while (local > 1 && local > want)
      local /= 2;
  }
  return local < kernel_max ? local : kernel_max;
}

size_t clloss__group_local_size(const clloss_context *ctx, size_t kernel_max) {
  (void)ctx;
  return kernel_max < 256 ? kernel_max : 256;
}

clloss_status clloss__finish_sum(clloss__launch *l, clloss__program *p,
                                 int finish_index, size_t count, int mode,
                                 float fdiv, size_t idiv, clloss_buffer loss) {
  clloss_context *ctx = l->ctx;
  cl_kernel k = p->kernels[finish_index];
  const cl_mem mems[3] = {ctx->partials, ctx->stats, loss.mem};
  const clloss__finish_params fp = {.count = count,
                                    .out_off = loss.offset,
                                    .idiv = idiv,
                                    .mode = mode,
                                    .fdiv = fdiv};
  cl_int err =
      clloss__set_kernel_args(k, mems, 3, ctx->dummy, &fp, sizeof fp, 0);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, clloss__cl_status(err),
                        "setting finish_sum arguments failed: %s",
                        clloss_status_name(err));
  size_t local = clloss__group_local_size(ctx, p->max_wg[finish_index]);
  CLLOSS__TRY(clloss__check_one_group(ctx, count, local));
  return clloss__launch_kernel(l, k, local, local);
}
