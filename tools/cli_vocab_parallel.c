/* cli_vocab_parallel.c - `clloss run cross_entropy --vocab-parallel` under
 * mpirun: each process reads its block of the classes (its columns of the
 * logits, of probability targets, of the weights) and computes on its
 * device through the MPI layer (clloss_mpi.h); process 0 gathers the
 * gradient and writes both outputs, so that they compare with a
 * single-device run's. Built only with the MPI layer. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mpi.h"
#include "cli_run.h"
#include "npy.h"

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
  /* The outputs, made before the processes agree to compute: the loss,
   * this block's gradient, and on process 0 the whole gradient, the
   * gathered blocks and the gather's counts. */
  void *loss, *grad, *full;
  unsigned char *blocks;
  int *counts;
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
  free(v->loss);
  free(v->grad);
  free(v->full);
  free(v->blocks);
  free(v->counts);
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
    snprintf(msg, len, "%s", *cli_captured() ? cli_captured() : "no device");
    return CLI_DATA_ERROR;
  }
  snprintf(v->where, sizeof v->where,
           "%d processes (process 0: device %zu, %s)", size, index,
           clloss_context_device_info(v->ctx)->name);
  return CLI_OK;
}

/* The outputs' memory (process 0: the gathered gradient's too). */
static int alloc_outputs(const run_args *a, vp_part *v, int rank, int size,
                         char *msg, size_t len) {
  const cli_problem *p = &v->p;
  const size_t es = npy_dtype_size(v->x_head.dtype);
  const size_t ls = p->loss_type == CLLOSS_FLOAT64 ? 8 : 4;
  const size_t n = v->rows * p->ce.classes;
  const int root = rank == 0 && a->grad_out;
  v->loss = calloc(p->loss_count + 1, ls);
  v->grad = calloc(v->rows * v->shard.classes + 1, es);
  v->counts = malloc(2 * (size_t)size * sizeof *v->counts);
  v->full = root ? calloc(n + 1, es) : NULL;
  v->blocks = root ? malloc(n * es + 1) : NULL;
  if (!v->loss || !v->grad || !v->counts ||
      (root && (!v->full || !v->blocks))) {
    snprintf(msg, len, "out of memory");
    return CLI_DATA_ERROR;
  }
  return CLI_OK;
}

/* Process 0 receives every block [N, cb_r] and lays them side by side in
 * full [N, V]; the others send theirs. */
static int gather(vp_part *v) {
  return cli_mpi_gather(v->grad, v->full, v->blocks, v->rows, v->p.ce.classes,
                        npy_dtype_size(v->x_head.dtype),
                        v->counts) == MPI_SUCCESS
             ? CLI_OK
             : cli_error("run", CLI_DATA_ERROR,
                         "gathering the gradient failed");
}

/* The call on every process (the processes agreed that each is ready);
 * process 0 gathers and writes the outputs. Each step ends in an
 * agreement, so that a process that fails stops every other. */
static int compute(const run_args *a, vp_part *v, int rank) {
  const cli_problem *p = &v->p;
  const size_t ls = p->loss_type == CLLOSS_FLOAT64 ? 8 : 4;
  const void *target =
      is_index(v->target.dtype) ? v->target.data : v->t_cols.data;
  const void *weight =
      p->weight ? (const char *)p->weight + v->shard.class_offset * ls : NULL;
  const double t0 = cli_now_ms();
  clloss_status s = clloss_mpi_cross_entropy_host(
      v->ctx, MPI_COMM_WORLD, &p->ce, &v->shard, v->x.data, target, weight,
      NULL, v->loss, a->grad_out ? v->grad : NULL);
  const double ms = cli_now_ms() - t0;
  int rc = CLI_OK;
  if (s != CLLOSS_SUCCESS) {
    const char *detail = clloss_context_error_detail(v->ctx);
    rc = cli_error("run", CLI_DATA_ERROR, "cross_entropy failed: %s (%s)%s%s",
                   clloss_status_string(s), clloss_status_name(s),
                   *detail ? ": " : "", detail);
  }
  rc = cli_vp_agree(rc, s != CLLOSS_COLLECTIVE_FAILURE, 0);
  if (rc == CLI_OK && a->grad_out)
    rc = cli_vp_agree(gather(v), 1, 0);
  if (rc != CLI_OK)
    return rc;
  if (rank == 0) {
    rc = cli_run_write_outputs(a, p, v->loss, v->full);
    if (rc == CLI_OK && !a->quiet)
      cli_run_summary(a, p, v->loss, v->where, ms);
  }
  return cli_vp_agree(rc, 1, 0);
}

int cli_run_vocab_parallel(const run_args *a, const cli_loss_info *loss) {
  int rank = 0, size = 1;
  if (cli_mpi_begin("run", &rank, &size) != CLI_OK)
    return CLI_DATA_ERROR;
  vp_part v;
  memset(&v, 0, sizeof v);
  char msg[400] = "";
  cli_capture(1);
  int rc = read_part(a, loss, rank, size, &v, msg, sizeof msg);
  if (rc == CLI_OK)
    rc = alloc_outputs(a, &v, rank, size, msg, sizeof msg);
  if (rc != CLI_OK)
    cli_error("run", rc, "%s", msg);
  /* Every process learns whether any could not read its part or was given
   * other outputs, before the collective call that would wait for it. */
  rc = cli_vp_agree(rc, 1, (a->loss_out ? 1u : 0u) | (a->grad_out ? 2u : 0u));
  if (rc == CLI_OK)
    rc = compute(a, &v, rank);
  cli_capture(0);
  free_part(&v);
  cli_mpi_end();
  return rc;
}
