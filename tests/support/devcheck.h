/* devcheck.h - shared helpers of the device suites: run one loss call on a
 * device (buffers at offsets, canaries before and after every buffer) or
 * through the host-pointer API, and compare it with the CPU reference. */
#ifndef CLLOSS_DEVCHECK_H
#define CLLOSS_DEVCHECK_H
#include <stddef.h>
#include <stdint.h>

#include "testutil.h"

/* The buffers of a call, in the order of the public API. */
enum {
  DC_INPUT,
  DC_TARGET,
  DC_WEIGHT,
  DC_POS_WEIGHT,
  DC_GRAD_OUTPUT,
  DC_LOSS,
  DC_GRAD,
  DC_NBUF
};

/* Tolerances: |got - expect| <= atol * scale + rtol |expect|. For the loss
 * the scale is the largest finite expected magnitude of that output; for
 * the gradient the larger of that and the upstream scale |g| / (mean ? n :
 * 1), the size of one term before cancellation (sigmoid(x) - y, p - 1). */
typedef struct dc_tol {
  double loss_atol, loss_rtol, grad_atol, grad_rtol;
} dc_tol;
/* Defaults per storage type (float32 device vs double reference). */
dc_tol dc_default_tol(clloss_dtype input_type);

/* Options of one check; zero-initialised means: no offsets, both outputs,
 * the context's current variant only, default tolerances. */
typedef struct dc_opts {
  size_t off[DC_NBUF];  /* element offsets of each buffer */
  int no_loss, no_grad; /* leave that output not given */
  int in_place;         /* gradient written over the input (same offset) */
  int all_variants;     /* run item, group, split and auto */
  int determinism;      /* run each call twice, outputs bit-identical */
  int host;             /* also run the host-pointer call */
  const dc_tol *tol;    /* NULL: dc_default_tol(input type) */
} dc_opts;

/* One cross_entropy case in float values; the check converts them to the
 * storage types of the descriptor. x has rows * ld elements (ld = row_stride
 * or classes; the padding is kept as given), t rows indices (index targets)
 * or p rows * classes probabilities, w classes weights or NULL, g the
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

/* Lower-level: the device call alone at the buffer level, with offsets and
 * canaries, returning its status; the outputs' data regions are copied to
 * loss_out / grad_out (either may be NULL). For a CE/NLL/pointwise case. */
typedef struct dc_result {
  clloss_status status;
  void *loss; /* loss-type values, malloc'd (NULL when not given) */
  void *grad; /* input-type values over the whole rows * ld region */
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

/* A fresh in-order queue on the context's device (release it). */
cl_command_queue dc_queue(clloss_context *ctx);

/* Storage conversions: a malloc'd array of n values of `type` from floats
 * (float16 and bfloat16 round to even), and back to doubles. */
void *dc_from_float(clloss_dtype type, const float *src, size_t n);
void *dc_targets(clloss_dtype type, const int64_t *t, size_t n);
double *dc_to_double(clloss_dtype type, const void *src, size_t n);
/* The value of element i of a float-typed array as a double. */
double dc_get(clloss_dtype type, const void *src, size_t i);

/* Compare n values of `type` with expected doubles using the scaled atol. */
size_t dc_compare(const char *what, clloss_dtype type, const void *got,
                  const double *expect, size_t n, double atol, double rtol);

/* Probability targets: `rows` rows of `classes` values, each row the
 * softmax of values uniform in [-3, 3]. */
void dc_fill_probabilities(tu_rng *r, float *p, size_t rows, size_t classes);

/* Allocation that fails the test instead of returning NULL. */
void *dc_alloc(size_t bytes);

/* The variants every "all_variants" check runs. */
#define DC_VARIANTS 5 /* forced ones, then auto */
extern const char *const dc_variants[DC_VARIANTS];

#endif
