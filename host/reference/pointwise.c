/* pointwise.c - CPU reference of the element-wise losses: mse, l1, huber,
 * smooth_l1, binary_cross_entropy_with_logits and kl_div. */
#include <math.h>

#include "check.h"
#include "reference.h"

/* sign(d) with sign(0) = 0; NaN gives 0 too, as torch.sign (1.13) and
 * OpenCL's sign() do. */
static double sign0(double d) {
  return d > 0.0 ? 1.0 : d < 0.0 ? -1.0 : 0.0;
}

/* Numerically stable logistic function. */
static double sigmoid(double x) {
  if (x >= 0.0)
    return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* xlogy(y, y) = y log y, 0 where y = 0, NaN where y is NaN (PyTorch). */
static double ylogy(double y) {
  return y == 0.0 ? 0.0 : y * log(y);
}

/* Loss of one element and its derivative d/dx (before g and the mean);
 * w and pw are BCE's weight and pos_weight (1 when not given). */
static double element(const clloss_pointwise_desc *d, double x, double y,
                      double w, double pw, double *dx) {
  double r = x - y, a = fabs(r);
  switch (d->loss) {
  case CLLOSS_MSE_LOSS: /* d^2, 2d */
    *dx = 2.0 * r;
    return r * r;
  case CLLOSS_L1_LOSS: /* |d|, sign(d) */
    *dx = sign0(r);
    return a;
  case CLLOSS_HUBER_LOSS: { /* 0.5 d^2 if |d| < delta, else delta(|d| - 0.5
                               delta); grad d, else delta sign(d) */
    double delta = d->delta;
    *dx = r <= -delta ? -delta : r >= delta ? delta : r; /* NaN stays NaN */
    return a < delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
  }
  case CLLOSS_SMOOTH_L1_LOSS: { /* 0.5 d^2 / beta if |d| < beta, else
                                   |d| - 0.5 beta; beta = 0 is l1 */
    double beta = d->beta;
    if (beta == 0.0) {
      *dx = sign0(r);
      return a;
    }
    *dx = r <= -beta ? -1.0 : r >= beta ? 1.0 : r / beta;
    return a < beta ? 0.5 * r * r / beta : a - 0.5 * beta;
  }
  case CLLOSS_BCE_WITH_LOGITS: {
    /* w [(1 - y) x + lw (log1p(exp(-|x|)) + max(-x, 0))],
     * lw = 1 + (pw - 1) y; grad w [lw sigmoid(x) - pw y] */
    double lw = 1.0 + (pw - 1.0) * y;
    *dx = w * (lw * sigmoid(x) - pw * y);
    return w * ((1.0 - y) * x + lw * (log1p(exp(-fabs(x))) + fmax(-x, 0.0)));
  }
  case CLLOSS_KL_DIV:
    if (d->log_target) { /* e^y (y - x), grad -e^y */
      double ey = exp(y);
      *dx = -ey;
      return ey * (y - x);
    }
    /* xlogy(y, y) - y x (PyTorch's form: 0 where y = 0 and x finite),
     * grad -y */
    *dx = -y;
    return ylogy(y) - y * x;
  }
  *dx = 0.0;
  return 0.0;
}

/* Reductions: none (count values), sum, mean (/ count), batchmean (kl_div,
 * / batch). Gradients: derivative times g (g_i for none) times 1/count or
 * 1/batch. BCE's weight and pos_weight: element i uses w[i % weight_count]
 * (weight_count == count is the full shape; 0 means not given). */
clloss_status clloss_reference_pointwise(const clloss_pointwise_desc *desc,
                                         const void *input, const void *target,
                                         const void *weight,
                                         const void *pos_weight,
                                         const void *grad_output, void *loss,
                                         void *grad_input) {
  clloss_pointwise_desc dd;
  clloss_status st = clloss__check_pointwise_desc(desc, &dd, NULL);
  if (st != CLLOSS_SUCCESS)
    return st;
  desc = &dd;
  if (!input || !target || (!loss && !grad_input))
    return CLLOSS_INVALID_ARGUMENT;
  if (desc->accumulate && grad_input && grad_input == input)
    return CLLOSS_INVALID_ARGUMENT;
  const double scale = desc->grad_scale;
  const int acc = desc->accumulate != 0;
  int bce = desc->loss == CLLOSS_BCE_WITH_LOGITS;
  size_t wn = bce ? desc->weight_count : 0;
  size_t pn = bce ? desc->pos_weight_count : 0;
  if ((wn && !weight) || (pn && !pos_weight))
    return CLLOSS_INVALID_ARGUMENT;

  size_t n = desc->count;
  clloss_dtype it = desc->input_type, lt = clloss_loss_dtype(it);
  clloss_reduction red = desc->reduction;
  double div = red == CLLOSS_REDUCTION_MEAN        ? (double)n
               : red == CLLOSS_REDUCTION_BATCHMEAN ? (double)desc->batch
                                                   : 1.0;
  double g = red == CLLOSS_REDUCTION_NONE
                 ? 1.0
                 : clloss__ref_grad_output(grad_output, lt, 0);
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    double x = clloss__ref_load(input, it, i);
    double y = clloss__ref_load(target, it, i);
    double w = wn ? clloss__ref_load(weight, lt, i % wn) : 1.0;
    double pw = pn ? clloss__ref_load(pos_weight, lt, i % pn) : 1.0;
    double dx, li = element(desc, x, y, w, pw, &dx);
    if (red == CLLOSS_REDUCTION_NONE) {
      if (loss)
        clloss__ref_store(loss, lt, i, li);
      if (grad_input)
        clloss__ref_put(grad_input, it, i,
                        dx * clloss__ref_grad_output(grad_output, lt, i) *
                            scale,
                        acc);
    } else if (grad_input) {
      clloss__ref_put(grad_input, it, i, dx * (g / div) * scale, acc);
    }
    total += li;
  }
  if (red != CLLOSS_REDUCTION_NONE && loss)
    clloss__ref_store(loss, lt, 0,
                      red == CLLOSS_REDUCTION_SUM ? total : total / div);
  return CLLOSS_SUCCESS;
}
