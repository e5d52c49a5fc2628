/* linear_steps.c - the steps linear_cross_entropy's loops are made of:
 * CLBlast GEMMs chained on the call's queue, the small kernels of
 * kernels/linear_cross_entropy.cl, cross_entropy on a chunk of logits and
 * the final sums. */
#include "linear.h"

#ifdef CLLOSS_HAVE_CLBLAST
#include <clblast_c.h>
#endif

enum { K_ADD_BIAS, K_COLUMN_SUM, K_CONVERT, K_SCALE, K_TARGETS, K_FINISH };
static const char *const lce_kernels[] = {
    "lce_add_bias",  "lce_column_sum", "lce_convert", "lce_scale",
    "class_targets", "finish_sum",     NULL};

clloss_status clloss__lce_program(lce_call *c) {
  const clloss_cross_entropy_desc *d = &c->d->ce;
  clloss__program_key key = {.source = "linear_cross_entropy",
                             .in_type = (int)d->input_type,
                             .tgt_type = c->pl.prob ? CLLOSS_INT64
                                                    : (int)d->target_type,
                             .vw = 1};
  return clloss__get_program(c->l.ctx, &key, lce_kernels, &c->p);
}

clloss_buffer clloss__lce_ws(const lce_call *c, int which, size_t at) {
  clloss_buffer b = {c->lin->mem[which], at};
  return b;
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

/* Enqueues kernel `k` over `items` work-items (grid-stride loops inside). */
static clloss_status run(lce_call *c, int k, clloss__args *a, size_t items) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  if (a->err != CL_SUCCESS)
    return clloss__fail(c->l.ctx, a->err, "setting %s arguments failed",
                        c->p->names[k]);
  size_t local = clloss__group_local_size(c->l.ctx, c->p->max_wg[k]);
  size_t groups = (items + local - 1) / local;
  if (groups > 4096)
    groups = 4096;
  if (groups == 0)
    groups = 1;
  return clloss__launch_kernel(&c->l, c->p->kernels[k], groups * local, local);
}

/* Arguments of kernel k; in the sizing pass (no program yet) none are set
 * and run() enqueues nothing. */
static clloss__args args(const lce_call *c, int k) {
  clloss__args a = {c->sizing ? NULL : c->p->kernels[k], 0,
                    c->sizing ? CL_INVALID_KERNEL : CL_SUCCESS,
                    c->pl.real == 8};
  return a;
}

clloss_status clloss__lce_add_bias(lce_call *c, clloss_buffer z, size_t rows,
                                   size_t cols, size_t ldz, clloss_buffer b) {
  clloss__args a = args(c, K_ADD_BIAS);
  clloss__arg_mem(&a, z.mem);
  clloss__arg_ulong(&a, z.offset);
  clloss__arg_ulong(&a, rows);
  clloss__arg_ulong(&a, cols);
  clloss__arg_ulong(&a, ldz);
  clloss__arg_mem(&a, b.mem);
  clloss__arg_ulong(&a, b.offset);
  return run(c, K_ADD_BIAS, &a, rows * cols);
}

clloss_status clloss__lce_column_sum(lce_call *c, clloss_buffer z, size_t rows,
                                     size_t cols, size_t ldz, clloss_buffer acc,
                                     int accumulate) {
  clloss__args a = args(c, K_COLUMN_SUM);
  clloss__arg_mem(&a, z.mem);
  clloss__arg_ulong(&a, z.offset);
  clloss__arg_ulong(&a, rows);
  clloss__arg_ulong(&a, cols);
  clloss__arg_ulong(&a, ldz);
  clloss__arg_mem(&a, acc.mem);
  clloss__arg_ulong(&a, acc.offset);
  clloss__arg_int(&a, accumulate);
  return run(c, K_COLUMN_SUM, &a, cols);
}

clloss_status clloss__lce_convert(lce_call *c, int to_real, clloss_buffer src,
                                  clloss_buffer dst, size_t n) {
  clloss_buffer st = to_real ? src : dst, r = to_real ? dst : src;
  clloss__args a = args(c, K_CONVERT);
  clloss__arg_mem(&a, st.mem);
  clloss__arg_ulong(&a, st.offset);
  clloss__arg_mem(&a, r.mem);
  clloss__arg_ulong(&a, r.offset);
  clloss__arg_ulong(&a, n);
  clloss__arg_int(&a, to_real);
  return run(c, K_CONVERT, &a, n);
}

int clloss__lce_mean_mode(const lce_call *c, double *divisor) {
  const clloss_cross_entropy_desc *d = &c->d->ce;
  *divisor = 1.0;
  if (d->reduction != CLLOSS_REDUCTION_MEAN)
    return 0;
  if (d->normalizer > 0.0f || c->pl.prob) {
    *divisor = d->normalizer > 0.0f ? (double)d->normalizer : (double)d->rows;
    return 1;
  }
  return 2;
}

clloss_status clloss__lce_weight_sum(lce_call *c) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  const clloss_cross_entropy_desc *d = &c->d->ce;
  clloss__args a = args(c, K_TARGETS);
  clloss__arg_mem(&a, c->t.mem);
  clloss__arg_ulong(&a, c->t.offset);
  clloss__arg_ulong(&a, d->rows);
  clloss__arg_ulong(&a, d->classes);
  clloss__arg_long(&a, d->ignore_index);
  clloss__arg_mem(&a, clloss__mem_or_dummy(c->l.ctx, c->cw));
  clloss__arg_ulong(&a, c->cw.offset);
  clloss__arg_int(&a, c->cw.mem != NULL);
  clloss__arg_mem(&a, c->lin->mem[LCE_SMALL]);
  clloss__arg_mem(&a, c->lin->mem[LCE_ERR_SAVE]);
  if (a.err != CL_SUCCESS)
    return clloss__fail(c->l.ctx, a.err,
                        "setting class_targets arguments "
                        "failed");
  size_t local = clloss__group_local_size(c->l.ctx, c->p->max_wg[K_TARGETS]);
  return clloss__launch_kernel(&c->l, c->p->kernels[K_TARGETS], local, local);
}

clloss_status clloss__lce_scale(lce_call *c) {
  double divisor;
  int mode = clloss__lce_mean_mode(c, &divisor);
  clloss__args a = args(c, K_SCALE);
  clloss__arg_mem(&a, clloss__mem_or_dummy(c->l.ctx, c->g));
  clloss__arg_ulong(&a, c->g.offset);
  clloss__arg_int(&a, c->g.mem != NULL);
  clloss__arg_mem(&a, c->lin->mem[LCE_SMALL]);
  clloss__arg_int(&a, mode);
  clloss__arg_real(&a, divisor);
  clloss__arg_mem(&a, c->lin->mem[LCE_SMALL]);
  clloss__arg_ulong(&a, 2);
  return run(c, K_SCALE, &a, 1);
}

clloss_status clloss__lce_finish_sum(lce_call *c, int from, size_t count,
                                     int mode, double divisor,
                                     clloss_buffer out) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  clloss__args a = args(c, K_FINISH);
  clloss__arg_mem(&a, c->lin->mem[from]);
  clloss__arg_ulong(&a, count);
  clloss__arg_mem(&a, c->lin->mem[LCE_SMALL]);
  clloss__arg_int(&a, mode);
  clloss__arg_real(&a, divisor);
  clloss__arg_mem(&a, out.mem);
  clloss__arg_ulong(&a, out.offset);
  if (a.err != CL_SUCCESS)
    return clloss__fail(c->l.ctx, a.err,
                        "setting finish_sum arguments "
                        "failed");
  size_t local = clloss__group_local_size(c->l.ctx, c->p->max_wg[K_FINISH]);
  return clloss__launch_kernel(&c->l, c->p->kernels[K_FINISH], local, local);
}

clloss_status clloss__lce_chunk_ce(lce_call *c, size_t k, size_t r0,
                                   size_t rows, clloss_buffer target) {
  if (c->sizing)
    return CLLOSS_SUCCESS;
  const clloss_cross_entropy_desc *d = &c->d->ce;
  const int none = d->reduction == CLLOSS_REDUCTION_NONE;
  const int grad = c->pl.want_dx || c->pl.want_dw || c->pl.want_db;
  clloss_cross_entropy_desc ce = *d;
  ce.rows = rows;
  ce.input_type = c->pl.real == 8 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  if (c->pl.prob)
    ce.target_type = ce.input_type;
  ce.reduction = none ? CLLOSS_REDUCTION_NONE : CLLOSS_REDUCTION_SUM;
  ce.normalizer = 0.0f;
  clloss_buffer logits = clloss__lce_ws(c, LCE_WS, c->pl.logits);
  clloss_buffer g = CLLOSS_BUFFER_NONE, loss = CLLOSS_BUFFER_NONE;
  if (grad)
    g = none ? (c->g.mem ? clloss__lce_at(c->g, r0) : CLLOSS_BUFFER_NONE)
             : clloss__lce_ws(c, LCE_SMALL, 2);
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
