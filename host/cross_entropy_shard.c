/* cross_entropy_shard.c - cross_entropy over a split vocabulary: the partial
 * statistics of a block of classes, the combine of records (device and
 * host) and the finish of a block, on cross_entropy's kernels
 * (ce_split_stats and ce_split_grad with one segment per row,
 * ce_stats_combine, ce_shard_targets). See clloss.h, "shard statistics". */
#include <float.h>
#include <math.h>
#include <string.h>

#include "cross_entropy.h"

/* The host combine: the kernels' combine() (cross_entropy.cl) in C. */
#define DEFINE_COMBINE(name, T, EXP, MAXF)                                     \
  void name(T *inout, const T *in, size_t count) {                             \
    for (size_t i = 0; i < count; i++) {                                       \
      const T a = inout[i], b = in[i];                                         \
      T r;                                                                     \
      r.max = MAXF(a.max, b.max);                                              \
      r.sumexp =                                                               \
          a.sumexp * EXP(a.max - r.max) + b.sumexp * EXP(b.max - r.max);       \
      r.sum_ad = (a.sum_ad + a.sum_a * (r.max - a.max)) +                      \
                 (b.sum_ad + b.sum_a * (r.max - b.max));                       \
      r.sum_a = a.sum_a + b.sum_a;                                             \
      r.target_logit = a.target_logit + b.target_logit;                        \
      r.target_weight = a.target_weight + b.target_weight;                     \
      inout[i] = r;                                                            \
    }                                                                          \
  }
DEFINE_COMBINE(clloss_ce_stats_combine, clloss_ce_stats, expf, fmaxf)
DEFINE_COMBINE(clloss_ce_stats64_combine, clloss_ce_stats64, exp, fmax)

/* Bytes of one record of the loss type of `input_type`. */
static size_t record_size(clloss_dtype input_type) {
  return input_type == CLLOSS_FLOAT64 ? sizeof(clloss_ce_stats64)
                                      : sizeof(clloss_ce_stats);
}

/* Checks the descriptor and the shard; the call's shape in *c. */
static clloss_status describe(clloss_context *ctx,
                              const clloss_cross_entropy_desc *desc,
                              const clloss_shard *shard,
                              clloss_cross_entropy_desc *d,
                              clloss__rows_call *c) {
  if (!shard)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "shard is NULL");
  CLLOSS__TRY(clloss__check_cross_entropy_shard(desc, shard, d, ctx->detail));
  *c = clloss__ce_describe(d);
  /* Counted here: ce_describe's count checks d as a whole-row descriptor,
   * which fails (count 0, the loss buffer unchecked) when the block's
   * row_stride is narrower than the V classes. */
  c->loss_count = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  c->c0 = shard->class_offset;
  c->cb = shard->classes;
  c->ld = d->row_stride ? d->row_stride : shard->classes;
  return CLLOSS_SUCCESS;
}

/* One work-item per row on CPU devices (each walks its row), a work-group
 * per row elsewhere, or where one work-item's pass over the block's row
 * would run past the device's loop budget (clloss__loop_budget); every
 * group loops over rows. */
static void shape(const clloss_context *ctx, const clloss__program *p,
                  int kernel, size_t rows, size_t cb, size_t *local,
                  size_t *global) {
  const int cpu = (ctx->info.type & CL_DEVICE_TYPE_CPU) != 0;
  const size_t groups = rows < 65536 ? rows : 65536;
  const size_t turns = groups ? (rows + groups - 1) / groups : 0;
  const size_t vectors = cb / (size_t)p->key.vw + (size_t)p->key.vw;
  const int fits = vectors * turns <= clloss__loop_budget(ctx);
  *local = cpu && fits ? 1 : clloss__group_local_size(ctx, p->max_wg[kernel]);
  *global = (groups ? groups : 1) * *local;
}

/* The records as the kernels see them: scratch from rec_off. */
static void use_records(clloss__rows_args *a, const clloss__rows_call *c,
                        clloss_buffer stats) {
  a->mems[CLLOSS__ROWS_scratch] = stats.mem;
  a->p.rec_off = stats.offset * CLLOSS_STATS_RECORD;
  a->p.segs = 1;
  a->p.seg_len = c->cb;
}

static clloss_status check_records(clloss_context *ctx, const char *name,
                                   clloss_buffer b, size_t rows,
                                   clloss_dtype input_type) {
  return clloss__check_buffer(ctx, name, b, rows, record_size(input_type), 1);
}

/* A buffer as the call uses it: its elements and their size. */
typedef struct span {
  const char *name;
  clloss_buffer b;
  size_t count, size;
} span;

/* The call's operands: [0] input, [1] target, [2] weight, [3] grad_output,
 * [4] stats, [5] loss, [6] grad_input. */
enum { S_INPUT, S_TARGET, S_WEIGHT, S_GRAD_OUTPUT, S_STATS, S_LOSS, S_GRAD };
static void spans(const clloss__rows_call *c, clloss_buffer stats,
                  span out[7]) {
  const size_t in = clloss_dtype_size(c->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(c->input_type));
  const size_t extent = clloss__rows_extent(c->rows, c->cb, c->ld);
  const span all[7] = {
      {"input", c->input, extent, in},
      {"target", c->target, c->prob_targets ? c->rows * c->cb : c->rows,
       c->prob_targets ? in : clloss_dtype_size(c->target_type)},
      {"weight", c->weight, c->cb, real},
      {"grad_output", c->grad_output, c->loss_count, real},
      {"stats", stats, c->rows, record_size(c->input_type)},
      {"loss", c->loss, c->loss_count, real},
      {"grad_input", c->grad_input, extent, in}};
  memcpy(out, all, sizeof all);
}

/* An output must share no byte with the operands listed in `others`
 * (indices into s, ended by -1): the other calls' rule (a gradient in
 * place of its input excepted, which check_rows_buffers allows). */
static clloss_status apart(clloss_context *ctx, const span *s, int output,
                           const int *others) {
  const span *o = &s[output];
  for (; *others >= 0; others++) {
    const span *i = &s[*others];
    if (clloss__buffers_overlap(o->b, o->count, o->size, i->b, i->count,
                                i->size))
      return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "%s overlaps %s",
                          o->name, i->name);
  }
  return CLLOSS_SUCCESS;
}

static clloss_status enqueue_partial(clloss__launch *l,
                                     const clloss_cross_entropy_desc *d,
                                     const clloss__rows_call *c,
                                     clloss_buffer stats) {
  clloss__program *p;
  CLLOSS__TRY(clloss__ce_program(l->ctx, d, CLLOSS__SPLIT, &p));
  if (c->rows == 0)
    return CLLOSS_SUCCESS;
  clloss__rows_args a;
  clloss__ce_args_init(l->ctx, d, c, 0, &a);
  use_records(&a, c, stats);
  size_t local, global;
  shape(l->ctx, p, CE_SPLIT_STATS, c->rows, c->cb, &local, &global);
  return clloss__rows_enqueue_kernel(l, p->kernels[CE_SPLIT_STATS], &a, global,
                                     local);
}

clloss_status
clloss_cross_entropy_partial(clloss_context *ctx, cl_command_queue queue,
                             const clloss_cross_entropy_desc *desc,
                             const clloss_shard *shard, clloss_buffer input,
                             clloss_buffer target, clloss_buffer weight,
                             clloss_buffer stats, cl_uint num_events,
                             const cl_event *wait_list, cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  clloss_cross_entropy_desc d;
  clloss__rows_call c;
  CLLOSS__TRY(describe(ctx, desc, shard, &d, &c));
  c.input = input;
  c.target = target;
  c.weight = weight;
  CLLOSS__TRY(clloss__check_rows_buffers(ctx, &c));
  CLLOSS__TRY(check_records(ctx, "stats", stats, c.rows, d.input_type));
  span s[7];
  spans(&c, stats, s);
  static const int inputs[] = {S_INPUT, S_TARGET, S_WEIGHT, -1};
  CLLOSS__TRY(apart(ctx, s, S_STATS, inputs));
  clloss__launch l;
  CLLOSS__TRY(clloss__launch_begin(&l, ctx, queue, num_events, wait_list));
  return clloss__launch_end(&l, enqueue_partial(&l, &d, &c, stats), event);
}

static clloss_status enqueue_combine(clloss__launch *l, size_t rows,
                                     clloss_dtype input_type,
                                     clloss_buffer inout, clloss_buffer in) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.input_type = input_type;
  d.rows = rows;
  d.classes = 1;
  clloss__program *p;
  CLLOSS__TRY(clloss__ce_program(l->ctx, &d, CLLOSS__SPLIT, &p));
  if (rows == 0)
    return CLLOSS_SUCCESS;
  clloss__rows_call c = clloss__ce_describe(&d);
  clloss__rows_args a;
  clloss__rows_args_init(l->ctx, &c, 0, &a);
  a.mems[CLLOSS__ROWS_scratch] = inout.mem;
  a.mems[CLLOSS__ROWS_records] = in.mem;
  a.p.rec_off = inout.offset * CLLOSS_STATS_RECORD;
  a.p.records_off = in.offset * CLLOSS_STATS_RECORD;
  const size_t local =
      clloss__group_local_size(l->ctx, p->max_wg[CE_STATS_COMBINE]);
  size_t groups = (rows + local - 1) / local;
  if (groups > 4096)
    groups = 4096;
  return clloss__rows_enqueue_kernel(l, p->kernels[CE_STATS_COMBINE], &a,
                                     groups * local, local);
}

clloss_status clloss_cross_entropy_combine(
    clloss_context *ctx, cl_command_queue queue, size_t rows,
    clloss_dtype input_type, clloss_buffer inout, clloss_buffer in,
    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  /* Checked here: the type goes into the program's build options. */
  if (!clloss__is_float_type(input_type))
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "input_type %d is not a float type (float16, "
                        "bfloat16, float32, float64)",
                        (int)input_type);
  CLLOSS__TRY(clloss__check_fp64(ctx, input_type));
  CLLOSS__TRY(check_records(ctx, "inout", inout, rows, input_type));
  CLLOSS__TRY(check_records(ctx, "in", in, rows, input_type));
  const size_t rec = record_size(input_type);
  if (inout.offset != in.offset &&
      clloss__buffers_overlap(inout, rows, rec, in, rows, rec))
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "inout and in overlap without being the same "
                        "records (%zu bytes each)",
                        rec);
  clloss__launch l;
  CLLOSS__TRY(clloss__launch_begin(&l, ctx, queue, num_events, wait_list));
  return clloss__launch_end(
      &l, enqueue_combine(&l, rows, input_type, inout, in), event);
}

static clloss_status enqueue_finish(clloss__launch *l,
                                    const clloss_cross_entropy_desc *d,
                                    const clloss__rows_call *c,
                                    clloss_buffer stats) {
  clloss_context *ctx = l->ctx;
  clloss__program *p;
  CLLOSS__TRY(clloss__ce_program(ctx, d, CLLOSS__SPLIT, &p));
  const int reduce = c->loss.mem && d->reduction != CLLOSS_REDUCTION_NONE;
  const int real_size = d->input_type == CLLOSS_FLOAT64 ? 8 : 4;
  CLLOSS__TRY(clloss__reserve_partials(ctx, c->rows, real_size));
  clloss__rows_args a;
  clloss__ce_args_init(ctx, d, c,
                       clloss__losses_mode(c->loss.mem != NULL, reduce), &a);
  use_records(&a, c, stats);
  if (!c->prob_targets) { /* the mean's divisor, from the records */
    size_t local = clloss__group_local_size(ctx, p->max_wg[CE_SHARD_TARGETS]);
    CLLOSS__TRY(clloss__rows_enqueue_kernel(l, p->kernels[CE_SHARD_TARGETS], &a,
                                            local, local));
  }
  if (c->rows > 0) {
    size_t local, global;
    shape(ctx, p, CE_SPLIT_GRAD, c->rows, c->cb, &local, &global);
    CLLOSS__TRY(clloss__rows_enqueue_kernel(l, p->kernels[CE_SPLIT_GRAD], &a,
                                            global, local));
  }
  if (reduce) {
    /* mean: the normalizer when > 0, else N for probability targets,
     * else the weight sum */
    const int mode = clloss__divide_mode(d->reduction == CLLOSS_REDUCTION_MEAN,
                                         d->normalizer > 0 || c->prob_targets);
    CLLOSS__TRY(clloss__finish_sum(l, p, CE_FINISH, c->rows, mode,
                                   d->normalizer, d->rows, c->loss));
  }
  ctx->last_variant = clloss__variant_name(CLLOSS__SPLIT);
  return CLLOSS_SUCCESS;
}

clloss_status clloss_cross_entropy_finish(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer grad_output, clloss_buffer stats, clloss_buffer loss,
    clloss_buffer grad_input, cl_uint num_events, const cl_event *wait_list,
    cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  clloss_cross_entropy_desc d;
  clloss__rows_call c;
  CLLOSS__TRY(describe(ctx, desc, shard, &d, &c));
  c.input = input;
  c.target = target;
  c.weight = weight;
  c.grad_output = grad_output;
  c.loss = loss;
  c.grad_input = grad_input;
  if (!c.loss.mem && !c.grad_input.mem)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "neither loss nor grad_input is given");
  CLLOSS__TRY(clloss__check_rows_buffers(ctx, &c));
  CLLOSS__TRY(check_records(ctx, "stats", stats, c.rows, d.input_type));
  span s[7];
  spans(&c, stats, s);
  static const int for_loss[] = {S_INPUT, S_TARGET, S_WEIGHT, S_GRAD_OUTPUT,
                                 S_STATS, S_GRAD,   -1};
  static const int for_grad[] = {S_TARGET, S_WEIGHT, S_GRAD_OUTPUT, S_STATS,
                                 -1};
  CLLOSS__TRY(apart(ctx, s, S_LOSS, for_loss));
  CLLOSS__TRY(apart(ctx, s, S_GRAD, for_grad));
  clloss__launch l;
  CLLOSS__TRY(clloss__launch_begin(&l, ctx, queue, num_events, wait_list));
  return clloss__launch_end(&l, enqueue_finish(&l, &d, &c, stats), event);
}
