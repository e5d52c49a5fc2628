/* devcheck.h - the device harness of the suites: one loss call (cross
 * entropy, nll_loss, an element-wise loss, softmax or linear cross entropy)
 * on device buffers at offsets with canaries before and after every buffer,
 * through the host-pointer API or the CPU reference, compared with the
 * reference; and the random data of the row losses. */
#ifndef CLLOSS_DEVCHECK_H
#define CLLOSS_DEVCHECK_H
#include <stddef.h>
#include <stdint.h>

#include "testutil.h"

/* The buffers of a call, in the order of the public API (softmax: input
 * and its output in DC_GRAD; linear cross entropy numbers its own, up to
 * DC_MAXBUF). */
enum {
  DC_INPUT,
  DC_TARGET,
  DC_WEIGHT,
  DC_POS_WEIGHT,
  DC_GRAD_OUTPUT,
  DC_LOSS,
  DC_GRAD,
  DC_NBUF,
  DC_MAXBUF = 10
};

typedef enum dc_kind { DC_CE, DC_NLL, DC_PW, DC_SOFTMAX, DC_LINEAR } dc_kind;

/* The descriptor of any kind. */
typedef union dc_desc {
  size_t struct_size;
  clloss_cross_entropy_desc ce;
  clloss_nll_loss_desc nll;
  clloss_pointwise_desc pw;
  clloss_softmax_desc softmax;
  clloss_linear_cross_entropy_desc linear;
} dc_desc;

/* Tolerances: |got - expect| <= atol * scale + rtol |expect|. For the loss
 * the scale is the largest finite expected magnitude of that output; for
 * the gradient the larger of that and the upstream scale |g| / (mean ? n :
 * 1), the size of one term before cancellation (sigmoid(x) - y, p - 1). */
typedef struct dc_tol {
  double loss_atol, loss_rtol, grad_atol, grad_rtol;
} dc_tol;
/* Defaults per storage type (float32 device vs double reference). */
dc_tol dc_default_tol(clloss_dtype input_type);

/* Options of one call or check; zero-initialised means: no offsets, whole
 * buffers, both outputs, the context's current variant only, default
 * tolerances. */
typedef struct dc_opts {
  size_t off[DC_MAXBUF];  /* element offsets of each buffer */
  size_t held[DC_MAXBUF]; /* elements from the offset a sub-buffer holds
                             (0: all), the rest of the buffer and its canary
                             lying past it */
  int no_loss, no_grad;   /* leave that output not given */
  int in_place;           /* gradient written over the input (same offset) */
  const void *grad_init;  /* storage-typed rows x ld values the gradient
                             starts as (NULL: 0x5B bytes) */
  int all_variants;       /* run item, group, split and auto */
  int determinism;        /* run each call twice, outputs bit-identical */
  int host;               /* also run the host-pointer call */
  const dc_tol *tol;      /* NULL: dc_default_tol(input type) */
} dc_opts;

/* One call in float values; the harness converts them to the storage types
 * of the descriptor. x has rows * ld elements (ld = row_stride or classes;
 * the padding is kept as given), t rows indices (index targets) or p
 * rows * classes probabilities, w classes weights or NULL, g the
 * grad_output values (1 or rows) or NULL. */
typedef struct dc_ce_case {
  clloss_cross_entropy_desc desc;
  const float *x;
  const int64_t *t;
  const float *p;
  const float *w;
  const float *g;
} dc_ce_case;

typedef struct dc_nll_case {
  clloss_nll_loss_desc desc;
  const float *x;
  const int64_t *t;
  const float *w;
  const float *g;
} dc_nll_case;

/* x, y: count values; w, pw: weight_count / pos_weight_count values or
 * NULL; g: grad_output values (1 or count) or NULL. */
typedef struct dc_pw_case {
  clloss_pointwise_desc desc;
  const float *x, *y, *w, *pw, *g;
} dc_pw_case;

/* Run and compare on device `dev` (index for tu_context). Every mismatch is
 * printed and asserted; the return value is the number of problems. */
size_t dc_check_ce(size_t dev, const dc_ce_case *c, const dc_opts *o);
size_t dc_check_nll(size_t dev, const dc_nll_case *c, const dc_opts *o);
size_t dc_check_pw(size_t dev, const dc_pw_case *c, const dc_opts *o);

/* The same checks on every device. */
size_t dc_check_ce_all(const dc_ce_case *c, const dc_opts *o);
size_t dc_check_nll_all(const dc_nll_case *c, const dc_opts *o);
size_t dc_check_pw_all(const dc_pw_case *c, const dc_opts *o);

/* The device call alone on queue q (NULL: the host-pointer call, or with
 * ctx NULL too the reference), returning its status; the outputs' data
 * regions are copied out (on success). Each buffer's canaries and an
 * input's contents are checked and asserted (a failed call must write
 * nothing). */
typedef struct dc_result {
  clloss_status status;
  void *out[DC_MAXBUF]; /* outputs' storage-typed values, malloc'd */
  void *loss, *grad;    /* out[DC_LOSS], out[DC_GRAD] (the gradient over
                           the whole rows * ld region; in place: the input) */
  size_t loss_count, grad_count;
  size_t problems; /* canary or untouched-input violations */
} dc_result;
dc_result dc_run_ce(clloss_context *ctx, cl_command_queue q,
                    const dc_ce_case *c, const dc_opts *o);
dc_result dc_run_nll(clloss_context *ctx, cl_command_queue q,
                     const dc_nll_case *c, const dc_opts *o);
dc_result dc_run_pw(clloss_context *ctx, cl_command_queue q,
                    const dc_pw_case *c, const dc_opts *o);
void dc_result_free(dc_result *r);

/* A call of any kind as the harness sees it: storage-typed arrays per
 * buffer (an output's: the values it starts as, NULL: 0x5B bytes). */
typedef struct dc_call {
  dc_kind kind;
  dc_desc d;
  const char *const *names; /* of the buffers, for messages */
  const void *host[DC_MAXBUF];
  void *owned[DC_MAXBUF]; /* what dc_call_free frees */
  size_t n[DC_MAXBUF];
  clloss_dtype type[DC_MAXBUF];
  int given[DC_MAXBUF], output[DC_MAXBUF];
  size_t rows, classes, ld; /* layout of input and gradient */
  clloss_dtype in_type;
  double grad_scale; /* the upstream scale s: |g| / (mean ? n : 1) */
  char label[160];
} dc_call;
void dc_call_free(dc_call *c);
/* On the device, on queue q. */
dc_result dc_run(clloss_context *ctx, cl_command_queue q, const dc_call *c,
                 const dc_opts *o);
/* Through the host-pointer API (ctx) or the reference (ctx NULL), outputs
 * with canaries after them. */
dc_result dc_run_host(clloss_context *ctx, const dc_call *c);
/* The host-pointer call (ctx) or the reference (ctx NULL) of `kind` with a
 * descriptor as the caller laid it out; in and out hold the inputs' and
 * the outputs' arrays at their buffer's index (NULL: not given). */
clloss_status dc_host_call(clloss_context *ctx, dc_kind kind, const void *desc,
                           const void *const *in, void *const *out);

/* A fresh in-order queue on the context's device (release it). */
cl_command_queue dc_queue(clloss_context *ctx);

/* Storage conversions: a malloc'd array of n values of `type` from floats
 * (float16 and bfloat16 round to even), and back to doubles. */
void *dc_from_float(clloss_dtype type, const float *src, size_t n);
void *dc_targets(clloss_dtype type, const int64_t *t, size_t n);
double *dc_to_double(clloss_dtype type, const void *src, size_t n);
/* The value of element i of a float-typed array as a double. */
double dc_get(clloss_dtype type, const void *src, size_t i);
/* A storage-typed array of n elements, all `v`. */
void *dc_filled(clloss_dtype type, size_t n, float v);

/* Compare n values of `type` with expected doubles using the scaled atol. */
size_t dc_compare(const char *what, clloss_dtype type, const void *got,
                  const double *expect, size_t n, double atol, double rtol);

/* ---- random data, the one generator of the row losses ----
 * `rows` rows of `ld` logits uniform in [lo, hi) (0, 0: [-4, 4)), padding
 * included; targets in [0, classes), a fraction `ignore` of them
 * ignore_index; with probability, rows of softmax(values in [-3, 3)); with
 * weights, class weights in [0.25, 2); with grad_output, grad_count values
 * in [-1.5, 1.5), a single one 0.7. */
typedef struct dc_gen {
  uint64_t salt;
  float lo, hi;
  double ignore;
  int weights, grad_output, probability;
} dc_gen;
typedef struct dc_data {
  float *x, *y, *p, *w, *pw, *g;
  int64_t *t;
} dc_data;
/* The probabilities alone, and the targets alone, drawn from r. */
void dc_fill_probabilities(tu_rng *r, float *p, size_t rows, size_t classes);
void dc_fill_targets(tu_rng *r, int64_t *t, size_t rows, size_t classes,
                     double ignore, int64_t ignore_index);
void dc_make(dc_data *d, const dc_gen *g, size_t rows, size_t classes,
             size_t ld, int64_t ignore_index, size_t grad_count);
void dc_data_free(dc_data *d);

/* dc_make's data for a descriptor (grad_output: one per loss value) in v,
 * as a case; nll_loss's rows made log-probabilities (the padding stays
 * random). */
dc_ce_case dc_make_ce(dc_data *v, const clloss_cross_entropy_desc *d,
                      const dc_gen *g);
dc_nll_case dc_make_nll(dc_data *v, const clloss_nll_loss_desc *d,
                        const dc_gen *g);

/* ---- case tables: cross_entropy or nll_loss cases that differ only by
 * data ----
 * A descriptor's fields, the generator and the check's options. Each runs
 * through dc_run_cases on every device (nll_loss's rows made
 * log-probabilities), which prints the case's name when the check finds a
 * problem. */
typedef struct dc_row_case {
  const char *name;
  size_t rows, classes;
  clloss_reduction reduction; /* MEAN unless given */
  int each_reduction;         /* mean, sum and none in turn, salt + 0, 1, 2 */
  size_t row_stride;          /* 0: classes */
  clloss_dtype input_type;    /* FLOAT32 unless given */
  int int32_targets;          /* index targets in int32, not int64; probability
                                 targets (dc_gen.probability) take input_type */
  int64_t ignore_index;       /* 0: the default, -100 */
  float label_smoothing, z_loss, softcap, normalizer; /* cross_entropy's */
  dc_gen g;
  dc_opts o;
} dc_row_case;
void dc_run_cases(dc_kind kind, const dc_row_case *cases, size_t count);
#define DC_RUN_CASES(kind, cases)                                              \
  dc_run_cases(kind, cases, sizeof cases / sizeof *cases)

/* Inputs of an element-wise loss suited to it: logits and labels in [0, 1]
 * for BCE (some exactly 0 or 1), log-probabilities and probabilities (some
 * exactly 0) for kl_div, and for the others differences around the
 * thresholds with a few exact zeros; weights in [0, 2), pos_weights in
 * [0.5, 3); with grad_output, values in [-2, 2) (a single one 1.25); in
 * v, as a case. */
dc_pw_case dc_make_pw(dc_data *v, const clloss_pointwise_desc *d, uint64_t salt,
                      int grad_output);

/* ---- a row operation with the options of a training loop ----
 * cross_entropy, nll_loss or softmax with row stride, grad_scale,
 * accumulate and padding, on storage-typed arrays. */
typedef struct dc_problem {
  dc_kind kind; /* DC_CE, DC_NLL or DC_SOFTMAX */
  size_t rows, classes, ld;
  clloss_dtype input_type, target_type;
  clloss_reduction reduction;
  float grad_scale;
  int accumulate;
  clloss_padding padding;
} dc_problem;

/* A problem of float32 storage, int64 targets, mean, no options. */
dc_problem dc_problem_make(dc_kind kind, size_t rows, size_t classes,
                           size_t ld);
/* "ce", "nll" or "softmax". */
const char *dc_problem_name(const dc_problem *p);
/* Elements of the loss output (softmax: 0), of the input (rows x ld), the
 * size of one input element and of one loss element. */
size_t dc_loss_count(const dc_problem *p);
size_t dc_input_count(const dc_problem *p);
size_t dc_elem(const dc_problem *p);
size_t dc_loss_elem(const dc_problem *p);
/* The descriptor of a problem: the member of its kind. */
dc_desc dc_problem_desc(const dc_problem *p);

/* Storage-typed data of a problem: dc_make's rows with values in [-4, 0)
 * and `pad` in every padding element, its targets (none for softmax). */
typedef struct dc_stored {
  void *x, *t;
} dc_stored;
dc_stored dc_problem_data(const dc_problem *p, float pad, uint64_t salt);
void dc_stored_free(dc_stored *d);

/* The device call on the context's own queue (the input and gradient at
 * o->off[DC_INPUT]); the host-pointer call (ctx) or the reference (ctx
 * NULL). */
dc_result dc_run_problem(clloss_context *ctx, const dc_problem *p,
                         const dc_stored *d, const dc_opts *o);
clloss_status dc_host(clloss_context *ctx, const dc_problem *p,
                      const void *input, const void *target, void *loss,
                      void *grad);

/* Compares the C columns of each row of `got` with `want` (both
 * storage-typed, rows x ld): |got - want| <= atol + rtol |want|. Returns
 * the number of mismatches, printed under `what`. */
size_t dc_compare_rows(const char *what, const dc_problem *p, const void *got,
                       const void *want, double atol, double rtol);
/* Checks the padding of each row of `got` (storage-typed, rows x ld): rows
 * below `zero_rows` hold +0, the others the bits of `keep` (rows x ld, the
 * values that were there before; NULL: 0x5B bytes). Returns the number of
 * wrong elements. */
size_t dc_check_padding(const char *what, const dc_problem *p, const void *got,
                        size_t zero_rows, const void *keep);

/* Allocation that fails the test instead of returning NULL. */
void *dc_alloc(size_t bytes);

/* The variants every "all_variants" check runs. */
#define DC_VARIANTS 5 /* forced ones, then auto */
extern const char *const dc_variants[DC_VARIANTS];

#endif
