/* linear.c - `clloss bench linear_cross_entropy`: times the fused
 * linear layer + cross-entropy (forward and backward) on data already on
 * the device, next to the unfused path in the same run (a GEMM to the full
 * N x V logits, cross_entropy in place, two GEMMs), and reports the device
 * memory each allocates beyond its inputs and outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "bench.h"

#ifdef CLLOSS_CLI_HAVE_CLBLAST
#include <clblast_c.h>
#endif

/* The device buffers of both paths. */
enum {
  M_X,
  M_W,
  M_B,
  M_T,
  M_LOSS,
  M_DX,
  M_DW,
  M_DB,
  M_ULOSS,
  M_LOGITS /* the last of bench_run's m */
};

typedef struct lin_run {
  bench_run b;
  clloss_linear_cross_entropy_desc d;
  clloss_status (*other)(struct lin_run *); /* the unfused path, or none */
  size_t peak, chunk_rows, u_logits, u_temp;
  double loss, u_loss;
  int have_unfused;
} lin_run;

static clloss_buffer buf(const lin_run *r, int k) {
  clloss_buffer b = {r->b.m[k], 0};
  return b;
}

static clloss_status fused(lin_run *r) {
  const bench_args *a = &r->b.a;
  const int g = !a->no_grad;
  return bench_finish(r->b.queue,
                      clloss_linear_cross_entropy(
                          r->b.ctx, r->b.queue, &r->d, buf(r, M_X), buf(r, M_W),
                          a->bias ? buf(r, M_B) : CLLOSS_BUFFER_NONE,
                          buf(r, M_T), CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                          buf(r, M_LOSS), g ? buf(r, M_DX) : CLLOSS_BUFFER_NONE,
                          g ? buf(r, M_DW) : CLLOSS_BUFFER_NONE,
                          g && a->bias ? buf(r, M_DB) : CLLOSS_BUFFER_NONE, 0,
                          NULL, NULL));
}

#ifdef CLLOSS_CLI_HAVE_CLBLAST
/* The three GEMMs of the unfused path, row-major as a caller writes them:
 * z = X W^T, dX = dz W, dW = dz^T X. */
typedef struct gemm_shape {
  CLBlastTranspose ta, tb;
  size_t m, n, k, lda, ldb, ldc;
  int a, b, c;
} gemm_shape;

static void unfused_gemms(const bench_args *a, gemm_shape g[3]) {
  const size_t N = a->rows, H = a->hidden, V = a->classes;
  const gemm_shape all[3] = {{CLBlastTransposeNo, CLBlastTransposeYes, N, V, H,
                              H, H, V, M_X, M_W, M_LOGITS},
                             {CLBlastTransposeNo, CLBlastTransposeNo, N, H, V,
                              V, H, H, M_LOGITS, M_W, M_DX},
                             {CLBlastTransposeYes, CLBlastTransposeNo, V, H, N,
                              V, H, H, M_LOGITS, M_X, M_DW}};
  memcpy(g, all, sizeof all);
}

/* cross_entropy on the logits, its gradient in place (or none). */
static clloss_status unfused_ce(lin_run *r, int grad) {
  return clloss_cross_entropy(
      r->b.ctx, r->b.queue, &r->d.ce, buf(r, M_LOGITS), buf(r, M_T),
      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, buf(r, M_ULOSS),
      grad ? buf(r, M_LOGITS) : CLLOSS_BUFFER_NONE, 0, NULL, NULL);
}

static clloss_status unfused(lin_run *r) {
  gemm_shape g[3];
  unfused_gemms(&r->b.a, g);
  const int d = r->b.a.dtype == CLLOSS_FLOAT64;
  clloss_status st = CLLOSS_SUCCESS;
  for (int k = 0; k < (r->b.a.no_grad ? 1 : 3); k++) {
    /* cross_entropy in place, between the GEMMs */
    if (k == 1 && (st = unfused_ce(r, 1)) != CLLOSS_SUCCESS)
      return st;
    const gemm_shape *s = &g[k];
    CLBlastStatusCode e =
        d ? CLBlastDgemm(CLBlastLayoutRowMajor, s->ta, s->tb, s->m, s->n, s->k,
                         1.0, r->b.m[s->a], 0, s->lda, r->b.m[s->b], 0, s->ldb,
                         0.0, r->b.m[s->c], 0, s->ldc, &r->b.queue, NULL)
          : CLBlastSgemm(CLBlastLayoutRowMajor, s->ta, s->tb, s->m, s->n, s->k,
                         1.0f, r->b.m[s->a], 0, s->lda, r->b.m[s->b], 0, s->ldb,
                         0.0f, r->b.m[s->c], 0, s->ldc, &r->b.queue, NULL);
    if (e != CLBlastSuccess)
      return CLLOSS_UNSUPPORTED;
  }
  if (r->b.a.no_grad && (st = unfused_ce(r, 0)) != CLLOSS_SUCCESS)
    return st; /* the loss alone */
  return (clloss_status)clFinish(r->b.queue);
}

/* The largest temporary buffer CLBlast allocates for one of the GEMMs. */
static size_t unfused_temp(lin_run *r) {
  gemm_shape g[3];
  unfused_gemms(&r->b.a, g);
  size_t most = 0;
  for (int k = 0; k < (r->b.a.no_grad ? 1 : 3); k++) {
    size_t bytes = 0;
    const gemm_shape *s = &g[k];
    if (r->b.a.dtype == CLLOSS_FLOAT64)
      CLBlastDGemmTempBufferSize(CLBlastLayoutRowMajor, s->ta, s->tb, s->m,
                                 s->n, s->k, 0, s->lda, 0, s->ldb, 0, s->ldc,
                                 &r->b.queue, &bytes);
    else
      CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, s->ta, s->tb, s->m,
                                 s->n, s->k, 0, s->lda, 0, s->ldb, 0, s->ldc,
                                 &r->b.queue, &bytes);
    most = bytes > most ? bytes : most;
  }
  return most;
}
#endif

/* Buffers, filled once (bench/README.md). The logits buffer exists only
 * for the unfused path, and only while it runs (after the fused runs). */
static int make_buffers(lin_run *r) {
  const bench_args *a = &r->b.a;
  const size_t N = a->rows, H = a->hidden, V = a->classes;
  const clloss_dtype t = a->dtype, lt = clloss_loss_dtype(t);
  const cl_mem_flags rw = CL_MEM_READ_WRITE;
  const bench_buf b[M_LOGITS] = {
      {"X", N * H, t, rw, BENCH_RANDOM, -1, 1, a->seed},
      {"W", V * H, t, rw, BENCH_RANDOM, -0.2, 0.2, a->seed + 1},
      {"b", V, t, rw, BENCH_RANDOM, -0.2, 0.2, a->seed + 2},
      {"targets", N, CLLOSS_INT64, rw, BENCH_RANDOM, 0, (double)V, a->seed + 3},
      {"loss", 1, lt, rw, BENCH_KEEP, 0, 0, 0},
      {"dX", N * H, t, rw, BENCH_KEEP, 0, 0, 0},
      {"dW", V * H, t, rw, BENCH_KEEP, 0, 0, 0},
      {"db", V, t, rw, BENCH_KEEP, 0, 0, 0},
      {"unfused loss", 1, lt, rw, BENCH_KEEP, 0, 0, 0}};
  size_t k;
  enum bench_phase phase;
  const cl_int err =
      bench_buffers(r->b.ctx, b, M_LOGITS, 0, r->b.m, &k, &phase);
  if (err != CL_SUCCESS && phase == BENCH_ALLOCATING)
    return cli_error("bench", CLI_DATA_ERROR,
                     "cannot allocate %zu bytes on the device",
                     b[k].count * clloss_dtype_size(b[k].type));
  if (err != CL_SUCCESS)
    return cli_error("bench", CLI_DATA_ERROR, "filling the inputs failed");
  return CLI_OK;
}

static clloss_status no_unfused(lin_run *r) {
  (void)r;
  return CLLOSS_SUCCESS;
}

/* The unfused path's logits, and the temporary buffer CLBlast allocates
 * for it; r->other becomes it, or stays no_unfused when there is none. */
static int open_unfused(lin_run *r) {
  const bench_args *a = &r->b.a;
  r->other = no_unfused;
#ifdef CLLOSS_CLI_HAVE_CLBLAST
  if (a->no_unfused || a->bias ||
      (a->dtype != CLLOSS_FLOAT32 && a->dtype != CLLOSS_FLOAT64))
    return CLI_OK;
  r->u_logits = a->rows * a->classes * clloss_dtype_size(a->dtype);
  cl_int err;
  r->b.m[M_LOGITS] = clCreateBuffer(clloss_context_cl_context(r->b.ctx),
                                    CL_MEM_READ_WRITE, r->u_logits, NULL, &err);
  if (!r->b.m[M_LOGITS])
    return cli_error("bench", CLI_DATA_ERROR,
                     "cannot allocate the unfused path's %zu bytes of logits "
                     "(--no-unfused skips it)",
                     r->u_logits);
  r->u_temp = unfused_temp(r);
  r->have_unfused = 1;
  r->other = unfused;
#else
  (void)a;
#endif
  return CLI_OK;
}

static int round_failed(const char *what, clloss_status s) {
  return cli_error("bench", CLI_DATA_ERROR, "%s failed: %s", what,
                   clloss_status_name(s));
}

/* A round of the timed loop: the fused call (k = 0), then the unfused
 * path (k = 1), so that both see the same machine load. */
static int lin_step(void *state, int k, int timed) {
  lin_run *r = state;
  (void)timed;
  const clloss_status s = k ? r->other(r) : fused(r);
  return s == CLLOSS_SUCCESS
             ? CLI_OK
             : round_failed(k ? "the unfused path" : "linear_cross_entropy", s);
}

/* The buffers, then the first fused call (timed alone: it builds the
 * programs) and the unfused path's first. */
static int lin_setup(bench_run *b) {
  lin_run *r = (lin_run *)b;
  const bench_args *a = &b->a;
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.ce.rows = a->rows;
  d.ce.classes = a->classes;
  d.ce.input_type = a->dtype;
  d.hidden = a->hidden;
  d.chunk_rows = a->chunk_rows;
  d.vocab_block = a->vocab_block;
  d.workspace_limit = a->limit;
  r->d = d;
  b->name = "linear_cross_entropy";
  b->steps = 2;
  int rc = make_buffers(r);
  if (rc != CLI_OK)
    return rc;
  clloss_status s = clloss_linear_cross_entropy_workspace_size(
      b->ctx, &r->d, !a->no_grad, !a->no_grad, !a->no_grad && a->bias, &r->peak,
      &r->chunk_rows);
  double t0 = cli_now_ms();
  if (s == CLLOSS_SUCCESS)
    s = fused(r);
  b->first_call_ms = cli_now_ms() - t0;
  if (s != CLLOSS_SUCCESS)
    return cli_error(
        "bench", CLI_DATA_ERROR, "linear_cross_entropy failed: %s (%s)",
        clloss_status_name(s), clloss_context_error_detail(b->ctx));
  rc = open_unfused(r);
  if (rc == CLI_OK && (s = r->other(r)) != CLLOSS_SUCCESS)
    rc = round_failed("the unfused path", s);
  return rc;
}

static void lin_done(bench_run *b) {
  lin_run *r = (lin_run *)b;
  const clloss_dtype lt = clloss_loss_dtype(b->a.dtype);
  r->loss = bench_read_value(b->queue, r->b.m[M_LOSS], lt);
  r->u_loss = bench_read_value(b->queue, r->b.m[M_ULOSS], lt);
}

static void lin_json(const bench_run *b, json_writer *w) {
  static const char *const no_unfused[] = {
      "unfused_ms",           "unfused_min_ms",          "unfused_peak_bytes",
      "unfused_logits_bytes", "unfused_blas_temp_bytes", NULL};
  const lin_run *r = (const lin_run *)b;
  const bench_args *a = &b->a;
  const size_t shape[3] = {a->rows, a->hidden, a->classes};
  json_str(w, "dtype", clloss_dtype_name(a->dtype));
  json_sizes(w, "shape", shape, 3);
  json_str(w, "method", a->vocab_block ? "vocab_blocks" : "row_chunks");
  json_uint(w, "chunk_rows", r->chunk_rows);
  json_uint(w, "vocab_block", a->vocab_block);
  json_bool(w, "bias", a->bias);
  json_bool(w, "grad", !a->no_grad);
  json_uint(w, "repeat", a->repeat);
  json_uint(w, "warmup", a->warmup);
  json_num(w, "median_ms", b->median[0], "%.3f");
  json_num(w, "min_ms", b->min[0], "%.3f");
  json_nums(w, "times_ms", b->times[0], a->repeat, "%.3f");
  json_uint(w, "peak_bytes", r->peak);
  if (r->have_unfused) {
    json_num(w, "unfused_ms", b->median[1], "%.3f");
    json_num(w, "unfused_min_ms", b->min[1], "%.3f");
    json_nums(w, "unfused_times_ms", b->times[1], a->repeat, "%.3f");
    json_uint(w, "unfused_peak_bytes", r->u_logits + r->u_temp);
    json_uint(w, "unfused_logits_bytes", r->u_logits);
    json_uint(w, "unfused_blas_temp_bytes", r->u_temp);
  } else {
    json_nulls(w, no_unfused);
  }
  json_num(w, "loss_value", r->loss, "%.9g");
  json_num(w, "unfused_loss_value", r->have_unfused ? r->u_loss : NAN, "%.9g");
  json_num(w, "first_call_ms", b->first_call_ms, "%.3f");
}

static void lin_text(const bench_run *b) {
  const lin_run *r = (const lin_run *)b;
  const bench_args *a = &b->a;
  char pk[32], up[32];
  cli_format_bytes(r->peak, pk, sizeof pk);
  printf("linear_cross_entropy %zu x %zu x %zu %s, %s (chunk %zu rows%s)\n",
         a->rows, a->hidden, a->classes, clloss_dtype_name(a->dtype),
         a->vocab_block ? "vocabulary blocks" : "row chunks", r->chunk_rows,
         a->vocab_block ? ", blocks given" : "");
  printf("  fused:   median %.1f ms (min %.1f), peak %s, loss %.7g\n",
         b->median[0], b->min[0], pk, r->loss);
  if (r->have_unfused) {
    cli_format_bytes(r->u_logits + r->u_temp, up, sizeof up);
    printf("  unfused: median %.1f ms (min %.1f), peak %s, loss %.7g\n",
           b->median[1], b->min[1], up, r->u_loss);
    printf("  time %.2fx unfused, peak 1/%.1f of unfused\n",
           b->median[0] / b->median[1],
           (double)(r->u_logits + r->u_temp) / (double)r->peak);
  }
}

static int lin_other(bench_args *a, const char *arg) {
  (void)a;
  return cli_usage("bench", "unknown option '%s'", arg);
}

static const bench_opt lin_opts[] = {
    {"--rows", BENCH_SIZE, 1, (size_t)1 << 40, BENCH_AT(rows), 2048},
    {"--hidden", BENCH_SIZE, 1, (size_t)1 << 40, BENCH_AT(hidden), 512},
    {"--classes", BENCH_SIZE, 1, (size_t)1 << 40, BENCH_AT(classes), 32000},
    {"--chunk-rows", BENCH_SIZE, 0, (size_t)1 << 40, BENCH_AT(chunk_rows), 0},
    {"--vocab-block", BENCH_SIZE, 0, (size_t)1 << 40, BENCH_AT(vocab_block), 0},
    {"--workspace-limit", BENCH_SIZE, 0, (size_t)-1, BENCH_AT(limit), 0},
    {"--dtype", BENCH_DTYPE, 0, 0, BENCH_AT(dtype), 0},
    {"--seed", BENCH_SIZE, 0, (size_t)-1 >> 1, BENCH_AT(seed), 1},
    {"--bias", BENCH_FLAG, 0, 0, BENCH_AT(bias), 0},
    {"--no-grad", BENCH_FLAG, 0, 0, BENCH_AT(no_grad), 0},
    {"--no-unfused", BENCH_FLAG, 0, 0, BENCH_AT(no_unfused), 0}};

static const bench_parser lin_parser = {
    lin_opts, BENCH_COUNT(lin_opts), 2, 5, 1, lin_other, NULL};

const bench_spec bench_linear = {
    &lin_parser, sizeof(lin_run), lin_setup, lin_step,
    lin_done,    lin_text,        lin_json,  NULL};
