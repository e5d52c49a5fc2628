/* linear_cross_entropy.c - the fused linear layer and cross-entropy: checks,
 * the plan of chunks and workspace, the row-chunk loop, and both call
 * levels. The vocabulary-block loop is in linear_vocab.c, the steps
 * (GEMMs, small kernels) in linear_steps.c. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linear.h"

/* The context's release hook. */
static void linear_release(clloss_context *ctx, void *unused) {
  (void)unused;
  struct clloss__linear *lin = ctx->linear;
  if (!lin)
    return;
  for (int i = 0; i < LCE_BUFFERS; i++)
    if (lin->mem[i])
      clReleaseMemObject(lin->mem[i]);
  free(lin);
  ctx->linear = NULL;
}

struct clloss__linear *clloss__linear_of(clloss_context *ctx) {
  if (ctx->linear)
    return ctx->linear;
  if (clloss__context_on_release(ctx, linear_release, NULL) != CLLOSS_SUCCESS)
    return NULL;
  if (!(ctx->linear = calloc(1, sizeof *ctx->linear)))
    clloss__fail(ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                 "no host memory for linear_cross_entropy");
  return ctx->linear;
}

static int sixteen_bit(clloss_dtype t) {
  return t == CLLOSS_FLOAT16 || t == CLLOSS_BFLOAT16;
}

/* Sizes that may pass SIZE_MAX: the operations set *over instead of
 * wrapping around (and give SIZE_MAX). */
static size_t mul(int *over, size_t a, size_t b) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return *over = 1, SIZE_MAX;
  return r;
}

static size_t add(int *over, size_t a, size_t b) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r))
    return *over = 1, SIZE_MAX;
  return r;
}

/* Offsets of the workspace's parts: each starts on 64 reals. */
static size_t part(int *over, size_t *end, size_t reals) {
  size_t at = *end;
  *end = add(over, at, mul(over, add(over, reals, 63) / 64, 64));
  return at;
}

/* Rows per chunk when the caller chose none: the chunk's part of the
 * workspace gets workspace_limit minus the fixed part; by default, with
 * row chunks, the size of X in float32 (Liger's N H / V rows of logits)
 * but at least min_rows() rows, and with vocabulary blocks all rows (the
 * caller's block size bounds the workspace; every chunk reads all of W
 * twice). Chunks of fewer rows make GEMM slices that CLBlast runs with its
 * "direct" kernel, 2-3 times slower than its main one on PoCL (N = 2048,
 * H = 512, V = 32000: 64 and 128 rows took 1.2-1.7 times the unfused
 * path, 256 rows 1.07 times, README). A GPU needs more rows to fill its
 * compute units: on an H200 (same shape) 256 rows took 2.6 times the
 * unfused path, 1024 rows 1.05 times. */
static size_t min_rows(const clloss_context *ctx) {
  return (ctx->info.type & CL_DEVICE_TYPE_CPU) ? 256 : 1024;
}
static clloss_status auto_rows(clloss_context *ctx,
                               const clloss_linear_cross_entropy_desc *d,
                               size_t fixed, size_t per_row, size_t *rows) {
  const size_t N = d->ce.rows;
  size_t room;
  int over = 0; /* room beyond SIZE_MAX: SIZE_MAX is as good */
  if (d->workspace_limit) {
    if (d->workspace_limit < add(&over, fixed, per_row))
      return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                          "workspace_limit %zu bytes is less than the %zu "
                          "that a chunk of one row needs",
                          d->workspace_limit, fixed + per_row);
    room = d->workspace_limit - fixed;
  } else if (d->vocab_block) {
    room = mul(&over, N, per_row);
  } else {
    room = mul(&over, mul(&over, N, d->hidden), sizeof(float));
    const size_t least = mul(&over, min_rows(ctx), per_row);
    if (room < least)
      room = least;
  }
  size_t r = room / per_row;
  *rows = r < N ? r : N;
  return CLLOSS_SUCCESS;
}

/* Classes per GEMM slice with row chunks. CLBlast copies the operands its
 * kernel cannot take as they are (W transposed, a slice of the logits), so
 * a GEMM over all V classes would need V (H + R) reals beside the chunk's
 * R V: slices of about V R / (H + R) classes keep the copies near the
 * chunk's logits. Equal slices, multiples of 64 classes. */
static size_t gemm_slice(size_t V, size_t H, size_t R) {
  if (R == 0)
    return V;
  size_t slices = (H + R + R - 1) / R;
  size_t s = (V + slices - 1) / slices;
  s = (s + 63) / 64 * 64;
  return s < V ? s : V;
}

static clloss_status workspace_overflow(clloss_context *ctx) {
  return clloss__fail(ctx, CLLOSS_OUT_OF_DEVICE_MEMORY,
                      "the workspace of this call would exceed SIZE_MAX "
                      "bytes: give a smaller chunk_rows or vocab_block");
}

clloss_status clloss__lce_plan(clloss_context *ctx,
                               const clloss_linear_cross_entropy_desc *d,
                               int want_dx, int want_dw, int want_db,
                               int sharded, lce_plan *pl) {
  const size_t N = d->ce.rows, V = d->ce.classes, H = d->hidden;
  memset(pl, 0, sizeof *pl);
  pl->conv = sixteen_bit(d->ce.input_type);
  pl->prob = clloss__is_probability_target(d->ce.target_type);
  pl->want_dx = want_dx;
  pl->want_dw = want_dw;
  pl->want_db = want_db;
  pl->real = d->ce.input_type == CLLOSS_FLOAT64 ? 8 : 4;
  pl->block = d->vocab_block < V ? d->vocab_block : V;
  pl->blocks = pl->block ? (V + pl->block - 1) / pl->block : 0;
  pl->stats = pl->block > 0 || sharded;
  pl->cols = pl->block ? pl->block : pl->stats ? 1 : V;

  /* Reals per row of a chunk and reals that do not depend on the chunk
   * (rounding to 64 reals per part adds at most 64 each). CLBlast's copies
   * of GEMM operands come on top: with row chunks the GEMMs run on slices
   * of the vocabulary that keep them near the chunk's logits (counted
   * twice here), with blocks they copy about a block of W and of logits. */
  int over = 0;
  size_t per_row =
      add(&over,
          add(&over, 2 * pl->cols,
              pl->conv ? mul(&over, H, 1 + (size_t)want_dx) : 0),
          (pl->conv && pl->prob && !pl->stats ? V : 0) + (pl->stats ? 12 : 0) +
              (pl->stats && pl->prob ? pl->cols : 0) + 1);
  size_t fixed = add(
      &over,
      pl->conv ? add(&over, mul(&over, mul(&over, V, H), 1 + (size_t)want_dw),
                     want_db ? V : 0)
               : 0,
      add(&over, pl->block ? mul(&over, pl->block, H) : 0, 10 * 64 + 4));
  per_row = mul(&over, per_row, pl->real);
  fixed = add(&over, mul(&over, fixed, pl->real), 2 * sizeof(cl_uint));
  if (over)
    return workspace_overflow(ctx);
  if (d->chunk_rows)
    pl->rows = d->chunk_rows < N ? d->chunk_rows : N;
  else
    CLLOSS__TRY(auto_rows(ctx, d, fixed, per_row, &pl->rows));
  pl->chunks = pl->rows ? (N + pl->rows - 1) / pl->rows : 0;

  const size_t R = pl->rows;
  pl->slice = pl->block ? pl->block : gemm_slice(V, H, R);
  size_t end = 0;
  pl->logits = part(&over, &end, mul(&over, R, pl->cols));
  if (pl->conv) {
    pl->xc = part(&over, &end, mul(&over, R, H));
    pl->dxc = part(&over, &end, want_dx ? mul(&over, R, H) : 0);
    pl->wf = part(&over, &end, mul(&over, V, H));
    pl->dwf = part(&over, &end, want_dw ? mul(&over, V, H) : 0);
    pl->dbf = part(&over, &end, want_db ? V : 0);
  }
  /* Probability targets in the logits' type: a chunk's rows (row chunks,
   * 16-bit storage), or a block of them (vocabulary blocks: the shard
   * calls take the block's targets contiguous). */
  pl->tc = part(&over, &end,
                pl->prob && pl->stats  ? mul(&over, R, pl->cols)
                : pl->prob && pl->conv ? mul(&over, R, V)
                                       : 0);
  pl->ws = end;
  pl->bytes[LCE_WS] = mul(&over, end, pl->real);
  pl->bytes[LCE_SMALL] = 2 * pl->real;
  pl->bytes[LCE_SUMS] = mul(&over, pl->chunks ? pl->chunks : 1, pl->real);
  pl->bytes[LCE_REC] = pl->bytes[LCE_REC2] =
      pl->stats ? mul(&over, R ? R : 1, 6 * pl->real) : 0;
  pl->bytes[LCE_ERR_SAVE] = 2 * sizeof(cl_uint);
  pl->bytes[LCE_TEMP] = 0; /* measured by the sizing pass */
  pl->total = 0;
  for (int i = 0; i < LCE_TEMP; i++)
    pl->total = add(&over, pl->total, pl->bytes[i]);
  return over ? workspace_overflow(ctx) : CLLOSS_SUCCESS;
}

/* The caller's descriptor into *out, and what the device needs for it. */
clloss_status
clloss__lce_check_desc(clloss_context *ctx,
                       const clloss_linear_cross_entropy_desc *desc,
                       clloss_linear_cross_entropy_desc *out) {
  CLLOSS__TRY(clloss__check_linear_desc(desc, out, ctx->detail));
  CLLOSS__TRY(clloss__check_fp64(ctx, out->ce.input_type));
#ifndef CLLOSS_HAVE_CLBLAST
  return clloss__fail(ctx, CLLOSS_UNSUPPORTED,
                      "linear_cross_entropy needs CLBlast, and clloss was "
                      "built without it");
#else
  return CLLOSS_SUCCESS;
#endif
}

static clloss_status enqueue(lce_call *c);

/* The sizing pass: the call's loops without enqueueing anything, to learn
 * the largest temporary buffer CLBlast needs; then it joins the plan. */
static clloss_status size_temp(lce_call *c) {
  /* Before the first call the context has no buffers: the pass reads
   * none, but their handles (NULL) from an empty set. */
  struct clloss__linear none;
  struct clloss__linear *lin = c->lin;
  memset(&none, 0, sizeof none);
  if (!c->lin)
    c->lin = &none;
  c->sizing = 1;
  c->temp_bytes = 0;
  clloss_status s = enqueue(c);
  c->sizing = 0;
  c->lin = lin;
  c->pl.bytes[LCE_TEMP] = c->temp_bytes;
  if (s == CLLOSS_SUCCESS && c->pl.total > SIZE_MAX - c->temp_bytes)
    return workspace_overflow(c->l.ctx);
  c->pl.total += c->temp_bytes;
  return s;
}

clloss_status clloss_linear_cross_entropy_workspace_size(
    clloss_context *ctx, const clloss_linear_cross_entropy_desc *desc,
    int want_grad_input, int want_grad_weight, int want_grad_bias,
    size_t *bytes, size_t *chunk_rows) {
  if (!ctx)
    return CLLOSS_INVALID_ARGUMENT;
  if (!bytes && !chunk_rows)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "bytes and chunk_rows are NULL");
  clloss_linear_cross_entropy_desc d;
  CLLOSS__TRY(clloss__lce_check_desc(ctx, desc, &d));
  return clloss__lce_workspace(ctx, &d, want_grad_input, want_grad_weight,
                               want_grad_bias, bytes, chunk_rows);
}

clloss_status
clloss__lce_workspace(clloss_context *ctx,
                      const clloss_linear_cross_entropy_desc *checked,
                      int want_grad_input, int want_grad_weight,
                      int want_grad_bias, size_t *bytes, size_t *chunk_rows) {
  /* Buffers at offset 0: the offsets of a call's buffers can change what
   * CLBlast copies. */
  lce_call c;
  memset(&c, 0, sizeof c);
  c.dv = *checked;
  c.d = &c.dv;
  c.l.ctx = ctx;
  c.l.queue = ctx->queue;
  c.lin = ctx->linear;
  c.classes = c.dv.ce.classes;
  CLLOSS__TRY(clloss__lce_plan(ctx, c.d, want_grad_input != 0,
                               want_grad_weight != 0, want_grad_bias != 0, 0,
                               &c.pl));
  /* Only the chunk: no sizing pass through CLBlast. */
  if (bytes) {
    CLLOSS__TRY(size_temp(&c));
    *bytes = c.pl.total;
  }
  if (chunk_rows)
    *chunk_rows = c.pl.rows;
  ctx->detail[0] = '\0';
  return CLLOSS_SUCCESS;
}

/* Whether two buffers given with their element counts share bytes. */
static int overlap(clloss_buffer a, size_t an, size_t as, clloss_buffer b,
                   size_t bn, size_t bs) {
  if (!a.mem || a.mem != b.mem || !an || !bn)
    return 0;
  size_t a0 = a.offset * as, b0 = b.offset * bs;
  return a0 < b0 + bn * bs && b0 < a0 + an * as;
}

/* Buffer sizes, and outputs that overlap an input or each other. */
static clloss_status check_buffers(lce_call *c) {
  clloss_context *ctx = c->l.ctx;
  const clloss_cross_entropy_desc *d = &c->d->ce;
  const size_t N = d->rows, V = d->classes, H = c->d->hidden;
  const size_t st = clloss_dtype_size(d->input_type), real = c->pl.real;
  const size_t ts = clloss_dtype_size(d->target_type);
  const size_t lc = d->reduction == CLLOSS_REDUCTION_NONE ? N : 1;
  const size_t tn = c->pl.prob ? N * V : N;
  if (!c->loss.mem && !c->dx.mem && !c->dw.mem && !c->db.mem)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "no output is given (loss, grad_input, "
                        "grad_linear_weight, grad_linear_bias)");
  CLLOSS__TRY(clloss__check_buffer(ctx, "input", c->x, N * H, st, 1));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "linear_weight", c->w, V * H, st, V > 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "linear_bias", c->b, V, st, 0));
  /* An empty shard has no probabilities of its own. */
  CLLOSS__TRY(clloss__check_buffer(ctx, "target", c->t, tn, ts,
                                   !(c->pl.prob && V == 0)));
  CLLOSS__TRY(clloss__check_buffer(ctx, "weight", c->cw, V, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "grad_output", c->g, lc, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "loss", c->loss, lc, real, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "grad_input", c->dx, N * H, st, 0));
  CLLOSS__TRY(
      clloss__check_buffer(ctx, "grad_linear_weight", c->dw, V * H, st, 0));
  CLLOSS__TRY(clloss__check_buffer(ctx, "grad_linear_bias", c->db, V, st, 0));
  const struct {
    clloss_buffer b;
    size_t n, s;
  } in[] = {{c->x, N * H, st}, {c->w, V * H, st}, {c->b, V, st},
            {c->t, tn, ts},    {c->cw, V, real},  {c->g, lc, real}},
    out[] = {{c->loss, lc, real},
             {c->dx, N * H, st},
             {c->dw, V * H, st},
             {c->db, V, st}};
  for (size_t o = 0; o < 4; o++) {
    for (size_t i = 0; i < 6; i++)
      if (overlap(out[o].b, out[o].n, out[o].s, in[i].b, in[i].n, in[i].s))
        return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                            "an output overlaps an input");
    for (size_t j = o + 1; j < 4; j++)
      if (overlap(out[o].b, out[o].n, out[o].s, out[j].b, out[j].n, out[j].s))
        return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                            "two outputs overlap");
  }
  return CLLOSS_SUCCESS;
}

/* Grows the context's buffers to the plan. */
static clloss_status reserve(lce_call *c) {
  clloss_context *ctx = c->l.ctx;
  if (!(c->lin = clloss__linear_of(ctx)))
    return CLLOSS_OUT_OF_HOST_MEMORY;
  for (int i = 0; i <= LCE_TEMP; i++)
    if (c->pl.bytes[i] || i == LCE_TEMP) /* CLBlast always gets one */
      CLLOSS__TRY(clloss__reserve(ctx, &c->lin->mem[i], &c->lin->bytes[i],
                                  c->pl.bytes[i], 1));
  return CLLOSS_SUCCESS;
}

/* The first command: waits for the caller's wait list and for the previous
 * call on the context (which may still use the workspace). */
static clloss_status begin(lce_call *c) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  cl_event few[16], *all = few, prev = c->l.ctx->last_call;
  cl_uint n = c->l.num_events;
  if (n + 1 > sizeof few / sizeof *few &&
      !(all = malloc((n + 1) * sizeof *all)))
    return clloss__fail(c->l.ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "no host memory for the wait list");
  if (n)
    memcpy(all, c->l.wait_list, n * sizeof *all);
  if (prev && clloss__must_wait(prev, c->l.queue))
    all[n++] = prev;
  cl_event ev = NULL;
  cl_int err = clEnqueueMarkerWithWaitList(c->l.queue, n, n ? all : NULL, &ev);
  if (all != few)
    free(all);
  if (err != CL_SUCCESS)
    return clloss__fail(c->l.ctx, clloss__cl_status(err),
                        "enqueueing a marker failed");
  clloss__lce_chain(c, ev);
  cl_command_queue_properties props = 0;
  err = clGetCommandQueueInfo(c->l.queue, CL_QUEUE_PROPERTIES, sizeof props,
                              &props, NULL);
  c->in_order =
      err == CL_SUCCESS && !(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
  return CLLOSS_SUCCESS;
}

/* Copies the context's error word aside (restore 0) or back (1). */
static clloss_status error_word(lce_call *c, int restore) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  cl_mem err = c->l.ctx->err, saved = c->lin->mem[LCE_ERR_SAVE];
  cl_event ev = NULL;
  cl_int e = clEnqueueCopyBuffer(c->l.queue, restore ? saved : err,
                                 restore ? err : saved, 0, 0,
                                 2 * sizeof(cl_uint), 1, &c->l.last, &ev);
  if (e != CL_SUCCESS)
    return clloss__fail(c->l.ctx, clloss__cl_status(e),
                        "copying the error word failed");
  clloss__lce_chain(c, ev);
  return CLLOSS_SUCCESS;
}

/* Zeros `count` elements of `size` bytes of b. */
static clloss_status zero(lce_call *c, clloss_buffer b, size_t count,
                          size_t size) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  const cl_uchar nothing = 0;
  cl_event ev = NULL;
  cl_int err =
      clEnqueueFillBuffer(c->l.queue, b.mem, &nothing, 1, b.offset * size,
                          count * size, 1, &c->l.last, &ev);
  if (err != CL_SUCCESS)
    return clloss__fail(c->l.ctx, clloss__cl_status(err),
                        "zeroing a gradient failed");
  clloss__lce_chain(c, ev);
  return CLLOSS_SUCCESS;
}

/* One chunk of rows [r0, r0 + rows) with row chunks: its logits, slice by
 * slice of the vocabulary (gemm_slice), cross_entropy in place over whole
 * rows, then dX (summed over the slices), dW and db of each slice. */
static clloss_status row_chunk(lce_call *c, size_t k, size_t r0, size_t rows,
                               clloss_buffer xrows, clloss_buffer wm) {
  const lce_plan *pl = &c->pl;
  const size_t V = c->d->ce.classes, H = c->d->hidden;
  clloss_buffer z = clloss__lce_ws(c, LCE_WS, pl->logits);
  for (size_t s0 = 0; s0 < V; s0 = clloss__lce_step(c, s0, pl->slice, V)) {
    const size_t vs = V - s0 < pl->slice ? V - s0 : pl->slice;
    CLLOSS__TRY(clloss__lce_gemm(c, 0, 1, rows, vs, H, xrows, H,
                                 clloss__lce_at(wm, s0 * H), H, 0.0,
                                 clloss__lce_at(z, s0), V));
  }
  if (c->b.mem)
    CLLOSS__TRY(clloss__lce_add_bias(c, z, rows, V, V, c->b));
  clloss_buffer target = clloss__lce_at(c->t, pl->prob ? r0 * V : r0);
  if (pl->prob && pl->conv) {
    clloss_buffer tc = clloss__lce_ws(c, LCE_WS, pl->tc);
    CLLOSS__TRY(clloss__lce_convert(c, 1, target, V, tc, V, rows, V));
    target = tc;
  }
  CLLOSS__TRY(clloss__lce_chunk_ce(c, k, r0, rows, target));
  /* dX of the chunk: summed over the slices, onto the caller's dX when
   * accumulating (ce.accumulate); in float32 for 16-bit storage. */
  const int dx_acc = c->d->ce.accumulate;
  const clloss_buffer dx = clloss__lce_at(c->dx, r0 * H);
  const clloss_buffer dxr = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dxc) : dx;
  if (pl->want_dx && pl->conv && dx_acc)
    CLLOSS__TRY(clloss__lce_convert(c, 1, dx, H, dxr, H, rows, H));
  const clloss_buffer dw =
      pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dwf) : c->dw;
  const double dw_beta =
      k == 0 && !c->d->accumulate_grad_linear_weight ? 0.0 : 1.0;
  for (size_t s0 = 0; s0 < V; s0 = clloss__lce_step(c, s0, pl->slice, V)) {
    const size_t vs = V - s0 < pl->slice ? V - s0 : pl->slice;
    const clloss_buffer zs = clloss__lce_at(z, s0);
    if (pl->want_dx)
      CLLOSS__TRY(clloss__lce_gemm(c, 0, 0, rows, H, vs, zs, V,
                                   clloss__lce_at(wm, s0 * H), H,
                                   s0 == 0 && !dx_acc ? 0.0 : 1.0, dxr, H));
    if (pl->want_dw)
      CLLOSS__TRY(clloss__lce_gemm(c, 1, 0, vs, H, rows, zs, V, xrows, H,
                                   dw_beta, clloss__lce_at(dw, s0 * H), H));
  }
  if (pl->want_dx && pl->conv)
    CLLOSS__TRY(clloss__lce_convert(c, 0, dx, H, dxr, H, rows, H));
  if (pl->want_db) {
    clloss_buffer db = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->dbf) : c->db;
    CLLOSS__TRY(clloss__lce_column_sum(c, z, rows, V, V, db,
                                       k > 0 || c->d->accumulate_grad_bias));
  }
  return CLLOSS_SUCCESS;
}

/* n contiguous elements between the storage type and real. */
static clloss_status convert(lce_call *c, int to_real, clloss_buffer st,
                             size_t part, size_t n) {
  return clloss__lce_convert(c, to_real, st, n, clloss__lce_ws(c, LCE_WS, part),
                             n, 1, n);
}

/* 16-bit storage: W, and the gradients to accumulate into, in float32. */
static clloss_status convert_in(lce_call *c) {
  const lce_plan *pl = &c->pl;
  const size_t V = c->d->ce.classes, H = c->d->hidden;
  CLLOSS__TRY(convert(c, 1, c->w, pl->wf, V * H));
  if (pl->want_dw && c->d->accumulate_grad_linear_weight)
    CLLOSS__TRY(convert(c, 1, c->dw, pl->dwf, V * H));
  if (pl->want_db && c->d->accumulate_grad_bias)
    CLLOSS__TRY(convert(c, 1, c->db, pl->dbf, V));
  return CLLOSS_SUCCESS;
}

/* ...and the accumulated gradients back, rounded once. */
static clloss_status convert_out(lce_call *c) {
  const lce_plan *pl = &c->pl;
  const size_t V = c->d->ce.classes, H = c->d->hidden;
  if (pl->want_dw)
    CLLOSS__TRY(convert(c, 0, c->dw, pl->dwf, V * H));
  if (pl->want_db)
    CLLOSS__TRY(convert(c, 0, c->db, pl->dbf, V));
  return CLLOSS_SUCCESS;
}

/* No rows: the weight and bias gradients are 0 unless accumulated. */
static clloss_status no_rows(lce_call *c) {
  const size_t V = c->d->ce.classes, H = c->d->hidden;
  const size_t st = clloss_dtype_size(c->d->ce.input_type);
  if (c->pl.want_dw && !c->d->accumulate_grad_linear_weight)
    CLLOSS__TRY(zero(c, c->dw, V * H, st));
  if (c->pl.want_db && !c->d->accumulate_grad_bias)
    CLLOSS__TRY(zero(c, c->db, V, st));
  return CLLOSS_SUCCESS;
}

static clloss_status enqueue(lce_call *c) {
  const lce_plan *pl = &c->pl;
  const clloss_cross_entropy_desc *d = &c->d->ce;
  const size_t N = d->rows, H = c->d->hidden;
  const int grad = pl->want_dx || pl->want_dw || pl->want_db;
  CLLOSS__TRY(begin(c));
  /* Index targets: the weight sum D over all rows, and bad targets reported
   * with their row in X. The chunks' cross_entropy calls report rows of
   * their chunk, so the error word is kept aside while they run. */
  if (!pl->prob) {
    CLLOSS__TRY(error_word(c, 0));
    CLLOSS__TRY(clloss__lce_weight_sum(c));
  }
  /* A shard: the weight sums of all shards, always exchanged first. */
  CLLOSS__TRY(clloss__lce_exchange(
      c, CLLOSS_EXCHANGE_SUM, clloss__lce_ws(c, LCE_SMALL, 0), 1, pl->prob));
  if (grad && d->reduction != CLLOSS_REDUCTION_NONE)
    CLLOSS__TRY(clloss__lce_scale(c));
  const int empty = pl->stats && !pl->blocks; /* an empty shard */
  if (empty && N && pl->want_dx && !d->accumulate)
    CLLOSS__TRY(zero(c, c->dx, N * H, clloss_dtype_size(d->input_type)));
  if (N == 0)
    CLLOSS__TRY(no_rows(c));
  else if (pl->conv && !empty)
    CLLOSS__TRY(convert_in(c));
  clloss_buffer wm = pl->conv ? clloss__lce_ws(c, LCE_WS, pl->wf) : c->w;
  for (size_t k = 0; k < pl->chunks;
       k = clloss__lce_step(c, k, 1, pl->chunks)) {
    const size_t r0 = k * pl->rows;
    const size_t rows = N - r0 < pl->rows ? N - r0 : pl->rows;
    clloss_buffer xrows = clloss__lce_at(c->x, r0 * H);
    if (pl->conv) {
      clloss_buffer xc = clloss__lce_ws(c, LCE_WS, pl->xc);
      CLLOSS__TRY(clloss__lce_convert(c, 1, xrows, H, xc, H, rows, H));
      xrows = xc;
    }
    if (pl->stats)
      CLLOSS__TRY(clloss__lce_vocab_chunk(c, k, r0, rows, xrows, wm));
    else
      CLLOSS__TRY(row_chunk(c, k, r0, rows, xrows, wm));
  }
  if (N > 0 && pl->conv && !empty)
    CLLOSS__TRY(convert_out(c));
  if (c->loss.mem && d->reduction != CLLOSS_REDUCTION_NONE)
    CLLOSS__TRY(clloss__lce_sum(c, clloss__lce_ws(c, LCE_SUMS, 0), pl->chunks,
                                1, c->loss));
  if (!pl->prob)
    CLLOSS__TRY(error_word(c, 1));
  return CLLOSS_SUCCESS;
}

/* A call's start: no event yet, the descriptor checked into c (a whole
 * call: classes V). */
static clloss_status open_call(clloss_context *ctx,
                               const clloss_linear_cross_entropy_desc *desc,
                               lce_call *c, cl_event *event) {
  CLLOSS__TRY(clloss__enter_call(ctx, event));
  memset(c, 0, sizeof *c);
  CLLOSS__TRY(clloss__lce_check_desc(ctx, desc, &c->dv));
  c->l.ctx = ctx;
  c->classes = c->dv.ce.classes;
  return CLLOSS_SUCCESS;
}

/* The call of *c (descriptor checked, shard set) on these buffers. */
static clloss_status run_call(lce_call *c, cl_command_queue queue,
                              const clloss_buffer bufs[10], cl_uint num_events,
                              const cl_event *wait_list, cl_event *event) {
  clloss_context *ctx = c->l.ctx;
  c->d = &c->dv;
  c->x = bufs[0], c->w = bufs[1], c->b = bufs[2], c->t = bufs[3];
  c->cw = bufs[4], c->g = bufs[5], c->loss = bufs[6], c->dx = bufs[7];
  c->dw = bufs[8], c->db = bufs[9];
  CLLOSS__TRY(clloss__lce_plan(ctx, c->d, c->dx.mem != NULL, c->dw.mem != NULL,
                               c->db.mem != NULL, c->ex != NULL, &c->pl));
  CLLOSS__TRY(check_buffers(c));
  CLLOSS__TRY(clloss__launch_begin(&c->l, ctx, queue, num_events, wait_list));
  CLLOSS__TRY(size_temp(c));
  CLLOSS__TRY(reserve(c));
  CLLOSS__TRY(clloss__lce_program(c));
  return clloss__launch_end(&c->l, enqueue(c), event);
}

clloss_status
clloss__lce_call_device(clloss_context *ctx, cl_command_queue queue,
                        const clloss_linear_cross_entropy_desc *checked,
                        const clloss_buffer bufs[10], cl_uint num_events,
                        const cl_event *wait_list, cl_event *event) {
  lce_call c;
  memset(&c, 0, sizeof c);
  c.dv = *checked;
  c.l.ctx = ctx;
  c.classes = c.dv.ce.classes;
  return run_call(&c, queue, bufs, num_events, wait_list, event);
}

clloss_status clloss_linear_cross_entropy(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, clloss_buffer input,
    clloss_buffer linear_weight, clloss_buffer linear_bias,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input,
    clloss_buffer grad_linear_weight, clloss_buffer grad_linear_bias,
    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
  lce_call c;
  CLLOSS__TRY(open_call(ctx, desc, &c, event));
  const clloss_buffer bufs[10] = {input,
                                  linear_weight,
                                  linear_bias,
                                  target,
                                  weight,
                                  grad_output,
                                  loss,
                                  grad_input,
                                  grad_linear_weight,
                                  grad_linear_bias};
  return run_call(&c, queue, bufs, num_events, wait_list, event);
}

/* A shard's descriptor: the whole problem's checked, then its own classes,
 * blocks and chunks (those of the whole problem, so that every shard makes
 * the same exchanges). */
static clloss_status shard_desc(clloss_context *ctx, const clloss_shard *shard,
                                const clloss_linear_exchange *ex, lce_call *c) {
  clloss_linear_cross_entropy_desc *d = &c->dv;
  const size_t V = d->ce.classes;
  if (!shard || !ex || !ex->exchange)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "shard, exchange and exchange->exchange are "
                        "required");
  if (shard->class_offset > V || shard->classes > V - shard->class_offset)
    return clloss__fail(ctx, CLLOSS_INVALID_ARGUMENT,
                        "the shard [%zu, %zu + %zu) is not within the %zu "
                        "classes",
                        shard->class_offset, shard->class_offset,
                        shard->classes, V);
  if (!d->chunk_rows && d->ce.rows) {
    lce_plan whole;
    CLLOSS__TRY(clloss__lce_plan(ctx, d, 1, 1, 1, 0, &whole));
    d->chunk_rows = whole.rows;
  }
  const size_t own = shard->classes;
  d->vocab_block =
      d->vocab_block && d->vocab_block < own ? d->vocab_block : own;
  d->ce.classes = own;
  c->ex = ex;
  c->offset = shard->class_offset;
  c->classes = V;
  return CLLOSS_SUCCESS;
}

clloss_status clloss_linear_cross_entropy_shard(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    const clloss_linear_exchange *exchange, clloss_buffer input,
    clloss_buffer linear_weight, clloss_buffer linear_bias,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input,
    clloss_buffer grad_linear_weight, clloss_buffer grad_linear_bias,
    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
  lce_call c;
  CLLOSS__TRY(open_call(ctx, desc, &c, event));
  CLLOSS__TRY(shard_desc(ctx, shard, exchange, &c));
  /* An empty shard has no weight rows, so no weight or bias gradient. */
  const int own = shard->classes > 0;
  const clloss_buffer bufs[10] = {input,
                                  linear_weight,
                                  linear_bias,
                                  target,
                                  weight,
                                  grad_output,
                                  loss,
                                  grad_input,
                                  own ? grad_linear_weight : CLLOSS_BUFFER_NONE,
                                  own ? grad_linear_bias : CLLOSS_BUFFER_NONE};
  return run_call(&c, queue, bufs, num_events, wait_list, event);
}
