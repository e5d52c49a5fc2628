/* cli_vocab_parallel.c - `clloss run cross_entropy --vocab-parallel` under
 * mpirun: each process reads its block of the classes (its columns of the
 * logits, of probability targets, of the weights) and computes on its
 * device through the MPI layer (clloss_mpi.h); process 0 gathers the
 * gradient and writes both outputs, so that they compare with a
 * single-device run's. Without MPI, a clear error. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_run.h"
#include "npy.h"

#ifndef CLLOSS_CLI_HAVE_MPI

int cli_run_vocab_parallel(const run_args *a, const cli_loss_info *loss) {
  (void)a;
  (void)loss;
  return cli_no_mpi("run");
}

#else

#include "clloss_mpi.h"

/* This process's part of the problem. */
typedef struct vp_part {
  npy_array x_head; /* the whole input's header (no data) */
  npy_array x;      /* this process's columns */
  npy_array target; /* class indices (all), or the probabilities' header */
  npy_array t_cols; /* probability targets: this process's columns */
  npy_array weight; /* all of it (V values) */
  cli_problem p;    /* checked as the whole problem */
  int have_problem;
  clloss_shard shard;
  size_t rows;
  clloss_context *ctx;
  char where[320];
} vp_part;

static int is_index(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

static void free_part(vp_part *v) {
  npy_free(&v->x_head);
  npy_free(&v->x);
  npy_free(&v->target);
  npy_free(&v->t_cols);
  npy_free(&v->weight);
  if (v->have_problem)
    cli_problem_free(&v->p);
  clloss_context_release(v->ctx);
}

/* Reads and checks this process's part; CLI_OK, or an exit code with one
 * sentence in msg. The checks are the single-device run's, on the whole
 * problem's shapes, the class indices and the weights. */
static int read_part(const run_args *a, const cli_loss_info *loss, int rank,
                     int size, vp_part *v, char *msg, size_t len) {
  if (loss->family != CLI_CROSS_ENTROPY) {
    snprintf(msg, len, "--vocab-parallel applies to cross_entropy, not %s",
             loss->name);
    return CLI_USAGE;
  }
  if (npy_read_header(a->input, &v->x_head, msg, len) != NPY_OK ||
      npy_read_header(a->target, &v->target, msg, len) != NPY_OK)
    return CLI_DATA_ERROR;
  const int probs = !is_index(v->target.dtype);
  if (!probs && npy_read(a->target, &v->target, msg, len) != NPY_OK)
    return CLI_DATA_ERROR;
  if (a->weight && npy_read(a->weight, &v->weight, msg, len) != NPY_OK)
    return CLI_DATA_ERROR;
  int rc = cli_problem_init(&v->p, loss, &a->opt, &v->x_head, &v->target,
                            a->weight ? &v->weight : NULL, NULL, msg, len);
  if (rc != CLI_OK)
    return rc;
  v->have_problem = 1;
  const size_t classes = v->p.ce.classes;
  v->rows = v->p.ce.rows;
  if (v->rows > (size_t)INT_MAX / classes) {
    snprintf(msg, len,
             "%zu x %zu is too large to gather in one MPI_Gatherv (2^31 - 1 "
             "elements)",
             v->rows, classes);
    return CLI_DATA_ERROR;
  }
  v->shard = clloss_mpi_even_shard(classes, rank, size);
  const size_t c0 = v->shard.class_offset, cb = v->shard.classes;
  if (npy_read_columns(a->input, c0, cb, &v->x, msg, len) != NPY_OK ||
      (probs &&
       npy_read_columns(a->target, c0, cb, &v->t_cols, msg, len) != NPY_OK))
    return CLI_DATA_ERROR;
  size_t index = 0;
  if (cli_open_device("run", a->device, &v->ctx, &index) != CLI_OK) {
    snprintf(msg, len, "no device");
    return CLI_DATA_ERROR;
  }
  snprintf(v->where, sizeof v->where,
           "%d processes (process 0: device %zu, %s)", size, index,
           clloss_context_device_info(v->ctx)->name);
  return CLI_OK;
}

/* Process 0 receives every block [N, cb_r] and lays them side by side in
 * full [N, V]; the others send theirs. */
static int gather(const vp_part *v, int rank, int size, const void *block,
                  void *full) {
  const size_t es = npy_dtype_size(v->x_head.dtype);
  const size_t rows = v->rows, classes = v->p.ce.classes;
  MPI_Datatype elem;
  MPI_Type_contiguous((int)es, MPI_BYTE, &elem);
  MPI_Type_commit(&elem);
  int *counts = malloc(2 * (size_t)size * sizeof *counts), *displs;
  unsigned char *blocks = rank == 0 ? malloc(rows * classes * es + 1) : NULL;
  int rc = counts && (rank != 0 || blocks) ? MPI_SUCCESS : MPI_ERR_NO_MEM;
  if (rc == MPI_SUCCESS) {
    displs = counts + size;
    for (int r = 0; r < size; r++) {
      const clloss_shard s = clloss_mpi_even_shard(classes, r, size);
      counts[r] = (int)(rows * s.classes);
      displs[r] = (int)(rows * s.class_offset);
    }
    rc = MPI_Gatherv(block, counts[rank], elem, blocks, counts, displs, elem, 0,
                     MPI_COMM_WORLD);
  }
  if (rc == MPI_SUCCESS && rank == 0)
    for (int r = 0; r < size; r++) {
      const clloss_shard s = clloss_mpi_even_shard(classes, r, size);
      for (size_t i = 0; i < rows && s.classes; i++)
        memcpy((unsigned char *)full + (i * classes + s.class_offset) * es,
               blocks + ((size_t)displs[r] + i * s.classes) * es,
               s.classes * es);
    }
  free(blocks);
  free(counts);
  MPI_Type_free(&elem);
  return rc == MPI_SUCCESS ? CLI_OK
                           : cli_error("run", CLI_DATA_ERROR,
                                       "gathering the gradient failed");
}

/* The call on every process; process 0 writes the outputs. */
static int compute(const run_args *a, vp_part *v, int rank, int size) {
  const cli_problem *p = &v->p;
  const size_t es = npy_dtype_size(v->x_head.dtype);
  const size_t ls = p->loss_type == CLLOSS_FLOAT64 ? 8 : 4;
  const size_t cb = v->shard.classes, classes = p->ce.classes;
  void *loss = calloc(p->loss_count + 1, ls);
  void *grad = calloc(v->rows * cb + 1, es);
  void *full = rank == 0 ? calloc(v->rows * classes + 1, es) : NULL;
  if (!loss || !grad || (rank == 0 && !full)) {
    free(loss);
    free(grad);
    free(full);
    return cli_error("run", CLI_DATA_ERROR, "out of memory");
  }
  const void *target =
      is_index(v->target.dtype) ? v->target.data : v->t_cols.data;
  const void *weight =
      p->weight ? (const char *)p->weight + v->shard.class_offset * ls : NULL;
  const double t0 = cli_now_ms();
  clloss_status s = clloss_mpi_cross_entropy_host(
      v->ctx, MPI_COMM_WORLD, &p->ce, &v->shard, v->x.data, target, weight,
      NULL, loss, a->grad_out ? grad : NULL);
  const double ms = cli_now_ms() - t0;
  int rc = CLI_OK;
  if (s != CLLOSS_SUCCESS) {
    const char *detail = clloss_context_error_detail(v->ctx);
    rc = cli_error("run", CLI_DATA_ERROR,
                   "cross_entropy on process %d of %d failed: %s (%s)%s%s",
                   rank, size, clloss_status_string(s), clloss_status_name(s),
                   *detail ? ": " : "", detail);
  } else if (a->grad_out) {
    rc = gather(v, rank, size, grad, full);
  }
  if (rc == CLI_OK && rank == 0) {
    rc = cli_run_write_outputs(a, p, loss, full);
    if (rc == CLI_OK && !a->quiet)
      cli_run_summary(a, p, loss, v->where, ms);
  }
  free(loss);
  free(grad);
  free(full);
  return rc;
}

int cli_run_vocab_parallel(const run_args *a, const cli_loss_info *loss) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized && MPI_Init(NULL, NULL) != MPI_SUCCESS)
    return cli_error("run", CLI_DATA_ERROR, "MPI_Init failed");
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  vp_part v;
  memset(&v, 0, sizeof v);
  char msg[512] = "";
  int rc = read_part(a, loss, rank, size, &v, msg, sizeof msg);
  /* Every process learns whether any could not read its part, before the
   * collective call that would otherwise wait for it. */
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  /* A usage error is the same everywhere: process 0 tells it. */
  if (rc != CLI_OK && *msg && (rc != CLI_USAGE || rank == 0))
    cli_error("run", rc, "process %d of %d: %s", rank, size, msg);
  if (worst != CLI_OK)
    rc = worst;
  else
    rc = compute(a, &v, rank, size);
  free_part(&v);
  if (!initialized)
    MPI_Finalize();
  return rc;
}

#endif
