/* clloss_mpi_linear_host.c - clloss_mpi_linear_cross_entropy_host: the
 * collective call on host arrays, through device buffers made for it. */
#include <stddef.h>
#include <string.h>

#include "clloss_mpi_internal.h"

/* Inputs 0..5 (input, linear_weight, linear_bias, target, weight,
 * grad_output), outputs 6..9 (loss, grad_input, grad_linear_weight,
 * grad_linear_bias). */
enum { L_IN = 6, L_COUNT = 10 };

/* Bytes of each argument, from the descriptor and the shard; 0 when a
 * size passes SIZE_MAX. */
static int sizes(const clloss_linear_cross_entropy_desc *d, size_t own,
                 size_t bytes[L_COUNT]) {
  const clloss_cross_entropy_desc *ce = &d->ce;
  const size_t es = clloss_dtype_size(ce->input_type);
  const size_t ls = clloss_dtype_size(clloss_loss_dtype(ce->input_type));
  const size_t N = ce->rows, H = d->hidden;
  const int probs =
      ce->target_type != CLLOSS_INT32 && ce->target_type != CLLOSS_INT64;
  const size_t lc = ce->reduction == CLLOSS_REDUCTION_NONE ? N : 1;
  int over = 0;
  const size_t b[L_COUNT] = {
      clloss__mpi_mul3(&over, N, H, es),
      clloss__mpi_mul3(&over, own, H, es),
      clloss__mpi_mul3(&over, own, es, 1),
      probs ? clloss__mpi_mul3(&over, N, own, es)
            : clloss__mpi_mul3(&over, N, clloss_dtype_size(ce->target_type), 1),
      clloss__mpi_mul3(&over, own, ls, 1),
      clloss__mpi_mul3(&over, lc, ls, 1),
      clloss__mpi_mul3(&over, lc, ls, 1),
      clloss__mpi_mul3(&over, N, H, es),
      clloss__mpi_mul3(&over, own, H, es),
      clloss__mpi_mul3(&over, own, es, 1)};
  memcpy(bytes, b, sizeof b);
  return !over;
}

clloss_status clloss_mpi_linear_cross_entropy_host(
    clloss_context *ctx, MPI_Comm comm,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    const void *input, const void *linear_weight, const void *linear_bias,
    const void *target, const void *weight, const void *grad_output, void *loss,
    void *grad_input, void *grad_linear_weight, void *grad_linear_bias) {
  const void *host[L_COUNT] = {input,
                               linear_weight,
                               linear_bias,
                               target,
                               weight,
                               grad_output,
                               loss,
                               grad_input,
                               grad_linear_weight,
                               grad_linear_bias};
  cl_mem mem[L_COUNT] = {NULL};
  size_t bytes[L_COUNT] = {0};
  clloss_status own = CLLOSS_SUCCESS;
  /* What fails here fails in the collective call, which checks desc and
   * shard first. */
  const size_t first = offsetof(clloss_linear_cross_entropy_desc, ce) +
                       offsetof(clloss_cross_entropy_desc, padding) +
                       sizeof(clloss_padding);
  if (ctx && desc && shard && desc->struct_size >= first) {
    if (!sizes(desc, shard->classes, bytes)) {
      memset(bytes, 0, sizeof bytes);
      own = clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                              "the arrays of %zu rows pass SIZE_MAX bytes",
                              desc->ce.rows);
    }
    /* Outputs are copied in only where the call adds to them. */
    const int keep[L_COUNT] = {1,
                               1,
                               1,
                               1,
                               1,
                               1,
                               0,
                               desc->ce.accumulate,
                               desc->accumulate_grad_linear_weight,
                               desc->accumulate_grad_bias};
    cl_context cl = clloss_context_cl_context(ctx);
    for (int b = 0; b < L_COUNT && own == CLLOSS_SUCCESS; b++) {
      if (!host[b] || !bytes[b])
        continue;
      cl_int err;
      mem[b] = clCreateBuffer(
          cl, CL_MEM_READ_WRITE | (keep[b] ? CL_MEM_COPY_HOST_PTR : 0),
          bytes[b], keep[b] ? (void *)host[b] : NULL, &err);
      if (err != CL_SUCCESS)
        own = clloss__mpi_failf(ctx, CLLOSS_OUT_OF_DEVICE_MEMORY,
                                "a device buffer of %zu bytes: OpenCL error "
                                "%d",
                                bytes[b], (int)err);
    }
    if (own == CLLOSS_SUCCESS && target)
      own = clloss__mpi_check_targets(ctx, &desc->ce, target);
  }
  clloss_buffer buf[L_COUNT];
  for (int b = 0; b < L_COUNT; b++)
    buf[b] = (clloss_buffer){mem[b], 0};
  cl_event done = NULL;
  clloss_status s = clloss__mpi_linear_cross_entropy(
      ctx, comm, NULL, desc, shard, buf, buf + L_IN, 0, NULL, &done, own);
  for (int b = L_IN; b < L_COUNT && s == CLLOSS_SUCCESS; b++) {
    if (!mem[b])
      continue;
    cl_int err = clEnqueueReadBuffer(clloss_context_queue(ctx), mem[b], CL_TRUE,
                                     0, bytes[b], (void *)host[b], done ? 1 : 0,
                                     done ? &done : NULL, NULL);
    if (err != CL_SUCCESS)
      s = clloss__mpi_failf(ctx, (clloss_status)err,
                            "reading the results: OpenCL error %d", (int)err);
  }
  if (done)
    clReleaseEvent(done);
  for (int b = 0; b < L_COUNT; b++)
    if (mem[b])
      clReleaseMemObject(mem[b]);
  return s;
}
