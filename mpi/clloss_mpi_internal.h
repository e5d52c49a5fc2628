/* clloss_mpi_internal.h - what the MPI layer's files share; not API. */
#ifndef CLLOSS_MPI_INTERNAL_H
#define CLLOSS_MPI_INTERNAL_H

#include "clloss_mpi.h"

/* Evaluates a clloss_status expression; returns it from the caller when it
 * is not CLLOSS_SUCCESS. */
#define CLLOSS_MPI_TRY(expr)                                                   \
  do {                                                                         \
    clloss_status s_ = (expr);                                                 \
    if (s_ != CLLOSS_SUCCESS)                                                  \
      return s_;                                                               \
  } while (0)

/* clloss_context_fail with a formatted sentence. */
clloss_status clloss__mpi_failf(clloss_context *ctx, clloss_status status,
                                const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* clloss_mpi_cross_entropy for a process that may already have failed:
 * `own` not CLLOSS_SUCCESS (its detail already in ctx) joins the
 * all-reduce as a failed process and returns `own`. */
clloss_status clloss__mpi_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer grad_output, clloss_buffer loss, clloss_buffer grad_input,
    cl_uint num_events, const cl_event *wait_list, cl_event *event,
    clloss_status own);

/* MPI's error code as a status, its message in the detail. */
clloss_status clloss__mpi_error(clloss_context *ctx, const char *call,
                                int code);
/* MPI initialised and comm not null. */
clloss_status clloss__mpi_check_comm(clloss_context *ctx, MPI_Comm comm);
/* A device buffer of `bytes` (at least 1) on ctx. */
clloss_status clloss__mpi_buffer(clloss_context *ctx, size_t bytes,
                                 cl_mem *out);
/* One MPI_Allreduce of `rows` records (clloss_ce_stats, or _stats64 for
 * f64; NULL: empty ones) with the records' operator, in place, and a
 * control record counting the failed processes: CLLOSS_COLLECTIVE_FAILURE
 * when any failed. */
clloss_status clloss__mpi_records_allreduce(clloss_context *ctx, MPI_Comm comm,
                                            int f64, void *data, size_t rows,
                                            int failed);
/* A class index outside [0, V) that is not ignore_index:
 * CLLOSS_INVALID_TARGET with its row. */
clloss_status clloss__mpi_check_targets(clloss_context *ctx,
                                        const clloss_cross_entropy_desc *d,
                                        const void *target);

/* clloss_mpi_linear_cross_entropy with its inputs (input, linear_weight,
 * linear_bias, target, weight, grad_output) and outputs (loss, grad_input,
 * grad_linear_weight, grad_linear_bias) as arrays, for a process that may
 * already have failed (`own`, as above). */
clloss_status clloss__mpi_linear_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    const clloss_buffer in[6], const clloss_buffer out[4], cl_uint num_events,
    const cl_event *wait_list, cl_event *event, clloss_status own);

#endif
