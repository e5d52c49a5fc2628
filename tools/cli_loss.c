/* cli_loss.c - the losses the tool knows by their PyTorch names, their
 * options, and running a checked problem on a device or the CPU reference.
 */
#include <stdio.h>
#include <string.h>

#include "cli_loss.h"

#define CE_OPTS                                                                \
  (CLI_OPT_REDUCTION | CLI_OPT_IGNORE_INDEX | CLI_OPT_LABEL_SMOOTHING |        \
   CLI_OPT_WEIGHT | CLI_OPT_Z_LOSS | CLI_OPT_SOFTCAP | CLI_OPT_GRAD_SCALE)
/* What every element-wise loss takes. */
#define PW_OPTS (CLI_OPT_REDUCTION | CLI_OPT_GRAD_SCALE)

static const cli_loss_info losses[] = {
    {"cross_entropy", CLI_CROSS_ENTROPY, CLLOSS_MSE_LOSS, CE_OPTS},
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
  for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++)
    if (strcmp(losses[i].name, name) == 0)
      return &losses[i];
  return NULL;
}

const cli_loss_info *cli_losses(size_t *count) {
  *count = sizeof losses / sizeof losses[0];
  return losses;
}

const char *cli_option_name(unsigned opt) {
  switch (opt) {
  case CLI_OPT_REDUCTION:
    return "--reduction";
  case CLI_OPT_IGNORE_INDEX:
    return "--ignore-index";
  case CLI_OPT_LABEL_SMOOTHING:
    return "--label-smoothing";
  case CLI_OPT_WEIGHT:
    return "--weight";
  case CLI_OPT_POS_WEIGHT:
    return "--pos-weight";
  case CLI_OPT_DELTA:
    return "--delta";
  case CLI_OPT_BETA:
    return "--beta";
  case CLI_OPT_LOG_TARGET:
    return "--log-target";
  case CLI_OPT_Z_LOSS:
    return "--z-loss";
  case CLI_OPT_SOFTCAP:
    return "--softcap";
  case CLI_OPT_GRAD_SCALE:
    return "--grad-scale";
  default:
    return "?";
  }
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

clloss_status cli_problem_run(const cli_problem *p, clloss_context *ctx,
                              void *loss, void *grad) {
  const void *x = p->input->data, *t = p->target->data;
  switch (p->loss->family) {
  case CLI_CROSS_ENTROPY:
    return ctx ? clloss_cross_entropy_host(ctx, &p->ce, x, t, p->weight, NULL,
                                           loss, grad)
               : clloss_reference_cross_entropy(&p->ce, x, t, p->weight, NULL,
                                                loss, grad);
  case CLI_NLL_LOSS:
    return ctx ? clloss_nll_loss_host(ctx, &p->nll, x, t, p->weight, NULL, loss,
                                      grad)
               : clloss_reference_nll_loss(&p->nll, x, t, p->weight, NULL, loss,
                                           grad);
  case CLI_POINTWISE:
    return ctx ? clloss_pointwise_host(ctx, &p->pw, x, t, p->weight,
                                       p->pos_weight, NULL, loss, grad)
               : clloss_reference_pointwise(&p->pw, x, t, p->weight,
                                            p->pos_weight, NULL, loss, grad);
  }
  return CLLOSS_INVALID_ARGUMENT;
}

void cli_describe_options(const cli_problem *p, char *buf, size_t len) {
  const cli_options *o = &p->opt;
  size_t used = 0;
  if (!len)
    return;
  buf[0] = '\0';
#define ADD_(...)                                                              \
  do {                                                                         \
    int n_ = snprintf(buf + used, len - used, __VA_ARGS__);                    \
    if (n_ < 0 || (size_t)n_ >= len - used)                                    \
      return;                                                                  \
    used += (size_t)n_;                                                        \
  } while (0)
  ADD_("%s", clloss_reduction_name(o->reduction));
  if (o->given & CLI_OPT_WEIGHT)
    ADD_(" weight");
  if (o->given & CLI_OPT_POS_WEIGHT)
    ADD_(" pos_weight");
  if (o->given & CLI_OPT_IGNORE_INDEX)
    ADD_(" ignore=%lld", (long long)o->ignore_index);
  if (o->given & CLI_OPT_LABEL_SMOOTHING)
    ADD_(" smooth=%g", o->label_smoothing);
  if (o->given & CLI_OPT_DELTA)
    ADD_(" delta=%g", o->delta);
  if (o->given & CLI_OPT_BETA)
    ADD_(" beta=%g", o->beta);
  if (o->given & CLI_OPT_LOG_TARGET)
    ADD_(" log_target");
  if (o->given & CLI_OPT_Z_LOSS)
    ADD_(" z=%g", o->z_loss);
  if (o->given & CLI_OPT_SOFTCAP)
    ADD_(" softcap=%g", o->softcap);
  if (o->given & CLI_OPT_GRAD_SCALE)
    ADD_(" grad_scale=%g", o->grad_scale);
#undef ADD_
}
