/* nll_loss.c - launcher of the negative log-likelihood kernels
 * (kernels/nll_loss.cl), at both call levels. */
#include "internal.h"
#include "rows.h"

enum { NLL_ITEM, NLL_GROUP, NLL_FINISH, NLL_TARGETS, NLL_LANES };
static const char *const nll_kernels[] = {
    "nll_item", "nll_group", "finish_sum", "class_targets", "nll_lanes", NULL};

static clloss__rows_call describe(const clloss_nll_loss_desc *d) {
  clloss__rows_call c = {0};
  c.rows = d->rows;
  c.classes = c.cb = d->classes;
  c.ld = d->row_stride ? d->row_stride : d->classes;
  c.loss_count = clloss_nll_loss_output_count(d);
  c.input_type = d->input_type;
  c.target_type = d->target_type;
  c.reduction = d->reduction;
  c.ignore_index = d->ignore_index;
  c.grad_scale = d->grad_scale;
  c.accumulate = d->accumulate != 0;
  c.padding = d->padding;
  return c;
}

static clloss_status tune_run(clloss_context *ctx,
                              const clloss__tune_problem *p);

static clloss_status enqueue(clloss__launch *l, const void *desc,
                             const clloss__rows_call *c) {
  clloss_context *ctx = l->ctx;
  const int real_size = c->input_type == CLLOSS_FLOAT64 ? 8 : 4;
  clloss__program_key key = clloss__nll_program_key(ctx, desc);
  key.variant = clloss__pick_variant(ctx, CLLOSS__FAMILY_NLL_LOSS, c->rows,
                                     c->classes, c->input_type, tune_run);
  clloss__program *p;
  CLLOSS__TRY(clloss__get_program(ctx, &key, nll_kernels, &p));
  clloss__rows_plan pl = clloss__plan_rows(
      ctx, p->key.variant, c->rows, c->classes, key.vw,
      &(clloss__rows_kernel_max){p->max_wg[NLL_ITEM], p->max_wg[NLL_GROUP],
                                 p->max_wg[NLL_LANES]});
  /* The gradient row's fills (its classes and its padding) over one
   * work-item (item) or a row's lanes, within the device's loop budget
   * (clloss__loop_budget; as cross_entropy's variants): else a group per
   * row. */
  const size_t sharing = pl.variant == CLLOSS__ITEM    ? 1
                         : pl.variant == CLLOSS__LANES ? pl.lanes
                                                       : 0;
  if (sharing && (c->ld / (size_t)key.vw + (size_t)key.vw) / sharing >
                     clloss__loop_budget(ctx)) {
    key.variant = CLLOSS__GROUP;
    CLLOSS__TRY(clloss__get_program(ctx, &key, nll_kernels, &p));
    pl = clloss__plan_rows(ctx, p->key.variant, c->rows, c->classes, key.vw,
                           &(clloss__rows_kernel_max){p->max_wg[NLL_ITEM],
                                                      p->max_wg[NLL_GROUP],
                                                      p->max_wg[NLL_LANES]});
  }
  const int kernel = pl.variant == CLLOSS__ITEM    ? NLL_ITEM
                     : pl.variant == CLLOSS__LANES ? NLL_LANES
                                                   : NLL_GROUP;
  const size_t local = pl.local, groups = pl.groups, partials = pl.partials;
  const int reduce = c->loss.mem && c->reduction != CLLOSS_REDUCTION_NONE;
  CLLOSS__TRY(clloss__reserve_partials(ctx, partials, real_size));
  clloss__rows_args a;
  clloss__rows_args_init(ctx, c,
                         clloss__losses_mode(c->loss.mem != NULL, reduce), &a);
  a.p.lanes = pl.lanes ? pl.lanes : 1;
  CLLOSS__TRY(clloss__enqueue_class_targets(l, p, NLL_TARGETS, &a));
  if (c->rows > 0)
    CLLOSS__TRY(clloss__rows_enqueue_kernel(l, p->kernels[kernel], &a,
                                            groups * local, local));
  if (reduce)
    CLLOSS__TRY(clloss__finish_sum(
        l, p, NLL_FINISH, c->rows ? partials : 0,
        clloss__divide_mode(c->reduction == CLLOSS_REDUCTION_MEAN, 0), 0, 0,
        c->loss));
  ctx->last_variant = clloss__variant_name(pl.variant);
  return CLLOSS_SUCCESS;
}

/* tune.c's measurement (clloss__tune_run): a default descriptor of the
 * problem's shape and type, through the device path. */
static clloss_status tune_run(clloss_context *ctx,
                              const clloss__tune_problem *p) {
  clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
  d.rows = p->rows;
  d.classes = p->classes;
  d.input_type = p->type;
  clloss__rows_call c = describe(&d);
  return clloss__rows_tune_run(ctx, p, &c, enqueue, &d);
}

clloss_status clloss_nll_loss(clloss_context *ctx, cl_command_queue queue,
                              const clloss_nll_loss_desc *desc,
                              clloss_buffer input, clloss_buffer target,
                              clloss_buffer weight, clloss_buffer grad_output,
                              clloss_buffer loss, clloss_buffer grad_input,
                              cl_uint num_events, const cl_event *wait_list,
                              cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  clloss_nll_loss_desc d;
  CLLOSS__TRY(clloss__check_nll_loss_desc(desc, &d, ctx->detail));
  clloss__rows_call c = describe(&d);
  return clloss__rows_call_device(ctx, queue, &c, enqueue, &d, input, target,
                                  weight, grad_output, loss, grad_input,
                                  num_events, wait_list, event);
}

clloss_status clloss_nll_loss_host(clloss_context *ctx,
                                   const clloss_nll_loss_desc *desc,
                                   const void *input, const void *target,
                                   const void *weight, const void *grad_output,
                                   void *loss, void *grad_input) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  clloss_nll_loss_desc d;
  CLLOSS__TRY(clloss__check_nll_loss_desc(desc, &d, ctx->detail));
  clloss__rows_call c = describe(&d);
  clloss__rows_host h = {input, target, weight, grad_output, loss, grad_input};
  d.padding = CLLOSS_PADDING_KEEP; /* the caller's padding: c's */
  return clloss__rows_call_host(ctx, &c, &h, enqueue, &d);
}
