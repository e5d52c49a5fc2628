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

#endif
