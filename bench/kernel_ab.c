/* kernel_ab.c - times cross_entropy with two or more kernel directories in
 * one process, alternating between them run by run, so that a shared
 * machine's swings (2x on the CI class) hit every version alike.
 *
 *   clloss_kernel_ab DIR_A DIR_B [DIR...]
 *
 * Each DIR is a copy of kernels/ (edited), read through CLLOSS_KERNEL_DIR
 * by its own clloss context on the same device and cl_context; the input,
 * targets and outputs are shared. Environment: N rows (4096), C classes
 * (32000), R timed runs per directory (15), DT storage type (float32,
 * float16, bfloat16), IN_PLACE=1 (gradient over the logits), VARIANT
 * (item, group, split; default auto), DEVICE (selector). Prints the median
 * and minimum of each, and the loss, which should agree. Set
 * CLLOSS_CACHE=off and CLLOSS_TUNE=off. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "clloss.h"

#define MAX_DIRS 8

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static size_t env_size(const char *name, size_t fallback) {
  const char *v = getenv(name);
  return v && *v ? (size_t)strtoull(v, NULL, 10) : fallback;
}

static clloss_dtype env_dtype(void) {
  const char *v = getenv("DT");
  if (v && strcmp(v, "float16") == 0)
    return CLLOSS_FLOAT16;
  if (v && strcmp(v, "bfloat16") == 0)
    return CLLOSS_BFLOAT16;
  return CLLOSS_FLOAT32;
}

int main(int argc, char **argv) {
  const int nd = argc - 1;
  if (nd < 1 || nd > MAX_DIRS) {
    fprintf(stderr, "usage: %s DIR [DIR...] (at most %d)\n", argv[0], MAX_DIRS);
    return 2;
  }
  const size_t n = env_size("N", 4096), c = env_size("C", 32000);
  const size_t reps = env_size("R", 15) ? env_size("R", 15) : 1;
  const clloss_dtype dt = env_dtype();
  const int in_place = env_size("IN_PLACE", 0) != 0;
  const size_t bytes = n * c * clloss_dtype_size(dt);

  clloss_context *ctx[MAX_DIRS] = {0};
  setenv("CLLOSS_KERNEL_DIR", argv[1], 1);
  clloss_status st = clloss_context_create_default(getenv("DEVICE"), &ctx[0]);
  if (st != CLLOSS_SUCCESS) {
    fprintf(stderr, "no context: %s\n", clloss_status_name(st));
    return 1;
  }
  cl_context cc = clloss_context_cl_context(ctx[0]);
  cl_command_queue q = clloss_context_queue(ctx[0]);
  for (int k = 1; k < nd; k++)
    if (clloss_context_create(cc, clloss_context_device(ctx[0]), &ctx[k]) !=
        CLLOSS_SUCCESS)
      return 1;
  const char *variant = getenv("VARIANT");
  for (int k = 0; variant && *variant && k < nd; k++)
    if (clloss_context_set_variant(ctx[k], variant) != CLLOSS_SUCCESS) {
      fprintf(stderr, "unknown VARIANT %s\n", variant);
      return 2;
    }

  cl_int e1, e2, e3, e4;
  cl_mem x = clCreateBuffer(cc, CL_MEM_READ_WRITE, bytes, NULL, &e1);
  cl_mem g = clCreateBuffer(cc, CL_MEM_READ_WRITE, bytes, NULL, &e2);
  cl_mem t = clCreateBuffer(cc, CL_MEM_READ_WRITE, n * 8, NULL, &e3);
  cl_mem l = clCreateBuffer(cc, CL_MEM_READ_WRITE, 8, NULL, &e4);
  double *ms = calloc((size_t)nd * reps, sizeof *ms);
  int rc = 1;
  if (!x || !g || !t || !l || !ms) {
    fprintf(stderr, "out of memory (%d %d %d %d)\n", e1, e2, e3, e4);
    goto done;
  }
  /* clloss bench's data: logits uniform in [-4, 4), valid targets. */
  cl_int fe = bench_fill(q, x, dt, n * c, -4.0, 4.0, 1);
  if (fe == CL_SUCCESS)
    fe = bench_fill(q, t, CLLOSS_INT64, n, 0.0, (double)c, 2);
  if (fe != CL_SUCCESS) {
    fprintf(stderr, "filling the inputs failed: %s\n", clloss_status_name(fe));
    goto done;
  }

  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = n, d.classes = c, d.input_type = dt;
  clloss_buffer gb = CLLOSS_BUFFER(in_place ? x : g);
  float loss[MAX_DIRS];
  /* Programs are built on a context's first call: each directory's source
   * must be in the environment then. Two warm-up calls each. */
  for (int k = 0; k < nd; k++) {
    setenv("CLLOSS_KERNEL_DIR", argv[k + 1], 1);
    for (int w = 0; w < 2; w++) {
      st = clloss_cross_entropy(
          ctx[k], q, &d, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t), CLLOSS_BUFFER_NONE,
          CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(l), gb, 0, NULL, NULL);
      if (st != CLLOSS_SUCCESS) {
        fprintf(stderr, "%s: %s: %s\n", argv[k + 1], clloss_status_name(st),
                clloss_context_error_detail(ctx[k]));
        goto done;
      }
      clFinish(q);
    }
    clEnqueueReadBuffer(q, l, CL_TRUE, 0, sizeof(float), &loss[k], 0, NULL,
                        NULL);
  }
  for (size_t r = 0; r < reps; r++)
    for (int k = 0; k < nd; k++) {
      double t0 = now_ms();
      clloss_cross_entropy(ctx[k], q, &d, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                           CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                           CLLOSS_BUFFER(l), gb, 0, NULL, NULL);
      clFinish(q);
      ms[(size_t)k * reps + r] = now_ms() - t0;
    }
  printf("cross_entropy %zux%zu %s%s, %zu runs each, alternated\n", n, c,
         clloss_dtype_name(dt), in_place ? " in place" : "", reps);
  for (int k = 0; k < nd; k++) {
    double median, min;
    bench_stats(ms + (size_t)k * reps, reps, &median, &min);
    printf("%-32s median %8.2f ms  min %8.2f  loss %.7f\n", argv[k + 1], median,
           min, (double)loss[k]);
  }
  rc = 0;
done:
  free(ms);
  cl_mem mems[] = {x, g, t, l};
  for (size_t i = 0; i < 4; i++)
    if (mems[i])
      clReleaseMemObject(mems[i]);
  for (int k = nd - 1; k >= 0; k--)
    clloss_context_release(ctx[k]);
  return rc;
}
