/* test_cross_entropy_shard.c - cross_entropy over a split vocabulary:
 * partial -> combine -> finish over any split of the classes equals the
 * whole-row call (and the CPU reference), for every option; the host
 * combine equals the device's; the records' edge cases. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* white box: a device's loop limit */
#include "support/testutil.h"

enum { N = 7, V = 53, MAXB = 4 };

/* One configuration of options. */
typedef struct shard_case {
  const char *name;
  int prob, weights, ignore, int32;
  float eps, z, cap, norm, scale;
  clloss_reduction reduction;
} shard_case;

static const shard_case cases[] = {
    {"plain mean", 0, 0, 0, 0, 0, 0, 0, 0, 1, CLLOSS_REDUCTION_MEAN},
    {"weights ignore smoothing sum", 0, 1, 1, 0, 0.1f, 0, 0, 0, 1,
     CLLOSS_REDUCTION_SUM},
    {"int32 weights mean", 0, 1, 1, 1, 0, 0, 0, 0, 1, CLLOSS_REDUCTION_MEAN},
    {"z_loss softcap none", 0, 0, 1, 0, 0.05f, 1e-3f, 3.0f, 0, 0.25f,
     CLLOSS_REDUCTION_NONE},
    {"normalizer", 0, 1, 0, 0, 0.2f, 0, 0, 11.0f, 1, CLLOSS_REDUCTION_MEAN},
    {"probabilities", 1, 1, 0, 0, 0.1f, 1e-3f, 0, 0, 1, CLLOSS_REDUCTION_MEAN},
};

/* The splits: block widths summing to V (one of width 1, one uneven). */
static const size_t splits[][MAXB] = {
    {V, 0}, {20, 33, 0}, {1, 30, 22, 0}, {13, 13, 13, 14}};

typedef struct problem {
  float x[N * V], p[N * V], w[V], g[N];
  int64_t t64[N];
  int32_t t32[N];
} problem;

static void make(problem *pb, const shard_case *k, uint64_t salt) {
  tu_rng r = tu_rng_make(salt);
  tu_fill_uniform(&r, pb->x, N * V, -4, 4);
  pb->x[3] = -INFINITY; /* a class of probability 0 */
  pb->x[V + 7] = 1e4f;  /* a dominant logit */
  for (int i = 0; i < N; i++) {
    float s = 0;
    for (int c = 0; c < V; c++)
      s += pb->p[i * V + c] = tu_uniform(&r, 0, 1);
    for (int c = 0; c < V; c++)
      pb->p[i * V + c] /= s;
    pb->t64[i] = (int64_t)(tu_next(&r) % V);
    if (k->ignore && i == 2)
      pb->t64[i] = -100;
    pb->t32[i] = (int32_t)pb->t64[i];
    pb->g[i] = tu_uniform(&r, 0.5f, 1.5f);
  }
  pb->t64[1] = 0, pb->t32[1] = 0; /* targets at the blocks' edges */
  pb->t64[3] = V - 1, pb->t32[3] = V - 1;
  for (int c = 0; c < V; c++)
    pb->w[c] = tu_uniform(&r, 0.5f, 2.0f);
}

static clloss_cross_entropy_desc desc_of(const shard_case *k) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N;
  d.classes = V;
  d.target_type = k->prob    ? CLLOSS_FLOAT32
                  : k->int32 ? CLLOSS_INT32
                             : CLLOSS_INT64;
  d.reduction = k->reduction;
  d.label_smoothing = k->eps;
  d.z_loss = k->z;
  d.softcap = k->cap;
  d.normalizer = k->norm;
  d.grad_scale = k->scale;
  return d;
}

/* Columns [c0, c0 + cb) of an [N, V] array, as a dense [N, cb] block. */
static float *columns(const float *a, size_t c0, size_t cb) {
  float *b = malloc(N * cb * sizeof *b);
  for (size_t i = 0; i < N; i++)
    memcpy(b + i * cb, a + i * V + c0, cb * sizeof *b);
  return b;
}

/* Runs one split through partial, combine (device, in the order given)
 * and finish; writes the loss (loss_n values) and the gathered gradient. */
static void run_split(clloss_context *ctx, const shard_case *k,
                      const problem *pb, const size_t *widths, int reverse,
                      float *loss, float *grad) {
  const clloss_cross_entropy_desc d = desc_of(k);
  const size_t loss_n = clloss_cross_entropy_output_count(&d);
  cl_command_queue q = clloss_context_queue(ctx);
  size_t nb = 0;
  while (nb < MAXB && widths[nb])
    nb++;
  const void *tgt = k->int32 ? (const void *)pb->t32 : (const void *)pb->t64;
  const size_t tbytes = k->int32 ? sizeof pb->t32 : sizeof pb->t64;
  cl_mem xs[MAXB], ys[MAXB], ws[MAXB], recs[MAXB], grads[MAXB];
  cl_mem bt = tu_buffer(ctx, tbytes, tgt);
  cl_mem bg = tu_buffer(ctx, sizeof pb->g, pb->g);
  size_t c0 = 0;
  for (size_t b = 0; b < nb; b++) {
    const size_t cb = widths[b];
    clloss_shard sh = {c0, cb};
    float *xb = columns(pb->x, c0, cb), *yb = columns(pb->p, c0, cb);
    xs[b] = tu_buffer(ctx, N * cb * sizeof(float), xb);
    ys[b] = tu_buffer(ctx, N * cb * sizeof(float), yb);
    ws[b] = tu_buffer(ctx, cb * sizeof(float), pb->w + c0);
    recs[b] = tu_buffer(ctx, N * sizeof(clloss_ce_stats), NULL);
    grads[b] = tu_buffer(ctx, N * cb * sizeof(float), NULL);
    free(xb);
    free(yb);
    CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                        ctx, q, &d, &sh, CLLOSS_BUFFER(xs[b]),
                        CLLOSS_BUFFER(k->prob ? ys[b] : bt),
                        k->weights ? CLLOSS_BUFFER(ws[b]) : CLLOSS_BUFFER_NONE,
                        CLLOSS_BUFFER(recs[b]), 0, NULL, NULL),
                    CLLOSS_SUCCESS);
    c0 += cb;
  }
  /* Combine into one of the records, in the order asked for. */
  const size_t into = reverse ? nb - 1 : 0;
  for (size_t j = 1; j < nb; j++) {
    size_t b = reverse ? nb - 1 - j : j;
    CU_ASSERT_EQUAL(clloss_cross_entropy_combine(
                        ctx, q, N, CLLOSS_FLOAT32, CLLOSS_BUFFER(recs[into]),
                        CLLOSS_BUFFER(recs[b]), 0, NULL, NULL),
                    CLLOSS_SUCCESS);
  }
  cl_mem bl = tu_buffer(ctx, N * sizeof(float), NULL);
  c0 = 0;
  for (size_t b = 0; b < nb; b++) {
    const size_t cb = widths[b];
    clloss_shard sh = {c0, cb};
    CU_ASSERT_EQUAL(clloss_cross_entropy_finish(
                        ctx, q, &d, &sh, CLLOSS_BUFFER(xs[b]),
                        CLLOSS_BUFFER(k->prob ? ys[b] : bt),
                        k->weights ? CLLOSS_BUFFER(ws[b]) : CLLOSS_BUFFER_NONE,
                        CLLOSS_BUFFER(bg), CLLOSS_BUFFER(recs[into]),
                        CLLOSS_BUFFER(bl), CLLOSS_BUFFER(grads[b]), 0, NULL,
                        NULL),
                    CLLOSS_SUCCESS);
    float block[N * V], l[N];
    tu_read(ctx, grads[b], 0, N * cb * sizeof(float), block);
    tu_read(ctx, bl, 0, loss_n * sizeof(float), l);
    for (size_t i = 0; i < N; i++)
      memcpy(grad + i * V + c0, block + i * cb, cb * sizeof(float));
    /* Every block finishes the same loss. */
    if (b == 0)
      memcpy(loss, l, loss_n * sizeof(float));
    else
      CU_ASSERT_EQUAL(memcmp(loss, l, loss_n * sizeof(float)), 0);
    c0 += cb;
  }
  for (size_t b = 0; b < nb; b++) {
    clReleaseMemObject(xs[b]);
    clReleaseMemObject(ys[b]);
    clReleaseMemObject(ws[b]);
    clReleaseMemObject(recs[b]);
    clReleaseMemObject(grads[b]);
  }
  clReleaseMemObject(bt);
  clReleaseMemObject(bg);
  clReleaseMemObject(bl);
}

static void test_shard_equals_whole_row(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  static problem pb;
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    const shard_case *k = &cases[ci];
    make(&pb, k, 100 + ci);
    const clloss_cross_entropy_desc d = desc_of(k);
    const size_t loss_n = clloss_cross_entropy_output_count(&d);
    const void *tgt = k->prob    ? (const void *)pb.p
                      : k->int32 ? (const void *)pb.t32
                                 : (const void *)pb.t64;
    float want_loss[N], want_grad[N * V];
    CU_ASSERT_EQUAL_FATAL(
        clloss_reference_cross_entropy(&d, pb.x, tgt, k->weights ? pb.w : NULL,
                                       k->reduction == CLLOSS_REDUCTION_NONE
                                           ? pb.g
                                           : pb.g, /* g[0] for sum/mean */
                                       want_loss, want_grad),
        CLLOSS_SUCCESS);
    for (size_t si = 0; si < sizeof splits / sizeof *splits; si++)
      for (int reverse = 0; reverse < 2; reverse++) {
        float loss[N], grad[N * V];
        run_split(ctx, k, &pb, splits[si], reverse, loss, grad);
        char what[96];
        snprintf(what, sizeof what, "%s split %zu%s loss", k->name, si,
                 reverse ? " reversed" : "");
        double e[N * V];
        for (size_t i = 0; i < loss_n; i++)
          e[i] = want_loss[i];
        CU_ASSERT_EQUAL(
            tu_compare(what, loss, CLLOSS_FLOAT32, e, loss_n, 1e-6, 4e-6), 0);
        for (size_t i = 0; i < N * V; i++)
          e[i] = want_grad[i];
        snprintf(what, sizeof what, "%s split %zu%s grad", k->name, si,
                 reverse ? " reversed" : "");
        CU_ASSERT_EQUAL(
            tu_compare(what, grad, CLLOSS_FLOAT32, e, N * V, 1e-6, 4e-6), 0);
      }
  }
}

/* On a device whose loops stop after a number of iterations (Mesa's
 * llvmpipe), a CPU's one work-item per block row gives way to a work-group
 * per row: a limit planted on the device, so that any device checks that
 * path and its results. */
static void test_shard_loop_budget(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  const size_t saved = ctx->loop_limit;
  ctx->loop_limit = 8;
  test_shard_equals_whole_row();
  ctx->loop_limit = saved;
}

/* The host combine is the device's, and the combine does not depend on
 * the order of its operands. */
static void test_shard_host_combine(void) {
  clloss_ce_stats a[3] = {{1.0f, 2.0f, 0.5f, 0.25f, 0, 0},
                          {-FLT_MAX, 0, 0, 0, 0, 0},
                          {3.0f, 1.0f, 1.0f, 0, 2.5f, 1.5f}};
  clloss_ce_stats b[3] = {{2.0f, 1.0f, 0.5f, 0.0f, 1.75f, 2.0f},
                          {-FLT_MAX, 0, 0, 0, 0, 0},
                          {-FLT_MAX, 0, 0, 0, 0, 0}};
  clloss_ce_stats ab[3], ba[3];
  memcpy(ab, a, sizeof a);
  clloss_ce_stats_combine(ab, b, 3);
  memcpy(ba, b, sizeof b);
  clloss_ce_stats_combine(ba, a, 3);
  CU_ASSERT_EQUAL(memcmp(ab, ba, sizeof ab), 0);
  /* max 2, sumexp 2 e^-1 + 1, sum_a 1, sum_ad 0.25 + 0.5 * 1 */
  CU_ASSERT_EQUAL(ab[0].max, 2.0f);
  CU_ASSERT_DOUBLE_EQUAL(ab[0].sumexp, 2 * exp(-1.0) + 1, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(ab[0].sum_ad, 0.75, 1e-7);
  CU_ASSERT_EQUAL(ab[0].target_logit, 1.75f);
  CU_ASSERT_EQUAL(ab[0].target_weight, 2.0f);
  /* Two empty records stay empty; an empty one changes nothing. */
  CU_ASSERT_EQUAL(ab[1].sumexp, 0.0f);
  CU_ASSERT_EQUAL(memcmp(&ab[2], &a[2], sizeof ab[2]), 0);
  clloss_ce_stats64 c = {0.5, 1.0, 0, 0, 0, 0}, d = {0.5, 3.0, 0, 0, 0, 0};
  clloss_ce_stats64_combine(&c, &d, 1);
  CU_ASSERT_EQUAL(c.sumexp, 4.0);
  if (tu_device_count() == 0)
    return;
  /* The device's combine on the same records. */
  clloss_context *ctx = tu_context(0);
  cl_mem ma = tu_buffer(ctx, sizeof a, a), mb = tu_buffer(ctx, sizeof b, b);
  CU_ASSERT_EQUAL(clloss_cross_entropy_combine(
                      ctx, clloss_context_queue(ctx), 3, CLLOSS_FLOAT32,
                      CLLOSS_BUFFER(ma), CLLOSS_BUFFER(mb), 0, NULL, NULL),
                  CLLOSS_SUCCESS);
  clloss_ce_stats dev[3];
  tu_read(ctx, ma, 0, sizeof dev, dev);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(dev[i].max, ab[i].max);
    CU_ASSERT_DOUBLE_EQUAL(dev[i].sumexp, ab[i].sumexp, 2e-7 * ab[i].sumexp);
    CU_ASSERT_EQUAL(dev[i].sum_ad, ab[i].sum_ad);
  }
  clReleaseMemObject(ma);
  clReleaseMemObject(mb);
}

static void test_shard_arguments(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  cl_command_queue q = clloss_context_queue(ctx);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 2, d.classes = 10;
  /* Defined values: the calls that run at the end read them (targets left
   * uninitialised were out of range and left a device error pending for
   * the next suite of the same process). */
  float xv[64] = {0};
  const int64_t tv[2] = {1, 7};
  cl_mem x = tu_buffer(ctx, sizeof xv, xv);
  cl_mem t = tu_buffer(ctx, sizeof tv, tv);
  cl_mem r = tu_buffer(ctx, 2 * sizeof(clloss_ce_stats), NULL);
  clloss_shard beyond = {8, 3}, empty = {0, 0}, fine = {8, 2};
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &d, &beyond, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &d, &empty, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &d, NULL, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  /* Records for 2 rows at offset 1 do not fit. */
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &d, &fine, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, (clloss_buffer){r, 1}, 0, NULL, NULL),
                  CLLOSS_BUFFER_TOO_SMALL);
  /* A block whose rows are narrower than the V classes (row_stride 3 of
   * 10) still has its loss buffer checked: 2 values for none. */
  clloss_cross_entropy_desc nd = d;
  nd.reduction = CLLOSS_REDUCTION_NONE;
  nd.row_stride = 3;
  cl_mem l = tu_buffer(ctx, sizeof(float), NULL);
  CU_ASSERT_EQUAL(clloss_cross_entropy_finish(
                      ctx, q, &nd, &fine, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r),
                      CLLOSS_BUFFER(l), CLLOSS_BUFFER_NONE, 0, NULL, NULL),
                  CLLOSS_BUFFER_TOO_SMALL);
  clReleaseMemObject(l);
  CU_ASSERT_EQUAL(clloss_cross_entropy_combine(ctx, q, 2, CLLOSS_INT64,
                                               CLLOSS_BUFFER(r),
                                               CLLOSS_BUFFER(r), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  /* Not a type at all: refused before it reaches the build options
   * (issue 21: -DIN_TYPE=99 was compiled and failed to build). */
  CU_ASSERT_EQUAL(clloss_cross_entropy_combine(ctx, q, 2, (clloss_dtype)99,
                                               CLLOSS_BUFFER(r),
                                               CLLOSS_BUFFER(r), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "99"));
  CU_ASSERT_STRING_EQUAL(clloss_context_build_log(ctx), "");
  /* Records written over the logits they are computed from, and a loss
   * over the records it is computed from: refused, nothing enqueued. */
  clloss_shard all = {0, 10};
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &d, &all, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(x), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(clloss_context_error_detail(ctx), "stats overlaps input"));
  CU_ASSERT_EQUAL(clloss_cross_entropy_finish(
                      ctx, q, &d, &all, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r),
                      CLLOSS_BUFFER(r), CLLOSS_BUFFER_NONE, 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(clloss_context_error_detail(ctx), "loss overlaps stats"));
  /* Records and a gradient in one buffer (large enough for both). */
  cl_mem big = tu_buffer(ctx, 64 * sizeof(float), NULL);
  CU_ASSERT_EQUAL(clloss_cross_entropy_finish(
                      ctx, q, &d, &all, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER(big), CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER(big), 0, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(clloss_context_error_detail(ctx), "grad_input overlaps stats"));
  clReleaseMemObject(big);
  /* Apart, the same calls run. */
  cl_mem lo = tu_buffer(ctx, sizeof(float), NULL);
  CU_ASSERT_EQUAL(clloss_cross_entropy_partial(
                      ctx, q, &d, &all, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r), 0, NULL, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_cross_entropy_finish(
                      ctx, q, &d, &all, CLLOSS_BUFFER(x), CLLOSS_BUFFER(t),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(r),
                      CLLOSS_BUFFER(lo), CLLOSS_BUFFER(x), 0, NULL, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clFinish(q), CL_SUCCESS);
  CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, q, NULL), CLLOSS_SUCCESS);
  clReleaseMemObject(lo);
  clReleaseMemObject(x);
  clReleaseMemObject(t);
  clReleaseMemObject(r);
}

int test_cross_entropy_shard_register(void) {
  TU_SUITE("cross_entropy_shard", NULL, NULL,
           TU_TEST(test_shard_equals_whole_row),
           TU_TEST(test_shard_loop_budget), TU_TEST(test_shard_host_combine),
           TU_TEST(test_shard_arguments));
}
