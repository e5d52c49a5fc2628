/* linear_host.c - linear_cross_entropy on host arrays: targets checked on
 * the host, the arrays copied into buffers the context pools, the
 * device-buffer call on the context's queue, the outputs copied back. */
#include <stdlib.h>
#include <string.h>

#include "linear.h"

/* A pooled buffer of linear_cross_entropy's own (W, b, dW, db). */
static clloss_status pool(clloss_context *ctx, int which, size_t bytes,
                          clloss_buffer *out) {
  struct clloss__linear *lin = ctx->linear;
  CLLOSS__TRY(
      clloss__reserve(ctx, &lin->mem[which], &lin->bytes[which], bytes, 1));
  out->mem = lin->mem[which];
  out->offset = 0;
  return CLLOSS_SUCCESS;
}

/* Queues a copy of `bytes` from host src into b (not waited for). */
static clloss_status upload(clloss_context *ctx, const void *src,
                            clloss_buffer b, size_t bytes) {
  if (!src || bytes == 0)
    return CLLOSS_SUCCESS;
  cl_int err = clEnqueueWriteBuffer(ctx->queue, b.mem, CL_FALSE, 0, bytes, src,
                                    0, NULL, NULL);
  return err == CL_SUCCESS
             ? CLLOSS_SUCCESS
             : clloss__fail(ctx, clloss__cl_status(err),
                            "copying %zu bytes to the device failed", bytes);
}

/* The device side of each argument: pooled, and filled where it is an
 * input (or an accumulated gradient). */
typedef struct lce_host {
  const void *x, *w, *b, *t, *cw, *g;
  void *loss, *dx, *dw, *db;
} lce_host;

typedef struct lce_dev {
  clloss_buffer x, w, b, t, cw, g, loss, dx, dw, db;
} lce_dev;

static clloss_status stage(clloss_context *ctx,
                           const clloss_linear_cross_entropy_desc *d,
                           const lce_host *h, lce_dev *v) {
  const clloss_cross_entropy_desc *ce = &d->ce;
  const size_t N = ce->rows, V = ce->classes, H = d->hidden;
  const size_t st = clloss_dtype_size(ce->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(ce->input_type));
  const size_t lc = clloss_cross_entropy_output_count(ce);
  const int prob = clloss__is_probability_target(ce->target_type);
  const size_t tb = prob ? N * V * st : N * clloss_dtype_size(ce->target_type);
  memset(v, 0, sizeof *v);
  CLLOSS__TRY(
      clloss__pool_upload(ctx, CLLOSS__POOL_INPUT, h->x, N * H * st, &v->x));
  CLLOSS__TRY(clloss__pool_upload(ctx, CLLOSS__POOL_TARGET, h->t, tb, &v->t));
  CLLOSS__TRY(
      clloss__pool_upload(ctx, CLLOSS__POOL_WEIGHT, h->cw, V * real, &v->cw));
  CLLOSS__TRY(clloss__pool_upload(ctx, CLLOSS__POOL_GRAD_OUTPUT, h->g,
                                  lc * real, &v->g));
  CLLOSS__TRY(pool(ctx, LCE_HOST_W, V * H * st, &v->w));
  CLLOSS__TRY(upload(ctx, h->w, v->w, V * H * st));
  if (h->b) {
    CLLOSS__TRY(pool(ctx, LCE_HOST_B, V * st, &v->b));
    CLLOSS__TRY(upload(ctx, h->b, v->b, V * st));
  }
  if (h->loss)
    CLLOSS__TRY(
        clloss__pool_get(ctx, CLLOSS__POOL_LOSS, lc * real, &v->loss.mem));
  if (h->dx && ce->accumulate)
    CLLOSS__TRY(
        clloss__pool_upload(ctx, CLLOSS__POOL_GRAD, h->dx, N * H * st, &v->dx));
  else if (h->dx)
    CLLOSS__TRY(
        clloss__pool_get(ctx, CLLOSS__POOL_GRAD, N * H * st, &v->dx.mem));
  if (h->dw) {
    CLLOSS__TRY(pool(ctx, LCE_HOST_DW, V * H * st, &v->dw));
    if (d->accumulate_grad_linear_weight)
      CLLOSS__TRY(upload(ctx, h->dw, v->dw, V * H * st));
  }
  if (h->db) {
    CLLOSS__TRY(pool(ctx, LCE_HOST_DB, V * st, &v->db));
    if (d->accumulate_grad_bias)
      CLLOSS__TRY(upload(ctx, h->db, v->db, V * st));
  }
  return CLLOSS_SUCCESS;
}

static clloss_status download(clloss_context *ctx, const lce_dev *v,
                              const lce_host *h,
                              const clloss_linear_cross_entropy_desc *d) {
  const clloss_cross_entropy_desc *ce = &d->ce;
  const size_t N = ce->rows, V = ce->classes, H = d->hidden;
  const size_t st = clloss_dtype_size(ce->input_type);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(ce->input_type));
  const size_t lc = clloss_cross_entropy_output_count(ce);
  CLLOSS__TRY(clloss__pool_download(ctx, v->loss, h->loss, lc * real));
  CLLOSS__TRY(clloss__pool_download(ctx, v->dx, h->dx, N * H * st));
  CLLOSS__TRY(clloss__pool_download(ctx, v->dw, h->dw, V * H * st));
  return clloss__pool_download(ctx, v->db, h->db, V * st);
}

clloss_status clloss_linear_cross_entropy_host(
    clloss_context *ctx, const clloss_linear_cross_entropy_desc *desc,
    const void *input, const void *linear_weight, const void *linear_bias,
    const void *target, const void *weight, const void *grad_output, void *loss,
    void *grad_input, void *grad_linear_weight, void *grad_linear_bias) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  if (!desc)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT, "desc is NULL");
  if (!input || !linear_weight || !target)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "input, linear_weight and target must not be NULL");
  if (!loss && !grad_input && !grad_linear_weight && !grad_linear_bias)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "no output is given (loss, grad_input, "
                        "grad_linear_weight, grad_linear_bias)");
  /* The descriptor is checked first, once (taken as clloss.h's
   * "Descriptors" says, fp64, CLBlast), then the plan (the workspace
   * query), the targets before any output is touched. */
  clloss_linear_cross_entropy_desc d;
  CLLOSS__TRY(clloss__lce_check_desc(ctx, desc, &d));
  size_t bytes;
  CLLOSS__TRY(clloss__lce_workspace(ctx, &d, grad_input != NULL,
                                    grad_linear_weight != NULL,
                                    grad_linear_bias != NULL, &bytes, NULL));
  const clloss_cross_entropy_desc *ce = &d.ce;
  if (!clloss__is_probability_target(ce->target_type))
    CLLOSS__TRY(clloss__check_targets(target, ce->target_type, ce->rows,
                                      ce->classes, ce->ignore_index, NULL,
                                      ctx->detail));
  if (!clloss__linear_of(ctx))
    return CLLOSS_OUT_OF_HOST_MEMORY;
  const lce_host h = {input,
                      linear_weight,
                      linear_bias,
                      target,
                      weight,
                      grad_output,
                      loss,
                      grad_input,
                      grad_linear_weight,
                      grad_linear_bias};
  lce_dev v;
  clloss_status s = stage(ctx, &d, &h, &v);
  if (s == CLLOSS_SUCCESS) {
    const clloss_buffer bufs[10] = {v.x, v.w,    v.b,  v.t,  v.cw,
                                    v.g, v.loss, v.dx, v.dw, v.db};
    s = clloss__lce_call_device(ctx, ctx->queue, &d, bufs, 0, NULL, NULL);
  }
  if (s == CLLOSS_SUCCESS)
    s = download(ctx, &v, &h, &d);
  if (s != CLLOSS_SUCCESS)
    clFinish(ctx->queue); /* queued copies may still read host memory */
  return s;
}
