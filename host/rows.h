/* rows.h - shared by the launchers of the row losses (cross_entropy,
 * nll_loss): one description of a call's buffers and shape. */
#ifndef CLLOSS_ROWS_H
#define CLLOSS_ROWS_H
#include "internal.h"
#include "kernel_args.h"

typedef struct clloss__rows_call {
  size_t rows, classes, ld, loss_count;
  size_t c0, cb; /* the columns of x: classes [c0, c0 + cb) (0, classes) */
  clloss_dtype input_type, target_type;
  int prob_targets;
  int softmax; /* cross_entropy's kernels computing softmax: no target */
  clloss_reduction reduction;
  int64_t ignore_index;
  float grad_scale;       /* multiplies the gradient */
  int accumulate;         /* grad += the gradient */
  clloss_padding padding; /* the gradient's columns [C, ld) */
  size_t pad_rows;        /* rows whose padding gets zeros (resolved) */
  clloss_buffer input, target, weight, grad_output, loss, grad_input;
} clloss__rows_call;

/* How rows are shared out among the item kernel (one work-item per row,
 * a partial per work-group) or the group kernel (one work-group per row, a
 * partial per row). */
typedef struct clloss__rows_plan {
  clloss__variant variant; /* ITEM, GROUP or LANES */
  size_t local, groups, partials;
  size_t lanes; /* LANES: work-items per row */
} clloss__rows_plan;

/* CL_KERNEL_WORK_GROUP_SIZE of a row loss's item, group and lanes
 * kernels. */
typedef struct clloss__rows_kernel_max {
  size_t item, group, lanes;
} clloss__rows_kernel_max;

/* The work sizes of `variant` (clloss__pick_variant's: ITEM, LANES, or
 * anything else plans GROUP) for rows of `classes` elements. */
clloss__rows_plan clloss__plan_rows(const clloss_context *ctx,
                                    clloss__variant variant, size_t rows,
                                    size_t classes, int vw,
                                    const clloss__rows_kernel_max *max);

/* Elements an [N, C] operand with row stride ld spans. */
size_t clloss__rows_extent(size_t rows, size_t classes, size_t ld);
/* Checks c's buffers and resolves c->pad_rows. */
clloss_status clloss__check_rows_buffers(clloss_context *ctx,
                                         clloss__rows_call *c);
/* The arguments of every kernel of a row loss (kernels/params.h). */
typedef struct clloss__rows_args {
  cl_mem mems[CLLOSS__ROWS_BUFFER_COUNT]; /* NULL: not given */
  clloss__rows_params p;
  size_t local_bytes; /* row_cache: the group variant's row, else 0 */
} clloss__rows_args;

/* The buffers and scalars of call c; loss_mode as in params.h. The
 * launcher adds its own (variant and loss options). */
void clloss__rows_args_init(clloss_context *ctx, const clloss__rows_call *c,
                            int loss_mode, clloss__rows_args *a);
/* Enqueues kernel k with a (global, local work sizes). */
clloss_status clloss__rows_enqueue_kernel(clloss__launch *l, cl_kernel k,
                                          const clloss__rows_args *a,
                                          size_t global, size_t local);
/* Enqueues class_targets (stats and error word), kernel `kernel` of p. */
clloss_status clloss__enqueue_class_targets(clloss__launch *l,
                                            clloss__program *p, int kernel,
                                            const clloss__rows_args *a);

/* Enqueues a row loss's kernels for call c (the launcher's own part). */
typedef clloss_status (*clloss__rows_enqueue)(clloss__launch *l,
                                              const void *desc,
                                              const clloss__rows_call *c);

/* A measurement of tune.c (clloss__tune_run) for a row loss: call c of
 * descriptor desc on the problem's buffers. */
clloss_status clloss__rows_tune_run(clloss_context *ctx,
                                    const clloss__tune_problem *p,
                                    clloss__rows_call *c,
                                    clloss__rows_enqueue enqueue,
                                    const void *desc);

/* The device-buffer call of a row loss: takes the caller's buffers into c,
 * checks them, and runs `enqueue` on `queue` after the wait list. */
clloss_status clloss__rows_call_device(
    clloss_context *ctx, cl_command_queue queue, clloss__rows_call *c,
    clloss__rows_enqueue enqueue, const void *desc, clloss_buffer input,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input, cl_uint num_events,
    const cl_event *wait_list, cl_event *event);

/* Host-pointer calls: the caller's arrays. */
typedef struct clloss__rows_host {
  const void *input, *target, *weight, *grad_output;
  void *loss, *grad_input;
} clloss__rows_host;

/* The host-pointer call of a row loss on a checked descriptor's c:
 * checks the host arrays and targets, copies them into the context's
 * pooled buffers, runs `enqueue` on the context's queue (desc with padding
 * KEEP) without checking those buffers again, and copies the outputs back
 * (CLLOSS_PADDING_ZERO in c zeros the caller's padding then; AUTO: host
 * calls are never in place on the device, and keep it). */
clloss_status clloss__rows_call_host(clloss_context *ctx, clloss__rows_call *c,
                                     const clloss__rows_host *h,
                                     clloss__rows_enqueue enqueue,
                                     const void *desc);

#endif
