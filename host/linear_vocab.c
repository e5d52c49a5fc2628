/* linear_vocab.c - linear_cross_entropy's vocabulary-block method for one
 * chunk of rows (Cut Cross-Entropy's): a first pass over blocks of classes
 * computes each block's logits and statistics and merges them (ce_shard.h);
 * the loss rows follow; a second pass computes each block's logits again,
 * turns them into the block's gradient and adds its share to dX, dW, db.
 * No chunk x V tensor exists at any time. */
#include "ce_shard.h"
#include "linear.h"

/* Logits of block [c0, c0 + cb) of the chunk's rows, plus the bias. */
static clloss_status block_logits(lce_call *c, size_t rows, size_t c0,
                                  size_t cb, clloss_buffer xrows,
                                  clloss_buffer wm) {
  const size_t H = c->d->hidden, ld = c->pl.cols;
  clloss_buffer z = clloss__lce_ws(c, LCE_WS, c->pl.logits);
  CLLOSS__TRY(clloss__lce_gemm(c, 0, 1, rows, cb, H, xrows, H,
                               clloss__lce_at(wm, c0 * H), H, 0.0, z, ld));
  if (c->b.mem)
    CLLOSS__TRY(
        clloss__lce_add_bias(c, z, rows, cb, ld, clloss__lce_at(c->b, c0)));
  return CLLOSS_SUCCESS;
}

/* The loss of each row: into the loss output (none) or summed into the
 * chunk's slot of LCE_SUMS. */
static clloss_status chunk_loss(lce_call *c, const clloss__shard *s, size_t k,
                                size_t r0) {
  const int none = c->d->ce.reduction == CLLOSS_REDUCTION_NONE;
  clloss_buffer rec = clloss__lce_ws(c, LCE_WS, c->pl.rec);
  clloss_buffer out =
      none ? clloss__lce_at(c->loss, r0) : clloss__lce_ws(c, LCE_ROWLOSS, 0);
  CLLOSS__TRY(clloss__shard_loss(&c->l, s, rec, out));
  if (none)
    return CLLOSS_SUCCESS;
  return clloss__lce_finish_sum(c, LCE_ROWLOSS, s->rows, 0, 1.0,
                                clloss__lce_ws(c, LCE_SUMS, k));
}

/* Second pass, block [c0, c0 + cb): its gradient, then its share of dX
 * (summed over blocks), dW and db (its own rows and entries). */
static clloss_status block_grad(lce_call *c, const clloss__shard *s, size_t k,
                                size_t r0, size_t j, clloss_buffer xrows,
                                clloss_buffer wm) {
  const lce_plan *pl = &c->pl;
  const size_t H = c->d->hidden, ld = pl->cols, rows = s->rows, cb = s->cb;
  const size_t c0 = s->c0;
  const int none = c->d->ce.reduction == CLLOSS_REDUCTION_NONE;
  clloss_buffer z = s->logits;
  if (!c->sizing) {
    clloss_buffer scale =
        none ? (c->g.mem ? clloss__lce_at(c->g, r0) : CLLOSS_BUFFER_NONE)
             : clloss__lce_ws(c, LCE_SMALL, 2);
    CLLOSS__TRY(clloss__shard_grad(&c->l, s, clloss__lce_ws(c, LCE_WS, pl->rec),
                                   scale, none));
  }
  if (pl->want_dx) {
    clloss_buffer dx = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dxc)
                                : clloss__lce_at(c->dx, r0 * H);
    CLLOSS__TRY(clloss__lce_gemm(c, 0, 0, rows, H, cb, z, ld,
                                 clloss__lce_at(wm, c0 * H), H,
                                 j == 0 ? 0.0 : 1.0, dx, H));
  }
  if (pl->want_dw) {
    clloss_buffer dw = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dwf) : c->dw;
    double beta = k == 0 && !c->d->accumulate_grad_weight ? 0.0 : 1.0;
    CLLOSS__TRY(clloss__lce_gemm(c, 1, 0, cb, H, rows, z, ld, xrows, H, beta,
                                 clloss__lce_at(dw, c0 * H), H));
  }
  if (pl->want_db) {
    clloss_buffer db = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dbf) : c->db;
    CLLOSS__TRY(clloss__lce_column_sum(c, z, rows, cb, ld,
                                       clloss__lce_at(db, c0),
                                       k > 0 || c->d->accumulate_grad_bias));
  }
  return CLLOSS_SUCCESS;
}

clloss_status clloss__lce_vocab_chunk(lce_call *c, size_t k, size_t r0,
                                      size_t rows, clloss_buffer xrows,
                                      clloss_buffer wm) {
  const lce_plan *pl = &c->pl;
  const clloss_cross_entropy_desc *d = &c->d->ce;
  const size_t V = d->classes, H = c->d->hidden;
  const clloss_dtype rt = pl->real == 8 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  clloss_buffer rec = clloss__lce_ws(c, LCE_WS, pl->rec);
  clloss_buffer rec2 = clloss__lce_ws(c, LCE_WS, pl->rec2);
  clloss__shard s = {d,        rows,
                     0,        0,
                     rt,       clloss__lce_ws(c, LCE_WS, pl->logits),
                     pl->cols, clloss__lce_at(c->t, pl->prob ? r0 * V : r0),
                     c->cw};
  for (size_t j = 0; j < pl->blocks; j++) {
    s.c0 = j * pl->block;
    s.cb = V - s.c0 < pl->block ? V - s.c0 : pl->block;
    CLLOSS__TRY(block_logits(c, rows, s.c0, s.cb, xrows, wm));
    if (c->sizing)
      continue;
    CLLOSS__TRY(clloss__shard_partial(&c->l, &s, j == 0 ? rec : rec2));
    if (j > 0)
      CLLOSS__TRY(clloss__shard_combine(&c->l, rt, rows, rec, rec2));
  }
  if (c->loss.mem && !c->sizing)
    CLLOSS__TRY(chunk_loss(c, &s, k, r0));
  if (!pl->want_dx && !pl->want_dw && !pl->want_db)
    return CLLOSS_SUCCESS;
  for (size_t j = 0; j < pl->blocks; j++) {
    s.c0 = j * pl->block;
    s.cb = V - s.c0 < pl->block ? V - s.c0 : pl->block;
    CLLOSS__TRY(block_logits(c, rows, s.c0, s.cb, xrows, wm));
    CLLOSS__TRY(block_grad(c, &s, k, r0, j, xrows, wm));
  }
  if (pl->want_dx && pl->conv)
    CLLOSS__TRY(clloss__lce_convert(c, 0, clloss__lce_ws(c, LCE_WS, pl->dxc),
                                    clloss__lce_at(c->dx, r0 * H), rows * H));
  return CLLOSS_SUCCESS;
}
