/* check.h - argument checks shared by the device calls and the CPU reference.
 *
 * Each returns CLLOSS_SUCCESS or the status for the first problem found and,
 * when `detail` is not NULL, writes a sentence naming it. */
#ifndef CLLOSS_CHECK_H
#define CLLOSS_CHECK_H
#include "clloss.h"

#define CLLOSS_DETAIL_SIZE 512

/* Takes a caller's descriptor: checks its struct_size (see clloss.h,
 * "Descriptors"), copies it into *out with the defaults of fields it
 * predates, and checks the fields alone (no buffers). Every entry point
 * reads its descriptor through one of these. */
clloss_status
clloss__check_cross_entropy_desc(const clloss_cross_entropy_desc *desc,
                                 clloss_cross_entropy_desc *out, char *detail);
/* The same for one block of classes of a split vocabulary (shard NULL: the
 * whole row): the row_stride is the block's. */
clloss_status
clloss__check_cross_entropy_shard(const clloss_cross_entropy_desc *desc,
                                  const clloss_shard *shard,
                                  clloss_cross_entropy_desc *out, char *detail);
/* linear_cross_entropy's descriptor: its own fields and `ce`, not the
 * device's capabilities. */
clloss_status
clloss__check_linear_desc(const clloss_linear_cross_entropy_desc *desc,
                          clloss_linear_cross_entropy_desc *out, char *detail);
clloss_status clloss__check_nll_loss_desc(const clloss_nll_loss_desc *desc,
                                          clloss_nll_loss_desc *out,
                                          char *detail);
clloss_status clloss__check_pointwise_desc(const clloss_pointwise_desc *desc,
                                           clloss_pointwise_desc *out,
                                           char *detail);
clloss_status clloss__check_softmax_desc(const clloss_softmax_desc *desc,
                                         clloss_softmax_desc *out,
                                         char *detail);

/* Whether a gradient (or softmax output) gets zeros in its padding:
 * `padding` resolved for a call that is in place or not. */
int clloss__zero_padding(clloss_padding padding, int in_place);
/* Zeros the columns [classes, ld) of n rows of a host array. */
void clloss__zero_host_padding(void *rows, size_t n, size_t classes, size_t ld,
                               size_t elem_size);

/* Host-side target check: every target in [0, classes) or ignore_index.
 * On failure *bad_row (may be NULL) receives the first bad row. */
clloss_status clloss__check_targets(const void *target, clloss_dtype type,
                                    size_t rows, size_t classes,
                                    int64_t ignore_index, size_t *bad_row,
                                    char *detail);

/* 1 for the float storage types (float16, bfloat16, float32, float64). */
int clloss__is_float_type(clloss_dtype t);

/* 1 when buffer a (an elements of `as` bytes from its offset) and buffer b
 * (bn of `bs`) share a byte; offsets count elements of each one's size. */
int clloss__buffers_overlap(clloss_buffer a, size_t an, size_t as,
                            clloss_buffer b, size_t bn, size_t bs);

/* 1 when cross_entropy's targets are class probabilities [N, C]. */
int clloss__is_probability_target(clloss_dtype target_type);

#endif
