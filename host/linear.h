/* linear.h - what the files of linear_cross_entropy share: the context's
 * workspace for it, the plan of a call (chunks, blocks, where each part of
 * the workspace lies) and the steps (CLBlast GEMMs, small kernels) that
 * the row-chunk and vocabulary-block loops are made of. */
#ifndef CLLOSS_LINEAR_H
#define CLLOSS_LINEAR_H
#include "internal.h"
#include "kernel_args.h"

/* Device buffers of linear_cross_entropy, owned by the context
 * (ctx->linear), grown to the largest call and kept like its scratch. */
enum {
  LCE_WS,       /* the workspace of reals, laid out by lce_plan */
  LCE_SMALL,    /* [0] D, the mean's weight sum; [1] the gradient scale */
  LCE_SUMS,     /* the loss sum of each row chunk */
  LCE_REC,      /* vocabulary blocks: merged statistics, one per row */
  LCE_REC2,     /* and one block's */
  LCE_ERR_SAVE, /* the device error word, kept while chunks run */
  LCE_TEMP,     /* CLBlast's copies of GEMM operands (its temp buffer) */
  LCE_HOST_W,   /* host-pointer calls: W, b, dW, db */
  LCE_HOST_B,
  LCE_HOST_DW,
  LCE_HOST_DB,
  LCE_BUFFERS
};

struct clloss__linear {
  cl_mem mem[LCE_BUFFERS];
  size_t bytes[LCE_BUFFERS];
};

/* The checks of a descriptor that every call makes: taken into *out as
 * clloss.h's "Descriptors" says, fp64 where it is float64, CLBlast. */
clloss_status
clloss__lce_check_desc(clloss_context *ctx,
                       const clloss_linear_cross_entropy_desc *desc,
                       clloss_linear_cross_entropy_desc *out);
/* clloss_linear_cross_entropy_workspace_size on a descriptor that
 * clloss__lce_check_desc has checked (bytes or chunk_rows not NULL). */
clloss_status
clloss__lce_workspace(clloss_context *ctx,
                      const clloss_linear_cross_entropy_desc *checked,
                      int want_grad_input, int want_grad_weight,
                      int want_grad_bias, size_t *bytes, size_t *chunk_rows);
/* clloss_linear_cross_entropy on a checked descriptor: bufs are its ten
 * buffers in its order (input ... grad_linear_bias); checks them, plans
 * and launches. */
clloss_status
clloss__lce_call_device(clloss_context *ctx, cl_command_queue queue,
                        const clloss_linear_cross_entropy_desc *checked,
                        const clloss_buffer bufs[10], cl_uint num_events,
                        const cl_event *wait_list, cl_event *event);

/* ctx->linear, created on first use with a release hook that frees it and
 * its buffers with the context; NULL (with a detail) when out of host
 * memory. */
struct clloss__linear *clloss__linear_of(clloss_context *ctx);

/* The scalars of kernels/linear_cross_entropy.cl's kernels
 * (kernels/params.h). */
typedef clloss__lce_params lce_params;

/* How one call is cut and where its parts of the workspace lie (offsets
 * and sizes in reals of LCE_WS). */
typedef struct lce_plan {
  int conv; /* 16-bit storage: computed in float32 */
  int prob; /* probability targets */
  int want_dx, want_dw, want_db;
  size_t real;          /* bytes of a real: 4, or 8 for float64 */
  size_t rows, chunks;  /* R rows per chunk, ceil(N / R) chunks */
  size_t block, blocks; /* classes per block, blocks; 0 for row chunks */
  int stats;            /* the vocabulary-block loop (blocks, or a shard) */
  size_t cols;          /* columns of the logits workspace: V or block (1
                           for an empty shard's stand-in) */
  size_t slice;         /* row chunks: classes per GEMM slice */
  size_t logits, xc, dxc, wf, dwf, dbf, tc;
  size_t ws;                  /* reals of LCE_WS */
  size_t bytes[LCE_TEMP + 1]; /* of each workspace buffer */
  size_t total;               /* bytes of all of them */
} lce_plan;

/* The plan for desc and the gradients wanted (bytes[LCE_TEMP] and total
 * not yet including CLBlast's temp buffer); CLLOSS_INVALID_ARGUMENT when
 * an explicit workspace_limit cannot hold one row. `sharded`: desc is a
 * shard's (ce.classes its own), which always takes the vocabulary-block
 * loop. */
clloss_status clloss__lce_plan(clloss_context *ctx,
                               const clloss_linear_cross_entropy_desc *d,
                               int want_dx, int want_dw, int want_db,
                               int sharded, lce_plan *pl);

/* The call being enqueued: its descriptor (checked, defaults filled in),
 * buffers and plan. */
typedef struct lce_call {
  clloss__launch l; /* l.last: the latest command, the next one waits */
  clloss_linear_cross_entropy_desc dv;
  const clloss_linear_cross_entropy_desc *d; /* &dv */
  lce_plan pl;
  int in_order;      /* the queue runs commands in order */
  int sizing;        /* a pass that only measures CLBlast's temp buffer */
  size_t temp_bytes; /* its result */
  struct clloss__linear *lin;
  clloss_buffer x, w, b, t, cw, g, loss, dx, dw, db;
  /* A shard (clloss_linear_cross_entropy_shard): d->ce.classes is the
   * shard's, `classes` the whole V, `offset` the shard's first class; ex
   * NULL for a whole call (offset 0, classes V). */
  const clloss_linear_exchange *ex;
  size_t offset, classes;
} lce_call;

/* A shard's exchange (clloss.h) of `count` values of `kind` held in
 * `buf`: read to the host after the last command (or, `empty`, records
 * that are the combine's identity), exchanged, written back. Nothing in
 * the sizing pass. */
clloss_status clloss__lce_exchange(lce_call *c, clloss_exchange_kind kind,
                                   clloss_buffer buf, size_t count, int empty);

/* The loops' next start after `at` (steps of `step` up to n): in the
 * sizing pass only the iterations whose GEMMs can differ, the first
 * (offsets 0), the second (offsets > 0) and the last (a shorter rest),
 * as CLBlast's copies depend only on the shapes and on whether an offset
 * is 0; so the pass is O(1) in the chunks and slices. */
size_t clloss__lce_step(const lce_call *c, size_t at, size_t step, size_t n);

/* Builds (or finds) the program of kernels/linear_cross_entropy.cl. */
clloss_status clloss__lce_program(lce_call *c);

/* A part of the workspace or of a buffer, `at` elements on. */
clloss_buffer clloss__lce_ws(const lce_call *c, int which, size_t at);
clloss_buffer clloss__lce_at(clloss_buffer b, size_t elements);

/* C[m, n] = op(A) op(B) + beta C, row-major, op = transpose when t_* is
 * set, with CLBlast's Sgemm (Dgemm for float64), after c->l.last. */
clloss_status clloss__lce_gemm(lce_call *c, int t_a, int t_b, size_t m,
                               size_t n, size_t k, clloss_buffer a, size_t lda,
                               clloss_buffer b, size_t ldb, double beta,
                               clloss_buffer out, size_t ldc);

/* Makes `ev` (ours now) the command the next one waits for. */
void clloss__lce_chain(lce_call *c, cl_event ev);

/* z[i, j] += b[j] over a rows x cols block of logits (ldz apart). */
clloss_status clloss__lce_add_bias(lce_call *c, clloss_buffer z, size_t rows,
                                   size_t cols, size_t ldz, clloss_buffer b);
/* acc[j] = (accumulate ? acc[j] : 0) + sum_i z[i, j]. */
clloss_status clloss__lce_column_sum(lce_call *c, clloss_buffer z, size_t rows,
                                     size_t cols, size_t ldz, clloss_buffer acc,
                                     int accumulate);
/* A rows x cols block between the storage type (st, ld_st apart) and real
 * (r, ld_r apart): r = st (to_real) or st = r; a copy for float32. */
clloss_status clloss__lce_convert(lce_call *c, int to_real, clloss_buffer st,
                                  size_t ld_st, clloss_buffer r, size_t ld_r,
                                  size_t rows, size_t cols);

/* The mean's weight sum D over all N rows into LCE_SMALL[0], bad targets
 * into LCE_ERR_SAVE with their row (index targets). */
clloss_status clloss__lce_weight_sum(lce_call *c);
/* LCE_SMALL[1] = the gradient scale of sum and mean: g / divisor. */
clloss_status clloss__lce_scale(lce_call *c);
/* out = the sum of `count` reals of `in`, divided as the loss's reduction
 * says (divide) or not. */
clloss_status clloss__lce_sum(lce_call *c, clloss_buffer in, size_t count,
                              int divide, clloss_buffer out);

/* cross_entropy on rows [r0, r0 + rows) of the logits in the workspace
 * (row chunks): loss rows or the chunk's loss sum into LCE_SUMS[k], the
 * gradient in place when any is wanted. */
clloss_status clloss__lce_chunk_ce(lce_call *c, size_t k, size_t r0,
                                   size_t rows, clloss_buffer target);

/* The descriptor of the cross_entropy calls on a chunk's logits: `rows`
 * rows, the logits' type, sum (sum and mean, scaled by LCE_SMALL[1]) or
 * none, never accumulating. */
clloss_cross_entropy_desc clloss__lce_chunk_desc(const lce_call *c,
                                                 size_t rows);

/* The vocabulary-block loop over rows [r0, r0 + rows), chunk k: xrows
 * and wm are its X rows and W in real (linear_vocab.c). */
clloss_status clloss__lce_vocab_chunk(lce_call *c, size_t k, size_t r0,
                                      size_t rows, clloss_buffer xrows,
                                      clloss_buffer wm);

#endif
