/* tune.c - choosing the kernel variant per device by measurement.
 *
 * When a context is created on a device for the first time (per device,
 * driver and clloss version), each family of kernels (the row losses
 * cross_entropy and nll_loss; the element-wise losses) runs its "item" and
 * "group" variants a few times on a small synthetic problem on the
 * context's own queue, and the faster one becomes the family's "auto"
 * choice. The result is kept in the cache folder of the program binaries
 * (tune-<hash>.txt, one "family variant item_ms group_ms" line per family),
 * so later contexts and processes read it instead of measuring again.
 *
 * CLLOSS_TUNE=off, CLLOSS_CACHE=off without a file, an unreadable file or
 * any failure while measuring: the heuristic (item on CPU devices, group
 * elsewhere) stays in charge. A variant forced by CLLOSS_VARIANT skips
 * tuning. The split variant is chosen by shape, not by tuning. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "binary_cache.h"
#include "internal.h"

static const char *const family_names[CLLOSS__FAMILIES] = {"rows", "pointwise"};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* The tuning problems: cross_entropy 512 x 2048 and mse_loss on 2^20
 * float32 elements, both with loss (mean) and gradient. */
enum { TUNE_ROWS = 512, TUNE_CLASSES = 2048, TUNE_COUNT = 1 << 20 };

typedef struct tune_buffers {
  cl_mem x, y, t, loss, grad;
} tune_buffers;

static void release_buffers(tune_buffers *b) {
  cl_mem all[] = {b->x, b->y, b->t, b->loss, b->grad};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i])
      clReleaseMemObject(all[i]);
}

static int make_buffers(clloss_context *ctx, tune_buffers *b) {
  memset(b, 0, sizeof *b);
  cl_int err;
  const size_t bytes = (size_t)TUNE_COUNT * sizeof(float);
  const float half = 0.5f;
  const cl_long zero = 0;
  b->x = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
  b->y = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
  b->grad = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &err);
  b->t = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, TUNE_ROWS * sizeof(cl_long),
                        NULL, &err);
  b->loss =
      clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, sizeof(float), NULL, &err);
  if (!b->x || !b->y || !b->grad || !b->t || !b->loss)
    return 0;
  return clEnqueueFillBuffer(ctx->queue, b->x, &half, sizeof half, 0, bytes, 0,
                             NULL, NULL) == CL_SUCCESS &&
         clEnqueueFillBuffer(ctx->queue, b->y, &half, sizeof half, 0, bytes, 0,
                             NULL, NULL) == CL_SUCCESS &&
         clEnqueueFillBuffer(ctx->queue, b->t, &zero, sizeof zero, 0,
                             TUNE_ROWS * sizeof(cl_long), 0, NULL,
                             NULL) == CL_SUCCESS &&
         clFinish(ctx->queue) == CL_SUCCESS;
}

static clloss_status run_family(clloss_context *ctx, int family,
                                const tune_buffers *b) {
  if (family == CLLOSS__FAMILY_ROWS) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = TUNE_ROWS;
    d.classes = TUNE_CLASSES;
    return clloss_cross_entropy(ctx, ctx->queue, &d, CLLOSS_BUFFER(b->x),
                                CLLOSS_BUFFER(b->t), CLLOSS_BUFFER_NONE,
                                CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(b->loss),
                                CLLOSS_BUFFER(b->grad), 0, NULL, NULL);
  }
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  d.count = TUNE_COUNT;
  return clloss_pointwise(
      ctx, ctx->queue, &d, CLLOSS_BUFFER(b->x), CLLOSS_BUFFER(b->y),
      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
      CLLOSS_BUFFER(b->loss), CLLOSS_BUFFER(b->grad), 0, NULL, NULL);
}

/* Best of three timed runs after a warm-up; a negative value on failure. */
static double time_variant(clloss_context *ctx, int family, clloss__variant v,
                           const tune_buffers *b) {
  ctx->variant = v;
  double best = -1;
  for (int r = 0; r < 4; r++) {
    double t0 = now_ms();
    if (run_family(ctx, family, b) != CLLOSS_SUCCESS ||
        clFinish(ctx->queue) != CL_SUCCESS) {
      best = -1;
      break;
    }
    double dt = now_ms() - t0;
    if (r > 0 && (best < 0 || dt < best))
      best = dt;
  }
  ctx->variant = CLLOSS__AUTO;
  return best;
}

static int tune_file(const clloss_context *ctx, char *path, size_t cap) {
  char name[48];
  snprintf(name, sizeof name, "tune-%016llx.txt",
           (unsigned long long)clloss__device_key(ctx));
  return clloss__cache_file(name, path, cap);
}

/* Reads the choices; returns 1 when every family has one. */
static int read_choices(clloss_context *ctx, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  clloss__variant got[CLLOSS__FAMILIES] = {CLLOSS__AUTO, CLLOSS__AUTO};
  char family[32], variant[32];
  double a, b;
  while (fscanf(f, "%31s %31s %lf %lf", family, variant, &a, &b) == 4)
    for (int k = 0; k < CLLOSS__FAMILIES; k++)
      if (strcmp(family, family_names[k]) == 0)
        got[k] = strcmp(variant, "item") == 0    ? CLLOSS__ITEM
                 : strcmp(variant, "group") == 0 ? CLLOSS__GROUP
                                                 : CLLOSS__AUTO;
  fclose(f);
  for (int k = 0; k < CLLOSS__FAMILIES; k++)
    if (got[k] == CLLOSS__AUTO)
      return 0;
  memcpy(ctx->tuned, got, sizeof got);
  return 1;
}

static void write_choices(const clloss_context *ctx, const char *path,
                          const double ms[][2]) {
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f)
    return;
  int ok = 1;
  for (int k = 0; k < CLLOSS__FAMILIES; k++)
    ok &= fprintf(f, "%s %s %.4f %.4f\n", family_names[k],
                  clloss__variant_name(ctx->tuned[k]), ms[k][0], ms[k][1]) > 0;
  if (fclose(f) != 0 || !ok || rename(tmp, path) != 0)
    remove(tmp);
}

void clloss__tune(clloss_context *ctx) {
  const char *env = getenv("CLLOSS_TUNE");
  if ((env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0)) ||
      ctx->variant != CLLOSS__AUTO)
    return;
  char path[1100];
  int have_path = tune_file(ctx, path, sizeof path);
  if (have_path && read_choices(ctx, path))
    return;
  tune_buffers b;
  double ms[CLLOSS__FAMILIES][2];
  int ok = make_buffers(ctx, &b);
  for (int k = 0; ok && k < CLLOSS__FAMILIES; k++) {
    ms[k][0] = time_variant(ctx, k, CLLOSS__ITEM, &b);
    ms[k][1] = time_variant(ctx, k, CLLOSS__GROUP, &b);
    ok = ms[k][0] >= 0 && ms[k][1] >= 0;
    if (ok)
      ctx->tuned[k] = ms[k][0] <= ms[k][1] ? CLLOSS__ITEM : CLLOSS__GROUP;
  }
  release_buffers(&b);
  ctx->detail[0] = '\0'; /* the measuring calls are not the caller's */
  ctx->last_variant = "";
  if (!ok) { /* the heuristic decides */
    for (int k = 0; k < CLLOSS__FAMILIES; k++)
      ctx->tuned[k] = CLLOSS__AUTO;
    return;
  }
  if (have_path)
    write_choices(ctx, path, ms);
}
