/* cli_linear_vocab_parallel.c - `clloss run linear_cross_entropy
 * --vocab-parallel` under mpirun: every process reads the whole files and
 * computes with its rows of W (an even split) through the MPI layer
 * (clloss_mpi_linear_cross_entropy_host); process 0 gathers dW and db and
 * writes the outputs (d_hidden and the loss are the whole problem's on
 * every process), so that they compare with a single-device run's. Built
 * only with the MPI layer. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mpi.h"
#include "cli_run.h"

/* Whether every process succeeded (s), so that all gather or none does;
 * this process's s, or a failure naming the others. */
static clloss_status all_succeeded(clloss_context *ctx, clloss_status s) {
  int bad = s != CLLOSS_SUCCESS, any = 1;
  if (MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) !=
      MPI_SUCCESS)
    return clloss_context_fail(ctx, CLLOSS_COLLECTIVE_FAILURE,
                               "MPI_Allreduce of the outcome failed");
  if (s == CLLOSS_SUCCESS && any)
    return clloss_context_fail(ctx, CLLOSS_COLLECTIVE_FAILURE,
                               "another process failed at the end of the "
                               "call");
  return s;
}

clloss_status cli_linear_vocab_parallel(const cli_linear_call *c, int *writer) {
  const clloss_linear_cross_entropy_desc *d = c->desc;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  *writer = rank == 0;
  const size_t N = d->ce.rows, H = d->hidden, V = d->ce.classes;
  const size_t es = clloss_dtype_size(d->ce.input_type);
  const size_t ls = clloss_dtype_size(clloss_loss_dtype(d->ce.input_type));
  const clloss_shard sh = clloss_mpi_even_shard(V, rank, size);
  const size_t c0 = sh.class_offset, cb = sh.classes;
  const int probs =
      d->ce.target_type != CLLOSS_INT32 && d->ce.target_type != CLLOSS_INT64;
  unsigned char *tp = probs ? malloc(N * cb * es + 1) : NULL;
  unsigned char *dw = c->dw ? malloc(cb * H * es + 1) : NULL;
  unsigned char *db = c->db ? malloc(cb * es + 1) : NULL;
  int *counts = malloc(2 * (size_t)size * sizeof *counts);
  clloss_status s = CLLOSS_SUCCESS;
  if ((probs && !tp) || (c->dw && !dw) || (c->db && !db) || !counts)
    s = clloss_context_fail(c->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                            "no host memory for this process's shard");
  else if (V * H * es > (size_t)INT_MAX)
    s = clloss_context_fail(c->ctx, CLLOSS_INVALID_ARGUMENT,
                            "W is too large to gather in one MPI_Gatherv "
                            "(2^31 - 1 bytes)");
  for (size_t i = 0; tp && i < N; i++)
    memcpy(tp + i * cb * es,
           (const unsigned char *)c->target + (i * V + c0) * es, cb * es);
  const unsigned char *w = c->w, *b = c->b, *cw = c->cw;
  /* A failure here is this process's own: the call still joins the
   * collectives (it fails on every process) when given NULL arguments. */
  const clloss_status call = clloss_mpi_linear_cross_entropy_host(
      c->ctx, MPI_COMM_WORLD, d, s == CLLOSS_SUCCESS ? &sh : NULL, c->x,
      w + c0 * H * es, b ? b + c0 * es : NULL, probs ? tp : c->target,
      cw ? cw + c0 * ls : NULL, NULL, c->loss, c->dx, dw, db);
  if (s == CLLOSS_SUCCESS)
    s = call;
  s = all_succeeded(c->ctx, s);
  if (s == CLLOSS_SUCCESS &&
      ((dw &&
        cli_mpi_gather(dw, c->dw, NULL, 1, V, H * es, counts) != MPI_SUCCESS) ||
       (db &&
        cli_mpi_gather(db, c->db, NULL, 1, V, es, counts) != MPI_SUCCESS)))
    s = clloss_context_fail(c->ctx, CLLOSS_COLLECTIVE_FAILURE,
                            "gathering dW or db to process 0 failed");
  free(tp);
  free(dw);
  free(db);
  free(counts);
  return s;
}
