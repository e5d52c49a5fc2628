/* cross_entropy.h - what the launchers of cross_entropy's kernels share:
 * the whole-row calls (cross_entropy.c) and the shard calls
 * (cross_entropy_shard.c). */
#ifndef CLLOSS_CROSS_ENTROPY_H
#define CLLOSS_CROSS_ENTROPY_H
#include "internal.h"
#include "rows.h"

/* The kernels of a cross_entropy program, in this order. */
enum {
  CE_ITEM,
  CE_GROUP,
  CE_FINISH,
  CE_TARGETS,
  CE_SPLIT_STATS,
  CE_SPLIT_GRAD,
  CE_STATS_COMBINE,
  CE_SHARD_TARGETS,
  CE_LANES
};

/* The program for desc's storage, target and softcap with `variant`'s
 * kernels (the shard calls': SPLIT), built on first use. */
clloss_status clloss__ce_program(clloss_context *ctx,
                                 const clloss_cross_entropy_desc *d,
                                 clloss__variant variant,
                                 clloss__program **out);
/* The call's shape and buffers, from a (checked) descriptor. */
clloss__rows_call clloss__ce_describe(const clloss_cross_entropy_desc *d);
/* The kernels' arguments: the row losses' own and cross_entropy's options
 * (not the variant's). */
void clloss__ce_args_init(clloss_context *ctx,
                          const clloss_cross_entropy_desc *d,
                          const clloss__rows_call *c, int loss_mode,
                          clloss__rows_args *a);

#endif
