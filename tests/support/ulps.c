/* ulps.c - results against a double reference in ulps. */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "ulps.h"

double ul_ulp(clloss_dtype type, double v) {
  /* Significand bits after the point, smallest normal exponent. */
  int bits = 23, emin = -126;
  if (type == CLLOSS_FLOAT16)
    bits = 10, emin = -14;
  else if (type == CLLOSS_BFLOAT16)
    bits = 7;
  int e;
  double a = fabs(v);
  if (!(a > 0) || isinf(a))
    return ldexp(1.0, emin - bits);
  frexp(a, &e); /* a = f 2^e, f in [0.5, 1) */
  e -= 1;
  return ldexp(1.0, (e < emin ? emin : e) - bits);
}

double ul_stored(clloss_dtype type, float v) {
  switch (type) {
  case CLLOSS_FLOAT16:
    return clloss_half_to_float(clloss_float_to_half(v));
  case CLLOSS_BFLOAT16:
    return clloss_bfloat16_to_float(clloss_float_to_bfloat16(v));
  default:
    return v;
  }
}

int ul_check(ul_worst *w, const char *what, size_t i, double got, double want,
             double scale, double ulps, double extra) {
  w->count++;
  int ok;
  double unit = ul_ulp(CLLOSS_FLOAT32, scale), err = 0;
  if (isnan(want) || isnan(got))
    ok = isnan(want) && isnan(got);
  else if (isinf(want) || isinf(got))
    ok = got == want;
  else {
    err = fabs(got - want);
    const double allowed = ulps * unit + extra;
    ok = err <= allowed;
    if (err / unit > w->ulps)
      w->ulps = err / unit;
    if (allowed > 0 && err / allowed > w->ratio)
      w->ratio = err / allowed;
  }
  if (!ok && w->bad++ < 5)
    printf("\n  %s[%zu]: got %.9g (%a), reference %.17g, %.1f ulps of %g "
           "(allowed %g + %g)",
           what, i, got, got, want, err / unit, scale, ulps, extra / unit);
  return ok;
}

/* The spec's accuracy (OpenCL C 1.2 section 7.4, full profile, float) in
 * u of the exact result (an ulp of x is at most 2u |x|): exp and log 3
 * ulps, x/y and 1/x 2.5 ulps. One correctly rounded operation is 1. The
 * kernels' own exp (exp_nonpos, under 1 ulp) is held to the built-in's. */
#define UL_EXP 6.0
#define UL_LOG 6.0
#define UL_DIV 5.0

double ul_chain(size_t classes, int rescaled) {
  /* Item (pass_sumexp): blocks of SUM_BLOCK = 32 vectors (31 adds), C /
   * (32 VW) block adds, a tree over VW <= 16 lanes (4), up to VW - 1 = 15
   * tail adds. Group, lanes, split (pass_online): blocks of 32 online
   * steps (31 after a term, each an add and, when the max rises, a
   * multiply by an exp: UL_EXP + 2), a merge per block (C / (32 VW W) + 1
   * of them, W work-items a row or segment, 1 on a CPU's split segment),
   * up to 15 scalar tail steps, the lanes' merge and tree (UL_EXP + 1, 4),
   * span_stats' rescale and tree over W <= 256 (UL_EXP + 1, 8), and split's
   * combines in sequence, one per segment (at most C / 16 segments, of at
   * least 16 VW W elements): over any number s of segments, C / (32 s) +
   * s <= C / 16 + 2. The worst: VW = W = 1, an ascending row, every step a
   * rescale. Plain sums (sa): the same chains, adds only. */
  const double c = (double)classes;
  return rescaled ? (UL_EXP + 2) * (c / 16 + 50) + 32 : c / 16 + 64;
}

ul_bound ul_ce_bound(const ul_ce_opts *o) {
  const double c = o->classes > 1 ? (double)o->classes : 1.0;
  const int smooth = o->eps > 0, z = o->z > 0;
  ul_bound b;
  /* S: each term's exp, the rounding of its argument v - m (weighted by
   * p_c it averages H(p) - log S <= ln C) and the chain. */
  b.sum = UL_EXP + log(c) + ul_chain(o->classes, 1);
  /* p_j = e_j * (1 / S): the exp, the reciprocal, S, the product. */
  const double pr = UL_EXP + UL_DIV + b.sum + 1;
  if (o->softmax) {
    b.loss = 0;
    b.grad = pr;
    return b;
  }
  /* a_c: (1-e) y_c + e/C (probability targets), times w_c; sa = sum a_c
   * (exact for unweighted class targets: a sum of ones). */
  const double a_err = o->prob ? UL_DIV + 2 : 0;
  const double sa =
      o->prob || o->weights ? a_err + ul_chain(o->classes, 0) : 0.0;
  /* sad = sum a_c (m - v_c), two roundings a term, up to three adds for
   * each add of sa's chain (an online step, a merge, a combine). */
  const double sad = a_err + 2 + 3 * ul_chain(o->classes, 0);
  /* A (the coefficient of p_j) relative, and b_j. Class targets:
   * A = (1-e) w_t + (e/C) sa + 2 z lse; prob: A = sa + 2 z lse. */
  double alpha, beta;
  if (o->prob) {
    alpha = sa + 1 + (z ? 2 : 0);
    beta = a_err;
  } else {
    alpha = fmax(2, smooth ? UL_DIV + sa + 1 : 0) + 2;
    beta = smooth ? UL_DIV + 2 : 2;
  }
  /* lse = m + log S is off by S's error and log's, absolutely: through
   * 2 z lse that is 2 z (sum + UL_LOG ln C) of A0 (1 without weights). */
  const double zabs = z ? 2 * o->z * (b.sum + UL_LOG * log(c)) : 0;
  /* s: the mean's division and grad_scale's product. */
  const double s = o->reduce == 1 ? UL_DIV + 1 : 1;
  b.grad = fmax(pr + alpha + 1, beta) + 1 + s + 1 + zabs;
  /* Loss: the log S term ((m - x_t) + log S, or sa log S), z lse^2,
   * sad; each with its products, then two adds; S's error enters
   * absolutely through log S, weighted by at most the scale. */
  double terms;
  if (o->prob)
    terms = fmax(sa + UL_LOG + 1, sad);
  else
    terms = fmax(UL_LOG + 4,
                 smooth ? UL_DIV + 2 + fmax(sa + UL_LOG + 1, sad + 2) : 0);
  b.loss = fmax(terms, z ? 4 : 0) + 2 + b.sum + (z ? UL_LOG * log(c) : 0);
  /* Reduced: a chain over the N row losses (all >= 0; per work-item
   * runs, trees, finish_sum's strided sums) and the mean's division, of
   * the sum (mean) of the rows' scales. */
  if (o->reduce)
    b.loss += (double)o->rows + 32 + (o->reduce == 1 ? UL_DIV : 0);
  return b;
}
