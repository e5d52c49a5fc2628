/* params.h - the arguments of every kernel, written once for both sides.
 *
 * This file is valid C and OpenCL C. The host includes it (host/params.h)
 * to declare the same structs with cl_ types and to set the buffers by
 * name; every program's source starts with it. A field or buffer added
 * here therefore appears on both sides, in the same place, or the build
 * fails: nothing is set positionally by hand.
 *
 * Scalars travel in one struct passed by value. Fields are listed 8-byte
 * ones first (U64, I64), then 4-byte ones (I32, F32), so that C and OpenCL
 * C lay the struct out identically, without padding between fields, and
 * the 4-byte fields are even in number, so that there is no padding after
 * the last one either: implementations size a by-value argument
 * differently when the struct has tail padding (Mesa's Rusticl takes only
 * the size of the fields, 124 where sizeof says 128, and answers
 * CL_INVALID_ARG_SIZE to the other; PoCL takes any size).
 * tests/test_params.c compares every offset and the size with the
 * device's, and fails on any padding. Real-valued parameters are float32
 * whatever the storage type (they come from float fields of the
 * descriptors); divisors computed by the host travel as integers, so that
 * float64 programs divide exactly.
 *
 * Buffers are kernel arguments of their own, in list order, before the
 * struct: IN buffers are read-only to the kernels, OUT ones are written.
 * Every kernel's scalars come in one of the structs below (rows, pointwise,
 * linear_cross_entropy's small kernels, finish_sum), none positionally.
 */
#ifndef CLLOSS_KERNEL_PARAMS_H
#define CLLOSS_KERNEL_PARAMS_H

/* The values of the structs' mode fields. */
/* g_mode: the upstream gradient */
#define CLLOSS_UPSTREAM_ONE 0    /* none given: 1 */
#define CLLOSS_UPSTREAM_SCALAR 1 /* one value */
#define CLLOSS_UPSTREAM_EACH 2   /* one per row or element */
/* loss_mode: where the losses go */
#define CLLOSS_LOSSES_NONE 0     /* nowhere */
#define CLLOSS_LOSSES_EACH 1     /* one per row or element, into loss */
#define CLLOSS_LOSSES_PARTIALS 2 /* into partials, which finish_sum reduces */
/* rows_params.reduction: clloss_reduction's values (kernel_args.h checks) */
#define CLLOSS_ROWS_MEAN 0
#define CLLOSS_ROWS_SUM 1
#define CLLOSS_ROWS_NONE 2
/* lce_params.mode and finish_params.mode: what the sum is divided by */
#define CLLOSS_DIVIDE_NONE 0
#define CLLOSS_DIVIDE_GIVEN 1 /* fdiv when > 0, else idiv */
#define CLLOSS_DIVIDE_STATS 2 /* stats[0], the target pass's weight sum */

/* The row losses (cross_entropy, softmax, nll_loss) and their target pass:
 * an [N, C] input with rows ld apart. */
#define CLLOSS_ROWS_BUFFERS(IN, OUT)                                           \
  IN(in_t, x)         /* input [N, ld] */                                      \
  IN(tgt_t, t)        /* class indices [N] */                                  \
  IN(in_t, y)         /* probability targets [N, C] */                         \
  IN(real, w)         /* class weights [C] */                                  \
  IN(real, g)         /* upstream gradient: 1 value or N */                    \
  IN(real, records)   /* ce_stats_combine: records merged into scratch's */    \
  OUT(real, stats)    /* [0] sum of valid w[t] (the target pass) */            \
  OUT(real, loss)     /* per-row losses, or the reduced loss */                \
  OUT(in_t, grad)     /* gradient [N, ld]; may be x itself (in place) */       \
  OUT(real, partials) /* per-group or per-row partial losses */                \
  OUT(real, scratch)  /* item: kept exps rows; split: segment records */       \
  OUT(uint, err)      /* device error word */

#define CLLOSS_ROWS_PARAMS(U64, I64, I32, F32)                                 \
  U64(x_off) U64(ld) U64(rows) U64(classes) U64(t_off) U64(y_off) U64(w_off)   \
  U64(g_off) U64(loss_off) U64(grad_off)                                       \
  U64(c0)         /* shards: the first class of this block of columns */      \
  U64(cb)         /* the columns x holds per row: C, or a shard's width */    \
  U64(rec_off)    /* shards: offset of the records in scratch (in reals) */   \
  U64(records_off) /* ce_stats_combine: offset of `records` (in reals) */     \
  U64(mean_count) /* mean divides by this when > 0 (and no normalizer) */      \
  U64(run)        /* item: rows per work-item */                               \
  U64(segs)       /* split: segments per row */                                \
  U64(seg_len)    /* split: elements per segment (a multiple of VW) */         \
  U64(pad_rows)   /* zeros into grad's columns [C, ld) of rows below this */   \
  U64(lanes)      /* lanes variant: work-items per row */                      \
  I64(ignore)     /* ignore_index */                                           \
  I32(has_w)      /* w is given */                                             \
  I32(g_mode)     /* CLLOSS_UPSTREAM_* */                                      \
  I32(loss_mode)  /* CLLOSS_LOSSES_* */                                        \
  I32(want_grad)  /* write grad */                                             \
  I32(reduction)  /* CLLOSS_ROWS_* */                                          \
  I32(use_exps)   /* item, 16-bit storage: exps kept in scratch rows */        \
  I32(cache_row)  /* group: the row is kept in local memory */                 \
  I32(accumulate) /* grad += the gradient (never in place) */                  \
  I32(softmax)    /* cross_entropy program: grad = softmax(x), no loss */      \
  F32(eps)        /* label_smoothing */                                        \
  F32(z)          /* z_loss */                                                 \
  F32(cap)        /* softcap (0: off) */                                       \
  F32(norm)       /* normalizer (0: none) */                                   \
  F32(grad_scale) /* multiplies every gradient entry */

/* Reals in one record of row statistics (cross_entropy.cl's row_stats),
 * as the split variant keeps them in `scratch`. */
#define CLLOSS_STATS_RECORD 6

/* The element-wise losses: count elements, d = x - y. */
#define CLLOSS_POINTWISE_BUFFERS(IN, OUT)                                      \
  IN(in_t, x)         /* input */                                              \
  IN(in_t, y)         /* target */                                             \
  IN(real, w)         /* BCE weight: wc values, broadcast */                   \
  IN(real, pw)        /* BCE pos_weight: pwc values, broadcast */              \
  IN(real, g)         /* upstream gradient: 1 value or n */                    \
  OUT(real, loss)     /* per-element losses (reduction none) */                \
  OUT(in_t, grad)     /* gradient; may be x itself (in place) */               \
  OUT(real, partials) /* per-group partial sums */

#define CLLOSS_POINTWISE_PARAMS(U64, I64, I32, F32)                            \
  U64(x_off) U64(y_off) U64(w_off) U64(wc) U64(pw_off) U64(pwc) U64(g_off)     \
  U64(loss_off) U64(grad_off)                                                  \
  U64(n)          /* elements */                                               \
  U64(chunk)      /* item: elements per work-item (a multiple of VW) */        \
  U64(divisor)    /* the gradient is divided by this when > 0 (mean) */        \
  I32(g_mode)     /* CLLOSS_UPSTREAM_* */                                      \
  I32(loss_mode)  /* CLLOSS_LOSSES_* */                                        \
  I32(want_grad)  /* write grad */                                             \
  I32(flag)       /* kl_div: log_target */                                     \
  I32(accumulate) /* grad += the gradient (never in place) */                  \
  I32(unused)     /* 0: keeps the size a multiple of 8 (no tail padding) */    \
  F32(p1)         /* huber: delta; smooth_l1: beta */                          \
  F32(grad_scale) /* multiplies every gradient entry */

/* The small kernels around linear_cross_entropy's GEMMs
 * (linear_cross_entropy.cl), each with its own buffers. */
#define CLLOSS_LCE_PARAMS(U64, I64, I32, F32)                                  \
  U64(a_off) U64(b_off) /* the first and second buffer's offsets */            \
  U64(rows) U64(cols)   /* a rows x cols block (or rows values) */             \
  U64(lda) U64(ldb)     /* elements between rows of the two buffers */         \
  U64(idiv)             /* an integer divisor (N) */                           \
  I64(ignore)           /* ignore_index */                                     \
  I32(mode)             /* CLLOSS_DIVIDE_* */                                  \
  I32(flag)             /* kernel's own: accumulate, to_real, has_w, has_g */  \
  I32(unused)           /* 0: keeps the size a multiple of 8 */                \
  F32(fdiv)             /* a float divisor (the normalizer) when > 0 */

/* finish_sum (reduce.cl): the sum of `count` partial losses into
 * out[out_off], divided as `mode` (CLLOSS_DIVIDE_*) says. */
#define CLLOSS_FINISH_PARAMS(U64, I64, I32, F32)                               \
  U64(count) U64(out_off) U64(idiv) I32(mode) F32(fdiv)

#endif
