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
    ok = err <= ulps * unit + extra;
    if (err / unit > w->ulps)
      w->ulps = err / unit;
  }
  if (!ok && w->bad++ < 5)
    printf("\n  %s[%zu]: got %.9g (%a), reference %.17g, %.1f ulps of %g "
           "(allowed %g + %g)",
           what, i, got, got, want, err / unit, scale, ulps, extra / unit);
  return ok;
}
