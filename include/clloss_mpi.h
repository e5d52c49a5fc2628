/* clloss_mpi.h - the MPI layer of clloss: cross_entropy over a vocabulary
 * split across processes (vocabulary parallelism), in one MPI_Allreduce;
 * linear_cross_entropy with W's rows split, one per chunk of rows and one
 * for d_hidden.
 *
 * A second public header, only for the MPI layer: the library clloss_mpi
 * (CMake target clloss::clloss_mpi, built when CMake finds MPI) on top of
 * clloss. The core library and clloss.h stay free of MPI; users of another
 * transport (NCCL, their own) call clloss.h's shard statistics
 * (clloss_cross_entropy_partial, clloss_ce_stats_combine,
 * clloss_cross_entropy_finish) directly, as this layer does.
 *
 * The vocabulary-parallel layout
 * ------------------------------
 * P processes of a communicator each hold a block of the V classes, the
 * shard [class_offset, class_offset + classes), of every row: logits
 * [N, classes], its slice of the class weights, its slice of probability
 * targets; class-index targets [N] are global indices, the same on every
 * process. The shards of the processes tile [0, V): every class in exactly
 * one (any order of ranks; a shard may be empty, classes = 0). Each
 * process computes its block's per-row statistics (clloss.h, "shard
 * statistics"), and after the agreement (below) ONE MPI_Allreduce of N + 1
 * records (24 bytes each; 48 for float64 input) with a user-defined,
 * commutative operator combines them,
 * and each process finishes its own block's gradient and the loss from
 * the combined records.
 *
 * The loss is that of clloss_cross_entropy on the whole [N, V] problem, up
 * to rounding, and the same on every process (bit for bit where the
 * processes run the same kind of device and driver: the combined records
 * are identical everywhere, the operator being commutative bit for bit);
 * each process's gradient is its block's columns of the whole gradient.
 * Every option of the descriptor applies, as for the shard statistics.
 *
 * Collective calls
 * ----------------
 * Every process of `comm` makes the call. Its first collective is the
 * agreement: ONE MPI_Allreduce of a fixed-size record (about 1 KB, the
 * same size whatever the arguments, with its own reduction operator) that
 * carries what the processes must pass alike and what each found on its
 * own. What every process must pass alike (checked; a difference is
 * CLLOSS_INVALID_ARGUMENT on every process, with the same detail naming
 * the value and two processes that differ):
 *   - the call (cross_entropy or linear_cross_entropy);
 *   - the descriptor's rows, classes (V), input_type, target_type,
 *     reduction, ignore_index, label_smoothing, z_loss, softcap,
 *     normalizer, grad_scale; linear_cross_entropy's hidden;
 *   - class-index targets: the same N values (a checksum of them, one pass
 *     over N integers; device targets are read to the host for it);
 *   - linear_cross_entropy: grad_input given on all processes or on none;
 *   - shards that tile [0, V): every class in exactly one shard (checked
 *     by the count, the span and the sum of the class indices held).
 * Free to differ: row_stride, padding and accumulate (each process's own
 * block), the class weights, grad_output, loss, grad_input of
 * cross_entropy, dW and db (each its own), chunk_rows, vocab_block and
 * workspace_limit of linear_cross_entropy: the agreement takes the
 * smallest chunk of rows any process chose (its chunk_rows, or the
 * automatic one, which depends on the device type and workspace_limit),
 * so no collective's size depends on one process's choice. Not checked
 * (each process's results are then wrong, not its memory): the values of
 * linear_cross_entropy's input X and of grad_output, which must be the
 * same on every process.
 *
 * A process whose own checks, reading or allocation fail joins the
 * agreement as failed: that process returns its own status, the others
 * CLLOSS_COLLECTIVE_FAILURE, with a detail naming the lowest failed
 * process, its status and its detail. This holds for a NULL context, a
 * NULL or uninitialised descriptor, a NULL shard and host memory that
 * cannot be had. Only a process that cannot reach the communicator
 * returns at once without joining: MPI not initialised (or finalised),
 * comm MPI_COMM_NULL, or the agreement's MPI datatype or operator not
 * created; the others then wait, as for any collective call that one
 * process skips (a communicator that is not one is MPI's undefined
 * behaviour). Failures after the agreement (a device error during the
 * partial statistics, an output buffer too small) reach every process
 * through the next collective, which carries a count of failed processes;
 * one after the last collective (the finish's enqueue, d_hidden's copy
 * back to the device) is that process's alone, and its caller must tell
 * the others before any further collective that depends on it (the CLI
 * does: one MPI_Allgather of each process's outcome).
 * An MPI error is CLLOSS_COLLECTIVE_FAILURE with MPI's message in the
 * detail, if the communicator's error handler returns (MPI's default,
 * MPI_ERRORS_ARE_FATAL, aborts the job instead). The detail sentence of a
 * failure is clloss_context_error_detail(ctx), as for clloss's calls.
 *
 * Unlike clloss's device-buffer calls, these wait on the host: for
 * class-index targets (read to host memory after wait_list, for the
 * agreement's checksum), for the agreement, for the
 * partial statistics (read to host memory), for the all-reduce, and for
 * the combined records' copy back to the device; then the finish is
 * enqueued and the call returns without waiting for it.
 *
 * Threads: as clloss.h for the context; MPI's own rules for the
 * communicator (one collective at a time on a communicator, in the same
 * order on every process).
 */
#ifndef CLLOSS_MPI_H
#define CLLOSS_MPI_H

#include <mpi.h>

#include "clloss.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CLLOSS_MPI_API __attribute__((visibility("default")))
#else
#define CLLOSS_MPI_API
#endif

/* The even split of `classes` over `size` processes: process `rank` gets
 * classes / size classes, one more for the first classes % size ranks,
 * blocks in rank order. Some are empty when size > classes. */
CLLOSS_MPI_API clloss_shard clloss_mpi_even_shard(size_t classes, int rank,
                                                  int size);

/* The MPI datatype of one statistics record (6 floats: clloss_ce_stats;
 * 6 doubles: clloss_ce_stats64 for float64 input) and the commutative
 * reduction operator over it (clloss_ce_stats_combine), for callers that
 * run their own collective (MPI_Iallreduce overlapping other work, say).
 * The caller frees both (MPI_Type_free, MPI_Op_free). A non-float
 * input_type is CLLOSS_INVALID_ARGUMENT; a failed MPI call
 * CLLOSS_COLLECTIVE_FAILURE. */
CLLOSS_MPI_API clloss_status clloss_mpi_ce_stats_type(clloss_dtype input_type,
                                                      MPI_Datatype *type,
                                                      MPI_Op *op);

/* cross_entropy of the whole [N, V] problem, this process holding `shard`
 * (classes = 0: none): on device buffers of ctx, as
 * clloss_cross_entropy_partial / _finish take them: input [N, shard
 * classes] (rows desc->row_stride apart; 0: the block's width), target
 * (global class indices [N], or the block's probabilities [N, shard
 * classes]), weight (the block's [shard classes], optional), grad_output
 * (as clloss_cross_entropy), loss (the whole problem's: 1 value, or N for
 * reduction none), grad_input (the block's gradient, may be the input).
 * Either output may be omitted, not both; a process with an empty shard
 * writes only the loss. `*event` (may be NULL) completes with the finish;
 * the caller releases it. */
CLLOSS_MPI_API clloss_status clloss_mpi_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer grad_output, clloss_buffer loss, clloss_buffer grad_input,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* The same on host arrays (through device buffers made for the call, on
 * the context's own queue); returns when the results are in host memory.
 * Class-index targets outside [0, V) that are not ignore_index give
 * CLLOSS_INVALID_TARGET on the processes that have them, and
 * CLLOSS_COLLECTIVE_FAILURE on the others, before any output is touched
 * (the targets being the same everywhere, that is every process). */
CLLOSS_MPI_API clloss_status clloss_mpi_cross_entropy_host(
    clloss_context *ctx, MPI_Comm comm, const clloss_cross_entropy_desc *desc,
    const clloss_shard *shard, const void *input, const void *target,
    const void *weight, const void *grad_output, void *loss, void *grad_input);

/* linear_cross_entropy of the whole problem (X [N, H], W [V, H]), this
 * process holding `shard` of W's rows (classes 0: none), through
 * clloss.h's clloss_linear_cross_entropy_shard: device buffers of ctx,
 * input X [N, H] (whole, the same on every process), linear_weight its
 * rows [shard classes, H], linear_bias and weight (class weights) its
 * entries, target class indices [N] (global, the same everywhere) or its
 * probabilities [N, shard classes], grad_output as linear_cross_entropy.
 * Outputs (any may be omitted; grad_input on all processes or none): loss (the
 * whole problem's, the same on every process), grad_input (d_hidden, the
 * whole [N, H] on every process: the shards' parts summed by an
 * MPI_Allreduce of N H reals; ce.accumulate adds it to grad_input's
 * values), grad_linear_weight and grad_linear_bias (its rows and entries;
 * the accumulate flags apply). Every option of the descriptor, as
 * clloss_linear_cross_entropy; chunk_rows 0 chooses from the whole problem.
 *
 * Collectives, in order: the agreement (above; chunk_rows 0 chooses from
 * the whole problem on each process, and the smallest chunk of all
 * processes is used), an MPI_Allreduce of 3 doubles (the mean's weight
 * sum, the failed processes, the shards' classes), one of each chunk's
 * records (R + 1 records, 24 bytes each, 48 for float64: R = the agreed
 * chunk), one of the failures (1 int), and when none failed one of
 * d_hidden (N H reals, float32 for 16-bit storage; none when grad_input
 * is omitted). A process that fails after the agreement
 * joins the next collective as failed, and every process returns after it
 * (as clloss_mpi_cross_entropy). The call waits on the host for each
 * collective: it returns with the loss and gradients computed or enqueued
 * (`*event`, may be NULL, completes with them). d_hidden of 16-bit storage
 * is summed from the shards' parts rounded to the storage type. */
CLLOSS_MPI_API clloss_status clloss_mpi_linear_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer linear_weight, clloss_buffer linear_bias,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input,
    clloss_buffer grad_linear_weight, clloss_buffer grad_linear_bias,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* The same on host arrays; returns when the results are in host memory.
 * Class-index targets outside [0, V) that are not ignore_index give
 * CLLOSS_INVALID_TARGET on the processes that have them, and
 * CLLOSS_COLLECTIVE_FAILURE on the others, before any output is touched
 * (the targets being the same everywhere, that is every process). */
CLLOSS_MPI_API clloss_status clloss_mpi_linear_cross_entropy_host(
    clloss_context *ctx, MPI_Comm comm,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    const void *input, const void *linear_weight, const void *linear_bias,
    const void *target, const void *weight, const void *grad_output, void *loss,
    void *grad_input, void *grad_linear_weight, void *grad_linear_bias);

#ifdef __cplusplus
}
#endif

#endif
