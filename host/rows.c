/* rows.c - what cross_entropy and nll_loss share: the [N, C] layout with a
 * row stride, the checks of their buffers, and the pass over class-index
 * targets (validation and weight sums). */
#include <string.h>

#include "internal.h"
#include "rows.h"

/* Lanes per row: a power of two from 8 to 64, about one lane for every
 * eight vectors of the row, so that each lane has a few vectors to read
 * and the row's reduction stays a short tree. */
static size_t lanes_for(size_t classes, int vw, size_t local) {
  const size_t vectors = (classes + (size_t)vw - 1) / (size_t)vw;
  size_t lanes = 8;
  while (lanes < 64 && lanes * 8 < vectors)
    lanes *= 2;
  while (lanes > local)
    lanes /= 2;
  return lanes ? lanes : 1;
}

clloss__rows_plan clloss__plan_rows(const clloss_context *ctx,
                                    clloss__variant variant, size_t rows,
                                    size_t classes, int vw,
                                    const clloss__rows_kernel_max *max) {
  clloss__rows_plan pl;
  memset(&pl, 0, sizeof pl);
  const size_t group_local = clloss__group_local_size(ctx, max->group);
  pl.variant = variant;
  if (pl.variant == CLLOSS__ITEM) {
    pl.local = clloss__item_local_size(ctx, rows, max->item);
    pl.groups = (rows + pl.local - 1) / pl.local;
    pl.partials = pl.groups;
  } else if (pl.variant == CLLOSS__LANES) {
    const size_t local = clloss__group_local_size(ctx, max->lanes);
    pl.lanes = lanes_for(classes, vw, local);
    pl.local = local / pl.lanes * pl.lanes;
    const size_t per = pl.local / pl.lanes;
    /* Enough groups for every row, but no more than fill the device a
     * few times over: the groups walk the rest. */
    const size_t most = 32 * (size_t)ctx->info.compute_units;
    pl.groups = (rows + per - 1) / per;
    pl.groups = pl.groups < most ? pl.groups : most;
    pl.partials = rows;
  } else {
    pl.variant = CLLOSS__GROUP; /* the split variant is the caller's */
    pl.local = group_local;
    pl.groups = rows < 65536 ? rows : 65536;
    pl.partials = rows;
  }
  if (pl.groups == 0)
    pl.groups = 1;
  return pl;
}

size_t clloss__rows_extent(size_t rows, size_t classes, size_t ld) {
  return rows ? (rows - 1) * ld + classes : 0;
}

/* The rows whose padding gets zeros: every row when `padding` asks for
 * zeros, but with AUTO (in place) only those whose padding the buffer
 * holds (the last row's padding lies past the N x C extent). */
static clloss_status resolve_padding(clloss_context *ctx,
                                     clloss__rows_call *c) {
  c->pad_rows = 0;
  const int in_place = c->grad_input.mem && c->grad_input.mem == c->input.mem &&
                       c->grad_input.offset == c->input.offset;
  if (!c->grad_input.mem || c->ld == c->cb || c->rows == 0 ||
      !clloss__zero_padding(c->padding, in_place))
    return CLLOSS_SUCCESS;
  size_t size = 0;
  cl_int err = clGetMemObjectInfo(c->grad_input.mem, CL_MEM_SIZE, sizeof size,
                                  &size, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, err, "grad_input is not a valid buffer");
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t holds =
      size / in > c->grad_input.offset ? size / in - c->grad_input.offset : 0;
  const int all = holds / c->ld >= c->rows;
  if (!all && c->padding == CLLOSS_PADDING_ZERO)
    return clloss__fail(ctx, CLLOSS_BUFFER_TOO_SMALL,
                        "grad_input holds %zu elements from its offset; "
                        "zeros in the padding of all %zu rows need %zu",
                        holds, c->rows, c->rows * c->ld);
  c->pad_rows = all ? c->rows : c->rows - 1;
  return CLLOSS_SUCCESS;
}

/* The checks of a call that hold wherever its arrays are (device buffers
 * or host memory; launch.c); `in_place`: grad_input is the input itself. */
static clloss_status check_call(clloss_context *ctx, const clloss__rows_call *c,
                                int in_place) {
  CLLOSS__TRY(clloss__check_accumulate(ctx, c->accumulate, in_place));
  return clloss__check_fp64(ctx, c->input_type);
}

clloss_status clloss__check_rows_buffers(clloss_context *ctx,
                                         clloss__rows_call *c) {
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(c->input_type));
  const size_t extent = clloss__rows_extent(c->rows, c->cb, c->ld);
  CLLOSS__TRY(clloss__check_buffer(ctx, "input", c->input, extent, in, 1));
  if (c->softmax)
    ; /* no targets */
  else if (c->prob_targets)
    CLLOSS__TRY(
        clloss__check_buffer(ctx, "target", c->target, c->rows * c->cb, in, 1));
  else
    CLLOSS__TRY(clloss__check_buffer(ctx, "target", c->target, c->rows,
                                     clloss_dtype_size(c->target_type), 1));
  CLLOSS__TRY(clloss__check_buffer(ctx, "weight", c->weight, c->cb, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "grad_output", c->grad_output,
                                   c->loss_count, real, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "loss", c->loss, c->loss_count, real, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "grad_input", c->grad_input, extent, in, 0));
  const int in_place = c->grad_input.mem == c->input.mem &&
                       c->grad_input.offset == c->input.offset;
  /* In place means the very same elements; a partial overlap would race.
   * (Checked before check_call's: the two cannot both hold.) */
  if (c->grad_input.mem == c->input.mem && extent && !in_place &&
      c->grad_input.offset < c->input.offset + extent &&
      c->input.offset < c->grad_input.offset + extent)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "grad_input overlaps input without being the same "
                        "elements");
  CLLOSS__TRY(check_call(ctx, c, in_place));
  return resolve_padding(ctx, c);
}

void clloss__rows_args_init(clloss_context *ctx, const clloss__rows_call *c,
                            int loss_mode, clloss__rows_args *a) {
  memset(a, 0, sizeof *a);
  cl_mem *m = a->mems;
  m[CLLOSS__ROWS_x] = c->input.mem;
  m[CLLOSS__ROWS_t] = c->prob_targets ? NULL : c->target.mem;
  m[CLLOSS__ROWS_y] = c->prob_targets ? c->target.mem : NULL;
  m[CLLOSS__ROWS_w] = c->weight.mem;
  m[CLLOSS__ROWS_g] = c->grad_output.mem;
  m[CLLOSS__ROWS_stats] = ctx->stats;
  m[CLLOSS__ROWS_loss] = c->loss.mem;
  m[CLLOSS__ROWS_grad] = c->grad_input.mem;
  m[CLLOSS__ROWS_partials] = ctx->partials;
  m[CLLOSS__ROWS_err] = ctx->err;
  clloss__rows_params *p = &a->p;
  p->x_off = c->input.offset;
  p->ld = c->ld;
  p->rows = c->rows;
  p->classes = c->classes;
  p->c0 = c->c0;
  p->cb = c->cb;
  p->t_off = c->prob_targets ? 0 : c->target.offset;
  p->y_off = c->prob_targets ? c->target.offset : 0;
  p->w_off = c->weight.offset;
  p->g_off = c->grad_output.offset;
  p->loss_off = c->loss.offset;
  p->grad_off = c->grad_input.offset;
  p->ignore = c->ignore_index;
  p->has_w = c->weight.mem != NULL;
  p->g_mode = clloss__upstream_mode(c->grad_output.mem != NULL,
                                    c->reduction != CLLOSS_REDUCTION_NONE);
  p->loss_mode = loss_mode;
  p->want_grad = c->grad_input.mem != NULL;
  p->reduction = (cl_int)c->reduction;
  p->accumulate = c->accumulate;
  p->pad_rows = c->pad_rows;
  p->grad_scale = c->grad_scale;
  p->run = 1;
  p->segs = 1;
  p->lanes = 1;
}

clloss_status clloss__rows_enqueue_kernel(clloss__launch *l, cl_kernel k,
                                          const clloss__rows_args *a,
                                          size_t global, size_t local) {
  /* row_cache: at least one element, whatever the variant */
  size_t local_bytes = a->local_bytes ? a->local_bytes : sizeof(cl_double);
  cl_int err =
      clloss__set_kernel_args(k, a->mems, CLLOSS__ROWS_BUFFER_COUNT,
                              l->ctx->dummy, &a->p, sizeof a->p, local_bytes);
  if (err != CL_SUCCESS)
    return clloss__fail(l->ctx, clloss__cl_status(err),
                        "setting a row kernel's arguments failed: %s",
                        clloss_status_name(err));
  return clloss__launch_kernel(l, k, global, local);
}

clloss_status clloss__enqueue_class_targets(clloss__launch *l,
                                            clloss__program *p, int kernel,
                                            const clloss__rows_args *a) {
  size_t local = clloss__group_local_size(l->ctx, p->max_wg[kernel]);
  CLLOSS__TRY(clloss__check_one_group(l->ctx, a->p.rows, local));
  return clloss__rows_enqueue_kernel(l, p->kernels[kernel], a, local, local);
}

/* Checks the host arrays and targets, then fills c's buffers from the pool
 * and queues the copies to the device. */
static clloss_status host_begin(clloss_context *ctx, clloss__rows_call *c,
                                const clloss__rows_host *h) {
  if (!h->input || (!h->target && !c->softmax))
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "input and target must not be NULL");
  CLLOSS__TRY(
      clloss__check_outputs(ctx, h->loss != NULL, h->grad_input != NULL));
  CLLOSS__TRY(check_call(ctx, c, h->grad_input == h->input));
  /* Bad targets are reported before any output is touched. */
  if (!c->prob_targets && !c->softmax)
    CLLOSS__TRY(clloss__check_targets(h->target, c->target_type, c->rows,
                                      c->classes, c->ignore_index, NULL,
                                      ctx->detail));
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(c->input_type));
  const size_t extent = clloss__rows_extent(c->rows, c->classes, c->ld);
  const size_t tbytes = c->softmax ? 0
                        : c->prob_targets
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
      (h->grad_input && c->accumulate &&
       (s = clloss__pool_upload(ctx, CLLOSS__POOL_GRAD, h->grad_input,
                                extent * in, &c->grad_input)) !=
           CLLOSS_SUCCESS) ||
      (h->grad_input && !c->accumulate &&
       (s = clloss__pool_get(ctx, CLLOSS__POOL_GRAD, extent * in,
                             &c->grad_input.mem)) != CLLOSS_SUCCESS)) {
    clFinish(ctx->queue); /* the queued copies still read host memory */
    return s;
  }
  return CLLOSS_SUCCESS;
}

/* After the device call returned `status`: copies the outputs back. The
 * device call ran with padding KEEP; CLLOSS_PADDING_ZERO in c zeros the
 * caller's padding here (AUTO: host calls are never in place on the
 * device, and keep it). */
static clloss_status host_end(clloss_context *ctx, const clloss__rows_call *c,
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
   * belongs to the caller and stays as it is, unless it asked for zeros
   * (then the caller's array holds N rows of row_stride). */
  const size_t origin[3] = {0, 0, 0};
  const size_t region[3] = {c->classes * in, c->rows, 1};
  cl_int err = clEnqueueReadBufferRect(
      ctx->queue, c->grad_input.mem, CL_TRUE, origin, origin, region,
      c->ld * in, 0, c->ld * in, 0, h->grad_input, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, clloss__cl_status(err),
                        "copying the gradient back failed");
  if (c->padding == CLLOSS_PADDING_ZERO)
    clloss__zero_host_padding(h->grad_input, c->rows, c->classes, c->ld, in);
  return CLLOSS_SUCCESS;
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
  CLLOSS__TRY(clloss__check_outputs(ctx, c->loss.mem != NULL,
                                    c->grad_input.mem != NULL));
  CLLOSS__TRY(clloss__check_rows_buffers(ctx, c));
  clloss__launch l;
  CLLOSS__TRY(clloss__launch_begin(&l, ctx, queue, num_events, wait_list));
  return clloss__launch_end(&l, enqueue(&l, desc, c), event);
}

clloss_status clloss__rows_call_host(clloss_context *ctx, clloss__rows_call *c,
                                     const clloss__rows_host *h,
                                     clloss__rows_enqueue enqueue,
                                     const void *desc) {
  CLLOSS__TRY(host_begin(ctx, c, h));
  /* The pooled buffers are the call's own and of its sizes, distinct for
   * each role: what check_rows_buffers checks holds by construction (the
   * host arrays were checked above), so the device part is not checked
   * again. It runs with padding KEEP (the caller's padding: host_end). */
  clloss__rows_call dc = *c;
  dc.padding = CLLOSS_PADDING_KEEP;
  dc.pad_rows = 0;
  clloss__launch l;
  clloss_status s = clloss__launch_begin(&l, ctx, ctx->queue, 0, NULL);
  if (s == CLLOSS_SUCCESS)
    s = clloss__launch_end(&l, enqueue(&l, desc, &dc), NULL);
  return host_end(ctx, c, h, s);
}

clloss_status clloss__rows_tune_run(clloss_context *ctx,
                                    const clloss__tune_problem *p,
                                    clloss__rows_call *c,
                                    clloss__rows_enqueue enqueue,
                                    const void *desc) {
  return clloss__rows_call_device(
      ctx, p->queue, c, enqueue, desc, CLLOSS_BUFFER(p->x), CLLOSS_BUFFER(p->t),
      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(p->loss),
      CLLOSS_BUFFER(p->grad), 0, NULL, NULL);
}
