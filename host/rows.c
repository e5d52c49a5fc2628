/* rows.c - what cross_entropy and nll_loss share: the [N, C] layout with a
 * row stride, the checks of their buffers, and the pass over class-index
 * targets (validation and weight sums). */
#include "internal.h"
#include "rows.h"

clloss__rows_plan clloss__plan_rows(const clloss_context *ctx,
                                    clloss__variant variant, size_t rows,
                                    size_t item_max, size_t group_max) {
  clloss__rows_plan pl;
  const size_t group_local = clloss__group_local_size(ctx, group_max);
  pl.variant = variant;
  if (pl.variant == CLLOSS__ITEM) {
    pl.local = clloss__item_local_size(ctx, rows, item_max);
    pl.groups = (rows + pl.local - 1) / pl.local;
    pl.partials = pl.groups;
  } else {
    pl.variant = CLLOSS__GROUP; /* the split variant is the caller's */
    pl.local = group_local;
    pl.groups = rows < 65536 ? rows : 65536;
    pl.partials = rows;
  }
  return pl;
}

size_t clloss__rows_extent(size_t rows, size_t classes, size_t ld) {
  return rows ? (rows - 1) * ld + classes : 0;
}

clloss_status clloss__check_rows_buffers(clloss_context *ctx,
                                         const clloss__rows_call *c) {
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(c->input_type));
  const size_t extent = clloss__rows_extent(c->rows, c->classes, c->ld);
  if (!c->loss.mem && !c->grad_input.mem)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "neither loss nor grad_input is given");
  CLLOSS__TRY(clloss__check_buffer(ctx, "input", c->input, extent, in, 1));
  if (c->prob_targets)
    CLLOSS__TRY(clloss__check_buffer(ctx, "target", c->target,
                                     c->rows * c->classes, in, 1));
  else
    CLLOSS__TRY(clloss__check_buffer(ctx, "target", c->target, c->rows,
                                     clloss_dtype_size(c->target_type), 1));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "weight", c->weight, c->classes, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "grad_output", c->grad_output,
                                   c->loss_count, real, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "loss", c->loss, c->loss_count, real, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "grad_input", c->grad_input, extent, in, 0));
  /* In place means the very same elements; a partial overlap would race. */
  if (c->grad_input.mem == c->input.mem && extent &&
      c->grad_input.offset != c->input.offset &&
      c->grad_input.offset < c->input.offset + extent &&
      c->input.offset < c->grad_input.offset + extent)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "grad_input overlaps input without being the same "
                        "elements");
  if (c->input_type == CLLOSS_FLOAT64 && !ctx->info.has_fp64)
    return clloss__fail(ctx, CLLOSS_UNSUPPORTED,
                        "float64 needs a device with fp64; %s has none",
                        ctx->info.name);
  return CLLOSS_SUCCESS;
}

clloss_status clloss__enqueue_class_targets(clloss__launch *l,
                                            clloss__program *p, int kernel,
                                            const clloss__rows_call *c) {
  clloss_context *ctx = l->ctx;
  clloss__args a = {p->kernels[kernel], 0, CL_SUCCESS,
                    c->input_type == CLLOSS_FLOAT64};
  clloss__arg_mem(&a, c->target.mem);
  clloss__arg_ulong(&a, c->target.offset);
  clloss__arg_ulong(&a, c->rows);
  clloss__arg_ulong(&a, c->classes);
  clloss__arg_long(&a, c->ignore_index);
  clloss__arg_mem(&a, clloss__mem_or_dummy(ctx, c->weight));
  clloss__arg_ulong(&a, c->weight.offset);
  clloss__arg_int(&a, c->weight.mem != NULL);
  clloss__arg_mem(&a, ctx->stats);
  clloss__arg_mem(&a, ctx->err);
  if (a.err != CL_SUCCESS)
    return clloss__fail(ctx, a.err, "setting class_targets arguments failed");
  size_t local = clloss__group_local_size(ctx, p->max_wg[kernel]);
  return clloss__launch_kernel(l, p->kernels[kernel], local, local);
}

void clloss__set_rows_args(clloss_context *ctx, clloss__args *a,
                           const clloss__rows_call *c, int loss_mode) {
  clloss__arg_mem(a, c->input.mem);
  clloss__arg_ulong(a, c->input.offset);
  clloss__arg_ulong(a, c->ld);
  clloss__arg_ulong(a, c->rows);
  clloss__arg_ulong(a, c->classes);
  clloss__arg_mem(a, c->prob_targets ? ctx->dummy : c->target.mem);
  clloss__arg_ulong(a, c->prob_targets ? 0 : c->target.offset);
  clloss__arg_mem(a, clloss__mem_or_dummy(ctx, c->weight));
  clloss__arg_ulong(a, c->weight.offset);
  clloss__arg_int(a, c->weight.mem != NULL);
  clloss__arg_mem(a, clloss__mem_or_dummy(ctx, c->grad_output));
  clloss__arg_ulong(a, c->grad_output.offset);
  clloss__arg_int(a, clloss__grad_output_mode(c));
  clloss__arg_mem(a, ctx->stats);
  clloss__arg_mem(a, clloss__mem_or_dummy(ctx, c->loss));
  clloss__arg_ulong(a, c->loss.offset);
  clloss__arg_int(a, loss_mode);
  clloss__arg_mem(a, clloss__mem_or_dummy(ctx, c->grad_input));
  clloss__arg_ulong(a, c->grad_input.offset);
  clloss__arg_int(a, c->grad_input.mem != NULL);
  clloss__arg_mem(a, ctx->partials);
  clloss__arg_long(a, c->ignore_index);
  clloss__arg_int(a, (cl_int)c->reduction);
  clloss__arg_mem(a, ctx->err);
}

int clloss__grad_output_mode(const clloss__rows_call *c) {
  if (!c->grad_output.mem)
    return 0;
  return c->reduction == CLLOSS_REDUCTION_NONE ? 2 : 1;
}

clloss_status clloss__rows_host_begin(clloss_context *ctx, clloss__rows_call *c,
                                      const clloss__rows_host *h) {
  if (!h->input || !h->target)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "input and target must not be NULL");
  if (!h->loss && !h->grad_input)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "neither loss nor grad_input is given");
  if (c->input_type == CLLOSS_FLOAT64 && !ctx->info.has_fp64)
    return clloss__fail(ctx, CLLOSS_UNSUPPORTED,
                        "float64 needs a device with fp64; %s has none",
                        ctx->info.name);
  /* Bad targets are reported before any output is touched. */
  if (!c->prob_targets)
    CLLOSS__TRY(clloss__check_targets(h->target, c->target_type, c->rows,
                                      c->classes, c->ignore_index, NULL,
                                      ctx->detail));
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(c->input_type));
  const size_t extent = clloss__rows_extent(c->rows, c->classes, c->ld);
  const size_t tbytes = c->prob_targets
                            ? c->rows * c->classes * in
                            : c->rows * clloss_dtype_size(c->target_type);
  clloss_status s;
  if ((s = clloss__pool_upload(ctx, CLLOSS__POOL_INPUT, h->input, extent * in,
                               &c->input)) != CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_TARGET, h->target, tbytes,
                               &c->target)) != CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_WEIGHT, h->weight,
                               c->classes * real, &c->weight)) !=
          CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_GRAD_OUTPUT, h->grad_output,
                               c->loss_count * real, &c->grad_output)) !=
          CLLOSS_SUCCESS ||
      (h->loss &&
       (s = clloss__pool_get(ctx, CLLOSS__POOL_LOSS, c->loss_count * real,
                             &c->loss.mem)) != CLLOSS_SUCCESS) ||
      (h->grad_input &&
       (s = clloss__pool_get(ctx, CLLOSS__POOL_GRAD, extent * in,
                             &c->grad_input.mem)) != CLLOSS_SUCCESS)) {
    clFinish(ctx->queue); /* the queued copies still read host memory */
    return s;
  }
  return CLLOSS_SUCCESS;
}

clloss_status clloss__rows_host_end(clloss_context *ctx,
                                    const clloss__rows_call *c,
                                    const clloss__rows_host *h,
                                    clloss_status status) {
  if (status != CLLOSS_SUCCESS) {
    clFinish(ctx->queue);
    return status;
  }
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(c->input_type));
  CLLOSS__TRY(
      clloss__pool_download(ctx, c->loss, h->loss, c->loss_count * real));
  if (!h->grad_input || c->rows == 0)
    return CLLOSS_SUCCESS;
  /* Only the C elements of each row: the padding of a strided gradient
   * belongs to the caller and stays as it is. */
  const size_t origin[3] = {0, 0, 0};
  const size_t region[3] = {c->classes * in, c->rows, 1};
  cl_int err = clEnqueueReadBufferRect(
      ctx->queue, c->grad_input.mem, CL_TRUE, origin, origin, region,
      c->ld * in, 0, c->ld * in, 0, h->grad_input, 0, NULL, NULL);
  return err == CL_SUCCESS ? CLLOSS_SUCCESS
                           : clloss__fail(ctx, clloss__cl_status(err),
                                          "copying the gradient back failed");
}

clloss_status clloss__rows_call_device(
    clloss_context *ctx, cl_command_queue queue, clloss__rows_call *c,
    clloss__rows_enqueue enqueue, const void *desc, clloss_buffer input,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input, cl_uint num_events,
    const cl_event *wait_list, cl_event *event) {
  c->input = input;
  c->target = target;
  c->weight = weight;
  c->grad_output = grad_output;
  c->loss = loss;
  c->grad_input = grad_input;
  CLLOSS__TRY(clloss__check_rows_buffers(ctx, c));
  clloss__launch l;
  CLLOSS__TRY(clloss__launch_begin(&l, ctx, queue, num_events, wait_list));
  return clloss__launch_end(&l, enqueue(&l, desc, c), event);
}
