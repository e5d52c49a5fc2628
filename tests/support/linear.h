/* linear.h - what the two linear_cross_entropy suites share. */
#ifndef CLLOSS_TEST_LINEAR_H
#define CLLOSS_TEST_LINEAR_H
#include "clloss.h"
#include "testutil.h"

/* Built without CLBlast, every linear_cross_entropy call is
 * CLLOSS_UNSUPPORTED (test_clblast_or_unsupported checks it): the tests
 * of what the GEMMs compute are skipped. */
#ifdef CLLOSS_TEST_HAVE_CLBLAST
#define TL_REQUIRE_CLBLAST() ((void)0)
#else
#define TL_REQUIRE_CLBLAST()                                                   \
  do {                                                                         \
    tu_skip("clloss was built without CLBlast");                               \
    return;                                                                    \
  } while (0)
#endif

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
