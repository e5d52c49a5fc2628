/* clloss_mpi_host.c - clloss_mpi_cross_entropy_host: the collective call on
 * host arrays, through device buffers made for the call. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clloss_mpi_internal.h"

/* The call's device buffers, each NULL when not given. */
enum { B_INPUT, B_TARGET, B_WEIGHT, B_GRAD_OUTPUT, B_LOSS, B_GRAD, B_COUNT };

typedef struct host_call {
  clloss_context *ctx;
  cl_mem mem[B_COUNT];
  size_t bytes[B_COUNT];
} host_call;

/* Bytes of each argument, from the descriptor and the shard; 0 when a
 * size passes SIZE_MAX (nothing is then read from the caller's arrays). */
static int sizes(const clloss_cross_entropy_desc *d, const clloss_shard *sh,
                 size_t bytes[B_COUNT]) {
  const size_t esize = clloss_dtype_size(d->input_type);
  const size_t lsize = clloss_dtype_size(clloss_loss_dtype(d->input_type));
  const size_t cb = sh->classes, ld = d->row_stride ? d->row_stride : cb;
  int over = 0;
  const size_t last = clloss__mpi_mul3(&over, d->rows ? d->rows - 1 : 0, ld, 1);
  const size_t block =
      d->rows && cb ? clloss__mpi_mul3(&over, last + cb, esize, 1) : 0;
  if (d->rows && cb && last + cb < last)
    over = 1;
  const int probs =
      d->target_type != CLLOSS_INT32 && d->target_type != CLLOSS_INT64;
  bytes[B_INPUT] = block;
  bytes[B_TARGET] =
      probs ? clloss__mpi_mul3(&over, d->rows, cb, esize)
            : clloss__mpi_mul3(&over, d->rows,
                               clloss_dtype_size(d->target_type), 1);
  bytes[B_WEIGHT] = clloss__mpi_mul3(&over, cb, lsize, 1);
  /* Loss values (and upstream gradients): not counted by
   * clloss_cross_entropy_output_count, which checks d as a whole-row
   * descriptor, as a block's narrower row_stride is not. */
  bytes[B_LOSS] = clloss__mpi_mul3(
      &over, d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1, lsize, 1);
  bytes[B_GRAD_OUTPUT] = bytes[B_LOSS];
  bytes[B_GRAD] = block;
  return !over;
}

clloss_status clloss__mpi_check_targets(clloss_context *ctx,
                                        const clloss_cross_entropy_desc *d,
                                        const void *target) {
  if (d->target_type != CLLOSS_INT32 && d->target_type != CLLOSS_INT64)
    return CLLOSS_SUCCESS;
  for (size_t i = 0; i < d->rows; i++) {
    const int64_t t = d->target_type == CLLOSS_INT32
                          ? ((const int32_t *)target)[i]
                          : ((const int64_t *)target)[i];
    if (t != d->ignore_index && (t < 0 || (uint64_t)t >= d->classes))
      return clloss__mpi_failf(ctx, CLLOSS_INVALID_TARGET,
                               "target[%zu] = %lld is outside [0, %zu) and is "
                               "not ignore_index",
                               i, (long long)t, d->classes);
  }
  return CLLOSS_SUCCESS;
}

/* Device copies of the given host arrays. The outputs are not copied,
 * but the gradient that accumulate adds to, and a gradient with padding
 * columns, which go back untouched. */
static clloss_status upload(host_call *h, const void *const host[B_COUNT],
                            int keep_grad) {
  cl_context cl = clloss_context_cl_context(h->ctx);
  for (int b = 0; b < B_COUNT; b++) {
    if (!host[b] || !h->bytes[b])
      continue;
    cl_int err;
    const int copy = b == B_LOSS ? 0 : b == B_GRAD ? keep_grad : 1;
    h->mem[b] = clCreateBuffer(
        cl, CL_MEM_READ_WRITE | (copy ? CL_MEM_COPY_HOST_PTR : 0), h->bytes[b],
        copy ? (void *)host[b] : NULL, &err);
    if (err != CL_SUCCESS)
      return clloss__mpi_failf(h->ctx, CLLOSS_OUT_OF_DEVICE_MEMORY,
                               "a device buffer of %zu bytes: OpenCL error %d",
                               h->bytes[b], (int)err);
  }
  return CLLOSS_SUCCESS;
}

static clloss_buffer buf(const host_call *h, int b) {
  return (clloss_buffer){h->mem[b], 0};
}

/* Reads an output back once the finish (`done`) has run. */
static clloss_status download(host_call *h, int b, void *out, cl_event done) {
  if (!h->mem[b] || !out)
    return CLLOSS_SUCCESS;
  cl_int err = clEnqueueReadBuffer(clloss_context_queue(h->ctx), h->mem[b],
                                   CL_TRUE, 0, h->bytes[b], out, done ? 1 : 0,
                                   done ? &done : NULL, NULL);
  return err == CL_SUCCESS
             ? CLLOSS_SUCCESS
             : clloss__mpi_failf(h->ctx, (clloss_status)err,
                                 "reading the results: OpenCL error %d",
                                 (int)err);
}

clloss_status clloss_mpi_cross_entropy_host(
    clloss_context *ctx, MPI_Comm comm, const clloss_cross_entropy_desc *desc,
    const clloss_shard *shard, const void *input, const void *target,
    const void *weight, const void *grad_output, void *loss, void *grad_input) {
  host_call h;
  memset(&h, 0, sizeof h);
  h.ctx = ctx;
  clloss_status own = CLLOSS_SUCCESS;
  /* Whatever fails here fails in the collective call, which checks desc
   * and shard first. */
  if (ctx && desc && shard &&
      desc->struct_size >=
          offsetof(clloss_cross_entropy_desc, padding) + sizeof desc->padding) {
    if (!sizes(desc, shard, h.bytes)) {
      memset(h.bytes, 0, sizeof h.bytes);
      own = clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                              "the arrays of %zu rows pass SIZE_MAX bytes",
                              desc->rows);
    }
    const int mine = shard->classes > 0; /* an empty shard has no block */
    const void *host[B_COUNT] = {
        mine ? input : NULL, target, mine ? weight : NULL,
        grad_output,         loss,   mine ? grad_input : NULL};
    const int padded = desc->row_stride > shard->classes;
    if (own == CLLOSS_SUCCESS)
      own = upload(&h, host, desc->accumulate || padded);
    if (own == CLLOSS_SUCCESS && target)
      own = clloss__mpi_check_targets(ctx, desc, target);
  }
  cl_event done = NULL;
  clloss_status s = clloss__mpi_cross_entropy(
      ctx, comm, NULL, desc, shard, buf(&h, B_INPUT), buf(&h, B_TARGET),
      buf(&h, B_WEIGHT), buf(&h, B_GRAD_OUTPUT), buf(&h, B_LOSS),
      buf(&h, B_GRAD), 0, NULL, &done, own);
  if (s == CLLOSS_SUCCESS)
    s = download(&h, B_LOSS, loss, done);
  if (s == CLLOSS_SUCCESS)
    s = download(&h, B_GRAD, grad_input, done);
  if (done)
    clReleaseEvent(done);
  for (int b = 0; b < B_COUNT; b++)
    if (h.mem[b])
      clReleaseMemObject(h.mem[b]);
  return s;
}
