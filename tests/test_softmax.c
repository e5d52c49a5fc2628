/* test_softmax.c - clloss_softmax and clloss_softmax_host against the
 * double reference: every variant and storage type, logits up to +-1e6,
 * in place, the padding options, NaN and +-inf rows, bad arguments. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/devcheck.h"
#include "support/testutil.h"
#include "support/ulps.h"

static const clloss_dtype sm_types[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16,
                                        CLLOSS_BFLOAT16, CLLOSS_FLOAT64};

static int sm_has(clloss_context *ctx, clloss_dtype type) {
  return tu_runs_type(ctx, type);
}

/* Rows of float values (rows x ld, padding 5): row kind i % 4 uniform in
 * [-5, 5]; near +big; near -big; near +big or -big at random. */
static float *sm_rows(size_t rows, size_t classes, size_t ld, float big,
                      uint64_t salt) {
  tu_rng r = tu_rng_make(salt);
  float *x = dc_alloc(rows * ld * sizeof *x);
  for (size_t i = 0; i < rows; i++)
    for (size_t j = 0; j < ld; j++) {
      float sign = i % 4 == 2 || (i % 4 == 3 && (tu_next(&r) & 1)) ? -1 : 1;
      float v = i % 4 == 0 ? tu_uniform(&r, -5.0f, 5.0f)
                           : sign * big + tu_uniform(&r, -8.0f, 0.0f);
      x[i * ld + j] = j < classes ? v : 5.0f;
    }
  return x;
}

/* Compares p (storage `type`, rows x ld) with the double reference of the
 * stored values: ul_ce_bound's float32 ulps of p_j (support/ulps.c, the
 * bound for any variant on any conformant device) plus the rounding of
 * exp's argument x_j - lse (half an ulp of it, relatively), plus a
 * storage ulp for 16-bit types, plus FLT_MIN (subnormal exps are 0). */
static int sm_type_index(clloss_dtype type) {
  for (int i = 0; i < 4; i++)
    if (sm_types[i] == type)
      return i;
  return 0;
}

/* The worst errors per storage type of sm_check_scales, printed at its
 * end. */
static ul_worst sm_worst[4];

static size_t sm_compare(const char *what, clloss_dtype type, const float *x,
                         size_t rows, size_t classes, size_t ld,
                         const void *got) {
  clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
  d.rows = rows, d.classes = classes, d.row_stride = ld;
  d.input_type = CLLOSS_FLOAT64;
  double *xs = dc_alloc(rows * ld * sizeof *xs);
  double *want = dc_alloc(rows * ld * sizeof *want);
  for (size_t i = 0; i < rows * ld; i++)
    xs[i] = ul_stored(type, x[i]);
  CU_ASSERT_EQUAL_FATAL(clloss_reference_softmax(&d, xs, want), CLLOSS_SUCCESS);
  ul_worst w = {0, 0, 0, 0};
  ul_ce_opts o = {classes, rows, 0, 0, 0, 0, 0, 1};
  const double ulps = ul_ce_bound(&o).grad;
  for (size_t i = 0; i < rows; i++) {
    double m = -INFINITY, s = 0;
    for (size_t j = 0; j < classes; j++)
      m = xs[i * ld + j] > m ? xs[i * ld + j] : m;
    for (size_t j = 0; j < classes; j++)
      s += exp(xs[i * ld + j] - m);
    const double lse = m + log(s);
    for (size_t j = 0; j < classes; j++) {
      const size_t e = i * ld + j;
      double p = want[e];
      double extra = (p > 0 ? fabs(xs[e] - lse) * 0x1p-24 * p : 0) + FLT_MIN;
      if (type == CLLOSS_FLOAT16 || type == CLLOSS_BFLOAT16)
        extra += ul_ulp(type, p);
      ul_check(&w, what, e, dc_get(type, got, e), p, p, ulps, extra);
    }
  }
  free(xs);
  free(want);
  ul_worst *t = &sm_worst[sm_type_index(type)];
  t->ulps = fmax(t->ulps, w.ulps);
  t->ratio = fmax(t->ratio, w.ratio);
  t->count += w.count;
  CU_ASSERT_EQUAL(w.bad, 0);
  return w.bad;
}

/* Every variant and storage type at the device level (out of place and in
 * place) and the host level, on rows of three scales. */
static void sm_check_scales(size_t rows, size_t classes, uint64_t salt) {
  const float bigs[3] = {5.0f, 1e4f, 1e6f};
  memset(sm_worst, 0, sizeof sm_worst);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    for (int b = 0; b < 3; b++) {
      float *x = sm_rows(rows, classes, classes, bigs[b], salt + (uint64_t)b);
      for (int ti = 0; ti < 4; ti++) {
        clloss_dtype type = sm_types[ti];
        if (!sm_has(ctx, type) || (type == CLLOSS_FLOAT16 && bigs[b] > 6e4f))
          continue;
        dc_problem p = dc_problem_make(DC_SOFTMAX, rows, classes, classes);
        p.input_type = type;
        dc_stored d = {dc_from_float(type, x, rows * classes), NULL};
        for (int v = 0; v < DC_VARIANTS - 1; v++) {
          clloss_context_set_variant(ctx, dc_variants[v]);
          for (int ip = 0; ip < 2; ip++) {
            char how[128];
            snprintf(how, sizeof how, "softmax %s +-%g %s [%s]",
                     clloss_dtype_name(type), bigs[b],
                     ip ? "in place" : "out of place", dc_variants[v]);
            dc_opts o = {.in_place = ip};
            dc_result r = dc_run_problem(ctx, &p, &d, &o);
            CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
            if (r.status == CLLOSS_SUCCESS)
              sm_compare(how, type, x, rows, classes, classes, r.grad);
            dc_result_free(&r);
          }
          CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx),
                                 dc_variants[v]);
          void *out = dc_filled(type, rows * classes, 7.0f);
          char how[128];
          snprintf(how, sizeof how, "softmax %s +-%g [%s, host call]",
                   clloss_dtype_name(type), bigs[b], dc_variants[v]);
          CU_ASSERT_EQUAL(dc_host(ctx, &p, d.x, NULL, NULL, out),
                          CLLOSS_SUCCESS);
          sm_compare(how, type, x, rows, classes, classes, out);
          free(out);
        }
        dc_stored_free(&d);
      }
      free(x);
    }
    clloss_context_set_variant(ctx, "auto");
  }
  ul_ce_opts o = {classes, rows, 0, 0, 0, 0, 0, 1};
  printf("\n  softmax C=%zu, worst ulps (float32's) of p (bound %.0f), as a "
         "fraction of the allowed:",
         classes, ul_ce_bound(&o).grad);
  for (int ti = 0; ti < 4; ti++)
    if (sm_worst[ti].count)
      printf(" %s %.2f (%.4f);", clloss_dtype_name(sm_types[ti]),
             sm_worst[ti].ulps, sm_worst[ti].ratio);
  printf("\n");
}

static void test_sm_scales(void) {
  TU_REQUIRE_DEVICE();
  sm_check_scales(8, 600, 3101);
}

/* Longer than the group variant keeps on chip, in many split segments. */
static void test_sm_long_rows(void) {
  TU_REQUIRE_DEVICE();
  sm_check_scales(2, 13001, 3111);
}

/* The reference itself: rows of known softmax. */
static void test_sm_reference_values(void) {
  clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
  d.rows = 3, d.classes = 4;
  const float x[12] = {0,
                       0,
                       0,
                       0,
                       1e4f,
                       1e4f,
                       -INFINITY,
                       1e4f,
                       (float)log(1.0),
                       (float)log(2.0),
                       (float)log(3.0),
                       (float)log(4.0)};
  const float want[12] = {0.25f, 0.25f,    0.25f, 0.25f, 1.0f / 3, 1.0f / 3,
                          0.0f,  1.0f / 3, 0.1f,  0.2f,  0.3f,     0.4f};
  float p[12];
  CU_ASSERT_EQUAL(clloss_reference_softmax(&d, x, p), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_compare_f("reference softmax", p, want, 12, 0, 2.4e-7), 0);
}

/* NaN anywhere in a row makes it NaN; +inf gives NaN (inf - inf), as
 * PyTorch; a row of -inf is NaN (0/0); -inf among finite logits is 0; a
 * row of equal values is 1/C. The same on every variant and level. */
static void test_sm_nan_inf(void) {
  TU_REQUIRE_DEVICE();
  enum { R = 6, C = 37 };
  float *x = sm_rows(R, C, C, 5.0f, 3121);
  x[0 * C + 5] = NAN;
  x[1 * C + 36] = INFINITY;
  for (size_t j = 0; j < C; j++) {
    x[2 * C + j] = -INFINITY;
    x[3 * C + j] = j % 3 ? -INFINITY : x[3 * C + j];
    x[4 * C + j] = 1e4f;
  }
  dc_problem p = dc_problem_make(DC_SOFTMAX, R, C, C);
  dc_stored d = {dc_from_float(CLLOSS_FLOAT32, x, R * C), NULL};
  float ref[R * C];
  CU_ASSERT_EQUAL(dc_host(NULL, &p, d.x, NULL, NULL, ref), CLLOSS_SUCCESS);
  for (size_t j = 0; j < C; j++) {
    CU_ASSERT_TRUE(isnan(ref[0 * C + j]) && isnan(ref[1 * C + j]) &&
                   isnan(ref[2 * C + j]));
    CU_ASSERT_TRUE(j % 3 ? ref[3 * C + j] == 0.0f : ref[3 * C + j] > 0.0f);
    CU_ASSERT_DOUBLE_EQUAL(ref[4 * C + j], 1.0 / C, 1e-9);
  }
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    for (int v = 0; v < DC_VARIANTS - 1; v++) {
      char how[64];
      clloss_context_set_variant(ctx, dc_variants[v]);
      snprintf(how, sizeof how, "softmax NaN/inf [%s]", dc_variants[v]);
      dc_result r = dc_run_problem(ctx, &p, &d, NULL);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      if (r.grad)
        CU_ASSERT_EQUAL(tu_compare_f(how, r.grad, ref, R * C, 0, 2e-6), 0);
      dc_result_free(&r);
      float out[R * C];
      CU_ASSERT_EQUAL(dc_host(ctx, &p, d.x, NULL, NULL, out), CLLOSS_SUCCESS);
      CU_ASSERT_EQUAL(tu_compare_f(how, out, ref, R * C, 0, 2e-6), 0);
    }
    clloss_context_set_variant(ctx, "auto");
  }
  dc_stored_free(&d);
  free(x);
}

/* The output's padding [C, ld): device level as cross_entropy's gradient
 * (AUTO zeros in place, where the buffer holds it; ZERO zeros every row or
 * fails with BUFFER_TOO_SMALL; KEEP never writes there); host level and
 * reference: zeros with ZERO only. */
static void test_sm_padding(void) {
  TU_REQUIRE_DEVICE();
  enum { R = 5, C = 37, LD = 48 };
  const size_t extent = (R - 1) * LD + C;
  dc_problem p = dc_problem_make(DC_SOFTMAX, R, C, LD);
  float *x = sm_rows(R, C, LD, 1e4f, 3131);
  dc_stored d = {dc_from_float(CLLOSS_FLOAT32, x, R * LD), NULL};
  float ref[R * LD];
  CU_ASSERT_EQUAL(dc_host(NULL, &p, d.x, NULL, NULL, ref), CLLOSS_SUCCESS);
  float *g0 = dc_filled(CLLOSS_FLOAT32, R * LD, 11.0f);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    for (int v = 0; v < DC_VARIANTS - 1; v++) {
      clloss_context_set_variant(ctx, dc_variants[v]);
      for (int m = 0; m < 3; m++)
        for (int k = 0; k < 4; k++) {
          const int ip = k < 2, ex = k % 2;
          dc_problem q = p;
          q.padding = (clloss_padding)m;
          dc_opts o = {.in_place = ip, .grad_init = ip ? NULL : g0};
          o.held[ip ? DC_INPUT : DC_GRAD] = ex ? extent : 0;
          char how[128];
          snprintf(how, sizeof how, "softmax padding %d %s%s [%s]", m,
                   ip ? "in place" : "own buffer", ex ? " extent" : "",
                   dc_variants[v]);
          dc_result r = dc_run_problem(ctx, &q, &d, &o);
          if (m == CLLOSS_PADDING_ZERO && ex) {
            CU_ASSERT_EQUAL(r.status, CLLOSS_BUFFER_TOO_SMALL);
            CU_ASSERT_PTR_NOT_NULL(
                strstr(clloss_context_error_detail(ctx), "padding"));
          } else {
            CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
            size_t zero_rows = m == CLLOSS_PADDING_ZERO         ? R
                               : m == CLLOSS_PADDING_AUTO && ip ? R - ex
                                                                : 0;
            const void *got = r.grad;
            if (got) {
              CU_ASSERT_EQUAL(dc_compare_rows(how, &q, got, ref, 0, 2e-6), 0);
              CU_ASSERT_EQUAL(
                  dc_check_padding(how, &q, got, zero_rows, ip ? d.x : g0), 0);
            }
          }
          dc_result_free(&r);
        }
      for (int m = 0; m < 3; m++) {
        dc_problem q = p;
        q.padding = (clloss_padding)m;
        float out[R * LD];
        memcpy(out, g0, sizeof out);
        CU_ASSERT_EQUAL(dc_host(ctx, &q, d.x, NULL, NULL, out), CLLOSS_SUCCESS);
        CU_ASSERT_EQUAL(dc_compare_rows("softmax host", &q, out, ref, 0, 2e-6),
                        0);
        CU_ASSERT_EQUAL(dc_check_padding("softmax host", &q, out,
                                         m == CLLOSS_PADDING_ZERO ? R : 0, g0),
                        0);
      }
    }
    clloss_context_set_variant(ctx, "auto");
  }
  for (int m = 0; m < 3; m++) {
    dc_problem q = p;
    q.padding = (clloss_padding)m;
    float out[R * LD];
    memcpy(out, g0, sizeof out);
    CU_ASSERT_EQUAL(dc_host(NULL, &q, d.x, NULL, NULL, out), CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(dc_check_padding("softmax reference", &q, out,
                                     m == CLLOSS_PADDING_ZERO ? R : 0, g0),
                    0);
  }
  free(g0);
  dc_stored_free(&d);
  free(x);
}

/* Bad arguments: a named status, nothing written. */
static void test_sm_invalid(void) {
  clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
  d.rows = 2, d.classes = 3;
  float x[6] = {1, 2, 3, 4, 5, 6}, out[6] = {7, 7, 7, 7, 7, 7};
  clloss_softmax_desc bad = d;
  bad.row_stride = 2;
  CU_ASSERT_EQUAL(clloss_reference_softmax(&bad, x, out),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_reference_softmax(&d, NULL, out),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(clloss_reference_softmax(&d, x, NULL),
                  CLLOSS_INVALID_ARGUMENT);
  bad = d;
  bad.input_type = CLLOSS_INT32;
  CU_ASSERT_EQUAL(clloss_reference_softmax(&bad, x, out),
                  CLLOSS_INVALID_ARGUMENT);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    CU_ASSERT_EQUAL(clloss_softmax_host(ctx, &d, x, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "output"));
    CU_ASSERT_EQUAL(clloss_softmax_host(ctx, &d, NULL, out),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_softmax_host(NULL, &d, x, out),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(clloss_softmax_host(ctx, &bad, x, out),
                    CLLOSS_INVALID_ARGUMENT);
    cl_mem b = tu_buffer(ctx, sizeof x, x);
    cl_event ev = (cl_event)&ev;
    CU_ASSERT_EQUAL(clloss_softmax(ctx, clloss_context_queue(ctx), &d,
                                   CLLOSS_BUFFER(b), CLLOSS_BUFFER_NONE, 0,
                                   NULL, &ev),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(ev);
    /* 6 elements from offset 1 hold only 5. */
    clloss_buffer at1 = {b, 1};
    CU_ASSERT_EQUAL(clloss_softmax(ctx, clloss_context_queue(ctx), &d, at1, at1,
                                   0, NULL, NULL),
                    CLLOSS_BUFFER_TOO_SMALL);
    float back[6];
    tu_read(ctx, b, 0, sizeof back, back);
    CU_ASSERT_EQUAL(memcmp(back, x, sizeof x), 0);
    clReleaseMemObject(b);
  }
  for (int i = 0; i < 6; i++)
    CU_ASSERT_EQUAL(out[i], 7.0f);
}

int test_softmax_register(void) {
  TU_SUITE("softmax", NULL, NULL, TU_TEST(test_sm_reference_values),
           TU_TEST(test_sm_scales), TU_TEST(test_sm_long_rows),
           TU_TEST(test_sm_nan_inf), TU_TEST(test_sm_padding),
           TU_TEST(test_sm_invalid));
}
