/* cli_problem.c - the losses' entries of `clloss run` (cli_run.h): their
 * checks of shapes, dtypes and targets before anything reaches the
 * library, so that each bad input gets one sentence that names the array
 * and the rule it breaks, and their calls on a device or the CPU
 * reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"

#define error(...) cli_error("run", CLI_DATA_ERROR, __VA_ARGS__)

static int same_shape(const npy_array *a, const npy_array *b) {
  return a->ndim == b->ndim &&
         memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0;
}

int cli_check_indices(const cli_job *j, size_t rows, size_t classes) {
  const npy_array *x = &j->in[IN_X], *t = &j->in[IN_T];
  const int64_t ignore = j->a.opt.ignore_index;
  char s1[256], s2[256];
  if (!(j->one_row ? t->ndim == 0 : t->ndim == 1 && t->shape[0] == rows))
    return error("target %s does not fit input %s: class indices need "
                 "shape %s",
                 cli_shape_text(t, s2, sizeof s2),
                 cli_shape_text(x, s1, sizeof s1), j->one_row ? "()" : "[N]");
  for (size_t i = 0; i < t->count; i++) {
    int64_t v = t->dtype == CLLOSS_INT32 ? ((const int32_t *)t->data)[i]
                                         : ((const int64_t *)t->data)[i];
    if (v != ignore && (v < 0 || (uint64_t)v >= classes))
      return error("target[%zu] = %lld is outside [0, %zu) and is not the "
                   "ignore index %lld",
                   i, (long long)v, classes, (long long)ignore);
  }
  return CLI_OK;
}

static int check_class_loss(cli_job *j, const cli_loss_info *loss) {
  const npy_array *x = &j->in[IN_X], *t = &j->in[IN_T], *w = &j->in[IN_W];
  const cli_options *o = &j->a.opt;
  char s1[256], s2[256];
  if (x->ndim != 1 && x->ndim != 2)
    return error("%s takes an input of shape [N, C] or [C], not %s", loss->name,
                 cli_shape_text(x, s1, sizeof s1));
  j->one_row = x->ndim == 1;
  const size_t rows = j->one_row ? 1 : x->shape[0];
  const size_t classes = x->shape[x->ndim - 1];
  if (classes == 0)
    return error("input %s has no classes", cli_shape_text(x, s1, sizeof s1));
  const int probs = cli_is_float(t->dtype);
  if (probs && loss->family == CLI_NLL_LOSS)
    return error("nll_loss takes int64 or int32 class indices, not %s",
                 clloss_dtype_name(t->dtype));
  if (!probs && t->dtype != CLLOSS_INT32 && t->dtype != CLLOSS_INT64)
    return error("target: unsupported dtype %s", clloss_dtype_name(t->dtype));
  if (probs && !same_shape(x, t))
    return error("probability target %s does not match input %s",
                 cli_shape_text(t, s2, sizeof s2),
                 cli_shape_text(x, s1, sizeof s1));
  if (probs && t->dtype != x->dtype)
    return error("probability target is %s but input is %s; they must match",
                 clloss_dtype_name(t->dtype), clloss_dtype_name(x->dtype));
  int rc = probs ? CLI_OK : cli_check_indices(j, rows, classes);
  if (rc != CLI_OK)
    return rc;
  if (j->have & (1u << IN_W)) {
    if (w->ndim != 1 || w->shape[0] != classes)
      return error("weight %s must have shape (%zu,), one per class",
                   cli_shape_text(w, s1, sizeof s1), classes);
    rc = cli_convert_weight("weight", w, j->out[OUT_LOSS].type, &j->weight);
    if (rc != CLI_OK)
      return rc;
  }
  /* Probability targets are passed with the input's type, indices as is. */
  if (loss->family == CLI_CROSS_ENTROPY) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    cli_ce_options(&d, o);
    d.rows = rows;
    d.classes = classes;
    d.input_type = x->dtype;
    d.target_type = t->dtype;
    j->lin.ce = d;
  } else {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    d.rows = rows;
    d.classes = classes;
    d.input_type = x->dtype;
    d.target_type = t->dtype;
    d.reduction = o->reduction;
    d.ignore_index = o->ignore_index;
    d.grad_scale = o->grad_scale;
    j->nll = d;
  }
  /* none gives one loss per row: [N], or () for a single [C] row as in
   * PyTorch. */
  cli_output *l = &j->out[OUT_LOSS];
  if (o->reduction == CLLOSS_REDUCTION_NONE && !j->one_row) {
    l->ndim = 1;
    l->shape[0] = rows;
  }
  l->count = o->reduction == CLLOSS_REDUCTION_NONE ? rows : 1;
  return CLI_OK;
}

/* BCE's weight and pos_weight: the input's shape, or broadcast over the
 * last dimension (shape [..., 1, K] with K the input's last dimension). */
static int broadcastable(const npy_array *w, const npy_array *x) {
  if (same_shape(w, x))
    return 1;
  if (x->ndim == 0 || w->ndim == 0 || w->ndim > x->ndim)
    return 0;
  for (int i = 0; i + 1 < w->ndim; i++)
    if (w->shape[i] != 1)
      return 0;
  return w->shape[w->ndim - 1] == x->shape[x->ndim - 1];
}

static int check_pointwise(cli_job *j, const cli_loss_info *loss) {
  const npy_array *x = &j->in[IN_X], *t = &j->in[IN_T];
  const cli_options *o = &j->a.opt;
  char s1[256], s2[256];
  if (!same_shape(x, t))
    return error("target %s does not match input %s",
                 cli_shape_text(t, s2, sizeof s2),
                 cli_shape_text(x, s1, sizeof s1));
  if (t->dtype != x->dtype)
    return error("target is %s but input is %s; they must match",
                 clloss_dtype_name(t->dtype), clloss_dtype_name(x->dtype));
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(loss->pointwise);
  static const char *const names[2] = {"weight", "pos_weight"};
  void **dst[2] = {&j->weight, &j->pos_weight};
  size_t *counts[2] = {&d.weight_count, &d.pos_weight_count};
  for (int k = 0; k < 2; k++) {
    const npy_array *w = &j->in[IN_W + k];
    if (!(j->have & (1u << (IN_W + k))))
      continue;
    if (!broadcastable(w, x))
      return error("%s %s must match input %s or its last dimension", names[k],
                   cli_shape_text(w, s2, sizeof s2),
                   cli_shape_text(x, s1, sizeof s1));
    int rc = cli_convert_weight(names[k], w, j->out[OUT_LOSS].type, dst[k]);
    if (rc != CLI_OK)
      return rc;
    *counts[k] = w->count;
  }
  d.count = x->count;
  d.input_type = x->dtype;
  d.reduction = o->reduction;
  d.delta = o->delta;
  d.beta = o->beta;
  d.log_target = o->log_target;
  d.batch = x->ndim ? x->shape[0] : 1;
  d.grad_scale = o->grad_scale;
  j->pw = d;
  cli_output *l = &j->out[OUT_LOSS];
  l->count = 1;
  if (o->reduction == CLLOSS_REDUCTION_NONE) {
    l->ndim = x->ndim;
    memcpy(l->shape, x->shape, sizeof x->shape);
    l->count = x->count;
  }
  return CLI_OK;
}

int cli_check_loss(cli_job *j) {
  const cli_loss_info *loss = j->cmd->loss;
  const npy_array *x = &j->in[IN_X];
  int rc = cli_check_options(loss, &j->a.opt);
  if (rc != CLI_OK)
    return rc;
  if (!cli_is_float(x->dtype))
    return error("input: dtype %s is not a float (float16, float32, float64)",
                 clloss_dtype_name(x->dtype));
  /* The loss in float32, or float64 for float64 input; the gradient in
   * the input's shape and dtype. */
  cli_output *l = &j->out[OUT_LOSS], *g = &j->out[OUT_GRAD];
  l->path = j->a.out[OUT_LOSS];
  l->type = clloss_loss_dtype(x->dtype);
  g->path = j->a.out[OUT_GRAD];
  g->type = x->dtype;
  g->ndim = x->ndim;
  memcpy(g->shape, x->shape, sizeof x->shape);
  g->count = x->count;
  return loss->family == CLI_POINTWISE ? check_pointwise(j, loss)
                                       : check_class_loss(j, loss);
}

static clloss_status call(cli_job *j, clloss_context *ctx) {
  const void *x = j->in[IN_X].data, *t = j->in[IN_T].data;
  void *loss = j->out[OUT_LOSS].data, *grad = j->out[OUT_GRAD].data;
  switch (j->cmd->loss->family) {
  case CLI_CROSS_ENTROPY:
    return ctx ? clloss_cross_entropy_host(ctx, &j->lin.ce, x, t, j->weight,
                                           NULL, loss, grad)
               : clloss_reference_cross_entropy(&j->lin.ce, x, t, j->weight,
                                                NULL, loss, grad);
  case CLI_NLL_LOSS:
    return ctx ? clloss_nll_loss_host(ctx, &j->nll, x, t, j->weight, NULL, loss,
                                      grad)
               : clloss_reference_nll_loss(&j->nll, x, t, j->weight, NULL, loss,
                                           grad);
  default:
    return ctx ? clloss_pointwise_host(ctx, &j->pw, x, t, j->weight,
                                       j->pos_weight, NULL, loss, grad)
               : clloss_reference_pointwise(&j->pw, x, t, j->weight,
                                            j->pos_weight, NULL, loss, grad);
  }
}

clloss_status cli_run_loss(cli_job *j) {
  return call(j, j->ctx);
}

clloss_status cli_reference_loss(cli_job *j) {
  return call(j, NULL);
}

void cli_describe_loss(const cli_job *j, char *buf, size_t len) {
  const cli_output *l = &j->out[OUT_LOSS];
  char opts[256];
  const double sum = cli_sum(l->data, l->type, l->count);
  cli_describe_options(&j->a.opt, opts, sizeof opts);
  if (j->a.opt.reduction == CLLOSS_REDUCTION_NONE)
    snprintf(buf, len, "%s(%s, %s): loss[%zu] sum %.9g", j->cmd->loss->name,
             opts, clloss_dtype_name(j->in[IN_X].dtype), l->count, sum);
  else
    snprintf(buf, len, "%s(%s, %s): loss %.9g", j->cmd->loss->name, opts,
             clloss_dtype_name(j->in[IN_X].dtype), sum);
}
