/* main.c - a small MLP whose output layer is split across processes by
 * vocabulary (classes), trained with clloss's MPI layer:
 *
 *   mpirun -np 2 build/examples/vocab_parallel [--steps S] [--classes V]
 *
 * Data: N points in D dimensions around V class centres (synthetic, the
 * same on every process), and as many held out. Model: h = relu(x W1 + b1),
 * replicated on every process; logits = h W2^T + b2 with W2 [V, H] split by
 * rows, each process holding its block of classes. One step:
 *   1. each process computes its logits [N, V_r] (plain C here; a GEMM on
 *      the device in real code);
 *   2. clloss_mpi_cross_entropy_host: loss (the same on every process) and
 *      this process's dlogits, from ONE all-reduce of per-row statistics;
 *   3. dW2_r, db2_r from its own dlogits; d_hidden = sum over processes of
 *      dlogits_r W2_r, one more all-reduce (MPI_SUM of N x H floats);
 *   4. the replicated layer's gradient from d_hidden, the same everywhere,
 *      so W1 stays identical on every process without any further message.
 * Accuracy needs the argmax over all classes: MPI_MAXLOC over each
 * process's best (logit, class). Exit status 0 when the loss fell to less
 * than half its first value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clloss_mpi.h"

enum { N = 512, D = 16, H = 32 };

typedef struct model {
  float w1[D * H], b1[H];
  float *w2, *b2; /* this process's rows of W2 [V, H] and of b2 */
} model;

static uint64_t rng_state = 12345;

static float uniform(float lo, float hi) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static float gaussian(void) {
  float u = uniform(1e-7f, 1), v = uniform(0, 1);
  return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

/* V random centres, the same on every process (the same seed). */
static float *make_centres(size_t classes) {
  float *centre = malloc(classes * D * sizeof *centre);
  for (size_t i = 0; i < classes * D; i++)
    centre[i] = uniform(-2, 2);
  return centre;
}

/* N points around the centres, with noise of deviation 1. */
static void make_data(const float *centre, size_t classes, float *x,
                      int64_t *y) {
  for (int i = 0; i < N; i++) {
    y[i] = (int64_t)(uniform(0, 1) * (float)classes) % (int64_t)classes;
    for (int k = 0; k < D; k++)
      x[i * D + k] = centre[y[i] * D + k] + gaussian();
  }
}

/* W1 the same on every process (the same seed); W2's rows for the whole
 * V drawn in order, each process keeping its own, so that the model does
 * not depend on the number of processes. */
static void init_model(model *m, size_t classes, clloss_shard sh) {
  for (int i = 0; i < D * H; i++)
    m->w1[i] = uniform(-1, 1) / sqrtf(D);
  memset(m->b1, 0, sizeof m->b1);
  m->w2 = calloc(sh.classes * H + 1, sizeof *m->w2);
  m->b2 = calloc(sh.classes + 1, sizeof *m->b2);
  for (size_t c = 0; c < classes; c++)
    for (int k = 0; k < H; k++) {
      const float v = uniform(-1, 1) / sqrtf(H);
      if (c >= sh.class_offset && c < sh.class_offset + sh.classes)
        m->w2[(c - sh.class_offset) * H + k] = v;
    }
}

/* h = relu(x W1 + b1) */
static void hidden(const model *m, const float *x, float *h) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < H; j++) {
      float s = m->b1[j];
      for (int k = 0; k < D; k++)
        s += x[i * D + k] * m->w1[k * H + j];
      h[i * H + j] = s > 0 ? s : 0;
    }
}

/* logits [N, V_r] = h W2_r^T + b2_r */
static void logits(const model *m, size_t cb, const float *h, float *z) {
  for (int i = 0; i < N; i++)
    for (size_t c = 0; c < cb; c++) {
      float s = m->b2[c];
      for (int k = 0; k < H; k++)
        s += h[i * H + k] * m->w2[c * H + k];
      z[i * cb + c] = s;
    }
}

/* The fraction of rows whose best class over ALL processes is the
 * target: each process offers its best (logit, class), MPI_MAXLOC picks. */
static double accuracy(const float *z, size_t cb, size_t c0, const int64_t *y) {
  struct {
    float value;
    int index;
  } best[N];
  for (int i = 0; i < N; i++) {
    best[i].value = -INFINITY;
    best[i].index = -1;
    for (size_t c = 0; c < cb; c++)
      if (z[i * cb + c] > best[i].value)
        best[i].value = z[i * cb + c], best[i].index = (int)(c0 + c);
  }
  MPI_Allreduce(MPI_IN_PLACE, best, N, MPI_FLOAT_INT, MPI_MAXLOC,
                MPI_COMM_WORLD);
  int right = 0;
  for (int i = 0; i < N; i++)
    right += best[i].index == y[i];
  return (double)right / N;
}

/* One SGD step from this process's dlogits dz. */
static void backward(model *m, size_t cb, const float *x, const float *h,
                     const float *dz, float lr) {
  static float dh[N * H];
  memset(dh, 0, sizeof dh);
  /* d_hidden from this process's classes, then summed over all. */
  for (int i = 0; i < N; i++)
    for (size_t c = 0; c < cb; c++)
      for (int k = 0; k < H; k++)
        dh[i * H + k] += dz[i * cb + c] * m->w2[c * H + k];
  MPI_Allreduce(MPI_IN_PLACE, dh, N * H, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  /* This process's rows of W2 and b2. */
  for (size_t c = 0; c < cb; c++) {
    float db = 0;
    for (int i = 0; i < N; i++)
      db += dz[i * cb + c];
    m->b2[c] -= lr * db;
    for (int k = 0; k < H; k++) {
      float dw = 0;
      for (int i = 0; i < N; i++)
        dw += dz[i * cb + c] * h[i * H + k];
      m->w2[c * H + k] -= lr * dw;
    }
  }
  /* The replicated layer: the same d_hidden everywhere, the same update. */
  for (int i = 0; i < N * H; i++)
    dh[i] = h[i] > 0 ? dh[i] : 0;
  for (int j = 0; j < H; j++) {
    float db = 0;
    for (int i = 0; i < N; i++)
      db += dh[i * H + j];
    m->b1[j] -= lr * db;
    for (int k = 0; k < D; k++) {
      float dw = 0;
      for (int i = 0; i < N; i++)
        dw += x[i * D + k] * dh[i * H + j];
      m->w1[k * H + j] -= lr * dw;
    }
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size, steps = 300;
  size_t classes = 100;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--steps") == 0)
      steps = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--classes") == 0)
      classes = (size_t)atol(argv[i + 1]);
  }
  if (steps < 1 || classes < 2) {
    if (rank == 0)
      fprintf(stderr, "usage: vocab_parallel [--steps S] [--classes V]\n");
    MPI_Finalize();
    return 2;
  }
  clloss_context *ctx = NULL;
  clloss_status s = clloss_context_create_default(NULL, &ctx);
  if (s != CLLOSS_SUCCESS) {
    fprintf(stderr, "process %d: no OpenCL device: %s\n", rank,
            clloss_status_string(s));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const clloss_shard sh = clloss_mpi_even_shard(classes, rank, size);
  static float x[N * D], h[N * H], x_test[N * D];
  static int64_t y[N], y_test[N];
  float *centre = make_centres(classes);
  make_data(centre, classes, x, y);
  make_data(centre, classes, x_test, y_test); /* held out */
  free(centre);
  model m;
  init_model(&m, classes, sh);
  float *z = calloc(N * sh.classes + 1, sizeof *z);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N;
  d.classes = classes; /* the whole V; this process holds sh */
  if (rank == 0)
    printf("%zu classes over %d processes (process 0: [%zu, %zu)), %s\n",
           classes, size, sh.class_offset, sh.class_offset + sh.classes,
           clloss_context_device_info(ctx)->name);
  float first = NAN, loss = NAN;
  for (int step = 0; step < steps && s == CLLOSS_SUCCESS; step++) {
    hidden(&m, x, h);
    logits(&m, sh.classes, h, z);
    /* The mean loss over N rows, and this block's dloss/dlogits in place. */
    s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &sh, z, y, NULL,
                                      NULL, &loss, z);
    if (s != CLLOSS_SUCCESS)
      break;
    if (step == 0)
      first = loss;
    if (rank == 0 && (step % 50 == 0 || step == steps - 1))
      printf("step %4d  loss %.4f\n", step, loss);
    backward(&m, sh.classes, x, h, z, 0.5f);
  }
  int rc = 0;
  if (s != CLLOSS_SUCCESS) {
    fprintf(stderr, "process %d: %s: %s\n", rank, clloss_status_name(s),
            clloss_context_error_detail(ctx));
    rc = 1;
  } else {
    hidden(&m, x, h);
    logits(&m, sh.classes, h, z);
    const double train = accuracy(z, sh.classes, sh.class_offset, y);
    hidden(&m, x_test, h);
    logits(&m, sh.classes, h, z);
    const double test = accuracy(z, sh.classes, sh.class_offset, y_test);
    if (rank == 0)
      printf("loss %.4f -> %.4f; accuracy %.1f%% on the training points, "
             "%.1f%% on as many held out\n",
             first, loss, 100 * train, 100 * test);
    rc = loss < 0.5f * first ? 0 : 1;
  }
  free(z);
  free(m.w2);
  free(m.b2);
  clloss_context_release(ctx);
  MPI_Finalize();
  return rc;
}
