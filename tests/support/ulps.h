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
} ul_worst;

/* One element: got against want, allowed `ulps` ulps (of float32) of
 * `scale` plus `extra` (absolute); NaN matches NaN, an infinity the same
 * infinity. Updates *w and prints the first few failures under `what`
 * with index i. Returns 1 when the element is within its tolerance. */
int ul_check(ul_worst *w, const char *what, size_t i, double got, double want,
             double scale, double ulps, double extra);

#endif
