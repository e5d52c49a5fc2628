/* linear_vocab.c - linear_cross_entropy's vocabulary-block method for one
 * chunk of rows (Cut Cross-Entropy's): a first pass over blocks of classes
 * computes each block's logits and cross_entropy's shard statistics
 * (clloss_cross_entropy_partial) and merges them (_combine); the loss rows
 * follow (_finish); a second pass computes each block's logits again,
 * turns them into the block's gradient (_finish) and adds its share to dX,
 * dW and db. No chunk x V tensor exists at any time. A shard of the
 * vocabulary (clloss_linear_cross_entropy_shard) exchanges the merged
 * records with the other shards between the passes. */
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

/* One block of one chunk, as the shard calls take it. */
typedef struct lce_block {
  clloss_cross_entropy_desc ce; /* the chunk's rows, the logits' type */
  clloss_shard shard;
  size_t r0;
  clloss_buffer z, t, w; /* its logits, targets and class weights */
} lce_block;

/* Block j of the chunk at r0: its logits and targets (class indices as
 * they are; probabilities copied, in the logits' type, contiguous). */
static clloss_status block_at(lce_call *c, lce_block *b, size_t j,
                              clloss_buffer xrows, clloss_buffer wm) {
  const size_t V = c->d->ce.classes, rows = b->ce.rows;
  /* c0 counts the call's own classes; the shard calls take the whole V's
   * (a shard's blocks start at its offset). */
  const size_t c0 = j * c->pl.block;
  const size_t cb = V - c0 < c->pl.block ? V - c0 : c->pl.block;
  b->shard.class_offset = c->offset + c0;
  b->shard.classes = cb;
  b->w = c->cw.mem ? clloss__lce_at(c->cw, c0) : CLLOSS_BUFFER_NONE;
  CLLOSS__TRY(block_logits(c, rows, c0, cb, xrows, wm));
  if (!c->pl.prob) {
    b->t = clloss__lce_at(c->t, b->r0);
    return CLLOSS_SUCCESS;
  }
  b->t = clloss__lce_ws(c, LCE_WS, c->pl.tc);
  return clloss__lce_convert(c, 1, clloss__lce_at(c->t, b->r0 * V + c0), V,
                             b->t, cb, rows, cb);
}

/* Each shard call waits for the last command and becomes it. */
static clloss_status chained(lce_call *c, clloss_status s, cl_event ev) {
  if (s == CLLOSS_SUCCESS)
    clloss__lce_chain(c, ev);
  return s;
}

static clloss_status partial(lce_call *c, const lce_block *b, int which) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  cl_event ev = NULL;
  clloss_status s = clloss_cross_entropy_partial(
      c->l.ctx, c->l.queue, &b->ce, &b->shard, b->z, b->t, b->w,
      clloss__lce_ws(c, which, 0), 1, &c->l.last, &ev);
  CLLOSS__TRY(chained(c, s, ev));
  if (which == LCE_REC)
    return CLLOSS_SUCCESS;
  s = clloss_cross_entropy_combine(
      c->l.ctx, c->l.queue, b->ce.rows, b->ce.input_type,
      clloss__lce_ws(c, LCE_REC, 0), clloss__lce_ws(c, LCE_REC2, 0), 1,
      &c->l.last, &ev);
  return chained(c, s, ev);
}

/* From the merged records: the rows' losses (loss given: into the loss
 * output for none, the chunk's slot of LCE_SUMS otherwise) or the block's
 * gradient in place of its logits (grad). */
static clloss_status finish(lce_call *c, const lce_block *b, size_t k,
                            int grad) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  const int none = b->ce.reduction == CLLOSS_REDUCTION_NONE;
  clloss_buffer g = CLLOSS_BUFFER_NONE, loss = CLLOSS_BUFFER_NONE;
  if (grad)
    g = none ? (c->g.mem ? clloss__lce_at(c->g, b->r0) : CLLOSS_BUFFER_NONE)
             : clloss__lce_ws(c, LCE_SMALL, 1);
  else
    loss =
        none ? clloss__lce_at(c->loss, b->r0) : clloss__lce_ws(c, LCE_SUMS, k);
  cl_event ev = NULL;
  clloss_status s = clloss_cross_entropy_finish(
      c->l.ctx, c->l.queue, &b->ce, &b->shard, b->z, b->t, b->w, g,
      clloss__lce_ws(c, LCE_REC, 0), loss, grad ? b->z : CLLOSS_BUFFER_NONE, 1,
      &c->l.last, &ev);
  return chained(c, s, ev);
}

/* Second pass, after finish: the block's share of dX (summed over the
 * blocks), dW and db (its own rows and entries). */
static clloss_status block_grads(lce_call *c, const lce_block *b, size_t k,
                                 size_t j, clloss_buffer xrows,
                                 clloss_buffer wm) {
  const lce_plan *pl = &c->pl;
  const size_t H = c->d->hidden, ld = pl->cols, rows = b->ce.rows;
  const size_t c0 = b->shard.class_offset - c->offset, cb = b->shard.classes;
  if (pl->want_dx) {
    clloss_buffer dx = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dxc)
                                : clloss__lce_at(c->dx, b->r0 * H);
    const int first = j == 0 && !c->d->ce.accumulate;
    CLLOSS__TRY(clloss__lce_gemm(c, 0, 0, rows, H, cb, b->z, ld,
                                 clloss__lce_at(wm, c0 * H), H,
                                 first ? 0.0 : 1.0, dx, H));
  }
  if (pl->want_dw) {
    clloss_buffer dw = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dwf) : c->dw;
    double beta = k == 0 && !c->d->accumulate_grad_linear_weight ? 0.0 : 1.0;
    CLLOSS__TRY(clloss__lce_gemm(c, 1, 0, cb, H, rows, b->z, ld, xrows, H, beta,
                                 clloss__lce_at(dw, c0 * H), H));
  }
  if (pl->want_db) {
    clloss_buffer db = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dbf) : c->db;
    CLLOSS__TRY(clloss__lce_column_sum(c, b->z, rows, cb, ld,
                                       clloss__lce_at(db, c0),
                                       k > 0 || c->d->accumulate_grad_bias));
  }
  return CLLOSS_SUCCESS;
}

clloss_status clloss__lce_vocab_chunk(lce_call *c, size_t k, size_t r0,
                                      size_t rows, clloss_buffer xrows,
                                      clloss_buffer wm) {
  const lce_plan *pl = &c->pl;
  const size_t H = c->d->hidden;
  lce_block b;
  b.ce = clloss__lce_chunk_desc(c, rows);
  b.ce.row_stride = pl->cols; /* the block's logits, cols apart */
  b.r0 = r0;
  b.z = clloss__lce_ws(c, LCE_WS, pl->logits);
  /* An empty shard's stand-in for the loss's finish, which reads only the
   * records: one column of the workspace. */
  b.shard.class_offset = 0;
  b.shard.classes = 1;
  b.w = CLLOSS_BUFFER_NONE;
  b.t = pl->prob ? clloss__lce_ws(c, LCE_WS, pl->tc) : clloss__lce_at(c->t, r0);
  for (size_t j = 0; j < pl->blocks;
       j = clloss__lce_step(c, j, 1, pl->blocks)) {
    CLLOSS__TRY(block_at(c, &b, j, xrows, wm));
    CLLOSS__TRY(partial(c, &b, j == 0 ? LCE_REC : LCE_REC2));
  }
  /* A shard: the records of all shards. */
  CLLOSS__TRY(clloss__lce_exchange(c, CLLOSS_EXCHANGE_RECORDS,
                                   clloss__lce_ws(c, LCE_REC, 0), rows,
                                   pl->blocks == 0));
  if (c->loss.mem)
    CLLOSS__TRY(finish(c, &b, k, 0)); /* the last block's arguments */
  if (pl->blocks == 0 || (!pl->want_dx && !pl->want_dw && !pl->want_db))
    return CLLOSS_SUCCESS;
  const clloss_buffer dx = clloss__lce_at(c->dx, r0 * H);
  const clloss_buffer dxc = clloss__lce_ws(c, LCE_WS, pl->dxc);
  if (pl->want_dx && pl->conv && c->d->ce.accumulate)
    CLLOSS__TRY(clloss__lce_convert(c, 1, dx, H, dxc, H, rows, H));
  for (size_t j = 0; j < pl->blocks;
       j = clloss__lce_step(c, j, 1, pl->blocks)) {
    /* One block's logits (and targets) are still in the workspace: the
     * loss's finish only reads them. */
    if (pl->blocks > 1)
      CLLOSS__TRY(block_at(c, &b, j, xrows, wm));
    CLLOSS__TRY(finish(c, &b, k, 1));
    CLLOSS__TRY(block_grads(c, &b, k, j, xrows, wm));
  }
  if (pl->want_dx && pl->conv)
    CLLOSS__TRY(clloss__lce_convert(c, 0, dx, H, dxc, H, rows, H));
  return CLLOSS_SUCCESS;
}
