/* cli_linear.c - `clloss run linear_cross_entropy`'s entry (cli_run.h):
 * cross_entropy of input W^T + b, on a device (clloss_linear_cross_entropy_
 * host) or the CPU reference, with its loss and the gradients of the input,
 * W and b as outputs. */
#include <stdio.h>
#include <string.h>

#include "cli_run.h"

#define error(...) cli_error("run", CLI_DATA_ERROR, __VA_ARGS__)

/* Shapes and dtypes: X [N, H] or [H]; W [V, H]; b [V]; targets [N] or ()
 * (indices) or X's leading shape plus V (probabilities, X's dtype). */
static int check_shapes(cli_job *j) {
  const npy_array *x = &j->in[IN_X], *w = &j->in[IN_LW], *b = &j->in[IN_LB];
  const npy_array *t = &j->in[IN_T];
  const int bias = (j->have & (1u << IN_LB)) != 0;
  char s1[256], s2[256];
  if (!cli_is_float(x->dtype) || (x->ndim != 1 && x->ndim != 2))
    return error("input must be a float array [N, H] or [H], not %s %s",
                 clloss_dtype_name(x->dtype), cli_shape_text(x, s1, sizeof s1));
  j->one_row = x->ndim == 1;
  const size_t N = j->one_row ? 1 : x->shape[0], H = x->shape[x->ndim - 1];
  if (w->ndim != 2 || w->shape[1] != H || w->shape[0] == 0 || H == 0)
    return error("linear weight %s does not fit input %s: it needs shape "
                 "[V, %zu] with V, H >= 1",
                 cli_shape_text(w, s2, sizeof s2),
                 cli_shape_text(x, s1, sizeof s1), H);
  const size_t V = w->shape[0];
  if (w->dtype != x->dtype || (bias && b->dtype != x->dtype))
    return error("linear weight and bias must have the input's dtype %s",
                 clloss_dtype_name(x->dtype));
  if (bias && (b->ndim != 1 || b->shape[0] != V))
    return error("linear bias %s must have shape (%zu,)",
                 cli_shape_text(b, s1, sizeof s1), V);
  if (cli_is_float(t->dtype)) {
    if (t->dtype != x->dtype || t->ndim != x->ndim ||
        t->shape[t->ndim - 1] != V || (!j->one_row && t->shape[0] != N))
      return error("probability target %s %s must be %s of shape [N, V] "
                   "(or [V] for one row)",
                   clloss_dtype_name(t->dtype),
                   cli_shape_text(t, s1, sizeof s1),
                   clloss_dtype_name(x->dtype));
  } else if (t->dtype == CLLOSS_INT64 || t->dtype == CLLOSS_INT32) {
    int rc = cli_check_indices(j, N, V);
    if (rc != CLI_OK)
      return rc;
  } else {
    return error("target: unsupported dtype %s", clloss_dtype_name(t->dtype));
  }
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.ce.rows = N;
  d.ce.classes = V;
  d.hidden = H;
  d.ce.input_type = x->dtype;
  d.ce.target_type = t->dtype;
  d.chunk_rows = j->a.chunk_rows;
  d.vocab_block = j->a.vocab_block;
  j->lin = d;
  return CLI_OK;
}

/* The four outputs: the loss, dX (X's shape), dW [V, H] and db [V]. */
static void outputs(cli_job *j) {
  const clloss_cross_entropy_desc *ce = &j->lin.ce;
  const npy_array *x = &j->in[IN_X], *w = &j->in[IN_LW];
  cli_output *o = j->out;
  for (int k = 0; k < OUT_COUNT; k++) {
    o[k].path = j->a.out[k];
    o[k].type = k ? ce->input_type : clloss_loss_dtype(ce->input_type);
  }
  o[OUT_LOSS].ndim = ce->reduction == CLLOSS_REDUCTION_NONE && !j->one_row;
  o[OUT_LOSS].shape[0] = ce->rows;
  o[OUT_LOSS].count = clloss_cross_entropy_output_count(ce);
  o[OUT_GRAD].ndim = x->ndim;
  memcpy(o[OUT_GRAD].shape, x->shape, sizeof x->shape);
  o[OUT_GRAD].count = x->count;
  o[OUT_GW].ndim = 2;
  memcpy(o[OUT_GW].shape, w->shape, 2 * sizeof(size_t));
  o[OUT_GW].count = w->count;
  o[OUT_GB].ndim = 1;
  o[OUT_GB].shape[0] = o[OUT_GB].count = ce->classes;
}

int cli_check_linear(cli_job *j) {
  int rc = check_shapes(j);
  if (rc != CLI_OK)
    return rc;
  clloss_cross_entropy_desc *ce = &j->lin.ce;
  cli_ce_options(ce, &j->a.opt);
  const npy_array *w = &j->in[IN_W];
  if (j->have & (1u << IN_W)) {
    if (w->ndim != 1 || w->shape[0] != ce->classes)
      return error("weight must have shape (%zu,), one per class", ce->classes);
    rc = cli_convert_weight("weight", w, clloss_loss_dtype(ce->input_type),
                            &j->weight);
    if (rc != CLI_OK)
      return rc;
  }
  outputs(j);
  return CLI_OK;
}

clloss_status cli_run_linear(cli_job *j) {
  cli_output *o = j->out;
  return clloss_linear_cross_entropy_host(
      j->ctx, &j->lin, j->in[IN_X].data, j->in[IN_LW].data, j->in[IN_LB].data,
      j->in[IN_T].data, j->weight, NULL, o[0].data, o[1].data, o[2].data,
      o[3].data);
}

clloss_status cli_reference_linear(cli_job *j) {
  cli_output *o = j->out;
  return clloss_reference_linear_cross_entropy(
      &j->lin, j->in[IN_X].data, j->in[IN_LW].data, j->in[IN_LB].data,
      j->in[IN_T].data, j->weight, NULL, o[0].data, o[1].data, o[2].data,
      o[3].data);
}

void cli_describe_linear(const cli_job *j, char *buf, size_t len) {
  const cli_output *l = &j->out[OUT_LOSS];
  const double sum = cli_sum(l->data, l->type, l->count);
  snprintf(buf, len,
           "linear_cross_entropy(%s, %s, N=%zu H=%zu V=%zu): "
           "loss%s %.9g",
           clloss_reduction_name(j->lin.ce.reduction),
           clloss_dtype_name(j->lin.ce.input_type), j->lin.ce.rows,
           j->lin.hidden, j->lin.ce.classes, l->count == 1 ? "" : " sum", sum);
}
