/* cli_bench_linear.c - `clloss bench linear_cross_entropy`: times the fused
 * linear layer + cross-entropy (forward and backward) on data already on
 * the device, next to the unfused path in the same run (a GEMM to the full
 * N x V logits, cross_entropy in place, two GEMMs), and reports the device
 * memory each allocates beyond its inputs and outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench.h"

#ifdef CLLOSS_CLI_HAVE_CLBLAST
#include <clblast_c.h>
#endif

const char *const bench_linear_help =
    "usage: clloss bench linear_cross_entropy --rows N --hidden H --classes V\n"
    "           [--chunk-rows K | --vocab-block B] [--workspace-limit BYTES]\n"
    "           [--dtype T] [--bias] [--no-grad] [--no-unfused] [--device I]\n"
    "           [--repeat R] [--warmup W] [--seed S] [--json-only]\n"
    "\n"
    "Times clloss_linear_cross_entropy (loss, dX, dW, and db with --bias) on\n"
    "device buffers filled once, each run from enqueue to clFinish, and in\n"
    "the same run the unfused path: CLBlast's GEMM to the full logits\n"
    "[N, V], clloss_cross_entropy in place, GEMMs for dX and dW (float32 and\n"
    "float64, without --bias; its fields are null otherwise).\n"
    "\n"
    "  --rows N, --hidden H, --classes V   shapes (default 2048, 512, 32000)\n"
    "  --chunk-rows K       rows per chunk (default: chosen)\n"
    "  --vocab-block B      vocabulary blocks of B classes instead\n"
    "  --workspace-limit BYTES  the automatic chunk's budget\n"
    "  --dtype T            float32 (default), float16, bfloat16, float64\n"
    "  --bias               with a bias (and its gradient)\n"
    "  --no-grad            the loss only\n"
    "  --no-unfused         skip the unfused path\n"
    "  --repeat R, --warmup W  timed and untimed runs (default 5, 1)\n"
    "\n"
    "Data: X uniform in [-1, 1), W and b in [-0.2, 0.2), targets uniform in\n"
    "[0, V), mean reduction. Memory: peak_bytes is what the fused call\n"
    "allocates beyond its arguments (clloss_linear_cross_entropy_workspace_\n"
    "size: its workspace and CLBlast's temporary buffer); unfused_peak_bytes\n"
    "is the logits (N V elements) plus the largest temporary buffer CLBlast\n"
    "allocates for one of the three GEMMs (CLBlastSGemmTempBufferSize).\n"
    "cross_entropy's own scratch (a few bytes per row) is in neither.\n"
    "\n"
    "Output: readable lines, then ONE JSON object as the last line: loss,\n"
    "device, device_index, dtype, shape [N, H, V], method, chunk_rows,\n"
    "vocab_block, bias, grad, repeat, warmup, median_ms, min_ms, times_ms,\n"
    "peak_bytes, unfused_ms, unfused_min_ms, unfused_peak_bytes,\n"
    "unfused_logits_bytes, unfused_blas_temp_bytes, loss_value,\n"
    "unfused_loss_value, first_call_ms, loadavg, clloss_version.\n";

typedef struct lin_args {
  bench_opts o; /* --repeat, --warmup, --device, --dtype, --seed, ... */
  size_t rows, hidden, classes, chunk_rows, vocab_block, limit;
  int bias, no_grad, no_unfused;
} lin_args;

#define usage(...) cli_usage("bench", __VA_ARGS__)

static int parse(int argc, char **argv, lin_args *a) {
  static const bench_size sizes[] = {
      {"--rows", 1, (size_t)1 << 40, offsetof(lin_args, rows)},
      {"--hidden", 1, (size_t)1 << 40, offsetof(lin_args, hidden)},
      {"--classes", 1, (size_t)1 << 40, offsetof(lin_args, classes)},
      {"--chunk-rows", 0, (size_t)1 << 40, offsetof(lin_args, chunk_rows)},
      {"--vocab-block", 0, (size_t)1 << 40, offsetof(lin_args, vocab_block)},
      {"--workspace-limit", 0, (size_t)-1, offsetof(lin_args, limit)}};
  for (int i = 2; i < argc;) {
    int matched;
    int rc = bench_size_option(argc, argv, &i, sizes, 6, a, &matched);
    if (!matched)
      rc = bench_option(argc, argv, &i, BENCH_DTYPE | BENCH_SEED, &a->o,
                        &matched);
    if (rc != CLI_OK)
      return rc;
    if (matched)
      continue;
    int *flag = cli_flag(argv[i], "--bias")         ? &a->bias
                : cli_flag(argv[i], "--no-grad")    ? &a->no_grad
                : cli_flag(argv[i], "--no-unfused") ? &a->no_unfused
                                                    : NULL;
    if (!flag)
      return usage("unknown option '%s'", argv[i]);
    *flag = 1;
    i++;
  }
  return CLI_OK;
}

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
  M_LOGITS,
  M_COUNT
};

typedef struct lin_run {
  const lin_args *a;
  clloss_context *ctx;
  cl_command_queue q;
  cl_mem m[M_COUNT];
  clloss_linear_cross_entropy_desc d;
  clloss_status (*other)(struct lin_run *); /* the unfused path, or none */
} lin_run;

static clloss_buffer buf(const lin_run *r, int k) {
  clloss_buffer b = {r->m[k], 0};
  return b;
}

static clloss_status fused(lin_run *r) {
  const int g = !r->a->no_grad;
  return bench_finish(r->q,
                      clloss_linear_cross_entropy(
                          r->ctx, r->q, &r->d, buf(r, M_X), buf(r, M_W),
                          r->a->bias ? buf(r, M_B) : CLLOSS_BUFFER_NONE,
                          buf(r, M_T), CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                          buf(r, M_LOSS), g ? buf(r, M_DX) : CLLOSS_BUFFER_NONE,
                          g ? buf(r, M_DW) : CLLOSS_BUFFER_NONE,
                          g && r->a->bias ? buf(r, M_DB) : CLLOSS_BUFFER_NONE,
                          0, NULL, NULL));
}

#ifdef CLLOSS_CLI_HAVE_CLBLAST
/* The three GEMMs of the unfused path, row-major as a caller writes them:
 * z = X W^T, dX = dz W, dW = dz^T X. */
typedef struct gemm_shape {
  CLBlastTranspose ta, tb;
  size_t m, n, k, lda, ldb, ldc;
  int a, b, c;
} gemm_shape;

static void unfused_gemms(const lin_args *a, gemm_shape g[3]) {
  const size_t N = a->rows, H = a->hidden, V = a->classes;
  const gemm_shape all[3] = {{CLBlastTransposeNo, CLBlastTransposeYes, N, V, H,
                              H, H, V, M_X, M_W, M_LOGITS},
                             {CLBlastTransposeNo, CLBlastTransposeNo, N, H, V,
                              V, H, H, M_LOGITS, M_W, M_DX},
                             {CLBlastTransposeYes, CLBlastTransposeNo, V, H, N,
                              V, H, H, M_LOGITS, M_X, M_DW}};
  memcpy(g, all, sizeof all);
}

static clloss_status unfused(lin_run *r) {
  gemm_shape g[3];
  unfused_gemms(r->a, g);
  const int d = r->a->o.dtype == CLLOSS_FLOAT64;
  for (int k = 0; k < (r->a->no_grad ? 1 : 3); k++) {
    if (k == 1) { /* cross_entropy in place, between the GEMMs */
      clloss_status s = clloss_cross_entropy(
          r->ctx, r->q, &r->d.ce, buf(r, M_LOGITS), buf(r, M_T),
          CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, buf(r, M_ULOSS),
          buf(r, M_LOGITS), 0, NULL, NULL);
      if (s != CLLOSS_SUCCESS)
        return s;
    }
    const gemm_shape *s = &g[k];
    CLBlastStatusCode st =
        d ? CLBlastDgemm(CLBlastLayoutRowMajor, s->ta, s->tb, s->m, s->n, s->k,
                         1.0, r->m[s->a], 0, s->lda, r->m[s->b], 0, s->ldb, 0.0,
                         r->m[s->c], 0, s->ldc, &r->q, NULL)
          : CLBlastSgemm(CLBlastLayoutRowMajor, s->ta, s->tb, s->m, s->n, s->k,
                         1.0f, r->m[s->a], 0, s->lda, r->m[s->b], 0, s->ldb,
                         0.0f, r->m[s->c], 0, s->ldc, &r->q, NULL);
    if (st != CLBlastSuccess)
      return CLLOSS_UNSUPPORTED;
  }
  if (r->a->no_grad) { /* the loss alone */
    clloss_status s = clloss_cross_entropy(
        r->ctx, r->q, &r->d.ce, buf(r, M_LOGITS), buf(r, M_T),
        CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, buf(r, M_ULOSS),
        CLLOSS_BUFFER_NONE, 0, NULL, NULL);
    if (s != CLLOSS_SUCCESS)
      return s;
  }
  return (clloss_status)clFinish(r->q);
}

/* The largest temporary buffer CLBlast allocates for one of the GEMMs. */
static size_t unfused_temp(lin_run *r) {
  gemm_shape g[3];
  unfused_gemms(r->a, g);
  size_t most = 0;
  for (int k = 0; k < (r->a->no_grad ? 1 : 3); k++) {
    size_t bytes = 0;
    const gemm_shape *s = &g[k];
    if (r->a->o.dtype == CLLOSS_FLOAT64)
      CLBlastDGemmTempBufferSize(CLBlastLayoutRowMajor, s->ta, s->tb, s->m,
                                 s->n, s->k, 0, s->lda, 0, s->ldb, 0, s->ldc,
                                 &r->q, &bytes);
    else
      CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, s->ta, s->tb, s->m,
                                 s->n, s->k, 0, s->lda, 0, s->ldb, 0, s->ldc,
                                 &r->q, &bytes);
    most = bytes > most ? bytes : most;
  }
  return most;
}
#endif

typedef struct lin_result {
  size_t device_index, peak, chunk_rows, u_logits, u_temp;
  double first_ms, median, min, u_median, u_min, loss, u_loss;
  double *times, *u_times;
  int have_unfused;
} lin_result;

/* Buffers, filled once. The logits buffer exists only for the unfused
 * path, and only while it runs (after the fused runs). */
static int setup(lin_run *r, clloss_dtype st) {
  const lin_args *a = r->a;
  const size_t N = a->rows, H = a->hidden, V = a->classes;
  const size_t es = clloss_dtype_size(st);
  const size_t rs = clloss_dtype_size(clloss_loss_dtype(st));
  const size_t bytes[M_LOGITS] = {N * H * es, V * H * es, V * es, N * 8, rs,
                                  N * H * es, V * H * es, V * es, rs};
  for (int k = 0; k < M_LOGITS; k++) {
    cl_int err;
    r->m[k] = clCreateBuffer(clloss_context_cl_context(r->ctx),
                             CL_MEM_READ_WRITE, bytes[k], NULL, &err);
    if (!r->m[k])
      return cli_error("bench", CLI_DATA_ERROR,
                       "cannot allocate %zu bytes on the device", bytes[k]);
  }
  const double lo[4] = {-1, -0.2, -0.2, 0}, hi[4] = {1, 0.2, 0.2, (double)V};
  for (int k = 0; k < 4; k++)
    if (bench_fill(r->q, r->m[k], k == M_T ? CLLOSS_INT64 : st,
                   bytes[k] / (k == M_T ? 8 : es), lo[k], hi[k],
                   a->o.seed + (unsigned long long)k) != CL_SUCCESS)
      return cli_error("bench", CLI_DATA_ERROR, "filling the inputs failed");
  return CLI_OK;
}

static clloss_status no_unfused(lin_run *r) {
  (void)r;
  return CLLOSS_SUCCESS;
}

/* The unfused path's logits, and the temporary buffer CLBlast allocates
 * for it; `*path` becomes it, or stays no_unfused when there is none. */
static int open_unfused(lin_run *r, lin_result *res,
                        clloss_status (**path)(lin_run *)) {
  const lin_args *a = r->a;
  *path = no_unfused;
#ifdef CLLOSS_CLI_HAVE_CLBLAST
  if (a->no_unfused || a->bias ||
      (a->o.dtype != CLLOSS_FLOAT32 && a->o.dtype != CLLOSS_FLOAT64))
    return CLI_OK;
  res->u_logits = a->rows * a->classes * clloss_dtype_size(a->o.dtype);
  cl_int err;
  r->m[M_LOGITS] = clCreateBuffer(clloss_context_cl_context(r->ctx),
                                  CL_MEM_READ_WRITE, res->u_logits, NULL, &err);
  if (!r->m[M_LOGITS])
    return cli_error("bench", CLI_DATA_ERROR,
                     "cannot allocate the unfused path's %zu bytes of logits "
                     "(--no-unfused skips it)",
                     res->u_logits);
  res->u_temp = unfused_temp(r);
  res->have_unfused = 1;
  *path = unfused;
#else
  (void)res;
#endif
  return CLI_OK;
}

static int round_failed(const char *what, clloss_status s) {
  return cli_error("bench", CLI_DATA_ERROR, "%s failed: %s", what,
                   clloss_status_name(s));
}

/* A round of the timed loop: the fused call (k = 0), then the unfused
 * path (k = 1). */
static int round_step(void *state, int k, int timed) {
  lin_run *r = state;
  (void)timed;
  const clloss_status s = k ? r->other(r) : fused(r);
  return s == CLLOSS_SUCCESS
             ? CLI_OK
             : round_failed(k ? "the unfused path" : "linear_cross_entropy", s);
}

/* The first fused call (timed alone: it builds the programs), the unfused
 * path's first, `warmup` untimed runs of each, then `repeat` timed runs of
 * the fused call, each followed by one of the unfused path, so that both
 * see the same machine load. */
static int measure(lin_run *r, lin_result *res) {
  const lin_args *a = r->a;
  size_t bytes, rows;
  clloss_status s = clloss_linear_cross_entropy_workspace_size(
      r->ctx, &r->d, !a->no_grad, !a->no_grad, !a->no_grad && a->bias, &bytes,
      &rows);
  res->peak = bytes;
  res->chunk_rows = rows;
  double t0 = cli_now_ms();
  if (s == CLLOSS_SUCCESS)
    s = fused(r);
  res->first_ms = cli_now_ms() - t0;
  if (s != CLLOSS_SUCCESS)
    return cli_error(
        "bench", CLI_DATA_ERROR, "linear_cross_entropy failed: %s (%s)",
        clloss_status_name(s), clloss_context_error_detail(r->ctx));
  int rc = open_unfused(r, res, &r->other);
  if (rc == CLI_OK && (s = r->other(r)) != CLLOSS_SUCCESS)
    rc = round_failed("the unfused path", s);
  double *const times[2] = {res->times, res->u_times};
  if (rc == CLI_OK)
    rc = bench_rounds(a->o.warmup, a->o.repeat, round_step, 2, r, times);
  if (rc != CLI_OK)
    return rc;
  bench_stats(res->times, (size_t)a->o.repeat, &res->median, &res->min);
  bench_stats(res->u_times, (size_t)a->o.repeat, &res->u_median, &res->u_min);
  const clloss_dtype lt = clloss_loss_dtype(a->o.dtype);
  res->loss = bench_read_value(r->q, r->m[M_LOSS], lt);
  res->u_loss = bench_read_value(r->q, r->m[M_ULOSS], lt);
  return CLI_OK;
}

static void print_json(const lin_run *r, const lin_result *res) {
  const lin_args *a = r->a;
  const size_t shape[3] = {a->rows, a->hidden, a->classes};
  const size_t n = (size_t)a->o.repeat;
  json_writer w;
  json_begin(&w, stdout);
  json_str(&w, "loss", "linear_cross_entropy");
  json_str(&w, "device", clloss_context_device_info(r->ctx)->name);
  json_uint(&w, "device_index", res->device_index);
  json_str(&w, "dtype", clloss_dtype_name(a->o.dtype));
  json_sizes(&w, "shape", shape, 3);
  json_str(&w, "method", a->vocab_block ? "vocab_blocks" : "row_chunks");
  json_uint(&w, "chunk_rows", res->chunk_rows);
  json_uint(&w, "vocab_block", a->vocab_block);
  json_bool(&w, "bias", a->bias);
  json_bool(&w, "grad", !a->no_grad);
  json_uint(&w, "repeat", n);
  json_uint(&w, "warmup", (unsigned long long)a->o.warmup);
  json_num(&w, "median_ms", res->median, "%.3f");
  json_num(&w, "min_ms", res->min, "%.3f");
  json_nums(&w, "times_ms", res->times, n, "%.3f");
  json_uint(&w, "peak_bytes", res->peak);
  if (res->have_unfused) {
    json_num(&w, "unfused_ms", res->u_median, "%.3f");
    json_num(&w, "unfused_min_ms", res->u_min, "%.3f");
    json_nums(&w, "unfused_times_ms", res->u_times, n, "%.3f");
    json_uint(&w, "unfused_peak_bytes", res->u_logits + res->u_temp);
    json_uint(&w, "unfused_logits_bytes", res->u_logits);
    json_uint(&w, "unfused_blas_temp_bytes", res->u_temp);
  } else {
    static const char *const none[] = {
        "unfused_ms", "unfused_min_ms", "unfused_peak_bytes",
        "unfused_logits_bytes", "unfused_blas_temp_bytes"};
    for (size_t k = 0; k < 5; k++)
      json_null(&w, none[k]);
  }
  json_num(&w, "loss_value", res->loss, "%.9g");
  json_num(&w, "unfused_loss_value", res->have_unfused ? res->u_loss : NAN,
           "%.9g");
  json_num(&w, "first_call_ms", res->first_ms, "%.3f");
  double load[3];
  if (bench_loadavg(load))
    json_nums(&w, "loadavg", load, 3, "%.2f");
  else
    json_null(&w, "loadavg");
  json_str(&w, "clloss_version", CLLOSS_VERSION_STRING);
  json_end(&w);
}

static void print_text(const lin_run *r, const lin_result *res) {
  const lin_args *a = r->a;
  char pk[32], up[32];
  cli_format_bytes(res->peak, pk, sizeof pk);
  printf("linear_cross_entropy %zu x %zu x %zu %s, %s (chunk %zu rows%s)\n",
         a->rows, a->hidden, a->classes, clloss_dtype_name(a->o.dtype),
         a->vocab_block ? "vocabulary blocks" : "row chunks", res->chunk_rows,
         a->vocab_block ? ", blocks given" : "");
  printf("  fused:   median %.1f ms (min %.1f), peak %s, loss %.7g\n",
         res->median, res->min, pk, res->loss);
  if (res->have_unfused) {
    cli_format_bytes(res->u_logits + res->u_temp, up, sizeof up);
    printf("  unfused: median %.1f ms (min %.1f), peak %s, loss %.7g\n",
           res->u_median, res->u_min, up, res->u_loss);
    printf("  time %.2fx unfused, peak 1/%.1f of unfused\n",
           res->median / res->u_median,
           (double)(res->u_logits + res->u_temp) / (double)res->peak);
  }
}

int cli_bench_linear(int argc, char **argv) {
  lin_args a;
  memset(&a, 0, sizeof a);
  a.o.repeat = 5;
  a.o.warmup = 1;
  a.o.seed = 1;
  a.o.dtype = CLLOSS_FLOAT32;
  a.rows = 2048;
  a.hidden = 512;
  a.classes = 32000;
  int rc = parse(argc, argv, &a);
  if (rc != CLI_OK)
    return rc;
  lin_run r;
  memset(&r, 0, sizeof r);
  r.a = &a;
  lin_result res;
  memset(&res, 0, sizeof res);
  res.times = calloc((size_t)a.o.repeat, sizeof *res.times);
  res.u_times = calloc((size_t)a.o.repeat, sizeof *res.u_times);
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.ce.rows = a.rows;
  d.ce.classes = a.classes;
  d.ce.input_type = a.o.dtype;
  d.hidden = a.hidden;
  d.chunk_rows = a.chunk_rows;
  d.vocab_block = a.vocab_block;
  d.workspace_limit = a.limit;
  r.d = d;
  if (!res.times || !res.u_times)
    rc = cli_error("bench", CLI_DATA_ERROR, "out of host memory");
  if (rc == CLI_OK)
    rc = cli_open_device("bench", a.o.device, &r.ctx, &res.device_index);
  if (rc == CLI_OK) {
    r.q = clloss_context_queue(r.ctx);
    rc = setup(&r, a.o.dtype);
  }
  if (rc == CLI_OK)
    rc = measure(&r, &res);
  if (rc == CLI_OK) {
    if (!a.o.json_only)
      print_text(&r, &res);
    print_json(&r, &res);
    fflush(stdout);
  }
  for (int k = 0; k < M_COUNT; k++)
    if (r.m[k])
      clReleaseMemObject(r.m[k]);
  clloss_context_release(r.ctx);
  free(res.times);
  free(res.u_times);
  return rc;
}
