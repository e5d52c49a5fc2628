/* clloss_mpi_internal.h - what the MPI layer's files share; not API. */
#ifndef CLLOSS_MPI_INTERNAL_H
#define CLLOSS_MPI_INTERNAL_H

#include <stdint.h>

#include "clloss_mpi.h"

/* Evaluates a clloss_status expression; returns it from the caller when it
 * is not CLLOSS_SUCCESS. */
#define CLLOSS_MPI_TRY(expr)                                                   \
  do {                                                                         \
    clloss_status s_ = (expr);                                                 \
    if (s_ != CLLOSS_SUCCESS)                                                  \
      return s_;                                                               \
  } while (0)

/* a * b * c, or SIZE_MAX with *over set when it passes SIZE_MAX. */
static inline size_t clloss__mpi_mul3(int *over, size_t a, size_t b, size_t c) {
  size_t ab, abc;
  if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc))
    return *over = 1, SIZE_MAX;
  return abc;
}

/* Failures (clloss_mpi_fail.c): clloss_context_fail with a formatted
 * sentence, and MPI's error code as a status, its message in the detail. */
clloss_status clloss__mpi_failf(clloss_context *ctx, clloss_status status,
                                const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
clloss_status clloss__mpi_error(clloss_context *ctx, const char *call,
                                int code);

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

/* MPI initialised and comm not null. */
clloss_status clloss__mpi_check_comm(clloss_context *ctx, MPI_Comm comm);
/* A device buffer of `bytes` (at least 1) on ctx. */
clloss_status clloss__mpi_buffer(clloss_context *ctx, size_t bytes,
                                 cl_mem *out);
/* One MPI_Allreduce of `rows` records (clloss_ce_stats, or _stats64 for
 * f64; NULL: empty ones) with the records' operator, in place, and a
 * control record counting the failed processes: CLLOSS_COLLECTIVE_FAILURE
 * when any failed. scratch holds rows + 1 records (made beforehand, so
 * that no allocation can keep this process from joining). */
clloss_status clloss__mpi_records_allreduce(clloss_context *ctx, MPI_Comm comm,
                                            int f64, void *data, size_t rows,
                                            int failed, void *scratch);
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

/* ---- The agreement (clloss_mpi_agree.c) ---- */

/* The values every process of a call must pass alike. */
enum {
  AG_KIND, /* which call: AG_CROSS_ENTROPY or AG_LINEAR */
  AG_ROWS,
  AG_CLASSES,
  AG_HIDDEN,
  AG_INPUT_TYPE,
  AG_TARGET_TYPE,
  AG_REDUCTION,
  AG_IGNORE_INDEX,
  AG_LABEL_SMOOTHING, /* the five float options, as their bits */
  AG_Z_LOSS,
  AG_SOFTCAP,
  AG_NORMALIZER,
  AG_GRAD_SCALE,
  AG_OUTPUTS, /* linear: bits loss, grad_input, grad_linear_weight, _bias */
  AG_TARGETS, /* class-index targets: clloss__mpi_checksum */
  AG_FIELDS
};
enum { AG_CROSS_ENTROPY = 1, AG_LINEAR = 2 };

/* One process's terms of the agreement. */
typedef struct clloss__mpi_terms {
  uint64_t v[AG_FIELDS]; /* the same on every process */
  uint64_t chunk;        /* this process's chunk of rows; after the
                            agreement the smallest of all processes' */
  uint64_t shard_offset, shard_classes; /* must tile [0, classes) */
} clloss__mpi_terms;

/* The terms of a cross_entropy descriptor (d may be NULL: zeros) for the
 * call `kind`; the rest zero. */
void clloss__mpi_terms_ce(clloss__mpi_terms *t, int kind,
                          const clloss_cross_entropy_desc *d);

/* The agreement: ONE MPI_Allreduce of a fixed-size record. `own` is this
 * process's status so far (its detail in ctx, which may be NULL). Every
 * process gets the same verdict: when any failed, that process its own
 * status and the others CLLOSS_COLLECTIVE_FAILURE naming the lowest failed
 * process, its status and detail; when the terms differ or the shards do
 * not tile [0, classes), CLLOSS_INVALID_ARGUMENT with the same sentence.
 * On success t->chunk is the smallest chunk. */
clloss_status clloss__mpi_agree(clloss_context *ctx, MPI_Comm comm,
                                clloss__mpi_terms *t, clloss_status own);

/* A checksum of N class indices (int32 or int64): one pass. */
uint64_t clloss__mpi_checksum(clloss_dtype type, const void *target,
                              size_t rows);
/* The same of class-index targets on the device, read after wait_list
 * (0 for probability targets or no buffer). */
clloss_status
clloss__mpi_target_checksum(clloss_context *ctx, cl_command_queue queue,
                            clloss_dtype type, clloss_buffer target,
                            size_t rows, cl_uint num_events,
                            const cl_event *wait_list, uint64_t *sum);

#endif
