/* rowcall.h - one call of a row operation (cross_entropy, nll_loss or
 * softmax) with the options of a training loop (row stride, grad_scale,
 * accumulate, padding), at any of the three levels (device buffers, host
 * pointers, the CPU reference), on storage-typed arrays; the device call
 * with guarded buffers. Shared by test_training_loop.c and
 * test_softmax.c (and test_descriptors.c: rc_call). */
#ifndef CLLOSS_ROWCALL_H
#define CLLOSS_ROWCALL_H
#include <stddef.h>
#include <stdint.h>

#include "testutil.h"

typedef enum rc_kind { RC_CE, RC_NLL, RC_SOFTMAX } rc_kind;

typedef struct rc_problem {
  rc_kind kind;
  size_t rows, classes, ld;
  clloss_dtype input_type, target_type;
  clloss_reduction reduction;
  float grad_scale;
  int accumulate;
  clloss_padding padding;
} rc_problem;

/* A problem of float32 storage, int64 targets, mean, no options. */
rc_problem rc_default(rc_kind kind, size_t rows, size_t classes, size_t ld);
/* "ce", "nll" or "softmax". */
const char *rc_name(const rc_problem *p);

/* Elements of the loss output (softmax: 0), of the input (rows x ld), the
 * size of one input element and of one loss element. */
size_t rc_loss_count(const rc_problem *p);
size_t rc_input_count(const rc_problem *p);
size_t rc_elem(const rc_problem *p);
size_t rc_loss_elem(const rc_problem *p);

/* The descriptor of a problem: the member of its kind. */
typedef union rc_desc {
  size_t struct_size;
  clloss_cross_entropy_desc ce;
  clloss_nll_loss_desc nll;
  clloss_softmax_desc softmax;
} rc_desc;
rc_desc rc_make_desc(const rc_problem *p);

/* The three levels; `grad` is softmax's output. Device: on the context's
 * own queue, waiting for it. */
clloss_status rc_device(clloss_context *ctx, const rc_problem *p,
                        clloss_buffer input, clloss_buffer target,
                        clloss_buffer loss, clloss_buffer grad);
clloss_status rc_host(clloss_context *ctx, const rc_problem *p,
                      const void *input, const void *target, void *loss,
                      void *grad);
clloss_status rc_reference(const rc_problem *p, const void *input,
                           const void *target, void *loss, void *grad);
/* The host-pointer call (ctx) or the reference (ctx NULL) of `kind` with a
 * descriptor as the caller laid it out (desc: that kind's struct). */
clloss_status rc_call(clloss_context *ctx, rc_kind kind, const void *desc,
                      const void *input, const void *target, void *loss,
                      void *grad);

/* Random data of a problem, storage-typed: the input rows (values in
 * [-4, 0), log-probabilities for nll_loss, and `pad` in every padding
 * element), the targets (in [0, C); none for softmax), malloc'd. */
typedef struct rc_data {
  void *x, *t;
} rc_data;
rc_data rc_make(const rc_problem *p, float pad, uint64_t salt);
void rc_data_free(rc_data *d);

/* A storage-typed array of n elements, all `v`. */
void *rc_filled(clloss_dtype type, size_t n, float v);

/* ---- the device call with guarded buffers ----
 * The input sits at element `off` of a buffer that holds `x_elems`
 * elements from there (0: rows x ld), made a sub-buffer of a larger one
 * whose elements after it (the rest of the last row, then a canary) must
 * stay as they were. The gradient is the input itself (in place), or a
 * buffer laid out the same way (g_elems) that starts as `g_init` (rows x
 * ld storage-typed values; NULL: 0x5B bytes), or not given (no_grad). */
typedef struct rc_run {
  size_t off, x_elems, g_elems;
  int in_place, no_grad;
  const void *g_init;
  /* results */
  clloss_status status;
  void *loss;      /* loss elements (0x5B bytes where not written) */
  void *x_after;   /* the input's rows x ld elements after the call */
  void *g_after;   /* the gradient's, when it has its own buffer */
  size_t problems; /* writes before `off`, past a sub-buffer, or by a
                      failed call (each asserted) */
} rc_run;

void rc_device_run(clloss_context *ctx, const rc_problem *p, const rc_data *d,
                   rc_run *r);
void rc_run_free(rc_run *r);
/* The gradient of a run: the input buffer in place, else its own. */
const void *rc_run_grad(const rc_run *r);

/* Compares the C columns of each row of `got` with `want` (both
 * storage-typed, rows x ld): |got - want| <= atol + rtol |want|. Returns
 * the number of mismatches, printed under `what`. */
size_t rc_compare_rows(const char *what, const rc_problem *p, const void *got,
                       const void *want, double atol, double rtol);

/* Checks the padding of each row of `got` (storage-typed, rows x ld): rows
 * below `zero_rows` hold +0, the others the bits of `keep` (rows x ld, the
 * values that were there before). Returns the number of wrong elements. */
size_t rc_check_padding(const char *what, const rc_problem *p, const void *got,
                        size_t zero_rows, const void *keep);

#endif
