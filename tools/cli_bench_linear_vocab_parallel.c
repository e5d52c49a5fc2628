/* cli_bench_linear_vocab_parallel.c - `clloss bench linear_cross_entropy
 * --vocab-parallel` under mpirun: times the MPI layer's linear call (each
 * process its rows of W) against the single-device call on the whole
 * problem on process 0's device; prints readable lines and one JSON object
 * (process 0). Built only with the MPI layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench.h"
#include "cli_mpi.h"

typedef struct lvp_args {
  bench_opts o; /* --repeat, --warmup, --device, --json-only */
  size_t rows, hidden, classes, chunk;
} lvp_args;

#define usage(...) cli_usage("bench", __VA_ARGS__)

static int parse_args(int argc, char **argv, lvp_args *a) {
  static const bench_size sizes[] = {
      {"--rows", 1, (size_t)1 << 24, offsetof(lvp_args, rows)},
      {"--hidden", 1, (size_t)1 << 20, offsetof(lvp_args, hidden)},
      {"--classes", 1, (size_t)1 << 30, offsetof(lvp_args, classes)},
      {"--chunk-rows", 0, (size_t)1 << 24, offsetof(lvp_args, chunk)}};
  for (int i = 2; i < argc;) {
    int matched;
    int rc = bench_size_option(argc, argv, &i, sizes, 4, a, &matched);
    if (!matched)
      rc = bench_option(argc, argv, &i, 0, &a->o, &matched);
    if (rc != CLI_OK)
      return rc;
    if (matched)
      continue;
    if (!cli_flag(argv[i], "--vocab-parallel"))
      return usage("'%s': see `clloss bench linear_cross_entropy "
                   "--vocab-parallel --help`",
                   argv[i]);
    i++;
  }
  if (a->hidden > ((size_t)1 << 40) / a->classes ||
      a->hidden > ((size_t)1 << 40) / a->rows)
    return usage("the problem is too large");
  return CLI_OK;
}

/* Device buffers: X, W (rows `classes`), b, targets, loss, dX, dW, db. */
enum { B_X, B_W, B_B, B_T, B_L, B_DX, B_DW, B_DB, B_N };
typedef struct lvp_state {
  clloss_context *ctx;
  clloss_linear_cross_entropy_desc desc;
  clloss_shard shard;
  cl_mem m[B_N];
} lvp_state;

static void release(lvp_state *st) {
  for (int i = 0; i < B_N; i++)
    if (st->m[i])
      clReleaseMemObject(st->m[i]);
  memset(st->m, 0, sizeof st->m);
}

/* X uniform in [-1, 1), W and b in [-0.1, 0.1) (each process its own
 * rows), targets in [0, V) with one seed everywhere. */
static cl_int make(lvp_state *st, const lvp_args *a, size_t classes,
                   uint64_t seed) {
  cl_context cl = clloss_context_cl_context(st->ctx);
  cl_command_queue q = clloss_context_queue(st->ctx);
  const size_t N = a->rows, H = a->hidden, V = classes ? classes : 1;
  const size_t n[B_N] = {N * H, V * H, V, N, 1, N * H, V * H, V};
  cl_int err = CL_SUCCESS;
  for (int i = 0; i < B_N && err == CL_SUCCESS; i++)
    st->m[i] = clCreateBuffer(cl, CL_MEM_READ_WRITE, n[i] * (i == B_T ? 8 : 4),
                              NULL, &err);
  if (err == CL_SUCCESS)
    err = bench_fill(q, st->m[B_X], CLLOSS_FLOAT32, n[B_X], -1, 1, 5);
  if (err == CL_SUCCESS)
    err = bench_fill(q, st->m[B_W], CLLOSS_FLOAT32, n[B_W], -0.1, 0.1, seed);
  if (err == CL_SUCCESS)
    err = bench_fill(q, st->m[B_B], CLLOSS_FLOAT32, n[B_B], -0.1, 0.1, seed);
  if (err == CL_SUCCESS)
    err = bench_fill(q, st->m[B_T], CLLOSS_INT64, N, 0, (double)a->classes, 7);
  return err;
}

static clloss_status run_vp(void *p) {
  lvp_state *st = p;
  const clloss_buffer none = {NULL, 0};
  const int own = st->shard.classes > 0;
#define B(i) CLLOSS_BUFFER(st->m[i])
  return bench_finish(
      clloss_context_queue(st->ctx),
      clloss_mpi_linear_cross_entropy(
          st->ctx, MPI_COMM_WORLD, NULL, &st->desc, &st->shard, B(B_X),
          own ? B(B_W) : none, own ? B(B_B) : none, B(B_T), none, none, B(B_L),
          B(B_DX), own ? B(B_DW) : none, own ? B(B_DB) : none, 0, NULL, NULL));
}

static clloss_status run_single(void *p) {
  lvp_state *st = p;
  const clloss_buffer none = {NULL, 0};
  return bench_finish(clloss_context_queue(st->ctx),
                      clloss_linear_cross_entropy(
                          st->ctx, clloss_context_queue(st->ctx), &st->desc,
                          B(B_X), B(B_W), B(B_B), B(B_T), none, none, B(B_L),
                          B(B_DX), B(B_DW), B(B_DB), 0, NULL, NULL));
#undef B
}

int cli_bench_linear_vocab_parallel(int argc, char **argv) {
  lvp_args a;
  memset(&a, 0, sizeof a);
  a.o.repeat = 5;
  a.o.warmup = 1;
  a.rows = 2048;
  a.hidden = 512;
  a.classes = 32000;
  int rc = parse_args(argc, argv, &a);
  if (rc != CLI_OK)
    return rc;
  int rank = 0, size = 1;
  if (cli_mpi_begin("bench", &rank, &size) != CLI_OK)
    return CLI_DATA_ERROR;
  lvp_state st;
  memset(&st, 0, sizeof st);
  size_t index = 0;
  rc = cli_open_device("bench", a.o.device, &st.ctx, &index);
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.hidden = a.hidden;
  d.chunk_rows = a.chunk;
  d.ce.rows = a.rows;
  d.ce.classes = a.classes;
  st.desc = d;
  st.shard = clloss_mpi_even_shard(a.classes, rank, size);
  /* The chunks the call uses, for the bytes it sends. */
  size_t chunk = a.chunk, bytes = 0;
  rc = cli_mpi_anyone(rc != CLI_OK) ? CLI_DATA_ERROR : CLI_OK;
  if (rc == CLI_OK && !a.chunk)
    clloss_linear_cross_entropy_workspace_size(st.ctx, &d, 1, 1, 1, &bytes,
                                               &chunk);
  double vp_ms = 0, single_ms = 0;
  if (rc == CLI_OK && cli_mpi_anyone(make(&st, &a, st.shard.classes,
                                          100 + (uint64_t)rank) != CL_SUCCESS))
    rc = CLI_DATA_ERROR;
  if (rc == CLI_OK)
    rc = cli_mpi_timed(a.o.repeat, a.o.warmup, run_vp, &st, 1, &vp_ms);
  release(&st);
  if (rc == CLI_OK &&
      cli_mpi_anyone(rank == 0 && make(&st, &a, a.classes, 100) != CL_SUCCESS))
    rc = CLI_DATA_ERROR;
  if (rc == CLI_OK)
    rc = cli_mpi_timed(a.o.repeat, a.o.warmup, run_single, &st, 0, &single_ms);
  release(&st);
  const size_t chunks = chunk ? (a.rows + chunk - 1) / chunk : 0;
  const double sent = 3.0 * 8 + (double)(a.rows + chunks) * 24 +
                      ((double)a.rows * (double)a.hidden + 1) * 4;
  if (rc == CLI_OK && rank == 0) {
    const char *dev = clloss_context_device_info(st.ctx)->name;
    if (!a.o.json_only)
      printf("linear_cross_entropy %zux%zux%zu float32, %d processes on %s\n"
             "  vocabulary-parallel call: %.3f ms (median of %d; %zu chunks "
             "of %zu rows)\n"
             "  single-device call:       %.3f ms (process 0, the others "
             "idle)\n"
             "  sent by each process:     %.0f bytes in %zu all-reduces\n",
             a.rows, a.hidden, a.classes, size, dev, vp_ms, a.o.repeat, chunks,
             chunk, single_ms, sent, chunks + 2);
    json_writer w;
    json_begin(&w, stdout);
    json_str(&w, "loss", "linear_cross_entropy");
    json_bool(&w, "vocab_parallel", 1);
    json_uint(&w, "processes", (unsigned long long)size);
    json_uint(&w, "rows", a.rows);
    json_uint(&w, "hidden", a.hidden);
    json_uint(&w, "classes", a.classes);
    json_uint(&w, "chunk_rows", chunk);
    json_str(&w, "device", dev);
    json_uint(&w, "repeat", (unsigned long long)a.o.repeat);
    json_uint(&w, "warmup", (unsigned long long)a.o.warmup);
    json_num(&w, "vp_median_ms", vp_ms, "%.4f");
    json_num(&w, "single_median_ms", single_ms, "%.4f");
    json_num(&w, "bytes_per_process", sent, "%.0f");
    json_uint(&w, "allreduces", chunks + 2);
    json_str(&w, "clloss_version", CLLOSS_VERSION_STRING);
    json_end(&w);
    fflush(stdout);
  } else if (rc != CLI_OK && rank == 0) {
    cli_error("bench", rc, "the vocabulary-parallel benchmark failed%s%s",
              st.ctx ? ": " : "",
              st.ctx ? clloss_context_error_detail(st.ctx) : "");
  }
  clloss_context_release(st.ctx);
  cli_mpi_end();
  return rc;
}
