/* cross_entropy.c - CPU reference of cross_entropy (class-index and
 * probability targets, with label smoothing, z-loss, softcap, normalizer). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "reference.h"

/* One call's options, resolved once. */
typedef struct ce_call {
  const clloss_cross_entropy_desc *d;
  size_t ld;          /* elements between rows of input and gradient */
  clloss_dtype wt;    /* loss / weight / grad_output type */
  int prob;           /* probability targets */
  double eps, z, cap; /* label smoothing, z-loss, softcap */
  const void *weight; /* w[C] or NULL (all 1) */
  double wsum;        /* W = sum_c w_c */
} ce_call;

/* lse = m + log sum_c exp(x_c - m), m = max_c x_c, so that -inf and large
 * logits work. NaN is skipped by the max but reaches the sum; a row of only
 * -inf, or with a +inf, gives NaN (inf - inf), as PyTorch does. */
static double logsumexp(const double *x, size_t n) {
  double m = -INFINITY;
  for (size_t j = 0; j < n; j++)
    if (x[j] > m)
      m = x[j];
  double s = 0.0;
  for (size_t j = 0; j < n; j++)
    s += exp(x[j] - m);
  return m + log(s);
}

/* Loads row i into x[] (after the softcap x -> c tanh(x / c), whose
 * derivative 1 - tanh^2(x / c) goes to dcap[]) and, for probability
 * targets, the smoothed targets y' = (1 - e) y + e / C into y[]. The
 * targets are a dense [N, C] array: row_stride applies to the input and
 * the gradient only, as in the device kernels. */
static void load_row(const ce_call *k, const void *input, const void *target,
                     size_t i, double *x, double *dcap, double *y) {
  size_t C = k->d->classes;
  for (size_t j = 0; j < C; j++) {
    double v = clloss__ref_load(input, k->d->input_type, i * k->ld + j);
    dcap[j] = 1.0;
    if (k->cap > 0.0) {
      double t = tanh(v / k->cap);
      v = k->cap * t;
      dcap[j] = 1.0 - t * t;
    }
    x[j] = v;
    if (k->prob) {
      double yv = clloss__ref_load(target, k->d->input_type, i * C + j);
      y[j] = k->eps > 0.0 ? (1.0 - k->eps) * yv + k->eps / (double)C : yv;
    }
  }
}

/* Class-index row with target t:
 *   loss = (1-e) w_t (lse - x_t) + (e/C) sum_c w_c (lse - x_c) + z lse^2
 *   dL/dx_j = s [(1-e) w_t (p_j - [j=t]) + (e/C)(W p_j - w_j) + 2 z lse p_j]
 * Each term is multiplied by s on its own so that s = inf (mean with D = 0
 * over zero-weight rows) gives NaN like PyTorch. The smoothing term is only
 * computed for e > 0, so a -inf logit with e = 0 keeps the loss finite. */
static double index_row(const ce_call *k, const double *x, const double *dcap,
                        size_t t, double s, void *grad, size_t i) {
  size_t C = k->d->classes;
  double lse = logsumexp(x, C), wt = clloss__ref_weight(k->weight, k->wt, t);
  double loss = (1.0 - k->eps) * wt * (lse - x[t]);
  if (k->eps > 0.0) {
    double sm = 0.0;
    for (size_t c = 0; c < C; c++)
      sm += clloss__ref_weight(k->weight, k->wt, c) * (lse - x[c]);
    loss += k->eps / (double)C * sm;
  }
  if (k->z > 0.0)
    loss += k->z * lse * lse;
  if (!grad)
    return loss;
  for (size_t j = 0; j < C; j++) {
    double p = exp(x[j] - lse);
    double gj = s * ((1.0 - k->eps) * wt * (p - (j == t ? 1.0 : 0.0)));
    if (k->eps > 0.0)
      gj += s * (k->eps / (double)C *
                 (k->wsum * p - clloss__ref_weight(k->weight, k->wt, j)));
    if (k->z > 0.0)
      gj += s * (2.0 * k->z * lse * p);
    clloss__ref_put(grad, k->d->input_type, i * k->ld + j, gj * dcap[j],
                    k->d->accumulate);
  }
  return loss;
}

/* Probability row: loss = sum_c w_c y'_c (lse - x_c) + z lse^2,
 *   dL/dx_j = s [(sum_c w_c y'_c) p_j - w_j y'_j + 2 z lse p_j]. */
static double prob_row(const ce_call *k, const double *x, const double *dcap,
                       const double *y, double s, void *grad, size_t i) {
  size_t C = k->d->classes;
  double lse = logsumexp(x, C), loss = 0.0, wy = 0.0;
  for (size_t c = 0; c < C; c++) {
    double w = clloss__ref_weight(k->weight, k->wt, c);
    loss += w * y[c] * (lse - x[c]);
    wy += w * y[c];
  }
  if (k->z > 0.0)
    loss += k->z * lse * lse;
  if (!grad)
    return loss;
  for (size_t j = 0; j < C; j++) {
    double p = exp(x[j] - lse);
    double gj = wy * p - clloss__ref_weight(k->weight, k->wt, j) * y[j];
    if (k->z > 0.0)
      gj += 2.0 * k->z * lse * p;
    clloss__ref_put(grad, k->d->input_type, i * k->ld + j, s * gj * dcap[j],
                    k->d->accumulate);
  }
  return loss;
}

/* The mean's divisor: the normalizer when > 0, else N for probability
 * targets, else D = sum over valid rows of w[t_i] (0 when all are ignored,
 * which makes the loss 0/0 = NaN as in PyTorch). */
static double mean_divisor(const ce_call *k, const void *target) {
  if (k->d->normalizer > 0.0f)
    return k->d->normalizer;
  if (k->prob)
    return (double)k->d->rows;
  double D = 0.0;
  for (size_t i = 0; i < k->d->rows; i++) {
    int64_t t = clloss__ref_target(target, k->d->target_type, i);
    if (t != k->d->ignore_index)
      D += clloss__ref_weight(k->weight, k->wt, (size_t)t);
  }
  return D;
}

clloss_status
clloss_reference_cross_entropy(const clloss_cross_entropy_desc *desc,
                               const void *input, const void *target,
                               const void *weight, const void *grad_output,
                               void *loss, void *grad_input) {
  clloss_cross_entropy_desc dd;
  clloss_status st = clloss__check_cross_entropy_desc(desc, &dd, NULL);
  if (st != CLLOSS_SUCCESS)
    return st;
  desc = &dd;
  if (desc->accumulate && grad_input && grad_input == input)
    return CLLOSS_INVALID_ARGUMENT;
  if (!input || !target || (!loss && !grad_input))
    return CLLOSS_INVALID_ARGUMENT;
  ce_call k = {desc,
               desc->row_stride ? desc->row_stride : desc->classes,
               clloss_loss_dtype(desc->input_type),
               clloss__is_probability_target(desc->target_type),
               desc->label_smoothing,
               desc->z_loss,
               desc->softcap,
               weight,
               0.0};
  size_t N = desc->rows, C = desc->classes;
  if (!k.prob) {
    st = clloss__check_targets(target, desc->target_type, N, C,
                               desc->ignore_index, NULL, NULL);
    if (st != CLLOSS_SUCCESS)
      return st;
  }
  double *buf = C <= SIZE_MAX / (3 * sizeof(double))
                    ? malloc(3 * C * sizeof(double))
                    : NULL;
  if (!buf)
    return CLLOSS_OUT_OF_HOST_MEMORY;
  double *x = buf, *dcap = buf + C, *y = buf + 2 * C;
  for (size_t c = 0; c < C; c++)
    k.wsum += clloss__ref_weight(weight, k.wt, c);

  clloss_reduction red = desc->reduction;
  double div = red == CLLOSS_REDUCTION_MEAN ? mean_divisor(&k, target) : 1.0;
  double g = red == CLLOSS_REDUCTION_NONE
                 ? 1.0
                 : clloss__ref_grad_output(grad_output, k.wt, 0);
  double total = 0.0;
  for (size_t i = 0; i < N; i++) {
    /* s_i: g_i (none), g (sum), g / divisor (mean); times grad_scale. */
    double s = (red == CLLOSS_REDUCTION_NONE
                    ? clloss__ref_grad_output(grad_output, k.wt, i)
                    : g / div) *
               desc->grad_scale;
    double li;
    if (!k.prob && clloss__ref_target(target, desc->target_type, i) ==
                       desc->ignore_index) {
      li = 0.0; /* ignored row: no loss, zero gradient */
      for (size_t j = 0; grad_input && j < C; j++)
        clloss__ref_put(grad_input, desc->input_type, i * k.ld + j, 0.0,
                        desc->accumulate);
    } else {
      load_row(&k, input, target, i, x, dcap, y);
      li = k.prob ? prob_row(&k, x, dcap, y, s, grad_input, i)
                  : index_row(&k, x, dcap,
                              (size_t)clloss__ref_target(target,
                                                         desc->target_type, i),
                              s, grad_input, i);
    }
    if (red == CLLOSS_REDUCTION_NONE && loss)
      clloss__ref_store(loss, k.wt, i, li);
    total += li;
  }
  if (red != CLLOSS_REDUCTION_NONE && loss)
    clloss__ref_store(loss, k.wt, 0,
                      red == CLLOSS_REDUCTION_MEAN ? total / div : total);
  if (grad_input && desc->padding == CLLOSS_PADDING_ZERO)
    clloss__zero_host_padding(grad_input, N, C, k.ld,
                              clloss_dtype_size(desc->input_type));
  free(buf);
  return CLLOSS_SUCCESS;
}
