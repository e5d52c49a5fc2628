/* linear_cross_entropy.c - CPU reference of the fused linear layer and
 * cross-entropy: each row's logits z = X_i W^T + b in double, the
 * cross_entropy reference on that row, and the gradients accumulated in
 * double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "reference.h"

/* The mean's divisor: the normalizer, else N for probability targets, else
 * the weight sum D over rows whose target is not ignore_index. */
static double divisor(const clloss_cross_entropy_desc *d, int prob,
                      const void *target, const void *weight) {
  if (d->normalizer > 0.0f)
    return d->normalizer;
  if (prob)
    return (double)d->rows;
  double D = 0.0;
  clloss_dtype wt = clloss_loss_dtype(d->input_type);
  for (size_t i = 0; i < d->rows; i++) {
    int64_t t = clloss__ref_target(target, d->target_type, i);
    if (t != d->ignore_index)
      D += clloss__ref_weight(weight, wt, (size_t)t);
  }
  return D;
}

/* Work arrays of one call. */
typedef struct lce_ref {
  double *z, *dz, *y, *w; /* [V] logits, gradient, targets, class weights */
  double *dw, *db;        /* [V, H], [V] accumulated gradients */
} lce_ref;

static void ref_free(lce_ref *r) {
  free(r->z);
  free(r->dz);
  free(r->y);
  free(r->w);
  free(r->dw);
  free(r->db);
}

static int ref_alloc(lce_ref *r, size_t V, size_t H, int dw, int db) {
  memset(r, 0, sizeof *r);
  r->z = malloc(V * sizeof(double));
  r->dz = malloc(V * sizeof(double));
  r->y = malloc(V * sizeof(double));
  r->w = malloc(V * sizeof(double));
  if (dw)
    r->dw = calloc(V * H, sizeof(double));
  if (db)
    r->db = calloc(V, sizeof(double));
  return r->z && r->dz && r->y && r->w && (!dw || r->dw) && (!db || r->db);
}

/* z = x W^T + b for one row x. */
static void row_logits(const clloss_linear_cross_entropy_desc *d, const void *x,
                       size_t i, const void *W, const void *b, double *z) {
  const size_t V = d->ce.classes, H = d->hidden;
  const clloss_dtype st = d->ce.input_type;
  for (size_t j = 0; j < V; j++) {
    double acc = b ? clloss__ref_load(b, st, j) : 0.0;
    for (size_t h = 0; h < H; h++)
      acc += clloss__ref_load(x, st, i * H + h) *
             clloss__ref_load(W, st, j * H + h);
    z[j] = acc;
  }
}

/* Stores a double gradient, added to what is there when `accumulate`. */
static void store_grad(void *out, clloss_dtype st, const double *g, size_t n,
                       int accumulate) {
  for (size_t k = 0; k < n; k++)
    clloss__ref_store(out, st, k,
                      g[k] + (accumulate ? clloss__ref_load(out, st, k) : 0.0));
}

clloss_status clloss_reference_linear_cross_entropy(
    const clloss_linear_cross_entropy_desc *desc, const void *input,
    const void *linear_weight, const void *linear_bias, const void *target,
    const void *weight, const void *grad_output, void *loss, void *grad_input,
    void *grad_linear_weight, void *grad_linear_bias) {
  if (!desc || !input || !linear_weight || !target ||
      (!loss && !grad_input && !grad_linear_weight && !grad_linear_bias))
    return CLLOSS_INVALID_ARGUMENT;
  clloss_linear_cross_entropy_desc dd;
  clloss_status st = clloss__check_linear_desc(desc, &dd, NULL);
  if (st != CLLOSS_SUCCESS)
    return st;
  desc = &dd;
  const clloss_cross_entropy_desc *d = &dd.ce;
  const size_t N = d->rows, V = d->classes, H = desc->hidden;
  const clloss_dtype s = d->input_type, lt = clloss_loss_dtype(s);
  const int prob = clloss__is_probability_target(d->target_type);
  if (!prob &&
      (st = clloss__check_targets(target, d->target_type, N, V, d->ignore_index,
                                  NULL, NULL)) != CLLOSS_SUCCESS)
    return st;
  lce_ref r;
  if (!ref_alloc(&r, V, H, grad_linear_weight != NULL,
                 grad_linear_bias != NULL)) {
    ref_free(&r);
    return CLLOSS_OUT_OF_HOST_MEMORY;
  }
  for (size_t j = 0; j < V; j++)
    r.w[j] = clloss__ref_weight(weight, lt, j);
  const int grad = grad_input || grad_linear_weight || grad_linear_bias;
  const clloss_reduction red = d->reduction;
  const double div =
      red == CLLOSS_REDUCTION_MEAN ? divisor(d, prob, target, weight) : 1.0;
  const double g = clloss__ref_grad_output(grad_output, lt, 0);
  /* Each row through the cross_entropy reference in float64: none keeps
   * its upstream gradient, sum and mean become a sum scaled by g / div. */
  clloss_cross_entropy_desc row = *d;
  row.rows = 1;
  row.input_type = CLLOSS_FLOAT64;
  if (prob)
    row.target_type = CLLOSS_FLOAT64;
  row.reduction = red == CLLOSS_REDUCTION_NONE ? CLLOSS_REDUCTION_NONE
                                               : CLLOSS_REDUCTION_SUM;
  row.normalizer = 0.0f;
  row.accumulate = 0; /* dX accumulates below (ce.accumulate) */
  double total = 0.0;
  for (size_t i = 0; i < N; i++) {
    row_logits(desc, input, i, linear_weight, linear_bias, r.z);
    const void *t =
        (const char *)target + i * clloss_dtype_size(d->target_type);
    if (prob) {
      for (size_t j = 0; j < V; j++)
        r.y[j] = clloss__ref_load(target, s, i * V + j);
      t = r.y;
    }
    double si = red == CLLOSS_REDUCTION_NONE
                    ? clloss__ref_grad_output(grad_output, lt, i)
                    : g / div;
    double li = 0.0;
    st = clloss_reference_cross_entropy(&row, r.z, t, weight ? r.w : NULL, &si,
                                        &li, grad ? r.dz : NULL);
    if (st != CLLOSS_SUCCESS)
      break;
    total += li;
    if (loss && red == CLLOSS_REDUCTION_NONE)
      clloss__ref_store(loss, lt, i, li);
    for (size_t h = 0; grad_input && h < H; h++) {
      double acc = 0.0;
      for (size_t j = 0; j < V; j++)
        acc += r.dz[j] * clloss__ref_load(linear_weight, s, j * H + h);
      clloss__ref_store(grad_input, s, i * H + h,
                        acc + (d->accumulate
                                   ? clloss__ref_load(grad_input, s, i * H + h)
                                   : 0.0));
    }
    for (size_t j = 0; grad_linear_weight && j < V; j++)
      for (size_t h = 0; h < H; h++)
        r.dw[j * H + h] += r.dz[j] * clloss__ref_load(input, s, i * H + h);
    for (size_t j = 0; grad_linear_bias && j < V; j++)
      r.db[j] += r.dz[j];
  }
  if (st == CLLOSS_SUCCESS) {
    if (loss && red != CLLOSS_REDUCTION_NONE)
      clloss__ref_store(loss, lt, 0,
                        red == CLLOSS_REDUCTION_MEAN ? total / div : total);
    if (grad_linear_weight)
      store_grad(grad_linear_weight, s, r.dw, V * H,
                 desc->accumulate_grad_linear_weight);
    if (grad_linear_bias)
      store_grad(grad_linear_bias, s, r.db, V, desc->accumulate_grad_bias);
  }
  ref_free(&r);
  return st;
}
