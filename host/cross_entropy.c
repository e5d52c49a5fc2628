/* cross_entropy.c - launcher of the fused softmax cross-entropy kernels
 * (kernels/cross_entropy.cl), at both call levels. */
#include "cross_entropy.h"

static const char *const ce_kernels[] = {"ce_item",          "ce_group",
                                         "finish_sum",       "class_targets",
                                         "ce_split_stats",   "ce_split_grad",
                                         "ce_stats_combine", "ce_shard_targets",
                                         "ce_lanes",         NULL};

/* How the rows are cut into work. */
typedef struct ce_plan {
  clloss__variant variant;
  size_t local, groups, partials;
  size_t run, items;    /* item only: rows per work-item, work-items */
  size_t exps;          /* item only: elements of ctx->exps used, or 0 */
  size_t on_chip;       /* group only: bytes of local memory for the row */
  size_t segs, seg_len; /* split only */
  size_t lanes;         /* lanes only: work-items per row */
} ce_plan;

/* Item variant on a CPU: runs of consecutive rows per work-item, so that
 * ce_item takes the next row's max while it computes the current row's
 * exps (memory reads overlapped with arithmetic), as long as every compute
 * unit still gets 4 groups of 64 work-items. Other devices: one row per
 * work-item, neighbours in neighbouring work-items. */
static size_t item_run(const clloss_context *ctx, size_t rows) {
  if (!(ctx->info.type & CL_DEVICE_TYPE_CPU))
    return 1;
  size_t run = rows / (4 * 64 * (size_t)ctx->info.compute_units);
  return run < 1 ? 1 : run > 16 ? 16 : run;
}

/* Local memory for logits kept between the statistics and the gradient
 * pass (group: the row; lanes: the group's rows): at most a third of the
 * device's local memory less the kernels' own reduction arrays, so that
 * three work-groups fit on a compute unit (a bandwidth-bound kernel needs
 * the occupancy); 0 when `count` reals do not fit. */
static size_t on_chip_bytes(const clloss_context *ctx, size_t count,
                            size_t real_size) {
  const size_t own = ctx->wg_size * 5 * real_size; /* red and red4 */
  const size_t third = (size_t)(ctx->info.local_mem_size / 3);
  const size_t limit = third > own ? third - own : 0;
  return count <= limit / real_size ? count * real_size : 0;
}

static ce_plan plan(const clloss_context *ctx, const clloss__program *p,
                    size_t rows, size_t classes, int vw) {
  const clloss__rows_kernel_max max = {p->max_wg[CE_ITEM], p->max_wg[CE_GROUP],
                                       p->max_wg[CE_LANES]};
  const clloss__rows_plan rp =
      clloss__plan_rows(ctx, p->key.variant, rows, classes, vw, &max);
  const size_t real_size =
      p->key.in_type == CLLOSS_FLOAT64 ? sizeof(double) : sizeof(float);
  ce_plan pl = {.variant = rp.variant,
                .local = rp.local,
                .groups = rp.groups,
                .partials = rp.partials,
                .lanes = rp.lanes,
                .run = 1};
  if (pl.variant == CLLOSS__ITEM) {
    pl.run = item_run(ctx, rows);
    /* A run's three passes over each of its rows within the device's loop
     * budget (a row that does not fit alone: another variant, below). */
    const size_t per_row = 3 * (classes / (size_t)vw + (size_t)vw);
    const size_t budget = clloss__loop_budget(ctx);
    if (pl.run > 1 && pl.run * per_row > budget)
      pl.run = budget / per_row > 1 ? budget / per_row : 1;
    pl.items = (rows + pl.run - 1) / pl.run;
    pl.local = clloss__item_local_size(ctx, pl.items, p->max_wg[CE_ITEM]);
    pl.groups = (pl.items + pl.local - 1) / pl.local;
    pl.partials = pl.groups;
  }
  if (pl.variant == CLLOSS__GROUP)
    pl.on_chip = on_chip_bytes(ctx, classes, real_size);
  if (pl.variant == CLLOSS__LANES)
    pl.on_chip = on_chip_bytes(ctx, pl.local / pl.lanes * classes, real_size);
  if (p->key.variant == CLLOSS__SPLIT) {
    pl.variant = CLLOSS__SPLIT;
    pl.on_chip = 0;
    const int cpu = (ctx->info.type & CL_DEVICE_TYPE_CPU) != 0;
    /* CPUs: one work-item per segment walks it contiguously. */
    size_t kmax = p->max_wg[CE_SPLIT_STATS] < p->max_wg[CE_SPLIT_GRAD]
                      ? p->max_wg[CE_SPLIT_STATS]
                      : p->max_wg[CE_SPLIT_GRAD];
    pl.local = cpu ? 1 : clloss__group_local_size(ctx, kmax);
    size_t want = 4 * (size_t)ctx->info.compute_units;
    size_t segs = rows ? (want + rows - 1) / rows : 1;
    size_t min_len = (size_t)vw * pl.local * 16;
    size_t len = (classes + segs - 1) / segs;
    len = (len + vw - 1) / vw * vw;
    pl.seg_len = len < min_len ? min_len : len;
    /* Within the device's loop budget: a segment's vectors over its
     * group's work-items, and the combine's loop over the segments. */
    const size_t budget = clloss__loop_budget(ctx);
    if (budget != SIZE_MAX) {
      const size_t most = (budget > 2 ? budget / 2 : 1) * (size_t)vw * pl.local;
      if (pl.seg_len > most)
        pl.seg_len = most;
    }
    pl.segs = (classes + pl.seg_len - 1) / pl.seg_len;
    pl.groups = rows * pl.segs < 65536 ? rows * pl.segs : 65536;
    pl.partials = rows;
  }
  return pl;
}

/* The loop iterations of one work-item of the plan's rows kernel over one
 * row (its passes over the row's vectors), or over a run of rows in the
 * item variant; the split variant's plan sizes its segments itself. */
static size_t plan_iterations(const ce_plan *pl, size_t rows, size_t classes,
                              int vw) {
  const size_t vectors = classes / (size_t)vw + (size_t)vw;
  /* the rows (lanes: blocks of rows) a group takes in turn */
  const size_t turns = pl->groups ? (rows + pl->groups - 1) / pl->groups : 0;
  switch (pl->variant) {
  case CLLOSS__ITEM:
    return 3 * vectors * pl->run;
  case CLLOSS__LANES:
    return 2 * (vectors / pl->lanes + (size_t)vw) * turns;
  case CLLOSS__GROUP:
    return 2 * (vectors / pl->local + (size_t)vw) * turns;
  default:
    return 0;
  }
}

/* Item variant, 16-bit storage, gradient wanted: pass 2 keeps its exps in
 * a float32 row of each work-item's own (ctx->exps) for pass 3, instead of
 * computing them again, when those rows take at most EXPS_BUDGET bytes. */
#define EXPS_BUDGET ((size_t)64 << 20)
static size_t exps_count(const ce_plan *pl, const clloss_cross_entropy_desc *d,
                         const clloss__rows_call *c) {
  const int sixteen =
      d->input_type == CLLOSS_FLOAT16 || d->input_type == CLLOSS_BFLOAT16;
  if (pl->variant != CLLOSS__ITEM || !sixteen || !c->grad_input.mem ||
      d->softcap > 0 || c->rows == 0)
    return 0;
  if (c->classes > EXPS_BUDGET / sizeof(float) / pl->items)
    return 0;
  return pl->items * c->classes;
}

clloss__rows_call clloss__ce_describe(const clloss_cross_entropy_desc *d) {
  clloss__rows_call c = {0};
  c.rows = d->rows;
  c.classes = c.cb = d->classes;
  c.ld = d->row_stride ? d->row_stride : d->classes;
  c.loss_count = clloss_cross_entropy_output_count(d);
  c.input_type = d->input_type;
  c.target_type = d->target_type;
  c.prob_targets = clloss__is_probability_target(d->target_type);
  c.reduction = d->reduction;
  c.ignore_index = d->ignore_index;
  c.grad_scale = d->grad_scale;
  c.accumulate = d->accumulate != 0;
  c.padding = d->padding;
  return c;
}

void clloss__ce_args_init(clloss_context *ctx,
                          const clloss_cross_entropy_desc *d,
                          const clloss__rows_call *c, int loss_mode,
                          clloss__rows_args *a) {
  clloss__rows_args_init(ctx, c, loss_mode, a);
  a->p.eps = d->label_smoothing;
  a->p.z = d->z_loss;
  a->p.cap = d->softcap;
  a->p.norm = d->normalizer;
  /* Probability targets: the mean divides by N. */
  a->p.mean_count = c->prob_targets ? c->rows : 0;
}

clloss_status clloss__ce_program(clloss_context *ctx,
                                 const clloss_cross_entropy_desc *d,
                                 clloss__variant variant,
                                 clloss__program **out) {
  clloss__program_key key = clloss__ce_program_key(ctx, d);
  key.variant = variant;
  return clloss__get_program(ctx, &key, ce_kernels, out);
}

/* The kernels' arguments: the row losses' own, then cross_entropy's
 * options and the plan's. */
static void make_args(clloss_context *ctx, const clloss_cross_entropy_desc *d,
                      const clloss__rows_call *c, int loss_mode,
                      const ce_plan *pl, clloss__rows_args *a) {
  clloss__ce_args_init(ctx, d, c, loss_mode, a);
  a->p.run = pl->run;
  a->p.use_exps = pl->exps != 0;
  a->p.cache_row = pl->on_chip != 0;
  a->p.segs = pl->segs ? pl->segs : 1;
  a->p.softmax = c->softmax;
  a->p.seg_len = pl->seg_len;
  a->p.lanes = pl->lanes ? pl->lanes : 1;
  a->local_bytes = pl->on_chip;
  if (pl->variant == CLLOSS__ITEM && pl->exps)
    a->mems[CLLOSS__ROWS_scratch] = ctx->exps;
  if (pl->variant == CLLOSS__SPLIT)
    a->mems[CLLOSS__ROWS_scratch] = ctx->segments;
}

static clloss_status tune_run(clloss_context *ctx,
                              const clloss__tune_problem *p);

static clloss_status enqueue(clloss__launch *l, const void *desc,
                             const clloss__rows_call *c) {
  const clloss_cross_entropy_desc *d = desc;
  clloss_context *ctx = l->ctx;
  const int real_size = d->input_type == CLLOSS_FLOAT64 ? 8 : 4;
  clloss__program *p;
  clloss__variant v =
      clloss__pick_variant(ctx, CLLOSS__FAMILY_CROSS_ENTROPY, c->rows,
                           c->classes, d->input_type, tune_run);
  CLLOSS__TRY(clloss__ce_program(ctx, d, v, &p));
  ce_plan pl = plan(ctx, p, c->rows, c->classes, p->key.vw);
  /* Within the device's loop budget, forced variants too (a wrong result
   * is no choice): item and lanes give way to group, group to split. */
  while (pl.variant != CLLOSS__SPLIT &&
         plan_iterations(&pl, c->rows, c->classes, p->key.vw) >
             clloss__loop_budget(ctx)) {
    v = pl.variant == CLLOSS__GROUP ? CLLOSS__SPLIT : CLLOSS__GROUP;
    CLLOSS__TRY(clloss__ce_program(ctx, d, v, &p));
    pl = plan(ctx, p, c->rows, c->classes, p->key.vw);
  }
  pl.exps = exps_count(&pl, d, c);
  if (pl.exps)
    CLLOSS__TRY(clloss__reserve(ctx, &ctx->exps, &ctx->exps_bytes, pl.exps,
                                sizeof(float)));
  if (pl.variant == CLLOSS__SPLIT)
    CLLOSS__TRY(clloss__reserve(ctx, &ctx->segments, &ctx->segments_bytes,
                                c->rows * pl.segs * CLLOSS_STATS_RECORD,
                                real_size));
  const int reduce = c->loss.mem && d->reduction != CLLOSS_REDUCTION_NONE;
  const int loss_mode = clloss__losses_mode(c->loss.mem != NULL, reduce);
  CLLOSS__TRY(clloss__reserve_partials(ctx, pl.partials, real_size));
  clloss__rows_args a;
  make_args(ctx, d, c, loss_mode, &pl, &a);

  if (!c->prob_targets && !c->softmax)
    CLLOSS__TRY(clloss__enqueue_class_targets(l, p, CE_TARGETS, &a));
  if (c->rows > 0 && pl.variant != CLLOSS__SPLIT) {
    int k = pl.variant == CLLOSS__ITEM    ? CE_ITEM
            : pl.variant == CLLOSS__LANES ? CE_LANES
                                          : CE_GROUP;
    CLLOSS__TRY(clloss__rows_enqueue_kernel(l, p->kernels[k], &a,
                                            pl.groups * pl.local, pl.local));
  } else if (c->rows > 0) {
    for (int k = CE_SPLIT_STATS; k <= CE_SPLIT_GRAD; k++)
      CLLOSS__TRY(clloss__rows_enqueue_kernel(l, p->kernels[k], &a,
                                              pl.groups * pl.local, pl.local));
  }
  if (reduce) {
    /* mean: the normalizer when > 0, else N for probability targets,
     * else the weight sum */
    const int mode = clloss__divide_mode(d->reduction == CLLOSS_REDUCTION_MEAN,
                                         d->normalizer > 0 || c->prob_targets);
    CLLOSS__TRY(clloss__finish_sum(l, p, CE_FINISH, c->rows ? pl.partials : 0,
                                   mode, d->normalizer, d->rows, c->loss));
  }
  ctx->last_variant = clloss__variant_name(pl.variant);
  return CLLOSS_SUCCESS;
}

/* tune.c's measurement (clloss__tune_run): a default descriptor of the
 * problem's shape and type, through the device path. */
static clloss_status tune_run(clloss_context *ctx,
                              const clloss__tune_problem *p) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = p->rows;
  d.classes = p->classes;
  d.input_type = p->type;
  clloss__rows_call c = clloss__ce_describe(&d);
  return clloss__rows_tune_run(ctx, p, &c, enqueue, &d);
}

clloss_status clloss_cross_entropy(clloss_context *ctx, cl_command_queue queue,
                                   const clloss_cross_entropy_desc *desc,
                                   clloss_buffer input, clloss_buffer target,
                                   clloss_buffer weight,
                                   clloss_buffer grad_output,
                                   clloss_buffer loss, clloss_buffer grad_input,
                                   cl_uint num_events,
                                   const cl_event *wait_list, cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  clloss_cross_entropy_desc d;
  CLLOSS__TRY(clloss__check_cross_entropy_desc(desc, &d, ctx->detail));
  clloss__rows_call c = clloss__ce_describe(&d);
  return clloss__rows_call_device(ctx, queue, &c, enqueue, &d, input, target,
                                  weight, grad_output, loss, grad_input,
                                  num_events, wait_list, event);
}

clloss_status clloss_cross_entropy_host(clloss_context *ctx,
                                        const clloss_cross_entropy_desc *desc,
                                        const void *input, const void *target,
                                        const void *weight,
                                        const void *grad_output, void *loss,
                                        void *grad_input) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  clloss_cross_entropy_desc d;
  CLLOSS__TRY(clloss__check_cross_entropy_desc(desc, &d, ctx->detail));
  clloss__rows_call c = clloss__ce_describe(&d);
  clloss__rows_host h = {input, target, weight, grad_output, loss, grad_input};
  d.padding = CLLOSS_PADDING_KEEP; /* the caller's padding: c's */
  return clloss__rows_call_host(ctx, &c, &h, enqueue, &d);
}

/* softmax: cross_entropy's kernels with P.softmax: the gradient pass with
 * A = 1 and no target terms writes p itself, and no loss. */
static clloss__rows_call describe_softmax(const clloss_softmax_desc *d,
                                          clloss_cross_entropy_desc *ce) {
  const clloss_cross_entropy_desc defaults = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  *ce = defaults;
  ce->rows = d->rows;
  ce->classes = d->classes;
  ce->row_stride = d->row_stride;
  ce->input_type = d->input_type;
  ce->reduction = CLLOSS_REDUCTION_NONE;
  ce->padding = d->padding;
  clloss__rows_call c = clloss__ce_describe(ce);
  c.softmax = 1;
  c.loss_count = 0;
  return c;
}

clloss_status clloss_softmax(clloss_context *ctx, cl_command_queue queue,
                             const clloss_softmax_desc *desc,
                             clloss_buffer input, clloss_buffer output,
                             cl_uint num_events, const cl_event *wait_list,
                             cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  clloss_softmax_desc d;
  CLLOSS__TRY(clloss__check_softmax_desc(desc, &d, ctx->detail));
  if (!output.mem)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "output is NULL");
  clloss_cross_entropy_desc ce;
  clloss__rows_call c = describe_softmax(&d, &ce);
  return clloss__rows_call_device(ctx, queue, &c, enqueue, &ce, input,
                                  CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                                  CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                                  output, num_events, wait_list, event);
}

clloss_status clloss_softmax_host(clloss_context *ctx,
                                  const clloss_softmax_desc *desc,
                                  const void *input, void *output) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  clloss__enter(ctx);
  clloss_softmax_desc d;
  CLLOSS__TRY(clloss__check_softmax_desc(desc, &d, ctx->detail));
  if (!output)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "output is NULL");
  clloss_cross_entropy_desc ce;
  clloss__rows_call c = describe_softmax(&d, &ce);
  clloss__rows_host h = {input, NULL, NULL, NULL, NULL, output};
  ce.padding = CLLOSS_PADDING_KEEP; /* the caller's padding: c's */
  return clloss__rows_call_host(ctx, &c, &h, enqueue, &ce);
}
