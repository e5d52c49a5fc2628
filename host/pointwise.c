/* pointwise.c - launcher of the element-wise losses (kernels/pointwise.cl):
 * mse, l1, huber, smooth_l1, binary_cross_entropy_with_logits, kl_div. */
#include <string.h>

#include "internal.h"
#include "kernel_args.h"

enum { PW_ITEM, PW_GROUP, PW_FINISH };
static const char *const pw_kernels[] = {"pw_item", "pw_group", "finish_sum",
                                         NULL};

/* The divisor of mean / batchmean (0: none). */
static size_t divisor(const clloss_pointwise_desc *d) {
  if (d->reduction == CLLOSS_REDUCTION_MEAN)
    return d->count;
  if (d->reduction == CLLOSS_REDUCTION_BATCHMEAN)
    return d->batch;
  return 0;
}

/* Weights are bce_with_logits's, and come with their counts (both paths;
 * has_*: the weight is given). */
static clloss_status check_weights(clloss_context *ctx,
                                   const clloss_pointwise_desc *d,
                                   int has_weight, int has_pos_weight) {
  if ((has_weight || has_pos_weight) && d->loss != CLLOSS_BCE_WITH_LOGITS)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "weight and pos_weight are for "
                        "binary_cross_entropy_with_logits only");
  if ((has_weight && !d->weight_count) ||
      (has_pos_weight && !d->pos_weight_count))
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "a weight is given but its count is 0");
  return CLLOSS_SUCCESS;
}

/* The device call's checks of its buffers. */
static clloss_status
check_buffers(clloss_context *ctx, const clloss_pointwise_desc *d,
              clloss_buffer input, clloss_buffer target, clloss_buffer weight,
              clloss_buffer pos_weight, clloss_buffer grad_output,
              clloss_buffer loss, clloss_buffer grad_input) {
  const size_t in = clloss_dtype_size(d->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(d->input_type));
  const size_t nloss = clloss_pointwise_output_count(d);
  CLLOSS__TRY(
      clloss__check_outputs(ctx, loss.mem != NULL, grad_input.mem != NULL));
  CLLOSS__TRY(
      check_weights(ctx, d, weight.mem != NULL, pos_weight.mem != NULL));
  CLLOSS__TRY(clloss__check_buffer(ctx, "input", input, d->count, in, 1));
  CLLOSS__TRY(clloss__check_buffer(ctx, "target", target, d->count, in, 1));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "weight", weight, d->weight_count, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "pos_weight", pos_weight,
                                   d->pos_weight_count, real, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "grad_output", grad_output, nloss, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "loss", loss, nloss, real, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "grad_input", grad_input, d->count, in, 0));
  CLLOSS__TRY(clloss__check_accumulate(ctx, d->accumulate,
                                       grad_input.mem == input.mem &&
                                           grad_input.offset == input.offset));
  if (grad_input.mem == input.mem && grad_input.offset != input.offset &&
      grad_input.offset < input.offset + d->count &&
      input.offset < grad_input.offset + d->count)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "grad_input overlaps input without being the same "
                        "elements");
  return clloss__check_fp64(ctx, d->input_type);
}

/* How the elements are cut into work. */
typedef struct pw_plan {
  int kernel; /* PW_ITEM or PW_GROUP */
  size_t local, groups, chunk;
} pw_plan;

static pw_plan plan(const clloss_context *ctx, const clloss__program *p,
                    size_t n, size_t vw) {
  const size_t cu = ctx->info.compute_units;
  pw_plan pl = {PW_GROUP, 0, 0, 0};
  if (p->key.variant == CLLOSS__ITEM) {
    /* Contiguous chunks, a multiple of VW, about 32 per compute unit. */
    size_t per = (n + 32 * cu - 1) / (32 * cu);
    pl.kernel = PW_ITEM;
    pl.chunk = (per + vw - 1) / vw * vw;
    if (pl.chunk < vw * 64)
      pl.chunk = vw * 64;
    /* A chunk's vectors within the device's loop budget. */
    const size_t budget = clloss__loop_budget(ctx);
    if (budget != SIZE_MAX && pl.chunk / vw > budget)
      pl.chunk = (budget ? budget : 1) * vw;
    size_t items = (n + pl.chunk - 1) / pl.chunk;
    pl.local = clloss__item_local_size(ctx, items, p->max_wg[PW_ITEM]);
    pl.groups = (items + pl.local - 1) / pl.local;
  } else {
    /* Grid-stride: enough groups to fill the device, no more. */
    pl.local = clloss__group_local_size(ctx, p->max_wg[PW_GROUP]);
    pl.groups = (n + pl.local * vw - 1) / (pl.local * vw);
    if (pl.groups > 16 * cu)
      pl.groups = 16 * cu;
  }
  if (pl.groups == 0)
    pl.groups = 1;
  return pl;
}

/* The buffers of one call. */
typedef struct pw_call {
  const clloss_pointwise_desc *d;
  clloss_buffer input, target, weight, pos_weight, grad_output, loss,
      grad_input;
} pw_call;

/* Sets the kernel's arguments (kernels/params.h). */
static clloss_status set_args(clloss_context *ctx, cl_kernel k,
                              const pw_call *c, const pw_plan *pl,
                              int loss_mode) {
  const clloss_pointwise_desc *d = c->d;
  cl_mem m[CLLOSS__PW_BUFFER_COUNT] = {0};
  m[CLLOSS__PW_x] = c->input.mem;
  m[CLLOSS__PW_y] = c->target.mem;
  m[CLLOSS__PW_w] = c->weight.mem;
  m[CLLOSS__PW_pw] = c->pos_weight.mem;
  m[CLLOSS__PW_g] = c->grad_output.mem;
  m[CLLOSS__PW_loss] = c->loss.mem;
  m[CLLOSS__PW_grad] = c->grad_input.mem;
  m[CLLOSS__PW_partials] = ctx->partials;
  clloss__pointwise_params p;
  memset(&p, 0, sizeof p);
  p.x_off = c->input.offset;
  p.y_off = c->target.offset;
  p.w_off = c->weight.offset;
  p.wc = c->weight.mem ? d->weight_count : 0;
  p.pw_off = c->pos_weight.offset;
  p.pwc = c->pos_weight.mem ? d->pos_weight_count : 0;
  p.g_off = c->grad_output.offset;
  p.loss_off = c->loss.offset;
  p.grad_off = c->grad_input.offset;
  p.n = d->count;
  p.chunk = pl->chunk;
  p.divisor = divisor(d);
  p.g_mode = clloss__upstream_mode(c->grad_output.mem != NULL,
                                   d->reduction != CLLOSS_REDUCTION_NONE);
  p.loss_mode = loss_mode;
  p.want_grad = c->grad_input.mem != NULL;
  p.flag = d->log_target != 0;
  p.p1 = d->loss == CLLOSS_HUBER_LOSS ? d->delta : d->beta;
  p.grad_scale = d->grad_scale;
  p.accumulate = d->accumulate != 0;
  cl_int err = clloss__set_kernel_args(k, m, CLLOSS__PW_BUFFER_COUNT,
                                       ctx->dummy, &p, sizeof p, 0);
  if (err != CL_SUCCESS)
    return clloss__fail(ctx, clloss__cl_status(err),
                        "setting pointwise arguments failed: %s",
                        clloss_status_name(err));
  return CLLOSS_SUCCESS;
}

static clloss_status tune_run(clloss_context *ctx,
                              const clloss__tune_problem *p);

static clloss_status enqueue(clloss__launch *l, const pw_call *c) {
  clloss_context *ctx = l->ctx;
  const clloss_pointwise_desc *d = c->d;
  clloss__program_key key = clloss__pw_program_key(ctx, d);
  key.variant = clloss__pick_variant(ctx, CLLOSS__FAMILY_POINTWISE, d->count, 1,
                                     d->input_type, tune_run);
  const int vw = key.vw;
  clloss__program *p;
  CLLOSS__TRY(clloss__get_program(ctx, &key, pw_kernels, &p));
  const pw_plan pl = plan(ctx, p, d->count, (size_t)vw);
  const int reduce = c->loss.mem && d->reduction != CLLOSS_REDUCTION_NONE;
  CLLOSS__TRY(clloss__reserve_partials(
      ctx, pl.groups, d->input_type == CLLOSS_FLOAT64 ? 8 : 4));
  if (d->count > 0) {
    CLLOSS__TRY(set_args(ctx, p->kernels[pl.kernel], c, &pl,
                         clloss__losses_mode(c->loss.mem != NULL, reduce)));
    CLLOSS__TRY(clloss__launch_kernel(l, p->kernels[pl.kernel],
                                      pl.groups * pl.local, pl.local));
  }
  /* sum, or mean / batchmean (of nothing: 0 / 0 = NaN, as PyTorch) */
  if (reduce)
    CLLOSS__TRY(clloss__finish_sum(
        l, p, PW_FINISH, d->count ? pl.groups : 0,
        clloss__divide_mode(d->reduction != CLLOSS_REDUCTION_SUM, 1), 0,
        divisor(d), c->loss));
  ctx->last_variant =
      clloss__variant_name(pl.kernel == PW_ITEM ? CLLOSS__ITEM : CLLOSS__GROUP);
  return CLLOSS_SUCCESS;
}

/* The launch of a checked call. */
static clloss_status launch(clloss_context *ctx, cl_command_queue queue,
                            const pw_call *c, cl_uint num_events,
                            const cl_event *wait_list, cl_event *event) {
  clloss__launch l;
  CLLOSS__TRY(clloss__launch_begin(&l, ctx, queue, num_events, wait_list));
  return clloss__launch_end(&l, enqueue(&l, c), event);
}

/* The device call on a checked descriptor: its buffers' checks, then the
 * launch. */
static clloss_status call_device(clloss_context *ctx, cl_command_queue queue,
                                 const clloss_pointwise_desc *d,
                                 clloss_buffer input, clloss_buffer target,
                                 clloss_buffer weight, clloss_buffer pos_weight,
                                 clloss_buffer grad_output, clloss_buffer loss,
                                 clloss_buffer grad_input, cl_uint num_events,
                                 const cl_event *wait_list, cl_event *event) {
  CLLOSS__TRY(check_buffers(ctx, d, input, target, weight, pos_weight,
                            grad_output, loss, grad_input));
  const pw_call c = {d,          input,       target, weight,
                     pos_weight, grad_output, loss,   grad_input};
  return launch(ctx, queue, &c, num_events, wait_list, event);
}

/* tune.c's measurement (clloss__tune_run): mse_loss of the problem's count
 * and type, through the device path. */
static clloss_status tune_run(clloss_context *ctx,
                              const clloss__tune_problem *p) {
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  d.count = p->rows;
  d.input_type = p->type;
  const clloss_buffer none = CLLOSS_BUFFER_NONE;
  return call_device(
      ctx, p->queue, &d, CLLOSS_BUFFER(p->x), CLLOSS_BUFFER(p->y), none, none,
      none, CLLOSS_BUFFER(p->loss), CLLOSS_BUFFER(p->grad), 0, NULL, NULL);
}

clloss_status clloss_pointwise(clloss_context *ctx, cl_command_queue queue,
                               const clloss_pointwise_desc *desc,
                               clloss_buffer input, clloss_buffer target,
                               clloss_buffer weight, clloss_buffer pos_weight,
                               clloss_buffer grad_output, clloss_buffer loss,
                               clloss_buffer grad_input, cl_uint num_events,
                               const cl_event *wait_list, cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  clloss_pointwise_desc d;
  CLLOSS__TRY(clloss__check_pointwise_desc(desc, &d, ctx->detail));
  return call_device(ctx, queue, &d, input, target, weight, pos_weight,
                     grad_output, loss, grad_input, num_events, wait_list,
                     event);
}

clloss_status clloss_pointwise_host(clloss_context *ctx,
                                    const clloss_pointwise_desc *desc,
                                    const void *input, const void *target,
                                    const void *weight, const void *pos_weight,
                                    const void *grad_output, void *loss,
                                    void *grad_input) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  clloss_pointwise_desc dd;
  CLLOSS__TRY(clloss__check_pointwise_desc(desc, &dd, ctx->detail));
  const clloss_pointwise_desc *d = &dd;
  if (!input || !target)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "input and target must not be NULL");
  /* The checks of the device call's that hold for host arrays, in its
   * order, before anything is copied; the pooled buffers below are the
   * call's own and of its sizes, so they are not checked again. */
  CLLOSS__TRY(clloss__check_outputs(ctx, loss != NULL, grad_input != NULL));
  CLLOSS__TRY(
      clloss__check_accumulate(ctx, d->accumulate, grad_input == input));
  CLLOSS__TRY(check_weights(ctx, d, weight != NULL, pos_weight != NULL));
  CLLOSS__TRY(clloss__check_fp64(ctx, d->input_type));
  const size_t in = clloss_dtype_size(d->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(d->input_type));
  const size_t nloss = clloss_pointwise_output_count(d);
  clloss_buffer bi, bt, bw, bp, bg, bl = {0}, bd = {0};
  clloss_status s;
  if ((s = clloss__pool_upload(ctx, CLLOSS__POOL_INPUT, input, d->count * in,
                               &bi)) != CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_TARGET, target, d->count * in,
                               &bt)) != CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_WEIGHT, weight,
                               d->weight_count * real, &bw)) !=
          CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_POS_WEIGHT, pos_weight,
                               d->pos_weight_count * real, &bp)) !=
          CLLOSS_SUCCESS ||
      (s = clloss__pool_upload(ctx, CLLOSS__POOL_GRAD_OUTPUT, grad_output,
                               nloss * real, &bg)) != CLLOSS_SUCCESS ||
      (loss && (s = clloss__pool_get(ctx, CLLOSS__POOL_LOSS, nloss * real,
                                     &bl.mem)) != CLLOSS_SUCCESS) ||
      (grad_input && d->accumulate &&
       (s = clloss__pool_upload(ctx, CLLOSS__POOL_GRAD, grad_input,
                                d->count * in, &bd)) != CLLOSS_SUCCESS) ||
      (grad_input && !d->accumulate &&
       (s = clloss__pool_get(ctx, CLLOSS__POOL_GRAD, d->count * in, &bd.mem)) !=
           CLLOSS_SUCCESS) ||
      (s = launch(ctx, ctx->queue,
                  &(const pw_call){d, bi, bt, bw, bp, bg, bl, bd}, 0, NULL,
                  NULL)) != CLLOSS_SUCCESS) {
    clFinish(ctx->queue); /* the queued copies still read host memory */
    return s;
  }
  CLLOSS__TRY(clloss__pool_download(ctx, bl, loss, nloss * real));
  return clloss__pool_download(ctx, bd, grad_input, d->count * in);
}

static clloss_status simple(clloss_context *ctx, clloss_pointwise_loss which,
                            size_t count, clloss_reduction reduction,
                            const float *input, const float *target,
                            float *loss, float *grad_input) {
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(which);
  d.count = count;
  d.reduction = reduction;
  return clloss_pointwise_host(ctx, &d, input, target, NULL, NULL, NULL, loss,
                               grad_input);
}

clloss_status clloss_mse_loss_host(clloss_context *ctx, size_t count,
                                   clloss_reduction reduction,
                                   const float *input, const float *target,
                                   float *loss, float *grad_input) {
  return simple(ctx, CLLOSS_MSE_LOSS, count, reduction, input, target, loss,
                grad_input);
}

clloss_status clloss_l1_loss_host(clloss_context *ctx, size_t count,
                                  clloss_reduction reduction,
                                  const float *input, const float *target,
                                  float *loss, float *grad_input) {
  return simple(ctx, CLLOSS_L1_LOSS, count, reduction, input, target, loss,
                grad_input);
}
