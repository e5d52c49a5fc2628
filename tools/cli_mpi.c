/* cli_mpi.c - what the --vocab-parallel commands share: MPI set-up and
 * teardown, the processes' agreement, the benchmarks' timed runs, and the
 * gathering of the class shards to process 0 (cli_mpi.h). Without the MPI
 * layer, the one stub: every --vocab-parallel entry point says so. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_bench.h"
#include "cli_mpi.h"
#include "cli_run.h"

#ifndef CLLOSS_CLI_HAVE_MPI

int cli_run_vocab_parallel(const run_args *a, const cli_loss_info *loss) {
  (void)a;
  (void)loss;
  return cli_no_mpi("run");
}

int cli_mpi_begin(const char *cmd, int *rank, int *size) {
  *rank = 0;
  *size = 1;
  return cli_no_mpi(cmd);
}

void cli_mpi_end(void) {}

clloss_status cli_linear_vocab_parallel(const cli_linear_call *c, int *writer) {
  (void)c;
  *writer = 1;
  return CLLOSS_UNSUPPORTED;
}

int cli_bench_vocab_parallel(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_no_mpi("bench");
}

int cli_bench_linear_vocab_parallel(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_no_mpi("bench");
}

int cli_vp_agree(int rc, int own, unsigned wanted) {
  (void)own;
  (void)wanted;
  return rc;
}

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

/* ---- timed runs ---- */

/* Waits for a nonblocking collective while sleeping, not spinning as
 * MPI's blocking calls do: processes that share one device (a CPU
 * device, here) must not take its cores while another times a call. */
static void wait_asleep(MPI_Request *req) {
  int done = 0;
  const struct timespec nap = {0, 200000};
  while (MPI_Test(req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done)
    nanosleep(&nap, NULL);
}

int cli_mpi_timed(int repeat, int warmup, cli_mpi_fn fn, void *state,
                  int everyone, double *median) {
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

/* ---- gathering ---- */

int cli_mpi_gather(const void *mine, void *full, void *scratch, size_t rows,
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

#endif
