/* test_reference_linear_cross_entropy.c - the CPU reference of
 * linear_cross_entropy against hand-computed values, against the
 * cross_entropy reference on explicit logits, and against central finite
 * differences of all three gradients (X, W, b). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/linear.h"
#include "support/testutil.h"

/* A float64 problem's descriptor. */
static clloss_linear_cross_entropy_desc desc_of(size_t n, size_t h, size_t v,
                                                clloss_reduction red) {
  clloss_linear_cross_entropy_desc d = tl_desc(n, h, v, red);
  d.ce.input_type = CLLOSS_FLOAT64;
  return d;
}

static void fill(tu_rng *r, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++)
    x[i] = tu_uniform(r, (float)lo, (float)hi);
}

static double *zeros(size_t n) {
  double *p = calloc(n ? n : 1, sizeof *p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  return p;
}

/* One problem in float64: X [N, H], W [V, H], b [V] or NULL, targets
 * (indices, or probabilities [N, V] when the target type is FLOAT64),
 * class weights and upstream gradient (NULL: none). */
typedef struct prob {
  clloss_linear_cross_entropy_desc d;
  double *x, *w, *b, *y, *cw, *g;
  int64_t t[16];
} prob;

static void prob_make(prob *p, const clloss_linear_cross_entropy_desc *d,
                      uint64_t salt, int bias, int weights, int grad_output) {
  memset(p, 0, sizeof *p);
  p->d = *d;
  tu_rng r = tu_rng_make(salt);
  const size_t N = d->ce.rows, H = d->hidden, V = d->ce.classes;
  CU_ASSERT_FATAL(N <= 16);
  p->x = zeros(N * H);
  p->w = zeros(V * H);
  fill(&r, p->x, N * H, -1.0, 1.0);
  fill(&r, p->w, V * H, -0.8, 0.8);
  if (bias) {
    p->b = zeros(V);
    fill(&r, p->b, V, -1.0, 1.0);
  }
  if (d->ce.target_type == CLLOSS_FLOAT64) {
    p->y = zeros(N * V);
    for (size_t i = 0; i < N; i++) {
      double s = 0.0;
      for (size_t j = 0; j < V; j++)
        s += p->y[i * V + j] = tu_uniform(&r, 0.01f, 1.0f);
      for (size_t j = 0; j < V; j++)
        p->y[i * V + j] /= s;
    }
  } else {
    for (size_t i = 0; i < N; i++)
      p->t[i] = (int64_t)(tu_next(&r) % V);
    if (N > 2)
      p->t[1] = d->ce.ignore_index;
  }
  if (weights) {
    p->cw = zeros(V);
    fill(&r, p->cw, V, 0.25, 2.0);
  }
  if (grad_output) {
    size_t k = d->ce.reduction == CLLOSS_REDUCTION_NONE ? N : 1;
    p->g = zeros(k);
    fill(&r, p->g, k, -1.5, 1.5);
  }
}

static void prob_free(prob *p) {
  free(p->x);
  free(p->w);
  free(p->b);
  free(p->y);
  free(p->cw);
  free(p->g);
}

static const void *targets(const prob *p) {
  return p->y ? (const void *)p->y : (const void *)p->t;
}

/* J = grad_scale sum_k g_k loss_k: the scalar whose gradients the
 * reference returns. */
static double objective(const prob *p) {
  const size_t nl =
      p->d.ce.reduction == CLLOSS_REDUCTION_NONE ? p->d.ce.rows : 1;
  double loss[16];
  CU_ASSERT_EQUAL_FATAL(clloss_reference_linear_cross_entropy(
                            &p->d, p->x, p->w, p->b, targets(p), p->cw, NULL,
                            loss, NULL, NULL, NULL),
                        CLLOSS_SUCCESS);
  double J = 0.0;
  for (size_t k = 0; k < nl; k++)
    J += (p->g ? p->g[k] : 1.0) * loss[k];
  return p->d.ce.grad_scale * J;
}

/* Central differences of J over every element of v (n of them). */
static void fd_of(prob *p, double *v, size_t n, double *expect) {
  const double h = 1e-6;
  for (size_t k = 0; k < n; k++) {
    double keep = v[k];
    v[k] = keep + h;
    double jp = objective(p);
    v[k] = keep - h;
    double jm = objective(p);
    v[k] = keep;
    expect[k] = (jp - jm) / (2.0 * h);
  }
}

static void fd_check(const char *what, prob *p) {
  const size_t N = p->d.ce.rows, H = p->d.hidden, V = p->d.ce.classes;
  double *dx = zeros(N * H), *dw = zeros(V * H), *db = zeros(V);
  double *ex = zeros(N * H), *ew = zeros(V * H), *eb = zeros(V);
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &p->d, p->x, p->w, p->b, targets(p), p->cw, p->g, NULL,
                      dx, dw, p->b ? db : NULL),
                  CLLOSS_SUCCESS);
  fd_of(p, p->x, N * H, ex);
  fd_of(p, p->w, V * H, ew);
  char name[128];
  snprintf(name, sizeof name, "%s dX", what);
  CU_ASSERT_EQUAL(tu_compare(name, dx, CLLOSS_FLOAT64, ex, N * H, 1e-7, 1e-6),
                  0);
  snprintf(name, sizeof name, "%s dW", what);
  CU_ASSERT_EQUAL(tu_compare(name, dw, CLLOSS_FLOAT64, ew, V * H, 1e-7, 1e-6),
                  0);
  if (p->b) {
    fd_of(p, p->b, V, eb);
    snprintf(name, sizeof name, "%s db", what);
    CU_ASSERT_EQUAL(tu_compare(name, db, CLLOSS_FLOAT64, eb, V, 1e-7, 1e-6), 0);
  }
  free(dx);
  free(dw);
  free(db);
  free(ex);
  free(ew);
  free(eb);
}

/* ---- finite differences over the options ---- */
static void test_fd_options(void) {
  struct {
    clloss_reduction red;
    float e, z, cap, norm;
    int bias, weights, g, probs;
  } cases[] = {
      {CLLOSS_REDUCTION_MEAN, 0, 0, 0, 0, 1, 0, 0, 0},
      {CLLOSS_REDUCTION_MEAN, 0.1f, 0, 0, 0, 1, 1, 1, 0},
      {CLLOSS_REDUCTION_SUM, 0, 0.05f, 2.0f, 0, 1, 1, 1, 0},
      {CLLOSS_REDUCTION_NONE, 0.2f, 0.01f, 0, 0, 0, 0, 1, 0},
      {CLLOSS_REDUCTION_MEAN, 0, 0, 0, 3.5f, 1, 1, 0, 0},
      {CLLOSS_REDUCTION_MEAN, 0.1f, 0.02f, 0, 0, 1, 1, 1, 1},
      {CLLOSS_REDUCTION_NONE, 0, 0, 1.5f, 0, 1, 0, 1, 1},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    clloss_linear_cross_entropy_desc d = desc_of(5, 4, 6, cases[k].red);
    d.ce.label_smoothing = cases[k].e;
    d.ce.z_loss = cases[k].z;
    d.ce.softcap = cases[k].cap;
    d.ce.normalizer = cases[k].norm;
    d.ce.grad_scale = k % 3 == 2 ? 0.375f : 1.0f;
    if (cases[k].probs)
      d.ce.target_type = CLLOSS_FLOAT64;
    prob p;
    prob_make(&p, &d, 100 + k, cases[k].bias, cases[k].weights, cases[k].g);
    char what[32];
    snprintf(what, sizeof what, "case %zu", k);
    fd_check(what, &p);
    prob_free(&p);
  }
}

/* ---- the cross_entropy reference on explicit logits ---- */
static void test_matches_cross_entropy(void) {
  clloss_linear_cross_entropy_desc d = desc_of(7, 3, 5, CLLOSS_REDUCTION_MEAN);
  d.ce.label_smoothing = 0.1f;
  d.ce.z_loss = 0.01f;
  prob p;
  prob_make(&p, &d, 7, 1, 1, 1);
  const size_t N = 7, H = 3, V = 5;
  double z[35], dz[35], loss, lloss, dx[21], dw[15], db[5];
  for (size_t i = 0; i < N; i++)
    for (size_t j = 0; j < V; j++) {
      z[i * V + j] = p.b[j];
      for (size_t h = 0; h < H; h++)
        z[i * V + j] += p.x[i * H + h] * p.w[j * H + h];
    }
  CU_ASSERT_EQUAL(
      clloss_reference_cross_entropy(&d.ce, z, p.t, p.cw, p.g, &loss, dz),
      CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, p.x, p.w, p.b, p.t, p.cw, p.g, &lloss, dx, dw, db),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(
      tu_compare("loss", &lloss, CLLOSS_FLOAT64, &loss, 1, 1e-13, 1e-13), 0);
  double ex[21] = {0}, ew[15] = {0}, eb[5] = {0};
  for (size_t i = 0; i < N; i++)
    for (size_t j = 0; j < V; j++) {
      eb[j] += dz[i * V + j];
      for (size_t h = 0; h < H; h++) {
        ex[i * H + h] += dz[i * V + j] * p.w[j * H + h];
        ew[j * H + h] += dz[i * V + j] * p.x[i * H + h];
      }
    }
  CU_ASSERT_EQUAL(tu_compare("dX", dx, CLLOSS_FLOAT64, ex, 21, 1e-14, 1e-12),
                  0);
  CU_ASSERT_EQUAL(tu_compare("dW", dw, CLLOSS_FLOAT64, ew, 15, 1e-14, 1e-12),
                  0);
  CU_ASSERT_EQUAL(tu_compare("db", db, CLLOSS_FLOAT64, eb, 5, 1e-14, 1e-12), 0);
  prob_free(&p);
}

/* ---- hand-computed: W = 0, b = 0 makes every logit 0 ----
 * loss = ln V per row; p = 1/V; mean over the 2 valid rows:
 *   dz_ij = (1/V - [j = t_i]) / 2, dX = dz W = 0, db_j = sum_i dz_ij,
 *   dW_j = sum_i dz_ij x_i. */
static void test_hand_zero_weight(void) {
  clloss_linear_cross_entropy_desc d = desc_of(3, 2, 4, CLLOSS_REDUCTION_MEAN);
  d.ce.input_type = CLLOSS_FLOAT32;
  const float x[6] = {1, 2, -1, 0.5f, 3, -2}, w[8] = {0}, b[4] = {0};
  const int64_t t[3] = {1, -100, 3};
  float loss, dx[6], dw[8], db[4];
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, x, w, b, t, NULL, NULL, &loss, dx, dw, db),
                  CLLOSS_SUCCESS);
  const double ln4 = 1.3862943611198906;
  CU_ASSERT_EQUAL(
      tu_compare("loss", &loss, CLLOSS_FLOAT32, &ln4, 1, 1e-7, 1e-7), 0);
  const double zero[6] = {0};
  CU_ASSERT_EQUAL(tu_compare("dX", dx, CLLOSS_FLOAT32, zero, 6, 0, 0), 0);
  /* rows 0 (t = 1) and 2 (t = 3); dz = (0.25 - onehot) / 2 */
  const double dz0[4] = {0.125, -0.375, 0.125, 0.125};
  const double dz2[4] = {0.125, 0.125, 0.125, -0.375};
  double edb[4], edw[8];
  for (size_t j = 0; j < 4; j++) {
    edb[j] = dz0[j] + dz2[j];
    edw[j * 2] = dz0[j] * x[0] + dz2[j] * x[4];
    edw[j * 2 + 1] = dz0[j] * x[1] + dz2[j] * x[5];
  }
  CU_ASSERT_EQUAL(tu_compare("db", db, CLLOSS_FLOAT32, edb, 4, 1e-7, 1e-7), 0);
  CU_ASSERT_EQUAL(tu_compare("dW", dw, CLLOSS_FLOAT32, edw, 8, 1e-7, 1e-7), 0);
}

/* ---- accumulation adds to what is there ---- */
static void test_accumulate(void) {
  clloss_linear_cross_entropy_desc d = desc_of(4, 3, 5, CLLOSS_REDUCTION_SUM);
  prob p;
  prob_make(&p, &d, 9, 1, 0, 0);
  double dx[12], dw[15], db[5], ax[12], aw[15], ab[5];
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, p.x, p.w, p.b, p.t, NULL, NULL, NULL, dx, dw, db),
                  CLLOSS_SUCCESS);
  for (size_t k = 0; k < 12; k++)
    ax[k] = 0.25 * (double)k - 1.0;
  for (size_t k = 0; k < 15; k++)
    aw[k] = 0.5 * (double)k;
  for (size_t k = 0; k < 5; k++)
    ab[k] = -1.0 * (double)k;
  d.accumulate_grad_linear_weight = d.accumulate_grad_bias = d.ce.accumulate =
      1;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, p.x, p.w, p.b, p.t, NULL, NULL, NULL, ax, aw, ab),
                  CLLOSS_SUCCESS);
  double ex[12], ew[15], eb[5];
  for (size_t k = 0; k < 12; k++)
    ex[k] = 0.25 * (double)k - 1.0 + dx[k];
  for (size_t k = 0; k < 15; k++)
    ew[k] = 0.5 * (double)k + dw[k];
  for (size_t k = 0; k < 5; k++)
    eb[k] = -1.0 * (double)k + db[k];
  CU_ASSERT_EQUAL(tu_compare("dX", ax, CLLOSS_FLOAT64, ex, 12, 1e-15, 1e-14),
                  0);
  CU_ASSERT_EQUAL(tu_compare("dW", aw, CLLOSS_FLOAT64, ew, 15, 1e-15, 1e-14),
                  0);
  CU_ASSERT_EQUAL(tu_compare("db", ab, CLLOSS_FLOAT64, eb, 5, 1e-15, 1e-14), 0);
  prob_free(&p);
}

/* ---- struct_size (clloss.h, "Descriptors"): one from before the first
 * release is refused; a larger one is taken when its extra bytes are 0 and
 * refused as UNSUPPORTED when they set a field this clloss does not know.
 * ---- */
static void test_struct_size(void) {
  clloss_linear_cross_entropy_desc d = desc_of(4, 3, 5, CLLOSS_REDUCTION_SUM);
  prob p;
  prob_make(&p, &d, 11, 1, 0, 0);
  double l0 = 0.0, l1 = 0.0;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(&d, p.x, p.w, p.b, p.t,
                                                        NULL, NULL, &l0, NULL,
                                                        NULL, NULL),
                  CLLOSS_SUCCESS);
  struct {
    clloss_linear_cross_entropy_desc d;
    unsigned char more[16];
  } big;
  memset(&big, 0, sizeof big);
  big.d = d;
  big.d.struct_size = sizeof big;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(&big.d, p.x, p.w, p.b,
                                                        p.t, NULL, NULL, &l1,
                                                        NULL, NULL, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(l1, l0);
  big.more[3] = 1;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(&big.d, p.x, p.w, p.b,
                                                        p.t, NULL, NULL, &l1,
                                                        NULL, NULL, NULL),
                  CLLOSS_UNSUPPORTED);
  const size_t old[] = {0, sizeof(size_t),
                        offsetof(clloss_linear_cross_entropy_desc, ce)};
  for (size_t k = 0; k < sizeof old / sizeof *old; k++) {
    d.struct_size = old[k];
    CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(&d, p.x, p.w, p.b,
                                                          p.t, NULL, NULL, &l1,
                                                          NULL, NULL, NULL),
                    CLLOSS_INVALID_ARGUMENT);
  }
  prob_free(&p);
}

/* ---- errors ---- */
static void test_errors(void) {
  clloss_linear_cross_entropy_desc d = desc_of(2, 2, 3, CLLOSS_REDUCTION_MEAN);
  const double x[4] = {0}, w[6] = {0};
  int64_t t[2] = {0, 3};
  double loss;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, x, w, NULL, t, NULL, NULL, &loss, NULL, NULL, NULL),
                  CLLOSS_INVALID_TARGET);
  t[1] = 2;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      NULL, x, w, NULL, t, NULL, NULL, &loss, NULL, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(&d, x, NULL, NULL, t,
                                                        NULL, NULL, &loss, NULL,
                                                        NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, x, w, NULL, t, NULL, NULL, NULL, NULL, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  d.hidden = 0;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, x, w, NULL, t, NULL, NULL, &loss, NULL, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  d.hidden = 2;
  d.ce.label_smoothing = 2.0f;
  CU_ASSERT_EQUAL(clloss_reference_linear_cross_entropy(
                      &d, x, w, NULL, t, NULL, NULL, &loss, NULL, NULL, NULL),
                  CLLOSS_INVALID_ARGUMENT);
}

int test_reference_linear_cross_entropy_register(void) {
  TU_SUITE("reference_linear_cross_entropy", NULL, NULL,
           TU_TEST(test_fd_options), TU_TEST(test_matches_cross_entropy),
           TU_TEST(test_hand_zero_weight), TU_TEST(test_accumulate),
           TU_TEST(test_struct_size), TU_TEST(test_errors));
}
