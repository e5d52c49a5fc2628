/* cli_loss.c - the losses the tool knows by their PyTorch names, their
 * options, and the checks of options, targets and weights that every
 * command shares, each failure one sentence naming the rule it breaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_loss.h"

#define error(...) cli_error("run", CLI_DATA_ERROR, __VA_ARGS__)

/* What every element-wise loss takes. */
#define PW_OPTS (CLI_OPT_REDUCTION | CLI_OPT_GRAD_SCALE)

const cli_loss_info cli_losses[8] = {
    {"cross_entropy", CLI_CROSS_ENTROPY, CLLOSS_MSE_LOSS, CLI_CE_OPTS},
    {"nll_loss", CLI_NLL_LOSS, CLLOSS_MSE_LOSS,
     CLI_OPT_REDUCTION | CLI_OPT_IGNORE_INDEX | CLI_OPT_WEIGHT |
         CLI_OPT_GRAD_SCALE},
    {"mse_loss", CLI_POINTWISE, CLLOSS_MSE_LOSS, PW_OPTS},
    {"l1_loss", CLI_POINTWISE, CLLOSS_L1_LOSS, PW_OPTS},
    {"huber_loss", CLI_POINTWISE, CLLOSS_HUBER_LOSS, PW_OPTS | CLI_OPT_DELTA},
    {"smooth_l1_loss", CLI_POINTWISE, CLLOSS_SMOOTH_L1_LOSS,
     PW_OPTS | CLI_OPT_BETA},
    {"binary_cross_entropy_with_logits", CLI_POINTWISE, CLLOSS_BCE_WITH_LOGITS,
     PW_OPTS | CLI_OPT_WEIGHT | CLI_OPT_POS_WEIGHT},
    {"kl_div", CLI_POINTWISE, CLLOSS_KL_DIV, PW_OPTS | CLI_OPT_LOG_TARGET},
};

const cli_loss_info *cli_find_loss(const char *name) {
  for (size_t i = 0; i < sizeof cli_losses / sizeof cli_losses[0]; i++)
    if (strcmp(cli_losses[i].name, name) == 0)
      return &cli_losses[i];
  return NULL;
}

cli_options cli_default_options(void) {
  cli_options o;
  memset(&o, 0, sizeof o);
  o.reduction = CLLOSS_REDUCTION_MEAN;
  o.ignore_index = -100;
  o.delta = 1.0f;
  o.beta = 1.0f;
  o.grad_scale = 1.0f;
  return o;
}

double cli_load(const void *data, clloss_dtype t, size_t i) {
  switch (t) {
  case CLLOSS_FLOAT16:
    return clloss_half_to_float(((const uint16_t *)data)[i]);
  case CLLOSS_FLOAT64:
    return ((const double *)data)[i];
  case CLLOSS_INT32:
    return ((const int32_t *)data)[i];
  case CLLOSS_INT64:
    return (double)((const int64_t *)data)[i];
  default:
    return ((const float *)data)[i];
  }
}

void cli_store(void *data, clloss_dtype t, size_t i, double v) {
  switch (t) {
  case CLLOSS_FLOAT16:
    ((uint16_t *)data)[i] = clloss_float_to_half((float)v);
    break;
  case CLLOSS_FLOAT64:
    ((double *)data)[i] = v;
    break;
  case CLLOSS_INT32:
    ((int32_t *)data)[i] = (int32_t)v;
    break;
  case CLLOSS_INT64:
    ((int64_t *)data)[i] = (int64_t)v;
    break;
  default:
    ((float *)data)[i] = (float)v;
    break;
  }
}

double cli_sum(const void *data, clloss_dtype t, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++)
    sum += cli_load(data, t, i);
  return sum;
}

const char *cli_shape_text(const npy_array *a, char *buf, size_t len) {
  npy_format_shape(a->ndim, a->shape, buf, len);
  return buf;
}

int cli_is_float(clloss_dtype t) {
  return t == CLLOSS_FLOAT16 || t == CLLOSS_FLOAT32 || t == CLLOSS_FLOAT64;
}

/* The options by bit, as the command line and the summary name them. */
static const char *const option_names[11][2] = {
    {"--reduction", ""},
    {"--ignore-index", " ignore=%lld"},
    {"--label-smoothing", " smooth=%g"},
    {"--weight", " weight"},
    {"--pos-weight", " pos_weight"},
    {"--delta", " delta=%g"},
    {"--beta", " beta=%g"},
    {"--log-target", " log_target"},
    {"--z-loss", " z=%g"},
    {"--softcap", " softcap=%g"},
    {"--grad-scale", " grad_scale=%g"}};

int cli_check_options(const cli_loss_info *loss, const cli_options *o) {
  unsigned extra = o->given & ~loss->options;
  int k = 0;
  if (extra) {
    while (!(extra & (1u << k)))
      k++;
    return cli_error("run", CLI_USAGE, "%s does not apply to %s",
                     option_names[k][0], loss->name);
  }
  const char *bad = NULL;
  if (o->reduction == CLLOSS_REDUCTION_BATCHMEAN &&
      loss->pointwise != CLLOSS_KL_DIV)
    bad = "--reduction batchmean applies to kl_div only";
  else if (!(o->label_smoothing >= 0.0f && o->label_smoothing <= 1.0f))
    bad = "--label-smoothing must be in [0, 1]";
  else if (!(o->delta > 0.0f))
    bad = "--delta must be > 0";
  else if (!(o->beta >= 0.0f))
    bad = "--beta must be >= 0";
  else if (!(o->z_loss >= 0.0f))
    bad = "--z-loss must be >= 0";
  else if (!(o->softcap >= 0.0f))
    bad = "--softcap must be >= 0 (0 is off)";
  return bad ? cli_error("run", CLI_USAGE, "%s", bad) : CLI_OK;
}

void cli_describe_options(const cli_options *o, char *buf, size_t len) {
  const double values[11] = {
      0,         0,          o->label_smoothing, 0, 0, o->delta, o->beta, 0,
      o->z_loss, o->softcap, o->grad_scale};
  static const int order[10] = {3, 4, 1, 2, 5, 6, 7, 8, 9, 10};
  int used = snprintf(buf, len, "%s", clloss_reduction_name(o->reduction));
  for (int i = 0; i < 10 && used >= 0 && (size_t)used < len; i++) {
    const int k = order[i];
    if (!(o->given & (1u << k)))
      continue;
    if (k == 1) /* the one integer */
      used += snprintf(buf + used, len - (size_t)used, option_names[k][1],
                       (long long)o->ignore_index);
    else
      used += snprintf(buf + used, len - (size_t)used, option_names[k][1],
                       values[k]);
  }
}

int cli_convert_weight(const char *what, const npy_array *w, clloss_dtype to,
                       void **out) {
  if (!cli_is_float(w->dtype))
    return error("%s: dtype %s is not a float", what,
                 clloss_dtype_name(w->dtype));
  size_t n = w->count ? w->count : 1;
  *out = malloc(n * (to == CLLOSS_FLOAT64 ? 8 : 4));
  if (!*out)
    return error("out of memory");
  for (size_t i = 0; i < w->count; i++)
    cli_store(*out, to, i, cli_load(w->data, w->dtype, i));
  return CLI_OK;
}

void cli_ce_options(clloss_cross_entropy_desc *d, const cli_options *o) {
  d->reduction = o->reduction;
  d->ignore_index = o->ignore_index;
  d->label_smoothing = o->label_smoothing;
  d->z_loss = o->z_loss;
  d->softcap = o->softcap;
  d->grad_scale = o->grad_scale;
}
