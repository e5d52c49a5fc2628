/* nll_loss.c - CPU reference of nll_loss on log-probabilities. */
#include "check.h"
#include "reference.h"

/* loss_i = -w[t_i] x_{i,t_i} for rows whose target is not ignore_index,
 * else 0; none: loss[N]; sum: sum_i loss_i; mean: sum_i loss_i / D with
 * D = sum over valid rows of w[t_i] (all ignored: 0/0 = NaN, as PyTorch).
 * dL/dx_ij = -s_i w[t_i] [j = t_i], s_i = g_i (none), g (sum), g/D (mean);
 * ignored rows get a zero gradient row. Only the C columns of each row are
 * written, and the padding up to row_stride is left as it is, but with
 * CLLOSS_PADDING_ZERO (zeros in all N rows, as the host-pointer call). */
clloss_status clloss_reference_nll_loss(const clloss_nll_loss_desc *desc,
                                        const void *input, const void *target,
                                        const void *weight,
                                        const void *grad_output, void *loss,
                                        void *grad_input) {
  clloss_nll_loss_desc dd;
  clloss_status st = clloss__check_nll_loss_desc(desc, &dd, NULL);
  if (st != CLLOSS_SUCCESS)
    return st;
  desc = &dd;
  if (desc->accumulate && grad_input && grad_input == input)
    return CLLOSS_INVALID_ARGUMENT;
  if (!input || !target || (!loss && !grad_input))
    return CLLOSS_INVALID_ARGUMENT;
  size_t N = desc->rows, C = desc->classes;
  size_t ld = desc->row_stride ? desc->row_stride : C;
  st = clloss__check_targets(target, desc->target_type, N, C,
                             desc->ignore_index, NULL, NULL);
  if (st != CLLOSS_SUCCESS)
    return st;
  clloss_dtype wt = clloss_loss_dtype(desc->input_type);
  clloss_reduction red = desc->reduction;

  double D = 0.0;
  for (size_t i = 0; red == CLLOSS_REDUCTION_MEAN && i < N; i++) {
    int64_t t = clloss__ref_target(target, desc->target_type, i);
    if (t != desc->ignore_index)
      D += clloss__ref_weight(weight, wt, (size_t)t);
  }
  double g = red == CLLOSS_REDUCTION_NONE
                 ? 1.0
                 : clloss__ref_grad_output(grad_output, wt, 0);
  double total = 0.0;
  for (size_t i = 0; i < N; i++) {
    int64_t t = clloss__ref_target(target, desc->target_type, i);
    int valid = t != desc->ignore_index;
    double w = valid ? clloss__ref_weight(weight, wt, (size_t)t) : 0.0;
    /* Read x_{i,t} before the row is written: input may be grad_input. */
    double li = valid ? -w * clloss__ref_load(input, desc->input_type,
                                              i * ld + (size_t)t)
                      : 0.0;
    if (grad_input) {
      double s = (red == CLLOSS_REDUCTION_NONE
                      ? clloss__ref_grad_output(grad_output, wt, i)
                  : red == CLLOSS_REDUCTION_MEAN ? g / D
                                                 : g) *
                 desc->grad_scale;
      for (size_t j = 0; j < C; j++)
        clloss__ref_put(grad_input, desc->input_type, i * ld + j,
                        valid && j == (size_t)t ? -s * w : 0.0,
                        desc->accumulate);
    }
    if (red == CLLOSS_REDUCTION_NONE && loss)
      clloss__ref_store(loss, wt, i, li);
    total += li;
  }
  if (red != CLLOSS_REDUCTION_NONE && loss)
    clloss__ref_store(loss, wt, 0,
                      red == CLLOSS_REDUCTION_MEAN ? total / D : total);
  if (grad_input && desc->padding == CLLOSS_PADDING_ZERO)
    clloss__zero_host_padding(grad_input, N, C, ld,
                              clloss_dtype_size(desc->input_type));
  return CLLOSS_SUCCESS;
}
