/* linear.h - what the two linear_cross_entropy suites share. */
#ifndef CLLOSS_TEST_LINEAR_H
#define CLLOSS_TEST_LINEAR_H
#include "clloss.h"

/* A descriptor of N rows, H hidden features and V classes, PyTorch's
 * defaults otherwise. */
static inline clloss_linear_cross_entropy_desc
tl_desc(size_t n, size_t h, size_t v, clloss_reduction red) {
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.ce.rows = n;
  d.hidden = h;
  d.ce.classes = v;
  d.ce.reduction = red;
  return d;
}

#endif
