/* ce_shard.h - cross-entropy over a vocabulary split into blocks of
 * classes: the statistics of one block per row, their merge, and the loss
 * and gradient of a block once every block's statistics are merged. Used by
 * linear_cross_entropy's vocabulary-block method; the interface a public
 * shard API (vocabulary-parallel training) will wrap.
 *
 * TEMPORARY IMPLEMENTATION: ce_shard.c reads the logits and records back to
 * the host, computes in double on the CPU and writes the results back, with
 * blocking transfers on the call's queue. It is correct and has the final
 * interface, but it synchronises with the host; device kernels replace it.
 *
 * Record: one per row, CLLOSS__SHARD_RECORD (6) reals of the logits' real type
 * (float32; float64 for float64), row r at records[r * 6]:
 *   [0] m    max over the block of x_c (x after softcap), -inf if none
 *   [1] s    sum over the block of exp(x_c - m)
 *   [2] tx   index targets: x_t when t is in the block, else 0;
 *            probability targets: sum_c w_c y'_c x_c, y' = (1-e) y + e/C
 *   [3] tw   index targets: w_t when t is in the block, else 0;
 *            probability targets: sum_c w_c y'_c
 *   [4] swx  sum_c w_c x_c (label smoothing of index targets, else 0)
 *   [5] sw   sum_c w_c (the block's share of W = sum of all class weights)
 * Combine (associative and commutative up to rounding): m = max(m1, m2),
 * s = s1 exp(m1 - m) + s2 exp(m2 - m) (a side whose m is -inf adds 0), and
 * [2] to [5] add. Over all blocks, with lse = m + log s:
 *   index:  loss = (1-e) tw (lse - tx) + (e/C)(sw lse - swx) + z lse^2
 *   probs:  loss = tw lse - tx + z lse^2
 *   dx_j   = s_i [p_j A - (e/C) w_j - (1-e) w_t [j = t]] dcap_j,
 *            A = (1-e) tw + (e/C) sw + 2 z lse  (index), tw + 2 z lse
 *            (probs, where the last terms are w_j y'_j instead);
 * rows whose target is ignore_index get loss 0 and gradient 0; a target
 * outside [0, C) gives NaN (the caller reports it).
 */
#ifndef CLLOSS_CE_SHARD_H
#define CLLOSS_CE_SHARD_H
#include "internal.h"

#define CLLOSS__SHARD_RECORD 6

/* One block of classes of a chunk of rows. */
typedef struct clloss__shard {
  const clloss_cross_entropy_desc *desc; /* options; classes = C of the
                                            whole vocabulary; target_type:
                                            int32/int64, or the float type
                                            of probability targets */
  size_t rows;                           /* rows of this call */
  size_t c0, cb;                         /* the block [c0, c0 + cb) */
  clloss_dtype logits_type;              /* FLOAT32 or FLOAT64 */
  clloss_buffer logits;                  /* [rows, cb], ld apart */
  size_t ld;
  clloss_buffer target; /* [rows] indices or [rows, C] probabilities */
  clloss_buffer weight; /* class weights [C] (the whole vocabulary), or
                           none; of logits_type */
} clloss__shard;

/* records[r] = the statistics of row r over the block. */
clloss_status clloss__shard_partial(clloss__launch *l, const clloss__shard *s,
                                    clloss_buffer records);

/* acc[r] = combine(acc[r], other[r]) for `rows` records. */
clloss_status clloss__shard_combine(clloss__launch *l, clloss_dtype real_type,
                                    size_t rows, clloss_buffer acc,
                                    clloss_buffer other);

/* loss[r] = the loss of row r from its merged record (s->c0, s->cb and
 * s->logits are not used). */
clloss_status clloss__shard_loss(clloss__launch *l, const clloss__shard *s,
                                 clloss_buffer records, clloss_buffer loss);

/* The block's gradient, in place of its logits: dx_j above, with s_i =
 * scale[0] (per_row 0), scale[r] (per_row 1), or 1 (scale not given). */
clloss_status clloss__shard_grad(clloss__launch *l, const clloss__shard *s,
                                 clloss_buffer records, clloss_buffer scale,
                                 int per_row);

/* The combine of two records on the host, in double: a = combine(a, b). */
void clloss__shard_combine_record(double *a, const double *b);

#endif
