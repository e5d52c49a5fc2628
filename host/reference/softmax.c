/* softmax.c - CPU reference of softmax over rows. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "reference.h"

/* p_j = exp(x_j - m - log sum_c exp(x_c - m)), m = max_c x_c: exact at any
 * logit scale; NaN anywhere in a row makes it NaN, a +inf gives NaN
 * (inf - inf), a row of -inf gives NaN (0/0), as PyTorch. */
clloss_status clloss_reference_softmax(const clloss_softmax_desc *desc,
                                       const void *input, void *output) {
  clloss_softmax_desc d;
  clloss_status st = clloss__check_softmax_desc(desc, &d, NULL);
  if (st != CLLOSS_SUCCESS)
    return st;
  if (!input || !output)
    return CLLOSS_INVALID_ARGUMENT;
  const size_t N = d.rows, C = d.classes, ld = d.row_stride ? d.row_stride : C;
  double *x = malloc(C * sizeof *x);
  if (!x)
    return CLLOSS_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < N; i++) {
    double m = -INFINITY, s = 0.0;
    for (size_t j = 0; j < C; j++) {
      x[j] = clloss__ref_load(input, d.input_type, i * ld + j);
      if (x[j] > m)
        m = x[j];
    }
    for (size_t j = 0; j < C; j++)
      s += exp(x[j] - m);
    const double log_s = log(s);
    for (size_t j = 0; j < C; j++)
      clloss__ref_store(output, d.input_type, i * ld + j,
                        exp((x[j] - m) - log_s));
  }
  free(x);
  if (d.padding == CLLOSS_PADDING_ZERO)
    clloss__zero_host_padding(output, N, C, ld,
                              clloss_dtype_size(d.input_type));
  return CLLOSS_SUCCESS;
}
