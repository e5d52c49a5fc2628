/* cli_softmax.c - `clloss run softmax`'s entry (cli_run.h): the
 * probabilities of X's rows (its last axis: [N, C], [C], or any shape with
 * rows over the leading axes), written to --out in X's shape and dtype. */
#include <stdio.h>
#include <string.h>

#include "cli_run.h"

int cli_check_softmax(cli_job *j) {
  const npy_array *x = &j->in[IN_X];
  char s[512];
  if (!cli_is_float(x->dtype))
    return cli_error("run", CLI_DATA_ERROR,
                     "input: dtype %s is not a float (float16, float32, "
                     "float64)",
                     clloss_dtype_name(x->dtype));
  if (x->ndim == 0 || x->shape[x->ndim - 1] == 0)
    return cli_error("run", CLI_DATA_ERROR,
                     "softmax takes rows of at least one class, not shape %s",
                     cli_shape_text(x, s, sizeof s));
  clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
  d.classes = x->shape[x->ndim - 1];
  d.rows = x->count / d.classes;
  d.input_type = x->dtype;
  j->sm = d;
  cli_output *p = &j->out[0];
  p->path = j->a.out[OUT_P];
  p->type = x->dtype;
  p->ndim = x->ndim;
  memcpy(p->shape, x->shape, sizeof x->shape);
  p->count = x->count;
  return CLI_OK;
}

clloss_status cli_run_softmax(cli_job *j) {
  return clloss_softmax_host(j->ctx, &j->sm, j->in[IN_X].data, j->out[0].data);
}

clloss_status cli_reference_softmax(cli_job *j) {
  return clloss_reference_softmax(&j->sm, j->in[IN_X].data, j->out[0].data);
}

void cli_describe_softmax(const cli_job *j, char *buf, size_t len) {
  const npy_array *x = &j->in[IN_X];
  char s[512];
  snprintf(buf, len, "softmax(%s, %s) over the last axis",
           cli_shape_text(x, s, sizeof s), clloss_dtype_name(x->dtype));
}
