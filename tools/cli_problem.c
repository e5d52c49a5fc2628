/* cli_problem.c - checks a loss problem of the tool (options, shapes,
 * dtypes, targets) before anything reaches the library, so that each bad
 * input gets one sentence that names the array and the rule it breaks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_loss.h"

static int say(int code, char *msg, size_t msglen, const char *fmt, ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int is_float(clloss_dtype t) {
  return t == CLLOSS_FLOAT16 || t == CLLOSS_FLOAT32 || t == CLLOSS_FLOAT64;
}

static int is_index(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

static int same_shape(const npy_array *a, const npy_array *b) {
  if (a->ndim != b->ndim)
    return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return 0;
  return 1;
}

static const char *shape_text(const npy_array *a, char *buf, size_t len) {
  npy_format_shape(a->ndim, a->shape, buf, len);
  return buf;
}

int cli_check_options(const cli_loss_info *loss, const cli_options *o,
                      char *msg, size_t msglen) {
  unsigned extra = o->given & ~loss->options;
  if (extra) {
    unsigned bit = extra & (~extra + 1u);
    return say(CLI_USAGE, msg, msglen, "%s does not apply to %s",
               cli_option_name(bit), loss->name);
  }
  if (o->reduction == CLLOSS_REDUCTION_BATCHMEAN &&
      loss->pointwise != CLLOSS_KL_DIV)
    return say(CLI_USAGE, msg, msglen,
               "--reduction batchmean applies to kl_div only");
  if (!(o->label_smoothing >= 0.0f && o->label_smoothing <= 1.0f))
    return say(CLI_USAGE, msg, msglen, "--label-smoothing must be in [0, 1]");
  if (!(o->delta > 0.0f))
    return say(CLI_USAGE, msg, msglen, "--delta must be > 0");
  if (!(o->beta >= 0.0f))
    return say(CLI_USAGE, msg, msglen, "--beta must be >= 0");
  if (!(o->z_loss >= 0.0f))
    return say(CLI_USAGE, msg, msglen, "--z-loss must be >= 0");
  if (!(o->softcap >= 0.0f))
    return say(CLI_USAGE, msg, msglen, "--softcap must be >= 0 (0 is off)");
  return CLI_OK;
}

int cli_convert_weight(const char *what, const npy_array *w, clloss_dtype to,
                       void **out, char *msg, size_t msglen) {
  if (!is_float(w->dtype))
    return say(CLI_DATA_ERROR, msg, msglen, "%s: dtype %s is not a float", what,
               clloss_dtype_name(w->dtype));
  size_t n = w->count ? w->count : 1;
  *out = malloc(n * (to == CLLOSS_FLOAT64 ? 8 : 4));
  if (!*out)
    return say(CLI_DATA_ERROR, msg, msglen, "out of memory");
  for (size_t i = 0; i < w->count; i++) {
    double v = cli_load(w->data, w->dtype, i);
    if (to == CLLOSS_FLOAT64)
      ((double *)*out)[i] = v;
    else
      ((float *)*out)[i] = (float)v;
  }
  return CLI_OK;
}

int cli_check_targets(const npy_array *t, size_t classes, int64_t ignore,
                      char *msg, size_t msglen) {
  for (size_t i = 0; i < t->count; i++) {
    int64_t v = t->dtype == CLLOSS_INT32 ? ((const int32_t *)t->data)[i]
                                         : ((const int64_t *)t->data)[i];
    if (v != ignore && (v < 0 || (uint64_t)v >= classes))
      return say(CLI_DATA_ERROR, msg, msglen,
                 "target[%zu] = %lld is outside [0, %zu) and is not the "
                 "ignore index %lld",
                 i, (long long)v, classes, (long long)ignore);
  }
  return CLI_OK;
}

static int init_class_loss(cli_problem *p, const npy_array *weight, char *msg,
                           size_t msglen) {
  const npy_array *x = p->input, *t = p->target;
  const char *name = p->loss->name;
  char s1[256], s2[256];
  if (x->ndim != 1 && x->ndim != 2)
    return say(CLI_DATA_ERROR, msg, msglen,
               "%s takes an input of shape [N, C] or [C], not %s", name,
               shape_text(x, s1, sizeof s1));
  int one_row = x->ndim == 1;
  size_t rows = one_row ? 1 : x->shape[0];
  size_t classes = x->shape[x->ndim - 1];
  if (classes == 0)
    return say(CLI_DATA_ERROR, msg, msglen, "input %s has no classes",
               shape_text(x, s1, sizeof s1));
  int probs = is_float(t->dtype);
  if (probs && p->loss->family == CLI_NLL_LOSS)
    return say(CLI_DATA_ERROR, msg, msglen,
               "nll_loss takes int64 or int32 class indices, not %s",
               clloss_dtype_name(t->dtype));
  if (!probs && !is_index(t->dtype))
    return say(CLI_DATA_ERROR, msg, msglen, "target: unsupported dtype %s",
               clloss_dtype_name(t->dtype));
  if (probs) {
    if (!same_shape(x, t))
      return say(CLI_DATA_ERROR, msg, msglen,
                 "probability target %s does not match input %s",
                 shape_text(t, s2, sizeof s2), shape_text(x, s1, sizeof s1));
    if (t->dtype != x->dtype)
      return say(CLI_DATA_ERROR, msg, msglen,
                 "probability target is %s but input is %s; they must match",
                 clloss_dtype_name(t->dtype), clloss_dtype_name(x->dtype));
  } else {
    int ok = one_row ? t->ndim == 0 : t->ndim == 1 && t->shape[0] == rows;
    if (!ok)
      return say(CLI_DATA_ERROR, msg, msglen,
                 "target %s does not fit input %s: class indices need "
                 "shape %s",
                 shape_text(t, s2, sizeof s2), shape_text(x, s1, sizeof s1),
                 one_row ? "()" : "[N]");
    int rc = cli_check_targets(t, classes, p->opt.ignore_index, msg, msglen);
    if (rc != CLI_OK)
      return rc;
  }
  if (weight) {
    if (weight->ndim != 1 || weight->shape[0] != classes)
      return say(CLI_DATA_ERROR, msg, msglen,
                 "weight %s must have shape (%zu,), one per class",
                 shape_text(weight, s1, sizeof s1), classes);
    int rc = cli_convert_weight("weight", weight, p->loss_type, &p->weight, msg,
                                msglen);
    if (rc != CLI_OK)
      return rc;
  }
  /* Probability targets are passed with the input's type, indices as is. */
  clloss_dtype target_type = t->dtype;
  if (p->loss->family == CLI_CROSS_ENTROPY) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = rows;
    d.classes = classes;
    d.input_type = x->dtype;
    d.target_type = target_type;
    d.reduction = p->opt.reduction;
    d.ignore_index = p->opt.ignore_index;
    d.label_smoothing = p->opt.label_smoothing;
    d.z_loss = p->opt.z_loss;
    d.softcap = p->opt.softcap;
    d.grad_scale = p->opt.grad_scale;
    p->ce = d;
  } else {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    d.rows = rows;
    d.classes = classes;
    d.input_type = x->dtype;
    d.target_type = target_type;
    d.reduction = p->opt.reduction;
    d.ignore_index = p->opt.ignore_index;
    d.grad_scale = p->opt.grad_scale;
    p->nll = d;
  }
  /* none gives one loss per row: [N], or () for a single [C] row as in
   * PyTorch. */
  if (p->opt.reduction == CLLOSS_REDUCTION_NONE && !one_row) {
    p->loss_ndim = 1;
    p->loss_shape[0] = rows;
  }
  p->loss_count = p->opt.reduction == CLLOSS_REDUCTION_NONE ? rows : 1;
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

static int init_pointwise(cli_problem *p, const npy_array *weight,
                          const npy_array *pos_weight, char *msg,
                          size_t msglen) {
  const npy_array *x = p->input, *t = p->target;
  char s1[256], s2[256];
  if (!same_shape(x, t))
    return say(CLI_DATA_ERROR, msg, msglen, "target %s does not match input %s",
               shape_text(t, s2, sizeof s2), shape_text(x, s1, sizeof s1));
  if (t->dtype != x->dtype)
    return say(CLI_DATA_ERROR, msg, msglen,
               "target is %s but input is %s; they must match",
               clloss_dtype_name(t->dtype), clloss_dtype_name(x->dtype));
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(p->loss->pointwise);
  const npy_array *ws[2] = {weight, pos_weight};
  static const char *const names[2] = {"weight", "pos_weight"};
  void **dst[2] = {&p->weight, &p->pos_weight};
  size_t *counts[2] = {&d.weight_count, &d.pos_weight_count};
  for (int k = 0; k < 2; k++) {
    if (!ws[k])
      continue;
    if (!broadcastable(ws[k], x))
      return say(CLI_DATA_ERROR, msg, msglen,
                 "%s %s must match input %s or its last dimension", names[k],
                 shape_text(ws[k], s2, sizeof s2),
                 shape_text(x, s1, sizeof s1));
    int rc =
        cli_convert_weight(names[k], ws[k], p->loss_type, dst[k], msg, msglen);
    if (rc != CLI_OK)
      return rc;
    *counts[k] = ws[k]->count;
  }
  d.count = x->count;
  d.input_type = x->dtype;
  d.reduction = p->opt.reduction;
  d.delta = p->opt.delta;
  d.beta = p->opt.beta;
  d.log_target = p->opt.log_target;
  d.batch = x->ndim ? x->shape[0] : 1;
  d.grad_scale = p->opt.grad_scale;
  p->pw = d;
  if (p->opt.reduction == CLLOSS_REDUCTION_NONE) {
    p->loss_ndim = x->ndim;
    memcpy(p->loss_shape, x->shape, sizeof x->shape);
    p->loss_count = x->count;
  } else {
    p->loss_count = 1;
  }
  return CLI_OK;
}

int cli_problem_init(cli_problem *p, const cli_loss_info *loss,
                     const cli_options *opt, const npy_array *input,
                     const npy_array *target, const npy_array *weight,
                     const npy_array *pos_weight, char *msg, size_t msglen) {
  memset(p, 0, sizeof *p);
  p->loss = loss;
  p->opt = *opt;
  p->input = input;
  p->target = target;
  int rc = cli_check_options(loss, opt, msg, msglen);
  if (rc != CLI_OK)
    return rc;
  if (!is_float(input->dtype))
    return say(CLI_DATA_ERROR, msg, msglen,
               "input: dtype %s is not a float (float16, float32, float64)",
               clloss_dtype_name(input->dtype));
  p->loss_type =
      input->dtype == CLLOSS_FLOAT64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  rc = loss->family == CLI_POINTWISE
           ? init_pointwise(p, weight, pos_weight, msg, msglen)
           : init_class_loss(p, weight, msg, msglen);
  if (rc != CLI_OK)
    cli_problem_free(p);
  return rc;
}

void cli_problem_free(cli_problem *p) {
  free(p->weight);
  free(p->pos_weight);
  p->weight = p->pos_weight = NULL;
}
