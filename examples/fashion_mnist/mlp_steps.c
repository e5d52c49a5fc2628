/* mlp_steps.c - the MLP's per-batch device steps: gather and forward pass
 * (CLBlast GEMMs + bias/ReLU), clloss's loss and gradient, backward pass,
 * optimizer, on-device loss sums. Each enqueues and returns at once. */
#include "mlp_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include <clblast_c.h>

int fm__fail(fm_trainer *t, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->err, sizeof t->err, fmt, ap);
  va_end(ap);
  return code;
}

int fm__zero(fm_trainer *t, cl_mem m, size_t bytes) {
  cl_float z = 0.0f;
  CL_TRY(t, clEnqueueFillBuffer(t->queue, m, &z, sizeof z, 0, bytes, 0, NULL,
                                NULL));
  return 0;
}

int fm__run(fm_trainer *t, cl_kernel k, cl_uint dims, size_t g0, size_t g1) {
  size_t g[2] = {g0, g1};
  CL_TRY(t, clEnqueueNDRangeKernel(t->queue, k, dims, NULL, g, NULL, 0, NULL,
                                   NULL));
  return 0;
}

/* C[m, n] = op(A) op(B), row-major, through CLBlast. */
static int gemm(fm_trainer *t, int trans_a, int trans_b, size_t m, size_t n,
                size_t k, cl_mem a, size_t a_off, size_t lda, cl_mem b,
                size_t b_off, size_t ldb, cl_mem c, size_t c_off, size_t ldc) {
  CLBlastStatusCode s = CLBlastSgemm(
      CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
      trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1.0f, a,
      a_off, lda, b, b_off, ldb, 0.0f, c, c_off, ldc, &t->queue, NULL);
  if (s != CLBlastSuccess)
    return fm__fail(t, (int)s,
                    "CLBlastSgemm(%zu x %zu x %zu) failed: CLBlast "
                    "status %d",
                    m, n, k, (int)s);
  return 0;
}

/* x, y <- rows items of `s` from position `start` of its order, then
 * z = relu(x W1 + b1) W2 + b2, keeping h = relu(x W1 + b1). */
int fm__forward(fm_trainer *t, const fm_split *s, size_t start, size_t rows) {
  cl_kernel k = t->k[K_GATHER];
  cl_int st = (cl_int)start, pixels = PIXELS, relu = 1, no_relu = 0;
  cl_int hid = (cl_int)t->cfg.hidden, classes = CLASSES;
  cl_int off_b1 = (cl_int)t->off_b1, off_b2 = (cl_int)t->off_b2;
  cl_float scale = 1.0f / (255.0f * PIXEL_STD), shift = -PIXEL_MEAN / PIXEL_STD;
  ARG(t, k, 0, s->images);
  ARG(t, k, 1, s->labels);
  ARG(t, k, 2, s->perm);
  ARG(t, k, 3, st);
  ARG(t, k, 4, pixels);
  ARG(t, k, 5, scale);
  ARG(t, k, 6, shift);
  ARG(t, k, 7, t->x);
  ARG(t, k, 8, t->y);
  int e = fm__run(t, k, 2, PIXELS, rows);
  if (!e)
    e = gemm(t, 0, 0, rows, t->cfg.hidden, PIXELS, t->x, 0, PIXELS, t->params,
             0, t->cfg.hidden, t->h, 0, t->cfg.hidden);
  if (e)
    return e;
  k = t->k[K_BIAS];
  ARG(t, k, 0, t->h);
  ARG(t, k, 1, t->params);
  ARG(t, k, 2, off_b1);
  ARG(t, k, 3, hid);
  ARG(t, k, 4, relu);
  e = fm__run(t, k, 2, t->cfg.hidden, rows);
  if (!e)
    e = gemm(t, 0, 0, rows, CLASSES, t->cfg.hidden, t->h, 0, t->cfg.hidden,
             t->params, t->off_w2, CLASSES, t->z, 0, CLASSES);
  if (e)
    return e;
  ARG(t, k, 0, t->z);
  ARG(t, k, 2, off_b2);
  ARG(t, k, 3, classes);
  ARG(t, k, 4, no_relu);
  return fm__run(t, k, 2, CLASSES, rows);
}

/* The loss of z against y through clloss's device-buffer call: the mean
 * (training, with dL/dz into dz) or the sum (evaluation, no gradient). */
int fm__loss(fm_trainer *t, size_t rows, int with_grad) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows;
  d.classes = CLASSES;
  d.target_type = CLLOSS_INT32;
  d.reduction = with_grad ? CLLOSS_REDUCTION_MEAN : CLLOSS_REDUCTION_SUM;
  d.label_smoothing = t->cfg.label_smoothing;
  clloss_buffer none = {NULL, 0};
  clloss_buffer z = {t->z, 0}, y = {t->y, 0}, l = {t->loss, 0};
  clloss_buffer dz = {with_grad ? t->dz : NULL, 0};
  clloss_status s = clloss_cross_entropy(t->ctx, t->queue, &d, z, y, none, none,
                                         l, dz, 0, NULL, NULL);
  if (s != CLLOSS_SUCCESS)
    return fm__fail(t, s, "clloss_cross_entropy failed: %s: %s%s%.200s",
                    clloss_status_name(s), clloss_context_error_detail(t->ctx),
                    s == CLLOSS_BUILD_FAILURE ? "\nbuild log: " : "",
                    s == CLLOSS_BUILD_FAILURE ? clloss_context_build_log(t->ctx)
                                              : "");
  return 0;
}

/* Gradients of the mean loss into `grads`, from dz = dL/dz:
 *   dW2 = h^T dz, db2 = colsum dz, dh = (dz W2^T) * [h > 0],
 *   dW1 = x^T dh, db1 = colsum dh. */
int fm__backward(fm_trainer *t, size_t rows) {
  size_t hid = t->cfg.hidden;
  cl_int r = (cl_int)rows, classes = CLASSES, h = (cl_int)hid;
  cl_int off_b1 = (cl_int)t->off_b1, off_b2 = (cl_int)t->off_b2;
  int e = gemm(t, 1, 0, hid, CLASSES, rows, t->h, 0, hid, t->dz, 0, CLASSES,
               t->grads, t->off_w2, CLASSES);
  if (e)
    return e;
  cl_kernel k = t->k[K_COLSUM];
  ARG(t, k, 0, t->dz);
  ARG(t, k, 1, r);
  ARG(t, k, 2, classes);
  ARG(t, k, 3, t->grads);
  ARG(t, k, 4, off_b2);
  e = fm__run(t, k, 1, CLASSES, 1);
  if (!e)
    e = gemm(t, 0, 1, rows, hid, CLASSES, t->dz, 0, CLASSES, t->params,
             t->off_w2, CLASSES, t->dh, 0, hid);
  if (e)
    return e;
  cl_kernel kr = t->k[K_RELU_BACK];
  ARG(t, kr, 0, t->dh);
  ARG(t, kr, 1, t->h);
  e = fm__run(t, kr, 1, rows * hid, 1);
  if (!e)
    e = gemm(t, 1, 0, PIXELS, hid, rows, t->x, 0, PIXELS, t->dh, 0, hid,
             t->grads, 0, hid);
  if (e)
    return e;
  ARG(t, k, 0, t->dh);
  ARG(t, k, 2, h);
  ARG(t, k, 4, off_b1);
  return fm__run(t, k, 1, hid, 1);
}

int fm__update(fm_trainer *t) {
  const fm_config *c = &t->cfg;
  cl_float lr = c->lr, wd = c->weight_decay;
  t->step++;
  if (c->optimizer == FM_SGD) {
    cl_kernel k = t->k[K_SGD];
    cl_float mu = c->momentum;
    ARG(t, k, 0, t->params);
    ARG(t, k, 1, t->grads);
    ARG(t, k, 2, t->state1);
    ARG(t, k, 3, lr);
    ARG(t, k, 4, mu);
    ARG(t, k, 5, wd);
    return fm__run(t, k, 1, t->n_params, 1);
  }
  cl_kernel k = t->k[K_ADAM];
  cl_float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  cl_float bc1 = (cl_float)(1.0 - pow(0.9, (double)t->step));
  cl_float bc2 = (cl_float)(1.0 - pow(0.999, (double)t->step));
  ARG(t, k, 0, t->params);
  ARG(t, k, 1, t->grads);
  ARG(t, k, 2, t->state1);
  ARG(t, k, 3, t->state2);
  ARG(t, k, 4, lr);
  ARG(t, k, 5, b1);
  ARG(t, k, 6, b2);
  ARG(t, k, 7, eps);
  ARG(t, k, 8, bc1);
  ARG(t, k, 9, bc2);
  ARG(t, k, 10, wd);
  return fm__run(t, k, 1, t->n_params, 1);
}

/* acc += (loss * weight, weight), on the device. */
int fm__accumulate(fm_trainer *t, float weight) {
  cl_kernel k = t->k[K_ACC];
  cl_float w = weight;
  ARG(t, k, 0, t->loss);
  ARG(t, k, 1, t->acc);
  ARG(t, k, 2, w);
  return fm__run(t, k, 1, 1, 1);
}
