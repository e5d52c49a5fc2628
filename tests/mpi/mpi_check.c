/* mpi_check.c - the MPI test program's helpers (mpi_check.h). */
#define _POSIX_C_SOURCE 200809L
#include "mpi_check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void mc_init(mc_state *st) {
  memset(st, 0, sizeof *st);
  MPI_Comm_rank(MPI_COMM_WORLD, &st->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &st->size);
  st->t0 = now_s();
}

int mc_finish(mc_state *st) {
  long mine[2] = {st->checks, st->failures}, all[2];
  MPI_Allreduce(mine, all, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (st->rank == 0)
    printf("clloss_mpi_tests, %d processes: %ld checks, %ld failed, %.1f s\n",
           st->size, all[0], all[1], now_s() - st->t0);
  return (int)(all[1] > 0 ? all[1] : 0);
}

void mc_check(mc_state *st, int ok, const char *fmt, ...) {
  st->checks++;
  if (ok)
    return;
  st->failures++;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[process %d of %d] FAILED: ", st->rank, st->size);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* splitmix64 from a fixed seed (CLLOSS_TEST_SEED changes it). */
static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * (double)(next(s) >> 11) / 9007199254740992.0;
}

/* Element i of an array of any float storage type, as a double. */
static void put(void *a, clloss_dtype t, size_t i, double v) {
  if (t == CLLOSS_FLOAT64)
    ((double *)a)[i] = v;
  else if (t == CLLOSS_FLOAT16)
    ((uint16_t *)a)[i] = clloss_float_to_half((float)v);
  else if (t == CLLOSS_BFLOAT16)
    ((uint16_t *)a)[i] = clloss_float_to_bfloat16((float)v);
  else
    ((float *)a)[i] = (float)v;
}

static double get(const void *a, clloss_dtype t, size_t i) {
  if (t == CLLOSS_FLOAT64)
    return ((const double *)a)[i];
  if (t == CLLOSS_FLOAT16)
    return clloss_half_to_float(((const uint16_t *)a)[i]);
  if (t == CLLOSS_BFLOAT16)
    return clloss_bfloat16_to_float(((const uint16_t *)a)[i]);
  return ((const float *)a)[i];
}

static int is_index(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

void mc_make(mc_problem *pb, const clloss_cross_entropy_desc *d, int weights,
             int ignore, int salt) {
  const size_t n = d->rows, v = d->classes;
  const clloss_dtype xt = d->input_type, lt = clloss_loss_dtype(xt);
  const size_t es = clloss_dtype_size(xt);
  const char *env = getenv("CLLOSS_TEST_SEED");
  uint64_t s = (env ? strtoull(env, NULL, 10) : 20261201u) ^
               ((uint64_t)salt * 0x9e3779b97f4a7c15ull);
  pb->x = malloc(n * v * es);
  pb->grad0 = malloc(n * v * es);
  pb->w = malloc(v * 8);
  pb->g = malloc(n * 8);
  pb->target = malloc(is_index(d->target_type) ? n * 8 : n * v * es);
  for (size_t i = 0; i < n * v; i++) {
    put(pb->x, xt, i, uniform(&s, -4, 4));
    put(pb->grad0, xt, i, uniform(&s, -1, 1));
  }
  put(pb->x, xt, 3, -INFINITY); /* a class of probability 0 */
  put(pb->x, xt, v + 7, 1e4);   /* a dominant logit */
  for (size_t c = 0; c < v; c++)
    put(pb->w, lt, c, weights ? uniform(&s, 0.5, 2.0) : 1.0);
  for (size_t i = 0; i < n; i++)
    put(pb->g, lt, i, uniform(&s, 0.5, 1.5));
  if (is_index(d->target_type)) {
    for (size_t i = 0; i < n; i++) {
      int64_t t = (int64_t)(next(&s) % v);
      if (i == 1)
        t = 0; /* the first and last classes: the blocks' edges */
      if (i == 3)
        t = (int64_t)v - 1;
      if (ignore && i == 2)
        t = d->ignore_index;
      if (d->target_type == CLLOSS_INT32)
        ((int32_t *)pb->target)[i] = (int32_t)t;
      else
        ((int64_t *)pb->target)[i] = t;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      double sum = 0, p[4096];
      for (size_t c = 0; c < v; c++)
        sum += p[c] = uniform(&s, 0, 1);
      for (size_t c = 0; c < v; c++)
        put(pb->target, xt, i * v + c, p[c] / sum);
    }
  }
}

void mc_free(mc_problem *pb) {
  free(pb->x);
  free(pb->grad0);
  free(pb->w);
  free(pb->g);
  free(pb->target);
  memset(pb, 0, sizeof *pb);
}

void mc_block_make(mc_block *b, const mc_problem *pb,
                   const clloss_cross_entropy_desc *d, const clloss_shard *sh,
                   size_t ld) {
  const size_t n = d->rows, v = d->classes, cb = sh->classes;
  const size_t c0 = sh->class_offset, w = ld ? ld : cb;
  const clloss_dtype xt = d->input_type, lt = clloss_loss_dtype(xt);
  const size_t es = clloss_dtype_size(xt);
  b->x = calloc(n * w + 1, es);
  b->grad = calloc(n * w + 1, es);
  b->w = calloc(cb + 1, 8);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < w; j++) {
      const int in = j < cb;
      put(b->x, xt, i * w + j, in ? get(pb->x, xt, i * v + c0 + j) : 7.0);
      put(b->grad, xt, i * w + j,
          in ? get(pb->grad0, xt, i * v + c0 + j) : MC_PAD);
    }
  for (size_t j = 0; j < cb; j++)
    put(b->w, lt, j, get(pb->w, lt, c0 + j));
  if (is_index(d->target_type)) {
    b->target = malloc(n * 8);
    memcpy(b->target, pb->target, n * 8);
  } else {
    b->target = calloc(n * cb + 1, es);
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < cb; j++)
        put(b->target, xt, i * cb + j, get(pb->target, xt, i * v + c0 + j));
  }
}

size_t mc_padding_changed(const clloss_cross_entropy_desc *d,
                          const clloss_shard *sh, size_t ld, const void *grad) {
  size_t changed = 0;
  for (size_t i = 0; ld && i < d->rows; i++)
    for (size_t j = sh->classes; j < ld; j++)
      changed += get(grad, d->input_type, i * ld + j) != MC_PAD;
  return changed;
}

void mc_block_free(mc_block *b) {
  free(b->x);
  free(b->target);
  free(b->w);
  free(b->grad);
  memset(b, 0, sizeof *b);
}

void mc_check_loss(mc_state *st, const char *what, clloss_dtype input_type,
                   const void *got, const void *want, size_t n) {
  const clloss_dtype lt = clloss_loss_dtype(input_type);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++) {
    const double g = get(got, lt, i), e = get(want, lt, i);
    const int ok = isnan(e)   ? isnan(g)
                   : isinf(e) ? g == e
                              : fabs(g - e) <= 1e-6 * fabs(e);
    if (!ok && bad++ == 0)
      first = i;
  }
  MC_CHECK(st, bad == 0,
           "%s: %zu of %zu loss values off by more than 1e-6 relative; "
           "[%zu] %.9g, single device %.9g",
           what, bad, n, first, get(got, lt, first), get(want, lt, first));
}

void mc_check_same_everywhere(mc_state *st, const char *what, const void *p,
                              size_t bytes) {
  unsigned char *first = malloc(bytes ? bytes : 1);
  memcpy(first, p, bytes);
  MPI_Bcast(first, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
  MC_CHECK(st, memcmp(first, p, bytes) == 0,
           "%s: the loss differs from process 0's", what);
  free(first);
}

/* The distance in units in the last place of storage type t, through the
 * integers whose order is that of the values (-0 and +0 are 0 apart). */
static int64_t ordered(double v, clloss_dtype t) {
  int64_t i;
  if (t == CLLOSS_FLOAT64) {
    memcpy(&i, &v, sizeof i);
    return i < 0 ? INT64_MIN - i : i;
  }
  int32_t j;
  if (t == CLLOSS_FLOAT16 || t == CLLOSS_BFLOAT16) {
    uint16_t h;
    put(&h, t, 0, v);
    j = h & 0x8000 ? -(int32_t)(h & 0x7fff) : (int32_t)h;
    return j;
  }
  const float f = (float)v;
  memcpy(&j, &f, sizeof j);
  return j < 0 ? (int64_t)INT32_MIN - j : j;
}

static uint64_t ulps(double a, double b, clloss_dtype t) {
  if (isnan(a) || isnan(b))
    return isnan(a) && isnan(b) ? 0 : UINT64_MAX;
  const int64_t d = ordered(a, t) - ordered(b, t);
  return d < 0 ? (uint64_t)-d : (uint64_t)d;
}

/* One unit in the last place of |v| in storage type t. */
static double ulp_of(double v, clloss_dtype t) {
  v = fabs(v);
  if (t == CLLOSS_FLOAT64)
    return nextafter(v, INFINITY) - v;
  if (t == CLLOSS_FLOAT16 || t == CLLOSS_BFLOAT16) {
    uint16_t h[2];
    put(h, t, 0, v);
    h[1] = (uint16_t)(h[0] + 1);
    return get(h, t, 1) - get(h, t, 0);
  }
  return (double)nextafterf((float)v, INFINITY) - (double)(float)v;
}

static int64_t target_of(const clloss_cross_entropy_desc *d, const void *t,
                         size_t i) {
  return d->target_type == CLLOSS_INT32 ? ((const int32_t *)t)[i]
                                        : ((const int64_t *)t)[i];
}

static int valid_row(const clloss_cross_entropy_desc *d, const void *t,
                     size_t i) {
  return !is_index(d->target_type) || target_of(d, t, i) != d->ignore_index;
}

/* The gradient's scale s of row i (clloss.h, cross_entropy). */
static double row_scale(const clloss_cross_entropy_desc *d,
                        const mc_problem *pb, size_t i) {
  const clloss_dtype lt = clloss_loss_dtype(d->input_type);
  if (d->reduction == CLLOSS_REDUCTION_NONE)
    return get(pb->g, lt, i) * d->grad_scale;
  /* mean: the normalizer, else N (probabilities), else sum of w_t. */
  double div = 1;
  if (d->reduction == CLLOSS_REDUCTION_MEAN && d->normalizer > 0) {
    div = d->normalizer;
  } else if (d->reduction == CLLOSS_REDUCTION_MEAN &&
             !is_index(d->target_type)) {
    div = (double)d->rows;
  } else if (d->reduction == CLLOSS_REDUCTION_MEAN) {
    div = 0;
    for (size_t r = 0; r < d->rows; r++)
      if (valid_row(d, pb->target, r))
        div += get(pb->w, lt, (size_t)target_of(d, pb->target, r));
  }
  return get(pb->g, lt, 0) * d->grad_scale / div;
}

/* The largest term of row i's gradient, max_j |s| (|p_j A|, |b_j|), which
 * dx_j = s (p_j A - b_j) dcap_j is the difference of: at most the largest
 * |dx_j| + |s b_j|, b_j the part that does not scale with p_j. */
static double row_terms(const clloss_cross_entropy_desc *d,
                        const mc_problem *pb, const void *want, size_t i) {
  const clloss_dtype lt = clloss_loss_dtype(d->input_type);
  const double s = fabs(row_scale(d, pb, i)), eps = d->label_smoothing;
  const size_t v = d->classes;
  double big = 0;
  for (size_t j = 0; j < v; j++) {
    const double w = get(pb->w, lt, j);
    double b = eps / (double)v * w;
    if (!is_index(d->target_type))
      b = w * ((1 - eps) * get(pb->target, d->input_type, i * v + j) +
               eps / (double)v);
    else if (target_of(d, pb->target, i) == (int64_t)j)
      b += (1 - eps) * w;
    big = fmax(big, fabs(get(want, d->input_type, i * v + j)) + s * b);
  }
  return big;
}

void mc_check_block(mc_state *st, const char *what,
                    const clloss_cross_entropy_desc *d, const mc_problem *pb,
                    const clloss_shard *sh, size_t ld, const void *grad,
                    const void *want) {
  const size_t w = ld ? ld : sh->classes, v = d->classes;
  uint64_t worst = 0, over = 0;
  double worst_row = 0;
  size_t at = 0;
  for (size_t i = 0; i < d->rows; i++) {
    const double unit = ulp_of(row_terms(d, pb, want, i), d->input_type);
    for (size_t j = 0; j < sh->classes; j++) {
      const double g = get(grad, d->input_type, i * w + j);
      const double e = get(want, d->input_type, i * v + sh->class_offset + j);
      const uint64_t u = ulps(g, e, d->input_type);
      over += u > 4;
      worst = u > worst ? u : worst;
      const double r = u == 0                 ? 0
                       : isnan(g) || isnan(e) ? INFINITY
                                              : fabs(g - e) / unit;
      if (r > worst_row)
        worst_row = r, at = i * v + sh->class_offset + j;
    }
  }
  if (getenv("MC_STATS"))
    printf("[%d] %s: %.2f ulps of the row's largest term; elementwise: max "
           "%llu ulps, %llu of %zu elements over 4\n",
           st->rank, what, worst_row, (unsigned long long)worst,
           (unsigned long long)over, d->rows * sh->classes);
  const double limit = is_index(d->target_type) ? 4 : 8;
  MC_CHECK(st, worst_row <= limit,
           "%s: gradient %.2f ulps of its row's largest term from the "
           "single-device call at [%zu, %zu] (at most %g)",
           what, worst_row, at / v, at % v, limit);
}

cl_mem mc_buffer(clloss_context *ctx, size_t bytes, const void *init) {
  cl_int err;
  return clCreateBuffer(clloss_context_cl_context(ctx),
                        CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                        bytes ? bytes : 1, (void *)init, &err);
}

void mc_read(clloss_context *ctx, cl_mem mem, size_t bytes, void *out) {
  clEnqueueReadBuffer(clloss_context_queue(ctx), mem, CL_TRUE, 0, bytes, out, 0,
                      NULL, NULL);
}
