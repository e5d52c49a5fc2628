/* linear_steps.c - the steps linear_cross_entropy's loops are made of:
 * CLBlast GEMMs chained on the call's queue, the small kernels of
 * kernels/linear_cross_entropy.cl, cross_entropy on a chunk of logits and
 * the final sums. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_args.h"
#include "linear.h"

#ifdef CLLOSS_HAVE_CLBLAST
#include <clblast_c.h>
#endif

enum { K_ADD_BIAS, K_COLUMN_SUM, K_CONVERT, K_WEIGHT_SUM, K_SCALE, K_SUM };
static const char *const lce_kernels[] = {
    "lce_add_bias", "lce_column_sum", "lce_convert", "lce_weight_sum",
    "lce_scale",    "lce_sum",        NULL};

/* The program of kernels/linear_cross_entropy.cl for this call. Fetched
 * for each launch: the context's program table may move when a
 * cross_entropy call in between builds one. */
static clloss_status program(lce_call *c, clloss__program **p) {
  clloss__program_key key = clloss__lce_program_key(c->l.ctx, c->d);
  return clloss__get_program(c->l.ctx, &key, lce_kernels, p);
}

clloss_status clloss__lce_program(lce_call *c) {
  clloss__program *p;
  return program(c, &p);
}
clloss_buffer clloss__lce_ws(const lce_call *c, int which, size_t at) {
  clloss_buffer b = {c->lin->mem[which], at};
  return b;
}

size_t clloss__lce_step(const lce_call *c, size_t at, size_t step, size_t n) {
  const size_t last = (n - 1) / step * step;
  if (c->sizing && at == step && last > 2 * step)
    return last;
  return at + step;
}

clloss_buffer clloss__lce_at(clloss_buffer b, size_t elements) {
  b.offset += elements;
  return b;
}

void clloss__lce_chain(lce_call *c, cl_event ev) {
  if (c->l.last)
    clReleaseEvent(c->l.last);
  c->l.last = ev;
}

#ifdef CLLOSS_HAVE_CLBLAST
/* CLBlast's status as ours: OpenCL's codes pass through, its own become
 * CLLOSS_UNSUPPORTED (the detail gives the number). */
static clloss_status blas_status(lce_call *c, int s, const char *what, size_t m,
                                 size_t n, size_t k) {
  clloss_status st = s > -1000 ? clloss__cl_status(s) : CLLOSS_UNSUPPORTED;
  return clloss__fail(c->l.ctx, st,
                      "CLBlast %s (%zu x %zu x %zu) failed with CLBlast "
                      "status %d",
                      what, m, n, k, s);
}
#endif

#ifdef CLLOSS_HAVE_CLBLAST
/* Bytes of the temporary buffer CLBlast needs for one column-major GEMM
 * (copies of the operands its kernel cannot take as they are), or an
 * error. */
static clloss_status temp_bytes(lce_call *c, CLBlastTranspose ta,
                                CLBlastTranspose tb, size_t m, size_t n,
                                size_t k, clloss_buffer a, size_t lda,
                                clloss_buffer b, size_t ldb, clloss_buffer out,
                                size_t ldc, size_t *bytes) {
  cl_command_queue q = c->l.queue;
  CLBlastStatusCode s =
      c->pl.real == 8
          ? CLBlastDGemmTempBufferSize(CLBlastLayoutColMajor, ta, tb, m, n, k,
                                       a.offset, lda, b.offset, ldb, out.offset,
                                       ldc, &q, bytes)
          : CLBlastSGemmTempBufferSize(CLBlastLayoutColMajor, ta, tb, m, n, k,
                                       a.offset, lda, b.offset, ldb, out.offset,
                                       ldc, &q, bytes);
  return s == CLBlastSuccess ? CLLOSS_SUCCESS
                             : blas_status(c, s, "GemmTempBufferSize", m, n, k);
}
#endif

clloss_status clloss__lce_gemm(lce_call *c, int t_a, int t_b, size_t m,
                               size_t n, size_t k, clloss_buffer a, size_t lda,
                               clloss_buffer b, size_t ldb, double beta,
                               clloss_buffer out, size_t ldc) {
#ifdef CLLOSS_HAVE_CLBLAST
  if (m == 0 || n == 0 || k == 0)
    return CLLOSS_SUCCESS; /* the plan never asks for these */
  /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. In
   * column-major CLBlast's GEMM kernel takes C as it is, and dW's GEMM
   * needs no copy at all; in row-major it copies C every time. */
  const CLBlastTranspose ta = t_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose tb = t_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  size_t bytes = 0;
  CLLOSS__TRY(temp_bytes(c, ta, tb, n, m, k, b, ldb, a, lda, out, ldc, &bytes));
  /* The sizing pass only measures the copies; the real one hands CLBlast
   * LCE_TEMP, grown to the largest, instead of letting it allocate. */
  if (c->sizing) {
    if (bytes > c->temp_bytes)
      c->temp_bytes = bytes;
    return CLLOSS_SUCCESS;
  }
  /* CLBlast takes no wait list: on an out-of-order queue a barrier makes
   * its kernels wait for our last command. */
  if (!c->in_order) {
    cl_int err = clEnqueueBarrierWithWaitList(c->l.queue, 1, &c->l.last, NULL);
    if (err != CL_SUCCESS)
      return clloss__fail(c->l.ctx, clloss__cl_status(err),
                          "enqueueing a barrier failed");
  }
  cl_command_queue q = c->l.queue;
  cl_mem temp = c->lin->mem[LCE_TEMP];
  cl_event ev = NULL;
  CLBlastStatusCode s;
  if (c->pl.real == sizeof(double))
    s = CLBlastDgemmWithTempBuffer(
        CLBlastLayoutColMajor, ta, tb, n, m, k, 1.0, b.mem, b.offset, ldb,
        a.mem, a.offset, lda, beta, out.mem, out.offset, ldc, &q, &ev, temp);
  else
    s = CLBlastSgemmWithTempBuffer(CLBlastLayoutColMajor, ta, tb, n, m, k, 1.0f,
                                   b.mem, b.offset, ldb, a.mem, a.offset, lda,
                                   (float)beta, out.mem, out.offset, ldc, &q,
                                   &ev, temp);
  if (s != CLBlastSuccess)
    return blas_status(c, s, c->pl.real == 8 ? "Dgemm" : "Sgemm", m, n, k);
  clloss__lce_chain(c, ev);
  return CLLOSS_SUCCESS;
#else
  (void)t_a, (void)t_b, (void)m, (void)n, (void)k, (void)a, (void)lda;
  (void)b, (void)ldb, (void)beta, (void)out, (void)ldc;
  return clloss__fail(c->l.ctx, CLLOSS_UNSUPPORTED,
                      "clloss was built without CLBlast");
#endif
}

/* Enqueues kernel k with buffers mems[0..n) and scalars p over `items`
 * work-items (grid-stride loops inside), or one work-group (items 0). */
static clloss_status run(lce_call *c, int k, const cl_mem *mems, cl_uint n,
                         const lce_params *p, size_t items) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  clloss__program *prog;
  CLLOSS__TRY(program(c, &prog));
  cl_int err = clloss__set_kernel_args(prog->kernels[k], mems, n,
                                       c->l.ctx->dummy, p, sizeof *p, 0);
  if (err != CL_SUCCESS)
    return clloss__fail(c->l.ctx, err, "setting %s arguments failed",
                        prog->names[k]);
  size_t local = clloss__group_local_size(c->l.ctx, prog->max_wg[k]);
  size_t groups = (items + local - 1) / local;
  if (groups > 4096)
    groups = 4096;
  if (groups == 0)
    groups = 1;
  return clloss__launch_kernel(&c->l, prog->kernels[k], groups * local, local);
}

clloss_status clloss__lce_add_bias(lce_call *c, clloss_buffer z, size_t rows,
                                   size_t cols, size_t ldz, clloss_buffer b) {
  const cl_mem mems[2] = {z.mem, b.mem};
  const lce_params p = {.a_off = z.offset,
                        .b_off = b.offset,
                        .rows = rows,
                        .cols = cols,
                        .lda = ldz};
  return run(c, K_ADD_BIAS, mems, 2, &p, rows * cols);
}

clloss_status clloss__lce_column_sum(lce_call *c, clloss_buffer z, size_t rows,
                                     size_t cols, size_t ldz, clloss_buffer acc,
                                     int accumulate) {
  const cl_mem mems[2] = {z.mem, acc.mem};
  const lce_params p = {.a_off = z.offset,
                        .b_off = acc.offset,
                        .rows = rows,
                        .cols = cols,
                        .lda = ldz,
                        .flag = accumulate};
  return run(c, K_COLUMN_SUM, mems, 2, &p, cols);
}

clloss_status clloss__lce_convert(lce_call *c, int to_real, clloss_buffer st,
                                  size_t ld_st, clloss_buffer r, size_t ld_r,
                                  size_t rows, size_t cols) {
  const cl_mem mems[2] = {st.mem, r.mem};
  const lce_params p = {.a_off = st.offset,
                        .b_off = r.offset,
                        .rows = rows,
                        .cols = cols,
                        .lda = ld_st,
                        .ldb = ld_r,
                        .flag = to_real};
  return run(c, K_CONVERT, mems, 2, &p, rows * cols);
}

/* The divisor of the loss's reduction: mode and values for lce_params. */
static void divisor(const lce_call *c, lce_params *p) {
  const clloss_cross_entropy_desc *d = &c->d->ce;
  /* The normalizer when > 0, else N for probability targets, else D. */
  p->mode = clloss__divide_mode(d->reduction == CLLOSS_REDUCTION_MEAN,
                                d->normalizer > 0.0f || c->pl.prob);
  if (p->mode == CLLOSS_DIVIDE_NONE)
    return;
  p->fdiv = d->normalizer;
  p->idiv = d->rows;
}

clloss_status clloss__lce_weight_sum(lce_call *c) {
  const clloss_cross_entropy_desc *d = &c->d->ce;
  const cl_mem mems[4] = {c->t.mem, c->cw.mem, c->lin->mem[LCE_SMALL],
                          c->lin->mem[LCE_ERR_SAVE]};
  /* A shard sums over the rows whose target is one of its classes. */
  const lce_params p = {.a_off = c->t.offset,
                        .b_off = c->cw.offset,
                        .rows = d->rows,
                        .cols = c->classes,
                        .lda = c->offset,
                        .ldb = d->classes,
                        .ignore = d->ignore_index,
                        .flag = c->cw.mem != NULL};
  return run(c, K_WEIGHT_SUM, mems, 4, &p, 0);
}

clloss_status clloss__lce_scale(lce_call *c) {
  const cl_mem mems[3] = {c->g.mem, c->lin->mem[LCE_SMALL],
                          c->lin->mem[LCE_SMALL]};
  lce_params p = {.a_off = c->g.offset, .b_off = 1, .flag = c->g.mem != NULL};
  divisor(c, &p);
  return run(c, K_SCALE, mems, 3, &p, 1);
}

clloss_status clloss__lce_sum(lce_call *c, clloss_buffer in, size_t count,
                              int divide, clloss_buffer out) {
  const cl_mem mems[3] = {in.mem, c->lin->mem[LCE_SMALL], out.mem};
  lce_params p = {.a_off = in.offset, .b_off = out.offset, .rows = count};
  if (divide)
    divisor(c, &p);
  return run(c, K_SUM, mems, 3, &p, 0);
}

clloss_cross_entropy_desc clloss__lce_chunk_desc(const lce_call *c,
                                                 size_t rows) {
  clloss_cross_entropy_desc ce = c->d->ce;
  ce.rows = rows;
  ce.classes = c->classes; /* the whole V, for a shard too */
  ce.input_type = c->pl.real == 8 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  if (c->pl.prob)
    ce.target_type = ce.input_type;
  if (ce.reduction != CLLOSS_REDUCTION_NONE)
    ce.reduction = CLLOSS_REDUCTION_SUM;
  ce.normalizer = 0.0f;
  ce.accumulate = 0; /* in place; dX accumulates in its GEMM */
  return ce;
}

clloss_status clloss__lce_chunk_ce(lce_call *c, size_t k, size_t r0,
                                   size_t rows, clloss_buffer target) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  const int none = c->d->ce.reduction == CLLOSS_REDUCTION_NONE;
  const int grad = c->pl.want_dx || c->pl.want_dw || c->pl.want_db;
  const clloss_cross_entropy_desc ce = clloss__lce_chunk_desc(c, rows);
  clloss_buffer logits = clloss__lce_ws(c, LCE_WS, c->pl.logits);
  clloss_buffer g = CLLOSS_BUFFER_NONE, loss = CLLOSS_BUFFER_NONE;
  if (grad)
    g = none ? (c->g.mem ? clloss__lce_at(c->g, r0) : CLLOSS_BUFFER_NONE)
             : clloss__lce_ws(c, LCE_SMALL, 1);
  if (c->loss.mem)
    loss = none ? clloss__lce_at(c->loss, r0) : clloss__lce_ws(c, LCE_SUMS, k);
  cl_event ev = NULL;
  clloss_status s = clloss_cross_entropy(
      c->l.ctx, c->l.queue, &ce, logits, target, c->cw, g, loss,
      grad ? logits : CLLOSS_BUFFER_NONE, 1, &c->l.last, &ev);
  if (s != CLLOSS_SUCCESS)
    return s;
  clloss__lce_chain(c, ev);
  return CLLOSS_SUCCESS;
}

clloss_status clloss__lce_exchange(lce_call *c, clloss_exchange_kind kind,
                                   clloss_buffer buf, size_t count, int empty) {
  if (c->sizing || !c->ex)
    return CLLOSS_SUCCESS;
  const size_t real = c->pl.real;
  const size_t bytes = count * real * (kind == CLLOSS_EXCHANGE_RECORDS ? 6 : 1);
  unsigned char *host = malloc(bytes ? bytes : 1);
  if (!host)
    return clloss__fail(c->l.ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "no host memory for %zu bytes to exchange", bytes);
  cl_int err = CL_SUCCESS;
  if (empty && kind == CLLOSS_EXCHANGE_SUM) {
    memset(host, 0, bytes);
  } else if (empty) {
    for (size_t i = 0; i < count; i++) {
      const clloss_ce_stats s = {-FLT_MAX, 0, 0, 0, 0, 0};
      const clloss_ce_stats64 s64 = {-DBL_MAX, 0, 0, 0, 0, 0};
      if (real == 8)
        memcpy(host + i * sizeof s64, &s64, sizeof s64);
      else
        memcpy(host + i * sizeof s, &s, sizeof s);
    }
  } else if (bytes) {
    err = clEnqueueReadBuffer(c->l.queue, buf.mem, CL_TRUE, buf.offset * real,
                              bytes, host, 1, &c->l.last, NULL);
  }
  clloss_status s = CLLOSS_SUCCESS;
  if (err != CL_SUCCESS)
    s = clloss__fail(c->l.ctx, clloss__cl_status(err),
                     "reading the values to exchange failed");
  else if ((s = c->ex->exchange(c->ex->user, kind, host, count)) !=
           CLLOSS_SUCCESS)
    ; /* the exchange's own status and detail stand */
  /* Written before the next command is enqueued: it waits for nothing. */
  else if (bytes && (err = clEnqueueWriteBuffer(c->l.queue, buf.mem, CL_TRUE,
                                                buf.offset * real, bytes, host,
                                                0, NULL, NULL)) != CL_SUCCESS)
    s = clloss__fail(c->l.ctx, clloss__cl_status(err),
                     "writing the exchanged values failed");
  free(host);
  return s;
}
