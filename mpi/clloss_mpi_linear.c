/* clloss_mpi_linear.c - vocabulary-parallel linear_cross_entropy over MPI:
 * clloss_linear_cross_entropy_shard with an exchange that all-reduces (the
 * mean's weight sum, then each chunk's records with the records'
 * operator), then one MPI_Allreduce of the shards' parts of d_hidden. See
 * clloss_mpi.h. */
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clloss_mpi_internal.h"
#include "reference.h" /* element loads and stores (header only) */

/* The collectives of one call, in order: the weight sum (position 0), one
 * per chunk of rows (1..chunks), the d_hidden sum (chunks + 1). Each
 * carries a count of the processes that failed, so that a process that
 * fails joins the next collective as failed and every process stops after
 * it. */
typedef struct lin_call {
  clloss_context *ctx;
  MPI_Comm comm;
  int f64;                /* float64: records and reals of doubles */
  size_t rows, chunk;     /* N, rows per chunk */
  size_t hidden;          /* H */
  size_t own;             /* this shard's classes */
  int want_dx;            /* d_hidden is summed in the last collective */
  int made;               /* collectives made so far */
  int seen;               /* one of them reported a failure */
  unsigned char *scratch; /* chunk + 1 records, made after the agreement */
} lin_call;

static size_t chunks_of(const lin_call *c) {
  return c->chunk ? (c->rows + c->chunk - 1) / c->chunk : 0;
}

static clloss_status mpi_error(lin_call *c, int rc) {
  return clloss__mpi_error(c->ctx, "MPI_Allreduce", rc);
}

/* Position 0: value (a real) summed, with {failed, classes}: the shards
 * were checked by the agreement, the classes' sum is only carried. */
static clloss_status sum_collective(lin_call *c, void *value, int failed) {
  double v[3] = {0, failed, (double)c->own};
  if (value)
    v[0] = c->f64 ? *(double *)value : *(float *)value;
  int rc = MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_DOUBLE, MPI_SUM, c->comm);
  c->made++;
  if (rc != MPI_SUCCESS)
    return c->seen = 1, mpi_error(c, rc);
  if (value) {
    if (c->f64)
      *(double *)value = v[0];
    else
      *(float *)value = (float)v[0];
  }
  if (v[1] > 0) {
    c->seen = 1;
    return failed ? CLLOSS_COLLECTIVE_FAILURE
                  : clloss__mpi_failf(c->ctx, CLLOSS_COLLECTIVE_FAILURE,
                                      "%.0f processes failed before the "
                                      "exchanges (this one did not): see "
                                      "their status",
                                      v[1]);
  }
  return CLLOSS_SUCCESS;
}

/* Positions 1..chunks: `rows` records (NULL: empty ones) and a control
 * record whose target_weight counts the failed processes. */
static clloss_status records_collective(lin_call *c, void *records, size_t rows,
                                        int failed) {
  clloss_status s = clloss__mpi_records_allreduce(
      c->ctx, c->comm, c->f64, records, rows, failed, c->scratch);
  c->made++;
  if (s != CLLOSS_SUCCESS)
    c->seen = 1;
  return s;
}

/* The last position: the failures (one int), then, when none, d_hidden
 * (N H reals, `dx`) summed; a process that failed needs no memory for
 * it. */
static clloss_status dx_collective(lin_call *c, void *dx, int failed) {
  int fails = failed;
  int rc = MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, c->comm);
  c->made++;
  if (rc != MPI_SUCCESS)
    return c->seen = 1, mpi_error(c, rc);
  if (fails > 0) {
    c->seen = 1;
    return failed ? CLLOSS_COLLECTIVE_FAILURE
                  : clloss__mpi_failf(c->ctx, CLLOSS_COLLECTIVE_FAILURE,
                                      "%d processes failed (this one did "
                                      "not): see their status",
                                      fails);
  }
  const size_t n = c->want_dx ? c->rows * c->hidden : 0;
  if (n == 0)
    return CLLOSS_SUCCESS;
  rc = n > (size_t)INT_MAX
           ? MPI_ERR_COUNT
           : MPI_Allreduce(MPI_IN_PLACE, dx, (int)n,
                           c->f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, c->comm);
  return rc == MPI_SUCCESS ? CLLOSS_SUCCESS : mpi_error(c, rc);
}

/* The core's exchange: kind and count say which position it is. */
static clloss_status exchange(void *user, clloss_exchange_kind kind, void *data,
                              size_t count) {
  lin_call *c = user;
  if (kind == CLLOSS_EXCHANGE_SUM)
    return sum_collective(c, data, 0);
  return records_collective(c, data, count, 0);
}

/* After this process failed on its own (`made` collectives done, none
 * reporting a failure): the next collective, as failed, so that every
 * process stops after it. */
static void join_failed(lin_call *c) {
  if (c->seen)
    return;
  const size_t k = (size_t)c->made, chunks = chunks_of(c);
  if (k == 0)
    sum_collective(c, NULL, 1);
  else if (k <= chunks)
    records_collective(
        c, NULL, k < chunks ? c->chunk : c->rows - (chunks - 1) * c->chunk, 1);
  else
    dx_collective(c, NULL, 1);
}

/* d_hidden: this shard's part (in `part`, after `done`) summed over the
 * processes, plus grad_input's own values when accumulating, into
 * grad_input. */
static clloss_status sum_dx(lin_call *c, cl_command_queue q, clloss_dtype t,
                            cl_mem part, clloss_buffer dx, int accumulate,
                            cl_event done) {
  const size_t n = c->want_dx ? c->rows * c->hidden : 0;
  const size_t es = clloss_dtype_size(t), rs = c->f64 ? 8 : 4;
  unsigned char *st = malloc(n * es + 1), *sum = malloc((n + 1) * rs);
  clloss_status s = CLLOSS_SUCCESS;
  if (!st || !sum) {
    s = clloss__mpi_failf(c->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                          "no host memory for d_hidden");
  } else if (n) {
    cl_int err = clEnqueueReadBuffer(
        q, part, CL_TRUE, part == dx.mem ? dx.offset * es : 0, n * es, st,
        done ? 1 : 0, done ? &done : NULL, NULL);
    if (err != CL_SUCCESS)
      s = clloss__mpi_failf(c->ctx, (clloss_status)err,
                            "reading d_hidden failed (OpenCL error %d)",
                            (int)err);
  }
  if (s != CLLOSS_SUCCESS) {
    free(st);
    free(sum);
    join_failed(c);
    return s;
  }
  for (size_t i = 0; i < n; i++)
    clloss__ref_store(sum, c->f64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32, i,
                      clloss__ref_load(st, t, i));
  s = dx_collective(c, sum, 0);
  cl_int err = CL_SUCCESS;
  if (s == CLLOSS_SUCCESS && n && accumulate)
    err = clEnqueueReadBuffer(q, dx.mem, CL_TRUE, dx.offset * es, n * es, st, 0,
                              NULL, NULL);
  if (s == CLLOSS_SUCCESS && n && err == CL_SUCCESS) {
    const clloss_dtype rt = c->f64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
    for (size_t i = 0; i < n; i++)
      clloss__ref_store(st, t, i,
                        clloss__ref_load(sum, rt, i) +
                            (accumulate ? clloss__ref_load(st, t, i) : 0.0));
    err = clEnqueueWriteBuffer(q, dx.mem, CL_TRUE, dx.offset * es, n * es, st,
                               0, NULL, NULL);
  }
  if (err != CL_SUCCESS)
    s = clloss__mpi_failf(c->ctx, (clloss_status)err,
                          "writing d_hidden failed (OpenCL error %d)",
                          (int)err);
  free(st);
  free(sum);
  return s;
}

/* The outputs given that the collectives depend on, in the agreement's
 * terms: grad_input (its sum over the processes is one). The loss, dW and
 * db are each process's own (an empty shard has no dW). */
static uint64_t outputs_given(const clloss_buffer out[4]) {
  return out[1].mem ? 2 : 0;
}

/* This process's own failures before the agreement (the descriptor, the
 * shard, its chunk of rows, the targets' checksum), into t. */
static clloss_status prepare(clloss_context *ctx, cl_command_queue queue,
                             const clloss_linear_cross_entropy_desc *desc,
                             clloss_linear_cross_entropy_desc *d,
                             const clloss_shard *shard, clloss_buffer target,
                             cl_uint num_events, const cl_event *wait_list,
                             clloss__mpi_terms *t) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  const size_t first = offsetof(clloss_linear_cross_entropy_desc, ce) +
                       offsetof(clloss_cross_entropy_desc, padding) +
                       sizeof(clloss_padding);
  if (!desc || desc->struct_size < first)
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                             "desc is NULL or not initialised with "
                             "CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT");
  /* A copy with the fields of an older, smaller descriptor at their
   * defaults, as the core reads it. */
  memcpy(d, desc,
         desc->struct_size < sizeof *d ? desc->struct_size : sizeof *d);
  d->struct_size = sizeof *d;
  clloss__mpi_terms_ce(t, AG_LINEAR, &d->ce);
  t->v[AG_HIDDEN] = d->hidden;
  if (!shard)
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT, "shard is NULL");
  /* This process's chunk of the whole problem (the agreement takes the
   * smallest): chunk_rows, or the automatic one, which depends on the
   * device and workspace_limit. Only the chunk is asked for: no sizing
   * pass. */
  size_t chunk = d->chunk_rows;
  if (!chunk && d->ce.rows)
    CLLOSS_MPI_TRY(clloss_linear_cross_entropy_workspace_size(ctx, d, 1, 1, 1,
                                                              NULL, &chunk));
  t->chunk = chunk < d->ce.rows ? chunk : d->ce.rows;
  return clloss__mpi_target_checksum(ctx, queue, d->ce.target_type, target,
                                     d->ce.rows, num_events, wait_list,
                                     &t->v[AG_TARGETS]);
}

clloss_status clloss__mpi_linear_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    const clloss_buffer in[6], const clloss_buffer out[4], cl_uint num_events,
    const cl_event *wait_list, cl_event *event, clloss_status own) {
  if (event)
    *event = NULL;
  /* Without MPI or a communicator this process cannot join; every other
   * failure joins the agreement, whose size is fixed. */
  CLLOSS_MPI_TRY(clloss__mpi_check_comm(ctx, comm));
  if (!queue && ctx)
    queue = clloss_context_queue(ctx);
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  clloss__mpi_terms t;
  clloss__mpi_terms_ce(&t, AG_LINEAR, NULL);
  if (own == CLLOSS_SUCCESS)
    own =
        prepare(ctx, queue, desc, &d, shard, in[3], num_events, wait_list, &t);
  t.v[AG_OUTPUTS] = outputs_given(out);
  t.shard_offset = shard ? shard->class_offset : 0;
  t.shard_classes = shard ? shard->classes : 0;
  CLLOSS_MPI_TRY(clloss__mpi_agree(ctx, comm, &t, own));
  /* From here on the rows, the chunk, the types and the outputs are the
   * same on every process, and with them every collective's size; a
   * failure joins the next collective as failed. */
  d.chunk_rows = (size_t)t.chunk;
  lin_call c;
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.comm = comm;
  c.f64 = d.ce.input_type == CLLOSS_FLOAT64;
  c.rows = d.ce.rows;
  c.hidden = d.hidden;
  c.own = shard->classes;
  c.want_dx = out[1].mem != NULL;
  c.chunk = d.chunk_rows;
  /* The core writes its loss (always asked for: an empty shard's only
   * output) and its part of d_hidden; d_hidden is summed here, added to
   * grad_input's values when accumulating. */
  const size_t lsize = c.f64 ? 8 : 4;
  const size_t lcount = d.ce.reduction == CLLOSS_REDUCTION_NONE ? c.rows : 1;
  const size_t es = clloss_dtype_size(d.ce.input_type);
  const int accumulate = d.ce.accumulate;
  cl_mem loss_tmp = NULL, dx_tmp = NULL;
  clloss_buffer loss = out[0], dx = out[1];
  if (!loss.mem)
    own = clloss__mpi_buffer(ctx, lcount * lsize, &loss_tmp);
  if (loss_tmp)
    loss = (clloss_buffer){loss_tmp, 0};
  if (own == CLLOSS_SUCCESS && dx.mem && accumulate)
    own = clloss__mpi_buffer(ctx, c.rows * c.hidden * es, &dx_tmp);
  if (dx_tmp)
    dx = (clloss_buffer){dx_tmp, 0};
  d.ce.accumulate = 0;
  /* The records' host memory for every chunk, before the first exchange:
   * a process without it fails at the first collective. */
  const size_t rs = c.f64 ? sizeof(clloss_ce_stats64) : sizeof(clloss_ce_stats);
  if (own == CLLOSS_SUCCESS &&
      !(c.scratch = malloc(((c.chunk ? c.chunk : 1) + 1) * rs)))
    own = clloss__mpi_failf(ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                            "no host memory for %zu records", c.chunk + 1);
  cl_event done = NULL;
  const clloss_linear_exchange ex = {exchange, &c};
  if (own == CLLOSS_SUCCESS)
    own = clloss_linear_cross_entropy_shard(
        ctx, queue, &d, shard, &ex, in[0], in[1], in[2], in[3], in[4], in[5],
        loss, dx, out[2], out[3], num_events, wait_list, &done);
  clloss_status s = own;
  if (s == CLLOSS_SUCCESS)
    s = sum_dx(&c, queue, d.ce.input_type, dx.mem, out[1], accumulate, done);
  else
    join_failed(&c);
  if (s == CLLOSS_SUCCESS && event) {
    cl_int err = clEnqueueMarkerWithWaitList(queue, done ? 1 : 0,
                                             done ? &done : NULL, event);
    if (err != CL_SUCCESS)
      s = clloss__mpi_failf(ctx, (clloss_status)err,
                            "enqueueing the marker failed");
  }
  if (done)
    clReleaseEvent(done);
  if (loss_tmp)
    clReleaseMemObject(loss_tmp);
  if (dx_tmp)
    clReleaseMemObject(dx_tmp);
  free(c.scratch);
  return s;
}

clloss_status clloss_mpi_linear_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer linear_weight, clloss_buffer linear_bias,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input,
    clloss_buffer grad_linear_weight, clloss_buffer grad_linear_bias,
    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
  const clloss_buffer in[6] = {input,  linear_weight, linear_bias,
                               target, weight,        grad_output};
  const clloss_buffer out[4] = {loss, grad_input, grad_linear_weight,
                                grad_linear_bias};
  return clloss__mpi_linear_cross_entropy(ctx, comm, queue, desc, shard, in,
                                          out, num_events, wait_list, event,
                                          CLLOSS_SUCCESS);
}
