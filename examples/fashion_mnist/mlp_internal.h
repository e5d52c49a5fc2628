/* mlp_internal.h - what mlp.c (lifecycle, loops) and mlp_steps.c (one
 * enqueued step each) share: the trainer's state and the step functions. */
#ifndef FM_MLP_INTERNAL_H
#define FM_MLP_INTERNAL_H
#include "mlp.h"

#define PIXELS 784
#define CLASSES FM_CLASSES

/* Fashion-MNIST's pixel mean and standard deviation (of x / 255). */
#define PIXEL_MEAN 0.2860f
#define PIXEL_STD 0.3530f

extern const char fm_kernels_source[]; /* kernels.cl, embedded at build */

enum {
  K_GATHER,
  K_BIAS,
  K_RELU_BACK,
  K_COLSUM,
  K_ADAM,
  K_SGD,
  K_ACC,
  K_CORRECT,
  K_COUNT
};
/* One split on the device: images as bytes, labels, and the order in which
 * batches take them. */
typedef struct fm_split {
  size_t count;
  cl_mem images, labels, perm;
} fm_split;

struct fm_trainer {
  clloss_context *ctx;
  cl_context cl;
  cl_command_queue queue;
  fm_config cfg;
  cl_program program;
  cl_kernel k[K_COUNT];
  fm_split train, test;
  int *perm_host; /* the training order, reshuffled every epoch */
  uint64_t rng;
  size_t rows_max;
  /* Parameters in one buffer, so that one kernel updates them all:
   * W1 [784, hidden] | b1 [hidden] | W2 [hidden, 10] | b2 [10]. */
  size_t n_params, off_b1, off_w2, off_b2;
  cl_mem params, grads, state1, state2;
  cl_mem x, h, dh, z, dz, y, loss, acc, correct;
  long step;
  char err[512];
};

/* Records a sentence about the failure and returns `code` unchanged. The
 * callers name the code's source: OpenCL's (negative), clloss's (1001 and
 * up) and CLBlast's (OpenCL's, plus -1007 to -2050) are different lists. */
int fm__fail(fm_trainer *t, int code, const char *fmt, ...);

#define CL_TRY(t, call)                                                        \
  do {                                                                         \
    cl_int e_ = (call);                                                        \
    if (e_ != CL_SUCCESS)                                                      \
      return fm__fail((t), e_, "%s failed: %s", #call,                         \
                      clloss_status_name(e_));                                 \
  } while (0)

#define ARG(t, k, i, v) CL_TRY(t, clSetKernelArg(k, i, sizeof(v), &(v)))

/* Each enqueues its work on t->queue and returns 0 or a failing code. */
int fm__zero(fm_trainer *t, cl_mem m, size_t bytes);
int fm__run(fm_trainer *t, cl_kernel k, cl_uint dims, size_t g0, size_t g1);
/* x, y <- rows items of `s` from position `start` of its order; then
 * z = relu(x W1 + b1) W2 + b2, keeping h = relu(x W1 + b1). */
int fm__forward(fm_trainer *t, const fm_split *s, size_t start, size_t rows);
/* clloss cross_entropy of z against y: mean with dL/dz into dz, or (no
 * gradient) the sum, into t->loss. */
int fm__loss(fm_trainer *t, size_t rows, int with_grad);
/* Parameter gradients into t->grads from dz. */
int fm__backward(fm_trainer *t, size_t rows);
/* One optimizer step on all parameters. */
int fm__update(fm_trainer *t);
/* acc += (loss * weight, weight). */
int fm__accumulate(fm_trainer *t, float weight);

#endif
