/* cli_mpi.c - what the --vocab-parallel commands share: MPI set-up and
 * teardown, the processes' agreement, the
 * gathering of the class shards to process 0, and the shards of `clloss
 * run`'s commands (cli_run.h): cross_entropy's, where each process reads
 * its block of the classes (its columns of the logits, of probability
 * targets), and linear_cross_entropy's, where each takes its rows of W.
 * Without the MPI layer, stubs: every --vocab-parallel entry point says
 * that it is not built. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_mpi.h"
#include "cli_run.h"

#ifndef CLLOSS_CLI_HAVE_MPI

int cli_mpi_begin(const char *cmd, int *rank, int *size) {
  *rank = 0;
  *size = 1;
  return cli_no_mpi(cmd);
}

void cli_mpi_end(void) {}

int cli_vp_agree(int rc, int own, unsigned wanted) {
  (void)own;
  (void)wanted;
  return rc;
}

/* Never run: cli_mpi_begin fails first. */
const cli_shard cli_ce_shard = {NULL, NULL, NULL};
const cli_shard cli_linear_shard = {NULL, NULL, NULL};

#else

static int initialized_here;

int cli_mpi_begin(const char *cmd, int *rank, int *size) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized && MPI_Init(NULL, NULL) != MPI_SUCCESS)
    return cli_error(cmd, CLI_DATA_ERROR, "MPI_Init failed");
  initialized_here = !initialized;
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  return CLI_OK;
}

void cli_mpi_end(void) {
  if (initialized_here)
    MPI_Finalize();
  initialized_here = 0;
}

int cli_mpi_anyone(int bad) {
  int any = bad;
  MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any;
}

/* ---- agreement ---- */

/* One process's word in cli_vp_agree. */
typedef struct vp_word {
  int rc, own;
  unsigned wanted;
  char msg[400];
} vp_word;

static const char *outputs_phrase(unsigned wanted, char *buf, size_t len) {
  static const char *const names[] = {"--loss-out", "--grad-out",
                                      "--grad-weight-out", "--grad-bias-out"};
  size_t at = 0;
  buf[0] = '\0';
  for (unsigned i = 0; i < 4; i++)
    if (wanted & (1u << i) && at < len)
      at +=
          (size_t)snprintf(buf + at, len - at, "%s%s", at ? " " : "", names[i]);
  if (!at)
    snprintf(buf, len, "no output");
  return buf;
}

/* The verdict of all words, the same on every process. */
static int judge_words(const vp_word *w, int size) {
  int first = -1;
  for (int r = 0; r < size; r++)
    if (w[r].rc != CLI_OK && (first < 0 || (w[r].own && !w[first].own)))
      first = r;
  if (first >= 0)
    return cli_error("run", w[first].rc, "process %d of %d: %s", first, size,
                     w[first].msg[0] ? w[first].msg : "failed");
  for (int r = 1; r < size; r++)
    if (w[r].wanted != w[0].wanted) {
      char a[96], b[96];
      return cli_error("run", CLI_USAGE,
                       "process 0 of %d was given %s, process %d %s: every "
                       "process must be given the same outputs",
                       size, outputs_phrase(w[0].wanted, a, sizeof a), r,
                       outputs_phrase(w[r].wanted, b, sizeof b));
    }
  return CLI_OK;
}

int cli_vp_agree(int rc, int own, unsigned wanted) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  vp_word mine;
  memset(&mine, 0, sizeof mine);
  mine.rc = rc;
  mine.own = own;
  mine.wanted = wanted;
  snprintf(mine.msg, sizeof mine.msg, "%s", cli_captured());
  cli_capture(0);
  vp_word *all = malloc((size_t)size * sizeof *all);
  if (!all) {
    /* It cannot join with the others: the job ends, as MPI's own errors
     * do. */
    cli_error("run", CLI_DATA_ERROR,
              "process %d of %d: no memory for the processes' agreement", rank,
              size);
    MPI_Abort(MPI_COMM_WORLD, CLI_DATA_ERROR);
  }
  const int mrc = MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all,
                                (int)sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
  const int out = mrc == MPI_SUCCESS
                      ? judge_words(all, size)
                      : cli_error("run", CLI_DATA_ERROR,
                                  "process %d of %d: the processes' "
                                  "agreement failed (MPI error %d)",
                                  rank, size, mrc);
  free(all);
  cli_capture(1);
  return out;
}

/* ---- gathering ---- */

static int gather(const void *mine, void *full, void *scratch, size_t rows,
                  size_t classes, size_t per, int *counts) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Datatype elem;
  MPI_Type_contiguous((int)per, MPI_BYTE, &elem);
  MPI_Type_commit(&elem);
  int *displs = counts + size;
  for (int r = 0; r < size; r++) {
    const clloss_shard s = clloss_mpi_even_shard(classes, r, size);
    counts[r] = (int)(rows * s.classes);
    displs[r] = (int)(rows * s.class_offset);
  }
  /* One row: the blocks side by side are already in class order. */
  unsigned char *blocks = rows > 1 ? scratch : full;
  const int rc = MPI_Gatherv(mine, counts[rank], elem, blocks, counts, displs,
                             elem, 0, MPI_COMM_WORLD);
  if (rc == MPI_SUCCESS && rank == 0 && rows > 1)
    for (int r = 0; r < size; r++) {
      const clloss_shard s = clloss_mpi_even_shard(classes, r, size);
      for (size_t i = 0; i < rows && s.classes; i++)
        memcpy((unsigned char *)full + (i * classes + s.class_offset) * per,
               blocks + ((size_t)displs[r] + i * s.classes) * per,
               s.classes * per);
    }
  MPI_Type_free(&elem);
  return rc;
}

/* ---- run cross_entropy --vocab-parallel ---- */

#define error(...) cli_error("run", CLI_DATA_ERROR, __VA_ARGS__)

static int is_index(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

/* The whole input's header, the class indices (all of them) or the
 * probabilities' header, and the weights: what the whole problem's check
 * needs; prepare reads this process's columns. */
static int ce_load(cli_job *j) {
  const char *const *in = j->a.in;
  char msg[512];
  if (npy_read_header(in[IN_X], &j->in[IN_X], msg, sizeof msg) != NPY_OK ||
      npy_read_header(in[IN_T], &j->in[IN_T], msg, sizeof msg) != NPY_OK ||
      (is_index(j->in[IN_T].dtype) &&
       npy_read(in[IN_T], &j->in[IN_T], msg, sizeof msg) != NPY_OK) ||
      (in[IN_W] && npy_read(in[IN_W], &j->in[IN_W], msg, sizeof msg) != NPY_OK))
    return error("%s", msg);
  j->have = 1u << IN_X | 1u << IN_T | (in[IN_W] ? 1u << IN_W : 0u);
  return CLI_OK;
}

/* This process's columns, its device's name in the summary, and the
 * gather's buffers: this block's gradient, and on process 0 the blocks
 * gathered and the gather's counts. Only process 0 writes the whole
 * gradient. */
static int ce_prepare(cli_job *j) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const size_t rows = j->lin.ce.rows, classes = j->lin.ce.classes;
  const char *const *in = j->a.in;
  char msg[512];
  if (rows > (size_t)INT_MAX / classes)
    return error("%zu x %zu is too large to gather in one MPI_Gatherv (2^31 "
                 "- 1 elements)",
                 rows, classes);
  j->shard = clloss_mpi_even_shard(classes, rank, size);
  const size_t c0 = j->shard.class_offset, cb = j->shard.classes;
  const int probs = !is_index(j->in[IN_T].dtype);
  npy_free(&j->in[IN_X]);
  if (probs)
    npy_free(&j->in[IN_T]);
  if (npy_read_columns(in[IN_X], c0, cb, &j->in[IN_X], msg, sizeof msg) !=
          NPY_OK ||
      (probs && npy_read_columns(in[IN_T], c0, cb, &j->in[IN_T], msg,
                                 sizeof msg) != NPY_OK))
    return error("%s", msg);
  snprintf(j->where, sizeof j->where,
           "%d processes (process 0: device %zu, %s)", size, j->index,
           clloss_context_device_info(j->ctx)->name);
  const size_t es = clloss_dtype_size(j->in[IN_X].dtype);
  const int root = rank == 0 && j->out[OUT_GRAD].path;
  if (rank != 0)
    j->out[OUT_GRAD].path = NULL;
  j->part[0] = calloc(rows * cb + 1, es);
  j->part[1] = root ? malloc(rows * classes * es + 1) : NULL;
  j->part[2] = malloc(2 * (size_t)size * sizeof(int));
  if (!j->part[0] || !j->part[2] || (root && !j->part[1]))
    return error("out of memory");
  return CLI_OK;
}

/* The call on every process (they agreed that each is ready); process 0
 * gathers the gradient. Each step ends in an agreement, so that a process
 * that fails stops every other. */
static int ce_run(cli_job *j) {
  const clloss_cross_entropy_desc *d = &j->lin.ce;
  const int grad = j->a.out[OUT_GRAD] != NULL;
  const size_t ls = clloss_dtype_size(j->out[OUT_LOSS].type);
  const void *w =
      j->weight ? (const char *)j->weight + j->shard.class_offset * ls : NULL;
  clloss_status s = clloss_mpi_cross_entropy_host(
      j->ctx, MPI_COMM_WORLD, d, &j->shard, j->in[IN_X].data, j->in[IN_T].data,
      w, NULL, j->out[OUT_LOSS].data, grad ? j->part[0] : NULL);
  int rc = CLI_OK;
  if (s != CLLOSS_SUCCESS) {
    const char *detail = clloss_context_error_detail(j->ctx);
    rc = error("cross_entropy failed: %s (%s)%s%s", clloss_status_string(s),
               clloss_status_name(s), *detail ? ": " : "", detail);
  }
  rc = cli_vp_agree(rc, s != CLLOSS_COLLECTIVE_FAILURE, 0);
  if (rc == CLI_OK && grad)
    rc = cli_vp_agree(gather(j->part[0], j->out[OUT_GRAD].data, j->part[1],
                             d->rows, d->classes,
                             clloss_dtype_size(d->input_type),
                             j->part[2]) == MPI_SUCCESS
                          ? CLI_OK
                          : error("gathering the gradient failed"),
                      1, 0);
  return rc;
}

const cli_shard cli_ce_shard = {ce_load, ce_prepare, ce_run};

/* ---- run linear_cross_entropy --vocab-parallel ---- */

/* Every process reads the whole files and computes with its rows of W
 * (an even split); process 0 gathers dW and db (d_hidden and the loss are
 * the whole problem's on every process). */
static clloss_status linear_call(cli_job *j) {
  const clloss_linear_cross_entropy_desc *d = &j->lin;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const size_t N = d->ce.rows, H = d->hidden, V = d->ce.classes;
  const size_t es = clloss_dtype_size(d->ce.input_type);
  const size_t ls = clloss_dtype_size(clloss_loss_dtype(d->ce.input_type));
  const clloss_shard sh = clloss_mpi_even_shard(V, rank, size);
  const size_t c0 = sh.class_offset, cb = sh.classes;
  const int probs = !is_index(d->ce.target_type);
  void *const DW = j->out[OUT_GW].data, *const DB = j->out[OUT_GB].data;
  unsigned char *tp = probs ? malloc(N * cb * es + 1) : NULL;
  unsigned char *dw = DW ? malloc(cb * H * es + 1) : NULL;
  unsigned char *db = DB ? malloc(cb * es + 1) : NULL;
  int *counts = malloc(2 * (size_t)size * sizeof *counts);
  clloss_status s = CLLOSS_SUCCESS;
  if ((probs && !tp) || (DW && !dw) || (DB && !db) || !counts)
    s = clloss_context_fail(j->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                            "no host memory for this process's shard");
  else if (V * H * es > (size_t)INT_MAX)
    s = clloss_context_fail(j->ctx, CLLOSS_INVALID_ARGUMENT,
                            "W is too large to gather in one MPI_Gatherv "
                            "(2^31 - 1 bytes)");
  const unsigned char *t = j->in[IN_T].data, *w = j->in[IN_LW].data;
  const unsigned char *b = j->in[IN_LB].data, *cw = j->weight;
  for (size_t i = 0; tp && i < N; i++)
    memcpy(tp + i * cb * es, t + (i * V + c0) * es, cb * es);
  /* A failure here is this process's own: the call still joins the
   * collectives (it fails on every process) when given NULL arguments. */
  const clloss_status call = clloss_mpi_linear_cross_entropy_host(
      j->ctx, MPI_COMM_WORLD, d, s == CLLOSS_SUCCESS ? &sh : NULL,
      j->in[IN_X].data, w + c0 * H * es, b ? b + c0 * es : NULL, probs ? tp : t,
      cw ? cw + c0 * ls : NULL, NULL, j->out[OUT_LOSS].data,
      j->out[OUT_GRAD].data, dw, db);
  if (s == CLLOSS_SUCCESS)
    s = call;
  /* Whether every process succeeded, so that all gather or none does. */
  if (cli_mpi_anyone(s != CLLOSS_SUCCESS) && s == CLLOSS_SUCCESS)
    s = clloss_context_fail(j->ctx, CLLOSS_COLLECTIVE_FAILURE,
                            "another process failed at the end of the call");
  if (s == CLLOSS_SUCCESS &&
      ((dw && gather(dw, DW, NULL, 1, V, H * es, counts) != MPI_SUCCESS) ||
       (db && gather(db, DB, NULL, 1, V, es, counts) != MPI_SUCCESS)))
    s = clloss_context_fail(j->ctx, CLLOSS_COLLECTIVE_FAILURE,
                            "gathering dW or db to process 0 failed");
  free(tp);
  free(dw);
  free(db);
  free(counts);
  return s;
}

static int linear_run(cli_job *j) {
  const clloss_status s = linear_call(j);
  return cli_vp_agree(s == CLLOSS_SUCCESS ? CLI_OK : cli_job_failed(j, s),
                      s != CLLOSS_COLLECTIVE_FAILURE, 0);
}

const cli_shard cli_linear_shard = {NULL, NULL, linear_run};

#endif
