/* cli_bench_vocab_parallel.c - `clloss bench cross_entropy --vocab-parallel`
 * under mpirun: times the MPI layer's call (each process its block of the
 * classes) against the single-device call on the whole problem on process
 * 0's device, and the all-reduce of the records alone; prints readable
 * lines and one JSON object (process 0). Built only with the MPI layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench.h"
#include "cli_mpi.h"
#include "cli_loss.h"

typedef struct vp_args {
  bench_opts o; /* --repeat, --warmup, --device, --dtype, --json-only */
  size_t rows, classes;
} vp_args;

#define usage(...) cli_usage("bench", __VA_ARGS__)

static int parse_args(int argc, char **argv, vp_args *a) {
  static const bench_size sizes[] = {
      {"--rows", 1, (size_t)1 << 30, offsetof(vp_args, rows)},
      {"--classes", 1, (size_t)1 << 30, offsetof(vp_args, classes)}};
  int have_loss = 0;
  for (int i = 1; i < argc;) {
    int matched;
    int rc = bench_size_option(argc, argv, &i, sizes, 2, a, &matched);
    if (!matched)
      rc = bench_option(argc, argv, &i, BENCH_DTYPE, &a->o, &matched);
    if (rc != CLI_OK)
      return rc;
    if (matched)
      continue;
    if (cli_flag(argv[i], "--vocab-parallel")) {
      i++;
    } else if (strcmp(argv[i], "cross_entropy") == 0 && !have_loss) {
      have_loss = 1;
      i++;
    } else {
      return usage("'%s': --vocab-parallel takes cross_entropy and the "
                   "options of `clloss bench --vocab-parallel --help`",
                   argv[i]);
    }
  }
  if (!have_loss)
    return usage("--vocab-parallel: missing LOSS (cross_entropy)");
  if (a->classes > ((size_t)1 << 46) / a->rows)
    return usage("--rows x --classes is too large");
  return CLI_OK;
}

/* Device buffers of one problem: logits and gradient [rows, cols],
 * targets [rows], the loss. */
typedef struct vp_bufs {
  cl_mem x, t, loss, grad;
} vp_bufs;

static void release(vp_bufs *b) {
  cl_mem *all[] = {&b->x, &b->t, &b->loss, &b->grad};
  for (int i = 0; i < 4; i++)
    if (*all[i])
      clReleaseMemObject(*all[i]);
}

/* Logits uniform in [-5, 5) (per process's seed), targets uniform in
 * [0, classes) with one seed everywhere, so that all processes agree. */
static cl_int make(clloss_context *ctx, const vp_args *a, size_t cols,
                   uint64_t seed, vp_bufs *b) {
  cl_context cl = clloss_context_cl_context(ctx);
  cl_command_queue q = clloss_context_queue(ctx);
  const size_t n = a->rows * (cols ? cols : 1),
               es = clloss_dtype_size(a->o.dtype);
  cl_int err = CL_SUCCESS, e2 = CL_SUCCESS, e3 = CL_SUCCESS, e4 = CL_SUCCESS;
  b->x = clCreateBuffer(cl, CL_MEM_READ_WRITE, n * es, NULL, &err);
  b->grad = clCreateBuffer(cl, CL_MEM_READ_WRITE, n * es, NULL, &e2);
  b->t = clCreateBuffer(cl, CL_MEM_READ_WRITE, a->rows * 8, NULL, &e3);
  b->loss = clCreateBuffer(cl, CL_MEM_READ_WRITE, 8, NULL, &e4);
  if (err == CL_SUCCESS)
    err = e2 != CL_SUCCESS ? e2 : e3 != CL_SUCCESS ? e3 : e4;
  if (err == CL_SUCCESS)
    err = bench_fill(q, b->x, a->o.dtype, n, -5, 5, seed);
  if (err == CL_SUCCESS)
    err = bench_fill(q, b->t, CLLOSS_INT64, a->rows, 0, (double)a->classes, 7);
  return err;
}

typedef struct vp_result {
  double vp_ms, allreduce_ms, single_ms;
  size_t record_bytes;
} vp_result;

/* What the timed functions need. */
typedef struct vp_state {
  clloss_context *ctx;
  clloss_cross_entropy_desc desc;
  clloss_shard shard;
  vp_bufs *b;
  void *records;
  MPI_Datatype type;
  MPI_Op op;
} vp_state;

static clloss_status run_vp(void *p) {
  vp_state *st = p;
  const clloss_buffer none = {NULL, 0};
  return bench_finish(clloss_context_queue(st->ctx),
                      clloss_mpi_cross_entropy(
                          st->ctx, MPI_COMM_WORLD, NULL, &st->desc, &st->shard,
                          CLLOSS_BUFFER(st->b->x), CLLOSS_BUFFER(st->b->t),
                          none, none, CLLOSS_BUFFER(st->b->loss),
                          st->shard.classes ? CLLOSS_BUFFER(st->b->grad) : none,
                          0, NULL, NULL));
}

static clloss_status run_allreduce(void *p) {
  vp_state *st = p;
  return MPI_Allreduce(MPI_IN_PLACE, st->records, (int)st->desc.rows + 1,
                       st->type, st->op, MPI_COMM_WORLD) == MPI_SUCCESS
             ? CLLOSS_SUCCESS
             : CLLOSS_COLLECTIVE_FAILURE;
}

static clloss_status run_single(void *p) {
  vp_state *st = p;
  const clloss_buffer none = {NULL, 0};
  return bench_finish(
      clloss_context_queue(st->ctx),
      clloss_cross_entropy(st->ctx, clloss_context_queue(st->ctx), &st->desc,
                           CLLOSS_BUFFER(st->b->x), CLLOSS_BUFFER(st->b->t),
                           none, none, CLLOSS_BUFFER(st->b->loss),
                           CLLOSS_BUFFER(st->b->grad), 0, NULL, NULL));
}

static void report(const vp_args *a, const vp_result *r, int size,
                   const char *device) {
  const double bytes = (double)(a->rows + 1) * (double)r->record_bytes;
  if (!a->o.json_only) {
    printf("cross_entropy %zux%zu %s, %d processes on %s\n", a->rows,
           a->classes, clloss_dtype_name(a->o.dtype), size, device);
    printf("  vocabulary-parallel call: %.3f ms (median of %d)\n", r->vp_ms,
           a->o.repeat);
    printf("  its all-reduce alone:     %.3f ms, %.0f bytes from each "
           "process\n",
           r->allreduce_ms, bytes);
    printf("  single-device call:       %.3f ms (process 0, the others "
           "idle)\n",
           r->single_ms);
  }
  double load[3];
  json_writer w;
  json_begin(&w, stdout);
  json_str(&w, "loss", "cross_entropy");
  json_bool(&w, "vocab_parallel", 1);
  json_uint(&w, "processes", (unsigned long long)size);
  json_uint(&w, "rows", a->rows);
  json_uint(&w, "classes", a->classes);
  json_str(&w, "dtype", clloss_dtype_name(a->o.dtype));
  json_str(&w, "device", device);
  json_uint(&w, "repeat", (unsigned long long)a->o.repeat);
  json_uint(&w, "warmup", (unsigned long long)a->o.warmup);
  json_num(&w, "vp_median_ms", r->vp_ms, "%.4f");
  json_num(&w, "allreduce_median_ms", r->allreduce_ms, "%.4f");
  json_num(&w, "single_median_ms", r->single_ms, "%.4f");
  json_num(&w, "bytes_per_process", bytes, "%.0f");
  json_num(&w, "loadavg", bench_loadavg(load) ? load[0] : NAN, "%.2f");
  json_str(&w, "clloss_version", CLLOSS_VERSION_STRING);
  json_end(&w);
  fflush(stdout);
}

/* Everything once the context exists. */
static int measure(const vp_args *a, clloss_context *ctx, int rank, int size,
                   vp_result *r) {
  vp_state st;
  memset(&st, 0, sizeof st);
  st.ctx = ctx;
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = a->rows;
  d.classes = a->classes;
  d.input_type = a->o.dtype;
  st.desc = d;
  st.shard = clloss_mpi_even_shard(a->classes, rank, size);
  vp_bufs block = {0}, whole = {0};
  r->record_bytes = a->o.dtype == CLLOSS_FLOAT64 ? sizeof(clloss_ce_stats64)
                                                 : sizeof(clloss_ce_stats);
  st.records = calloc(a->rows + 1, r->record_bytes);
  int rc = CLI_DATA_ERROR;
  if (!cli_mpi_anyone(!st.records ||
                      make(ctx, a, st.shard.classes, 100 + (uint64_t)rank,
                           &block) != CL_SUCCESS)) {
    st.b = &block;
    rc = cli_mpi_timed(a->o.repeat, a->o.warmup, run_vp, &st, 1, &r->vp_ms);
  }
  if (rc == CLI_OK &&
      !cli_mpi_anyone(clloss_mpi_ce_stats_type(a->o.dtype, &st.type, &st.op) !=
                      CLLOSS_SUCCESS)) {
    rc = cli_mpi_timed(a->o.repeat, a->o.warmup, run_allreduce, &st, 1,
                       &r->allreduce_ms);
    MPI_Op_free(&st.op);
    MPI_Type_free(&st.type);
  }
  free(st.records);
  release(&block);
  /* The whole problem on process 0 only. */
  if (rc == CLI_OK && cli_mpi_anyone(rank == 0 && make(ctx, a, a->classes, 100,
                                                       &whole) != CL_SUCCESS))
    rc = cli_error("bench", CLI_DATA_ERROR,
                   "process 0 has no room for the whole problem");
  st.b = &whole;
  if (rc == CLI_OK)
    rc = cli_mpi_timed(a->o.repeat, a->o.warmup, run_single, &st, 0,
                       &r->single_ms);
  release(&whole);
  return rc;
}

int cli_bench_vocab_parallel(int argc, char **argv) {
  vp_args a;
  memset(&a, 0, sizeof a);
  a.o.repeat = 10;
  a.o.warmup = 2;
  a.o.dtype = CLLOSS_FLOAT32;
  a.rows = 4096;
  a.classes = 32000;
  int rc = parse_args(argc, argv, &a);
  if (rc != CLI_OK)
    return rc;
  int rank = 0, size = 1;
  if (cli_mpi_begin("bench", &rank, &size) != CLI_OK)
    return CLI_DATA_ERROR;
  clloss_context *ctx = NULL;
  size_t index = 0;
  rc = cli_open_device("bench", a.o.device, &ctx, &index);
  vp_result r;
  memset(&r, 0, sizeof r);
  if (!cli_mpi_anyone(rc != CLI_OK))
    rc = measure(&a, ctx, rank, size, &r);
  else
    rc = CLI_DATA_ERROR;
  if (rc == CLI_OK && rank == 0)
    report(&a, &r, size, clloss_context_device_info(ctx)->name);
  else if (rc != CLI_OK && rank == 0)
    cli_error("bench", rc, "the vocabulary-parallel benchmark failed%s%s",
              ctx ? ": " : "", ctx ? clloss_context_error_detail(ctx) : "");
  clloss_context_release(ctx);
  cli_mpi_end();
  return rc;
}
