/* vocab_parallel.c - `clloss bench cross_entropy --vocab-parallel`
 * and `clloss bench linear_cross_entropy --vocab-parallel` under mpirun:
 * each times the MPI layer's call (each process its block of the classes)
 * against the single-device call on the whole problem on process 0's
 * device, and prints readable lines and one JSON object (process 0).
 * Built only with the MPI layer. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "bench.h"
#include "cli_mpi.h"
#include "cli_loss.h"

#define usage(...) cli_usage("bench", __VA_ARGS__)

/* `repeat` timed runs of fn after `warmup` untimed ones (by every process,
 * or process 0 alone while the others wait asleep), the slowest process's
 * time of each from a barrier, the median into *median: CLI_OK, or
 * CLI_DATA_ERROR when fn failed anywhere. */
typedef clloss_status (*vp_fn)(void *state);

/* Waits for a nonblocking collective while sleeping, not spinning as
 * MPI's blocking calls do: processes that share one device (a CPU
 * device, here) must not take its cores while another times a call. */
static void wait_asleep(MPI_Request *req) {
  int done = 0;
  const struct timespec nap = {0, 200000};
  while (MPI_Test(req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done)
    nanosleep(&nap, NULL);
}

static int vp_timed(int repeat, int warmup, vp_fn fn, void *state, int everyone,
                    double *median) {
  double *t = calloc((size_t)repeat, sizeof *t), min;
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int me = everyone || rank == 0;
  clloss_status s = CLLOSS_SUCCESS;
  if (cli_mpi_anyone(!t)) {
    free(t);
    return CLI_DATA_ERROR;
  }
  for (int k = 0; k < warmup + repeat; k++) {
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait_asleep(&req);
    const double t0 = cli_now_ms();
    if (me && s == CLLOSS_SUCCESS)
      s = fn(state);
    double dt = cli_now_ms() - t0, worst = dt;
    MPI_Iallreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, &req);
    wait_asleep(&req);
    if (k >= warmup)
      t[k - warmup] = worst;
  }
  const int any = cli_mpi_anyone(s != CLLOSS_SUCCESS);
  if (!any)
    bench_stats(t, (size_t)repeat, median, &min);
  free(t);
  return any ? CLI_DATA_ERROR : CLI_OK;
}

/* Device buffers of one problem (X, W and b for the linear layer only;
 * cross_entropy's logits in B_X, its gradient in B_DX). */
enum { B_X, B_W, B_B, B_T, B_L, B_DX, B_DW, B_DB, B_N };

typedef struct vp_run {
  bench_args a;
  clloss_context *ctx;
  int rank, size;
  clloss_shard shard;
  cl_mem m[B_N];
  clloss_cross_entropy_desc ce;
  clloss_linear_cross_entropy_desc lin;
  void *records; /* cross_entropy: the all-reduce's records */
  size_t record_bytes, chunk;
  MPI_Datatype type;
  MPI_Op op;
  double vp_ms, allreduce_ms, single_ms;
} vp_run;

/* One benchmark under mpirun: its command line, then, in turn, `prepare`
 * (descriptors; 1 when this process cannot go on), `make` (buffers of
 * `classes` columns), the timed calls, `extra` (what else is timed, or
 * NULL), and process 0's report. */
typedef struct vp_bench {
  const bench_parser *parse;
  int (*prepare)(vp_run *r);
  cl_int (*make)(vp_run *r, size_t classes, uint64_t seed);
  vp_fn vp, single;
  int (*extra)(vp_run *r);
  int linear; /* linear_cross_entropy: its lines and JSON members */
} vp_bench;

static void release(vp_run *r) {
  bench_release(r->m, B_N);
  free(r->records);
  r->records = NULL;
}

/* Process 0's lines and JSON object. bytes: what each process
 * contributes to the all-reduces (bench/README.md). */
static void report(const vp_bench *b, const vp_run *r, const char *dev) {
  const bench_args *a = &r->a;
  const size_t chunks = r->chunk ? (a->rows + r->chunk - 1) / r->chunk : 0;
  const double bytes = b->linear
                           ? 3.0 * 8 + (double)(a->rows + chunks) * 24 +
                                 ((double)a->rows * (double)a->hidden + 1) * 4
                           : (double)(a->rows + 1) * (double)r->record_bytes;
  if (!a->json_only && b->linear)
    printf("linear_cross_entropy %zux%zux%zu float32, %d processes on %s\n"
           "  vocabulary-parallel call: %.3f ms (median of %zu; %zu chunks "
           "of %zu rows)\n"
           "  single-device call:       %.3f ms (process 0, the others "
           "idle)\n"
           "  sent by each process:     %.0f bytes in %zu all-reduces\n",
           a->rows, a->hidden, a->classes, r->size, dev, r->vp_ms, a->repeat,
           chunks, r->chunk, r->single_ms, bytes, chunks + 2);
  else if (!a->json_only)
    printf("cross_entropy %zux%zu %s, %d processes on %s\n"
           "  vocabulary-parallel call: %.3f ms (median of %zu)\n"
           "  its all-reduce alone:     %.3f ms, %.0f bytes from each "
           "process\n"
           "  single-device call:       %.3f ms (process 0, the others "
           "idle)\n",
           a->rows, a->classes, clloss_dtype_name(a->dtype), r->size, dev,
           r->vp_ms, a->repeat, r->allreduce_ms, bytes, r->single_ms);
  double load[3];
  json_writer w;
  json_begin(&w, stdout);
  json_str(&w, "loss", b->linear ? "linear_cross_entropy" : "cross_entropy");
  json_bool(&w, "vocab_parallel", 1);
  json_uint(&w, "processes", (unsigned long long)r->size);
  json_uint(&w, "rows", a->rows);
  if (b->linear)
    json_uint(&w, "hidden", a->hidden);
  json_uint(&w, "classes", a->classes);
  if (b->linear)
    json_uint(&w, "chunk_rows", r->chunk);
  else
    json_str(&w, "dtype", clloss_dtype_name(a->dtype));
  json_str(&w, "device", dev);
  json_uint(&w, "repeat", a->repeat);
  json_uint(&w, "warmup", a->warmup);
  json_num(&w, "vp_median_ms", r->vp_ms, "%.4f");
  if (!b->linear)
    json_num(&w, "allreduce_median_ms", r->allreduce_ms, "%.4f");
  json_num(&w, "single_median_ms", r->single_ms, "%.4f");
  json_num(&w, "bytes_per_process", bytes, "%.0f");
  if (b->linear)
    json_uint(&w, "allreduces", chunks + 2);
  else
    json_num(&w, "loadavg", bench_loadavg(load) ? load[0] : NAN, "%.2f");
  json_str(&w, "clloss_version", CLLOSS_VERSION_STRING);
  json_end(&w);
  fflush(stdout);
}

/* Everything once the arguments are parsed: the block of the classes on
 * every process, then the whole problem on process 0 alone. */
static int vp_main(const vp_bench *b, int argc, char **argv) {
  vp_run r;
  memset(&r, 0, sizeof r);
  int rc = bench_parse(b->parse, argc, argv, &r.a);
  if (rc != CLI_OK)
    return rc;
  if (cli_mpi_begin("bench", &r.rank, &r.size) != CLI_OK)
    return CLI_DATA_ERROR;
  size_t index = 0;
  rc = cli_open_device("bench", r.a.device, &r.ctx, &index);
  r.shard = clloss_mpi_even_shard(r.a.classes, r.rank, r.size);
  const int repeat = (int)r.a.repeat, warmup = (int)r.a.warmup;
  if (cli_mpi_anyone(rc != CLI_OK) ||
      cli_mpi_anyone(b->prepare(&r) ||
                     b->make(&r, r.shard.classes, 100 + (uint64_t)r.rank) !=
                         CL_SUCCESS))
    rc = CLI_DATA_ERROR;
  if (rc == CLI_OK)
    rc = vp_timed(repeat, warmup, b->vp, &r, 1, &r.vp_ms);
  if (rc == CLI_OK && b->extra)
    rc = b->extra(&r);
  release(&r);
  if (rc == CLI_OK && cli_mpi_anyone(r.rank == 0 && b->make(&r, r.a.classes,
                                                            100) != CL_SUCCESS))
    rc = !b->linear ? cli_error("bench", CLI_DATA_ERROR,
                                "process 0 has no room for the whole "
                                "problem")
                    : CLI_DATA_ERROR;
  if (rc == CLI_OK)
    rc = vp_timed(repeat, warmup, b->single, &r, 0, &r.single_ms);
  release(&r);
  if (rc == CLI_OK && r.rank == 0)
    report(b, &r, clloss_context_device_info(r.ctx)->name);
  else if (rc != CLI_OK && r.rank == 0)
    cli_error("bench", rc, "the vocabulary-parallel benchmark failed%s%s",
              r.ctx ? ": " : "",
              r.ctx ? clloss_context_error_detail(r.ctx) : "");
  clloss_context_release(r.ctx);
  cli_mpi_end();
  return rc;
}

#define B(i) CLLOSS_BUFFER(r->m[i])

/* ---- cross_entropy ---- */

static int ce_other(bench_args *a, const char *arg) {
  if (cli_flag(arg, "--vocab-parallel"))
    return CLI_OK;
  if (strcmp(arg, "cross_entropy") == 0 && !a->loss) {
    a->loss = cli_find_loss(arg);
    return CLI_OK;
  }
  return usage("'%s': --vocab-parallel takes cross_entropy and the "
               "options of `clloss bench --vocab-parallel --help`",
               arg);
}

static int ce_check(bench_args *a) {
  if (!a->loss)
    return usage("--vocab-parallel: missing LOSS (cross_entropy)");
  if (a->classes > ((size_t)1 << 46) / a->rows)
    return usage("--rows x --classes is too large");
  return CLI_OK;
}

static int ce_prepare(vp_run *r) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = r->a.rows;
  d.classes = r->a.classes;
  d.input_type = r->a.dtype;
  r->ce = d;
  r->record_bytes = r->a.dtype == CLLOSS_FLOAT64 ? sizeof(clloss_ce_stats64)
                                                 : sizeof(clloss_ce_stats);
  r->records = calloc(r->a.rows + 1, r->record_bytes);
  return !r->records;
}

/* Logits uniform in [-5, 5) (per process's seed), targets uniform in
 * [0, classes) with one seed everywhere, so that all processes agree. */
static cl_int ce_make(vp_run *r, size_t cols, uint64_t seed) {
  const size_t n = r->a.rows * (cols ? cols : 1), rows = r->a.rows;
  const cl_mem_flags rw = CL_MEM_READ_WRITE;
  const bench_buf b[B_N] = {
      [B_X] = {"x", n, r->a.dtype, rw, BENCH_RANDOM, -5, 5, seed},
      [B_DX] = {"dx", n, r->a.dtype, rw, BENCH_KEEP, 0, 0, 0},
      [B_T] = {"t", rows, CLLOSS_INT64, rw, BENCH_RANDOM, 0, r->a.classes, 7},
      [B_L] = {"loss", 1, CLLOSS_FLOAT64, rw, BENCH_KEEP, 0, 0, 0}};
  size_t bad;
  enum bench_phase phase;
  return bench_buffers(r->ctx, b, B_N, 0, r->m, &bad, &phase);
}

static clloss_status ce_vp(void *p) {
  vp_run *r = p;
  const clloss_buffer none = {NULL, 0};
  return bench_finish(clloss_context_queue(r->ctx),
                      clloss_mpi_cross_entropy(
                          r->ctx, MPI_COMM_WORLD, NULL, &r->ce, &r->shard,
                          B(B_X), B(B_T), none, none, B(B_L),
                          r->shard.classes ? B(B_DX) : none, 0, NULL, NULL));
}

static clloss_status ce_allreduce(void *p) {
  vp_run *r = p;
  return MPI_Allreduce(MPI_IN_PLACE, r->records, (int)r->ce.rows + 1, r->type,
                       r->op, MPI_COMM_WORLD) == MPI_SUCCESS
             ? CLLOSS_SUCCESS
             : CLLOSS_COLLECTIVE_FAILURE;
}

/* The all-reduce of the records alone. */
static int ce_extra(vp_run *r) {
  int rc = CLI_OK;
  if (!cli_mpi_anyone(clloss_mpi_ce_stats_type(r->a.dtype, &r->type, &r->op) !=
                      CLLOSS_SUCCESS)) {
    rc = vp_timed((int)r->a.repeat, (int)r->a.warmup, ce_allreduce, r, 1,
                  &r->allreduce_ms);
    MPI_Op_free(&r->op);
    MPI_Type_free(&r->type);
  }
  return rc;
}

static clloss_status ce_single(void *p) {
  vp_run *r = p;
  const clloss_buffer none = {NULL, 0};
  return bench_finish(clloss_context_queue(r->ctx),
                      clloss_cross_entropy(r->ctx, clloss_context_queue(r->ctx),
                                           &r->ce, B(B_X), B(B_T), none, none,
                                           B(B_L), B(B_DX), 0, NULL, NULL));
}

static const bench_opt ce_opts[] = {
    {"--rows", BENCH_SIZE, 1, (size_t)1 << 30, BENCH_AT(rows), 4096},
    {"--classes", BENCH_SIZE, 1, (size_t)1 << 30, BENCH_AT(classes), 32000},
    {"--dtype", BENCH_DTYPE, 0, 0, BENCH_AT(dtype), 0}};

static const bench_parser ce_parser = {
    ce_opts, BENCH_COUNT(ce_opts), 1, 10, 2, ce_other, ce_check};

static const vp_bench ce_bench = {&ce_parser, ce_prepare, ce_make, ce_vp,
                                  ce_single,  ce_extra,   0};

int cli_bench_vocab_parallel(int argc, char **argv) {
  return vp_main(&ce_bench, argc, argv);
}

/* ---- linear_cross_entropy ---- */

static int lin_other(bench_args *a, const char *arg) {
  (void)a;
  if (cli_flag(arg, "--vocab-parallel"))
    return CLI_OK;
  return usage("'%s': see `clloss bench linear_cross_entropy "
               "--vocab-parallel --help`",
               arg);
}

static int lin_check(bench_args *a) {
  if (a->hidden > ((size_t)1 << 40) / a->classes ||
      a->hidden > ((size_t)1 << 40) / a->rows)
    return usage("the problem is too large");
  return CLI_OK;
}

/* The descriptor, and the chunks the call uses, for the bytes it sends. */
static int lin_prepare(vp_run *r) {
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.hidden = r->a.hidden;
  d.chunk_rows = r->a.chunk_rows;
  d.ce.rows = r->a.rows;
  d.ce.classes = r->a.classes;
  r->lin = d;
  r->chunk = r->a.chunk_rows;
  size_t bytes = 0;
  if (!r->chunk)
    clloss_linear_cross_entropy_workspace_size(r->ctx, &d, 1, 1, 1, &bytes,
                                               &r->chunk);
  return 0;
}

/* X uniform in [-1, 1), W and b in [-0.1, 0.1) (each process its own
 * rows), targets in [0, V) with one seed everywhere. */
static cl_int lin_make(vp_run *r, size_t classes, uint64_t seed) {
  const size_t N = r->a.rows, H = r->a.hidden, V = classes ? classes : 1;
  const cl_mem_flags rw = CL_MEM_READ_WRITE;
  const clloss_dtype f = CLLOSS_FLOAT32;
  const bench_buf b[B_N] = {
      {"X", N * H, f, rw, BENCH_RANDOM, -1, 1, 5},
      {"W", V * H, f, rw, BENCH_RANDOM, -0.1, 0.1, seed},
      {"b", V, f, rw, BENCH_RANDOM, -0.1, 0.1, seed},
      {"t", N, CLLOSS_INT64, rw, BENCH_RANDOM, 0, (double)r->a.classes, 7},
      {"loss", 1, f, rw, BENCH_KEEP, 0, 0, 0},
      {"dX", N * H, f, rw, BENCH_KEEP, 0, 0, 0},
      {"dW", V * H, f, rw, BENCH_KEEP, 0, 0, 0},
      {"db", V, f, rw, BENCH_KEEP, 0, 0, 0}};
  size_t bad;
  enum bench_phase phase;
  return bench_buffers(r->ctx, b, B_N, 0, r->m, &bad, &phase);
}

static clloss_status lin_vp(void *p) {
  vp_run *r = p;
  const clloss_buffer none = {NULL, 0};
  const int own = r->shard.classes > 0;
  return bench_finish(
      clloss_context_queue(r->ctx),
      clloss_mpi_linear_cross_entropy(
          r->ctx, MPI_COMM_WORLD, NULL, &r->lin, &r->shard, B(B_X),
          own ? B(B_W) : none, own ? B(B_B) : none, B(B_T), none, none, B(B_L),
          B(B_DX), own ? B(B_DW) : none, own ? B(B_DB) : none, 0, NULL, NULL));
}

static clloss_status lin_single(void *p) {
  vp_run *r = p;
  const clloss_buffer none = {NULL, 0};
  return bench_finish(clloss_context_queue(r->ctx),
                      clloss_linear_cross_entropy(
                          r->ctx, clloss_context_queue(r->ctx), &r->lin, B(B_X),
                          B(B_W), B(B_B), B(B_T), none, none, B(B_L), B(B_DX),
                          B(B_DW), B(B_DB), 0, NULL, NULL));
}
#undef B

static const bench_opt lin_opts[] = {
    {"--rows", BENCH_SIZE, 1, (size_t)1 << 24, BENCH_AT(rows), 2048},
    {"--hidden", BENCH_SIZE, 1, (size_t)1 << 20, BENCH_AT(hidden), 512},
    {"--classes", BENCH_SIZE, 1, (size_t)1 << 30, BENCH_AT(classes), 32000},
    {"--chunk-rows", BENCH_SIZE, 0, (size_t)1 << 24, BENCH_AT(chunk_rows), 0}};

static const bench_parser lin_parser = {
    lin_opts, BENCH_COUNT(lin_opts), 2, 5, 1, lin_other, lin_check};

static const vp_bench lin_bench = {&lin_parser, lin_prepare, lin_make, lin_vp,
                                   lin_single,  NULL,        1};

int cli_bench_linear_vocab_parallel(int argc, char **argv) {
  return vp_main(&lin_bench, argc, argv);
}
