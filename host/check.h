/* check.h - argument checks shared by the device calls and the CPU reference.
 *
 * Each returns CLLOSS_SUCCESS or the status for the first problem found and,
 * when `detail` is not NULL, writes a sentence naming it. */
#ifndef CLLOSS_CHECK_H
#define CLLOSS_CHECK_H
#include "clloss.h"

#define CLLOSS_DETAIL_SIZE 512

/* Descriptor fields, alone (no buffers). */
clloss_status
clloss__check_cross_entropy_desc(const clloss_cross_entropy_desc *desc,
                                 char *detail);
clloss_status clloss__check_nll_loss_desc(const clloss_nll_loss_desc *desc,
                                          char *detail);
clloss_status clloss__check_pointwise_desc(const clloss_pointwise_desc *desc,
                                           char *detail);

/* Host-side target check: every target in [0, classes) or ignore_index.
 * On failure *bad_row (may be NULL) receives the first bad row. */
clloss_status clloss__check_targets(const void *target, clloss_dtype type,
                                    size_t rows, size_t classes,
                                    int64_t ignore_index, size_t *bad_row,
                                    char *detail);

/* 1 when cross_entropy's targets are class probabilities [N, C]. */
int clloss__is_probability_target(clloss_dtype target_type);

#endif
