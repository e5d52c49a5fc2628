/* mlp.c - the MLP's training and evaluation loops, all on the device: one
 * in-order queue carries gather -> GEMM -> bias/ReLU -> GEMM -> clloss ->
 * backward GEMMs -> optimizer, and the host only reads a running sum. */
#include "mlp_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kernels of kernels.cl, in the order of the K_ enum. */
static const char *const kernel_names[K_COUNT] = {
    "gather_batch", "bias_act", "relu_backward", "column_sums",
    "adam_step",    "sgd_step", "accumulate",    "count_correct"};

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

static int upload_split(fm_trainer *t, const fm_dataset *ds, fm_split *s) {
  cl_int e = CL_SUCCESS;
  s->count = ds->count;
  int *order = malloc((ds->count ? ds->count : 1) * sizeof *order);
  if (!order)
    return fm__fail(t, CL_OUT_OF_HOST_MEMORY, "cannot allocate the order");
  for (size_t i = 0; i < ds->count; i++)
    order[i] = (int)i;
  s->images = buffer(t, ds->count * PIXELS, ds->images, &e);
  if (e == CL_SUCCESS)
    s->labels = buffer(t, ds->count, ds->labels, &e);
  if (e == CL_SUCCESS)
    s->perm = buffer(t, ds->count * sizeof(int), order, &e);
  free(order);
  if (e != CL_SUCCESS)
    return fm__fail(t, e, "cannot upload a split of %zu images: %s", ds->count,
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
    return fm__fail(t, e, "clCreateProgramWithSource failed: %s",
                    clloss_status_name(e));
  e = clBuildProgram(t->program, 1, &dev, "", NULL, NULL);
  if (e != CL_SUCCESS) {
    char log[256] = "";
    clGetProgramBuildInfo(t->program, dev, CL_PROGRAM_BUILD_LOG, sizeof log,
                          log, NULL);
    log[sizeof log - 1] = '\0';
    return fm__fail(t, e, "kernels.cl does not build: %s", log);
  }
  for (int i = 0; i < K_COUNT; i++) {
    t->k[i] = clCreateKernel(t->program, kernel_names[i], &e);
    if (!t->k[i])
      return fm__fail(t, e, "clCreateKernel(%s) failed: %s", kernel_names[i],
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
      return fm__fail(t, e, "cannot allocate %zu bytes: %s", list[i].bytes,
                      clloss_status_name(e));
    /* Zeroed, so that nothing ever reads uninitialized memory (a GEMM with
     * beta = 0 may still load C). */
    int s = fm__zero(t, *list[i].m, list[i].bytes);
    if (s)
      return s;
  }
  float *init = malloc(p * sizeof *init);
  if (!init)
    return fm__fail(t, CL_OUT_OF_HOST_MEMORY, "cannot allocate the weights");
  init_params(t, init);
  cl_int e = clEnqueueWriteBuffer(t->queue, t->params, CL_TRUE, 0, p * 4, init,
                                  0, NULL, NULL);
  free(init);
  if (e != CL_SUCCESS)
    return fm__fail(t, e, "cannot upload the initial weights: %s",
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
  int s = t->perm_host
              ? 0
              : fm__fail(t, CL_OUT_OF_HOST_MEMORY, "out of host memory");
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
    return fm__fail(t, s, "clloss saw an invalid target (row %llu)",
                    (unsigned long long)row);
  return 0;
}

int fm_trainer_warm_up(fm_trainer *t) {
  size_t rows = t->cfg.batch < t->train.count ? t->cfg.batch : t->train.count;
  int e = fm__forward(t, &t->train, 0, rows);
  if (!e)
    e = fm__loss(t, rows, 1);
  if (!e)
    e = fm__backward(t, rows);
  if (!e && t->test.count) {
    rows =
        t->cfg.eval_batch < t->test.count ? t->cfg.eval_batch : t->test.count;
    e = fm__forward(t, &t->test, 0, rows);
    if (!e)
      e = fm__loss(t, rows, 0);
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
  int e = fm__zero(t, t->acc, 2 * sizeof(float));
  for (size_t b = 0; !e && b < batches; b++) {
    size_t start = b * t->cfg.batch;
    size_t rows = n - start < t->cfg.batch ? n - start : t->cfg.batch;
    e = fm__forward(t, &t->train, start, rows);
    if (!e)
      e = fm__loss(t, rows, 1);
    if (!e)
      e = fm__accumulate(t, (float)rows);
    if (!e)
      e = fm__backward(t, rows);
    if (!e)
      e = fm__update(t);
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
    return fm__fail(t, CLLOSS_INVALID_ARGUMENT, "no test split to evaluate");
  int e = fm__zero(t, t->acc, 2 * sizeof(float));
  if (!e)
    e = fm__zero(t, t->correct, sizeof(cl_int));
  cl_kernel k = t->k[K_CORRECT];
  cl_int classes = CLASSES;
  for (size_t start = 0; !e && start < n; start += t->cfg.eval_batch) {
    size_t rows = n - start < t->cfg.eval_batch ? n - start : t->cfg.eval_batch;
    e = fm__forward(t, &t->test, start, rows);
    if (!e)
      e = fm__loss(t, rows, 0);
    if (!e)
      e = fm__accumulate(t, 1.0f);
    if (e)
      break;
    ARG(t, k, 0, t->z);
    ARG(t, k, 1, t->y);
    ARG(t, k, 2, classes);
    ARG(t, k, 3, t->correct);
    e = fm__run(t, k, 1, rows, 1);
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
  int e = fm__forward(t, &t->train, 0, rows);
  if (!e)
    e = fm__loss(t, rows, 1);
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
    e = fm__fail(t, c, "cannot read the first batch back");
  } else {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = rows;
    d.classes = CLASSES;
    d.target_type = CLLOSS_INT32;
    d.label_smoothing = t->cfg.label_smoothing;
    clloss_status s =
        clloss_reference_cross_entropy(&d, z, y, NULL, NULL, &l_ref, ref);
    if (s != CLLOSS_SUCCESS)
      e = fm__fail(t, s, "clloss_reference_cross_entropy failed");
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
