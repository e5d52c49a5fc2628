/* mlp.c - the MLP's training and evaluation loops, all on the device: one
 * in-order queue carries gather -> GEMM -> bias/ReLU -> GEMM -> clloss ->
 * backward GEMMs -> optimizer, and the host only reads a running sum. */
#include "mlp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

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
static const char *const kernel_names[K_COUNT] = {
    "gather_batch", "bias_act", "relu_backward", "column_sums",
    "adam_step",    "sgd_step", "accumulate",    "count_correct"};

/* One split on the device: images as bytes, labels, and the order in which
 * batches take them. */
typedef struct split {
  size_t count;
  cl_mem images, labels, perm;
} split;

struct fm_trainer {
  clloss_context *ctx;
  cl_context cl;
  cl_command_queue queue;
  fm_config cfg;
  cl_program program;
  cl_kernel k[K_COUNT];
  split train, test;
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

/* Records a sentence about the failure; `code` is returned unchanged. The
 * callers name the code's source: OpenCL's, clloss's and CLBlast's codes
 * overlap (CLBlast reuses -1007 to -1022). */
static int fail(fm_trainer *t, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->err, sizeof t->err, fmt, ap);
  va_end(ap);
  return code;
}

#define CL_TRY(t, call)                                                        \
  do {                                                                         \
    cl_int e_ = (call);                                                        \
    if (e_ != CL_SUCCESS)                                                      \
      return fail((t), e_, "%s failed: %s", #call, clloss_status_name(e_));    \
  } while (0)

/* splitmix64: the seed fixes the initial weights and every shuffle. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) {
  return (double)(next_u64(s) >> 11) / 9007199254740992.0;
}

static cl_mem buffer(fm_trainer *t, size_t bytes, const void *init, cl_int *e) {
  cl_mem_flags flags = CL_MEM_READ_WRITE;
  if (init)
    flags |= CL_MEM_COPY_HOST_PTR;
  return clCreateBuffer(t->cl, flags, bytes ? bytes : 1, (void *)init, e);
}

static int zero(fm_trainer *t, cl_mem m, size_t bytes) {
  cl_float z = 0.0f;
  CL_TRY(t, clEnqueueFillBuffer(t->queue, m, &z, sizeof z, 0, bytes, 0, NULL,
                                NULL));
  return 0;
}

static int upload_split(fm_trainer *t, const fm_dataset *ds, split *s) {
  cl_int e = CL_SUCCESS;
  s->count = ds->count;
  int *order = malloc((ds->count ? ds->count : 1) * sizeof *order);
  if (!order)
    return fail(t, CL_OUT_OF_HOST_MEMORY, "cannot allocate the order");
  for (size_t i = 0; i < ds->count; i++)
    order[i] = (int)i;
  s->images = buffer(t, ds->count * PIXELS, ds->images, &e);
  if (e == CL_SUCCESS)
    s->labels = buffer(t, ds->count, ds->labels, &e);
  if (e == CL_SUCCESS)
    s->perm = buffer(t, ds->count * sizeof(int), order, &e);
  free(order);
  if (e != CL_SUCCESS)
    return fail(t, e, "cannot upload a split of %zu images: %s", ds->count,
                clloss_status_name(e));
  return 0;
}

/* PyTorch's nn.Linear initialization: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * for weights and biases alike. */
static void init_params(fm_trainer *t, float *p) {
  size_t hidden = t->cfg.hidden;
  double b1 = 1.0 / sqrt((double)PIXELS), b2 = 1.0 / sqrt((double)hidden);
  for (size_t i = 0; i < t->off_w2; i++)
    p[i] = (float)((2.0 * uniform01(&t->rng) - 1.0) * b1);
  for (size_t i = t->off_w2; i < t->n_params; i++)
    p[i] = (float)((2.0 * uniform01(&t->rng) - 1.0) * b2);
}

static int build_kernels(fm_trainer *t) {
  cl_int e;
  const char *src = fm_kernels_source;
  cl_device_id dev = clloss_context_device(t->ctx);
  t->program = clCreateProgramWithSource(t->cl, 1, &src, NULL, &e);
  if (!t->program)
    return fail(t, e, "clCreateProgramWithSource failed: %s",
                clloss_status_name(e));
  e = clBuildProgram(t->program, 1, &dev, "", NULL, NULL);
  if (e != CL_SUCCESS) {
    char log[256] = "";
    clGetProgramBuildInfo(t->program, dev, CL_PROGRAM_BUILD_LOG, sizeof log,
                          log, NULL);
    log[sizeof log - 1] = '\0';
    return fail(t, e, "kernels.cl does not build: %s", log);
  }
  for (int i = 0; i < K_COUNT; i++) {
    t->k[i] = clCreateKernel(t->program, kernel_names[i], &e);
    if (!t->k[i])
      return fail(t, e, "clCreateKernel(%s) failed: %s", kernel_names[i],
                  clloss_status_name(e));
  }
  return 0;
}

static int create_buffers(fm_trainer *t) {
  size_t h = t->cfg.hidden, r = t->rows_max, p = t->n_params;
  struct {
    cl_mem *m;
    size_t bytes;
  } list[] = {{&t->params, p * 4},
              {&t->grads, p * 4},
              {&t->state1, p * 4},
              {&t->state2, p * 4},
              {&t->x, r * PIXELS * 4},
              {&t->h, r * h * 4},
              {&t->dh, r * h * 4},
              {&t->z, r * CLASSES * 4},
              {&t->dz, r * CLASSES * 4},
              {&t->y, r * sizeof(cl_int)},
              {&t->loss, 4},
              {&t->acc, 2 * 4},
              {&t->correct, sizeof(cl_int)}};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
    cl_int e;
    *list[i].m = buffer(t, list[i].bytes, NULL, &e);
    if (!*list[i].m)
      return fail(t, e, "cannot allocate %zu bytes: %s", list[i].bytes,
                  clloss_status_name(e));
    /* Zeroed, so that nothing ever reads uninitialized memory (a GEMM with
     * beta = 0 may still load C). */
    int s = zero(t, *list[i].m, list[i].bytes);
    if (s)
      return s;
  }
  float *init = malloc(p * sizeof *init);
  if (!init)
    return fail(t, CL_OUT_OF_HOST_MEMORY, "cannot allocate the weights");
  init_params(t, init);
  cl_int e = clEnqueueWriteBuffer(t->queue, t->params, CL_TRUE, 0, p * 4, init,
                                  0, NULL, NULL);
  free(init);
  if (e != CL_SUCCESS)
    return fail(t, e, "cannot upload the initial weights: %s",
                clloss_status_name(e));
  return 0;
}

int fm_trainer_create(clloss_context *ctx, cl_command_queue queue,
                      const fm_config *cfg, const fm_dataset *train,
                      const fm_dataset *test, fm_trainer **out, char *err,
                      size_t err_size) {
  *out = NULL;
  if (!ctx || !queue || !cfg || !train || cfg->hidden == 0 || cfg->batch == 0 ||
      cfg->eval_batch == 0 || train->count == 0 ||
      train->rows * train->cols != PIXELS ||
      (test && test->rows * test->cols != PIXELS) || train->count > INT32_MAX) {
    snprintf(err, err_size, "invalid trainer arguments");
    return CLLOSS_INVALID_ARGUMENT;
  }
  fm_trainer *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, err_size, "out of host memory");
    return CL_OUT_OF_HOST_MEMORY;
  }
  t->ctx = ctx;
  t->cl = clloss_context_cl_context(ctx);
  t->queue = queue;
  t->cfg = *cfg;
  t->rng = cfg->seed;
  t->rows_max = cfg->batch > cfg->eval_batch ? cfg->batch : cfg->eval_batch;
  t->off_b1 = (size_t)PIXELS * cfg->hidden;
  t->off_w2 = t->off_b1 + cfg->hidden;
  t->off_b2 = t->off_w2 + cfg->hidden * CLASSES;
  t->n_params = t->off_b2 + CLASSES;
  t->perm_host = malloc(train->count * sizeof *t->perm_host);
  int s =
      t->perm_host ? 0 : fail(t, CL_OUT_OF_HOST_MEMORY, "out of host memory");
  for (size_t i = 0; !s && i < train->count; i++)
    t->perm_host[i] = (int)i;
  if (!s)
    s = build_kernels(t);
  if (!s)
    s = upload_split(t, train, &t->train);
  if (!s && test)
    s = upload_split(t, test, &t->test);
  if (!s)
    s = create_buffers(t);
  if (s) {
    snprintf(err, err_size, "%s", t->err);
    fm_trainer_release(t);
    return s;
  }
  *out = t;
  return 0;
}

void fm_trainer_release(fm_trainer *t) {
  if (!t)
    return;
  if (t->queue)
    clFinish(t->queue);
  cl_mem mems[] = {t->train.images,
                   t->train.labels,
                   t->train.perm,
                   t->test.images,
                   t->test.labels,
                   t->test.perm,
                   t->params,
                   t->grads,
                   t->state1,
                   t->state2,
                   t->x,
                   t->h,
                   t->dh,
                   t->z,
                   t->dz,
                   t->y,
                   t->loss,
                   t->acc,
                   t->correct};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i])
      clReleaseMemObject(mems[i]);
  for (int i = 0; i < K_COUNT; i++)
    if (t->k[i])
      clReleaseKernel(t->k[i]);
  if (t->program)
    clReleaseProgram(t->program);
  free(t->perm_host);
  free(t);
}

const char *fm_trainer_error(const fm_trainer *t) {
  return t ? t->err : "no trainer";
}

size_t fm_trainer_batches(const fm_trainer *t) {
  return (t->train.count + t->cfg.batch - 1) / t->cfg.batch;
}

/* ---- enqueue helpers ---- */

#define ARG(t, k, i, v) CL_TRY(t, clSetKernelArg(k, i, sizeof(v), &(v)))

static int run(fm_trainer *t, cl_kernel k, cl_uint dims, size_t g0, size_t g1) {
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
    return fail(t, (int)s,
                "CLBlastSgemm(%zu x %zu x %zu) failed: CLBlast "
                "status %d",
                m, n, k, (int)s);
  return 0;
}

/* x, y <- rows items of `s` from position `start` of its order, then
 * z = relu(x W1 + b1) W2 + b2, keeping h = relu(x W1 + b1). */
static int forward(fm_trainer *t, const split *s, size_t start, size_t rows) {
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
  int e = run(t, k, 2, PIXELS, rows);
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
  e = run(t, k, 2, t->cfg.hidden, rows);
  if (!e)
    e = gemm(t, 0, 0, rows, CLASSES, t->cfg.hidden, t->h, 0, t->cfg.hidden,
             t->params, t->off_w2, CLASSES, t->z, 0, CLASSES);
  if (e)
    return e;
  ARG(t, k, 0, t->z);
  ARG(t, k, 2, off_b2);
  ARG(t, k, 3, classes);
  ARG(t, k, 4, no_relu);
  return run(t, k, 2, CLASSES, rows);
}

/* The loss of z against y through clloss's device-buffer call: the mean
 * (training, with dL/dz into dz) or the sum (evaluation, no gradient). */
static int loss(fm_trainer *t, size_t rows, int with_grad) {
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
    return fail(t, s, "clloss_cross_entropy failed: %s: %s%s%.200s",
                clloss_status_name(s), clloss_context_error_detail(t->ctx),
                s == CLLOSS_BUILD_FAILURE ? "\nbuild log: " : "",
                s == CLLOSS_BUILD_FAILURE ? clloss_context_build_log(t->ctx)
                                          : "");
  return 0;
}

/* Gradients of the mean loss into `grads`, from dz = dL/dz:
 *   dW2 = h^T dz, db2 = colsum dz, dh = (dz W2^T) * [h > 0],
 *   dW1 = x^T dh, db1 = colsum dh. */
static int backward(fm_trainer *t, size_t rows) {
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
  e = run(t, k, 1, CLASSES, 1);
  if (!e)
    e = gemm(t, 0, 1, rows, hid, CLASSES, t->dz, 0, CLASSES, t->params,
             t->off_w2, CLASSES, t->dh, 0, hid);
  if (e)
    return e;
  cl_kernel kr = t->k[K_RELU_BACK];
  ARG(t, kr, 0, t->dh);
  ARG(t, kr, 1, t->h);
  e = run(t, kr, 1, rows * hid, 1);
  if (!e)
    e = gemm(t, 1, 0, PIXELS, hid, rows, t->x, 0, PIXELS, t->dh, 0, hid,
             t->grads, 0, hid);
  if (e)
    return e;
  ARG(t, k, 0, t->dh);
  ARG(t, k, 2, h);
  ARG(t, k, 4, off_b1);
  return run(t, k, 1, hid, 1);
}

static int update(fm_trainer *t) {
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
    return run(t, k, 1, t->n_params, 1);
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
  return run(t, k, 1, t->n_params, 1);
}

/* acc += (loss * weight, weight), on the device. */
static int accumulate(fm_trainer *t, float weight) {
  cl_kernel k = t->k[K_ACC];
  cl_float w = weight;
  ARG(t, k, 0, t->loss);
  ARG(t, k, 1, t->acc);
  ARG(t, k, 2, w);
  return run(t, k, 1, 1, 1);
}

static int read_acc(fm_trainer *t, double *mean) {
  float acc[2];
  CL_TRY(t, clEnqueueReadBuffer(t->queue, t->acc, CL_TRUE, 0, sizeof acc, acc,
                                0, NULL, NULL));
  *mean = acc[1] > 0 ? (double)acc[0] / acc[1] : NAN;
  return 0;
}

/* The targets were produced by our own gather kernel, so a bad one would be
 * a bug; clloss records it on the device and we look once per pass. */
static int check_targets(fm_trainer *t) {
  uint64_t row = 0;
  clloss_status s = clloss_check_device_errors(t->ctx, t->queue, &row);
  if (s != CLLOSS_SUCCESS)
    return fail(t, s, "clloss saw an invalid target (row %llu)",
                (unsigned long long)row);
  return 0;
}

int fm_trainer_warm_up(fm_trainer *t) {
  size_t rows = t->cfg.batch < t->train.count ? t->cfg.batch : t->train.count;
  int e = forward(t, &t->train, 0, rows);
  if (!e)
    e = loss(t, rows, 1);
  if (!e)
    e = backward(t, rows);
  if (!e && t->test.count) {
    rows =
        t->cfg.eval_batch < t->test.count ? t->cfg.eval_batch : t->test.count;
    e = forward(t, &t->test, 0, rows);
    if (!e)
      e = loss(t, rows, 0);
  }
  if (!e)
    CL_TRY(t, clFinish(t->queue));
  return e ? e : check_targets(t);
}

int fm_trainer_epoch(fm_trainer *t, size_t every, fm_progress_fn progress,
                     void *user, double *train_loss) {
  size_t n = t->train.count, batches = fm_trainer_batches(t);
  for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
    size_t j = (size_t)(next_u64(&t->rng) % (i + 1));
    int tmp = t->perm_host[i];
    t->perm_host[i] = t->perm_host[j];
    t->perm_host[j] = tmp;
  }
  CL_TRY(t, clEnqueueWriteBuffer(t->queue, t->train.perm, CL_TRUE, 0,
                                 n * sizeof(int), t->perm_host, 0, NULL, NULL));
  int e = zero(t, t->acc, 2 * sizeof(float));
  for (size_t b = 0; !e && b < batches; b++) {
    size_t start = b * t->cfg.batch;
    size_t rows = n - start < t->cfg.batch ? n - start : t->cfg.batch;
    e = forward(t, &t->train, start, rows);
    if (!e)
      e = loss(t, rows, 1);
    if (!e)
      e = accumulate(t, (float)rows);
    if (!e)
      e = backward(t, rows);
    if (!e)
      e = update(t);
    if (!e && progress && every && ((b + 1) % every == 0 || b + 1 == batches)) {
      double running;
      e = read_acc(t, &running);
      if (!e)
        progress(user, b + 1, batches, running);
    } else if (!e && b % 16 == 15) {
      CL_TRY(t, clFlush(t->queue));
    }
  }
  if (!e)
    e = read_acc(t, train_loss);
  return e ? e : check_targets(t);
}

int fm_trainer_evaluate(fm_trainer *t, double *mean_loss, double *accuracy) {
  size_t n = t->test.count;
  if (n == 0)
    return fail(t, CLLOSS_INVALID_ARGUMENT, "no test split to evaluate");
  int e = zero(t, t->acc, 2 * sizeof(float));
  if (!e)
    e = zero(t, t->correct, sizeof(cl_int));
  cl_kernel k = t->k[K_CORRECT];
  cl_int classes = CLASSES;
  for (size_t start = 0; !e && start < n; start += t->cfg.eval_batch) {
    size_t rows = n - start < t->cfg.eval_batch ? n - start : t->cfg.eval_batch;
    e = forward(t, &t->test, start, rows);
    if (!e)
      e = loss(t, rows, 0);
    if (!e)
      e = accumulate(t, 1.0f);
    if (e)
      break;
    ARG(t, k, 0, t->z);
    ARG(t, k, 1, t->y);
    ARG(t, k, 2, classes);
    ARG(t, k, 3, t->correct);
    e = run(t, k, 1, rows, 1);
  }
  if (e)
    return e;
  float acc[2];
  cl_int correct = 0;
  CL_TRY(t, clEnqueueReadBuffer(t->queue, t->acc, CL_FALSE, 0, sizeof acc, acc,
                                0, NULL, NULL));
  CL_TRY(t, clEnqueueReadBuffer(t->queue, t->correct, CL_TRUE, 0,
                                sizeof correct, &correct, 0, NULL, NULL));
  *mean_loss = acc[0] / (double)n;
  *accuracy = correct / (double)n;
  return check_targets(t);
}

int fm_trainer_check(fm_trainer *t, fm_check *out) {
  memset(out, 0, sizeof *out);
  size_t rows = t->cfg.batch < t->train.count ? t->cfg.batch : t->train.count;
  int e = forward(t, &t->train, 0, rows);
  if (!e)
    e = loss(t, rows, 1);
  if (e)
    return e;
  size_t nz = rows * CLASSES;
  float *z = malloc(nz * sizeof *z), *dz = malloc(nz * sizeof *dz);
  float *ref = malloc(nz * sizeof *ref);
  cl_int *y = malloc(rows * sizeof *y);
  float l_dev = 0.0f, l_ref = 0.0f;
  cl_int c = (z && dz && ref && y) ? CL_SUCCESS : CL_OUT_OF_HOST_MEMORY;
  if (!c)
    c = clEnqueueReadBuffer(t->queue, t->z, CL_FALSE, 0, nz * 4, z, 0, NULL,
                            NULL);
  if (!c)
    c = clEnqueueReadBuffer(t->queue, t->dz, CL_FALSE, 0, nz * 4, dz, 0, NULL,
                            NULL);
  if (!c)
    c = clEnqueueReadBuffer(t->queue, t->y, CL_FALSE, 0, rows * sizeof *y, y, 0,
                            NULL, NULL);
  if (!c)
    c = clEnqueueReadBuffer(t->queue, t->loss, CL_TRUE, 0, 4, &l_dev, 0, NULL,
                            NULL);
  if (c) {
    e = fail(t, c, "cannot read the first batch back");
  } else {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = rows;
    d.classes = CLASSES;
    d.target_type = CLLOSS_INT32;
    d.label_smoothing = t->cfg.label_smoothing;
    clloss_status s =
        clloss_reference_cross_entropy(&d, z, y, NULL, NULL, &l_ref, ref);
    if (s != CLLOSS_SUCCESS)
      e = fail(t, s, "clloss_reference_cross_entropy failed");
  }
  if (!e) {
    out->rows = rows;
    out->loss_device = l_dev;
    out->loss_reference = l_ref;
    for (size_t i = 0; i < nz; i++) {
      double d = fabs((double)dz[i] - ref[i]);
      if (!(d <= out->max_abs_grad_err)) /* NaN counts as the worst */
        out->max_abs_grad_err = isnan(d) ? INFINITY : d;
      if (fabs(ref[i]) > out->max_abs_grad)
        out->max_abs_grad = fabs(ref[i]);
    }
    out->ok = fabs(out->loss_device - out->loss_reference) <=
                  1e-5 + 1e-5 * fabs(out->loss_reference) &&
              out->max_abs_grad_err <= 1e-6 + 1e-4 * out->max_abs_grad;
    e = check_targets(t);
  }
  free(z);
  free(dz);
  free(ref);
  free(y);
  return e;
}
