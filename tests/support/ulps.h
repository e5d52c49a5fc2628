/* ulps.h - results against a double reference in units in the last place
 * (ulps), for the suites that check exactness at any logit scale
 * (test_exactness.c, test_softmax.c). */
#ifndef CLLOSS_ULPS_H
#define CLLOSS_ULPS_H
#include <stddef.h>

#include "clloss.h"

/* The spacing of `type`'s values at |v| (float32's for the loss types and
 * for float32 and float64 storage alike: the claim is float32's), never
 * below the type's smallest subnormal. */
double ul_ulp(clloss_dtype type, double v);

/* The value of `v` as storage type `type` would hold it (float16 and
 * bfloat16 round to even), as a double: what a reference must be given. */
double ul_stored(clloss_dtype type, float v);

/* The worst error of one comparison, in ulps of its tolerance's scale. */
typedef struct ul_worst {
  double ulps;  /* largest |got - want| / ulp seen */
  size_t bad;   /* elements over their tolerance */
  size_t count; /* elements compared */
  double ratio; /* largest |got - want| / allowed seen */
} ul_worst;

/* One element: got against want, allowed `ulps` ulps (of float32) of
 * `scale` plus `extra` (absolute); NaN matches NaN, an infinity the same
 * infinity. Updates *w and prints the first few failures under `what`
 * with index i. Returns 1 when the element is within its tolerance. */
int ul_check(ul_worst *w, const char *what, size_t i, double got, double want,
             double scale, double ulps, double extra);

/* ---- the error bound of cross_entropy and softmax ------------------
 * README.md, "Error bounds", derives it: what the kernels compute, with
 * the accuracy the OpenCL C full profile requires of float (exp, log 3
 * ulps, x/y and 1/x 2.5 ulps, +, -, *, fma correctly rounded), for every
 * variant the library can pick, on any device. Units: u = 2^-24 of the
 * scale (one float32 ulp of a value is at least u times it). First order
 * in u; no softcap. */

/* What the bound depends on. */
typedef struct ul_ce_opts {
  size_t classes; /* C */
  size_t rows;    /* N: the reduced loss sums N row losses */
  double eps, z;  /* label_smoothing, z_loss */
  int prob;       /* probability targets */
  int weights;    /* class weights */
  int reduce;     /* 0 none, 1 mean, 2 sum */
  int softmax;    /* softmax itself: p_j */
} ul_ce_opts;

/* Allowed errors, in u of their scales: the loss in u of
 * max(|loss|, A0 + |2 z lse|) (A0 = (1-e) w_t + (e/C) W, or SA: 1 without
 * weights), a gradient element in u of T_j = |s| ((A0 + |2 z lse|) p_j +
 * |b_j|), plus what the test adds itself (the rounding of exp's argument, a
 * 16-bit storage ulp). A reduced loss: in u of the sum (mean) of its rows'
 * scales. sum: the relative error of S = sum_c exp(v_c - m). */
typedef struct ul_bound {
  double sum, loss, grad;
} ul_bound;

/* The longest rounding chain of a sum of C positive terms over all the
 * variants, in u: with rescales (online exp sums, S) or without (sa). */
double ul_chain(size_t classes, int rescaled);

ul_bound ul_ce_bound(const ul_ce_opts *o);

#endif
