/* test_descriptors.c - what keeps the API safe to use and to extend:
 * descriptor versioning by struct_size (every descriptor, every level),
 * the *_DESC_INIT defaults, a clloss_status that can be negative, the hint
 * for targets of the other integer width, and the header compiled as C++
 * (tests/header_cxx.cpp, run from here). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "support/devcheck.h"
#include "support/testutil.h"

/* ---- one small call per descriptor type ---- */
enum { DS_N = 3, DS_C = 5, DS_OUT = 1 + DS_N * DS_C };

static const float ds_x[DS_N * DS_C] = {-1.0f,  -2.0f,  -0.5f,  -3.0f, -1.5f,
                                        -2.5f,  -0.25f, -1.0f,  -4.0f, -2.0f,
                                        -0.75f, -3.5f,  -1.25f, -2.0f, -0.5f};
static const float ds_y[DS_N * DS_C] = {0.5f, 1.0f, 0.0f, 2.0f, 1.0f,
                                        0.0f, 3.0f, 1.0f, 1.0f, 0.5f,
                                        2.0f, 1.0f, 0.0f, 1.0f, 0.25f};
static const int64_t ds_t[DS_N] = {2, 0, 4};

/* A descriptor type: its initialiser's name, its size, where its last
 * field starts (a struct_size that ends before it is older than the first
 * release), and its kind (support/devcheck.h). Each call, at the
 * reference (ctx NULL) or the host-pointer level, writes out[DS_OUT]: the
 * loss, then the gradient (softmax: its output). */
typedef struct ds_kind {
  const char *init;
  size_t size, last;
  dc_kind kind;
  size_t (*loss_count)(const void *desc); /* NULL: softmax */
} ds_kind;

static size_t count_ce(const void *d) {
  return clloss_cross_entropy_output_count(d);
}
static size_t count_nll(const void *d) {
  return clloss_nll_loss_output_count(d);
}
static size_t count_pw(const void *d) {
  return clloss_pointwise_output_count(d);
}

static const ds_kind ds_kinds[] = {
    {"CLLOSS_CROSS_ENTROPY_DESC_INIT", sizeof(clloss_cross_entropy_desc),
     offsetof(clloss_cross_entropy_desc, padding), DC_CE, count_ce},
    {"CLLOSS_NLL_LOSS_DESC_INIT", sizeof(clloss_nll_loss_desc),
     offsetof(clloss_nll_loss_desc, padding), DC_NLL, count_nll},
    {"CLLOSS_SOFTMAX_DESC_INIT", sizeof(clloss_softmax_desc),
     offsetof(clloss_softmax_desc, padding), DC_SOFTMAX, NULL},
    {"CLLOSS_POINTWISE_DESC_INIT", sizeof(clloss_pointwise_desc),
     offsetof(clloss_pointwise_desc, accumulate), DC_PW, count_pw},
};

/* The kind's descriptor for the data above, grad_scale 0.5. */
static void ds_fill(const ds_kind *k, void *out) {
  if (k->kind == DC_PW) {
    clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_HUBER_LOSS);
    d.count = DS_N * DS_C, d.grad_scale = 0.5f;
    memcpy(out, &d, sizeof d);
    return;
  }
  dc_problem p = dc_problem_make(k->kind, DS_N, DS_C, 0);
  p.grad_scale = 0.5f;
  dc_desc d = dc_problem_desc(&p);
  memcpy(out, &d, k->size);
}

static clloss_status ds_call(const ds_kind *k, clloss_context *ctx,
                             const void *d, float *out) {
  const void *in[DC_MAXBUF] = {ds_x, k->kind == DC_PW ? (const void *)ds_y
                                                      : (const void *)ds_t};
  void *outs[DC_MAXBUF] = {0};
  outs[DC_LOSS] = out, outs[DC_GRAD] = out + 1;
  return dc_host_call(ctx, k->kind, d, in, outs);
}

/* A descriptor as a newer header (TAIL more bytes) or an older one would
 * lay it out: aligned storage with room after the struct. */
enum { TAIL = 24 };
typedef union ds_storage {
  max_align_t align;
  unsigned char bytes[256];
} ds_storage;

static void ds_set_size(ds_storage *s, size_t size) {
  memcpy(s->bytes, &size, sizeof size);
}

/* Runs the call with `s` on the level (ctx NULL: reference) and checks its
 * status; a failed call leaves out untouched and, at the host level, says
 * what is wrong with `detail` in the context's detail. */
static void ds_expect(const ds_kind *k, clloss_context *ctx,
                      const ds_storage *s, clloss_status want,
                      const char *detail, const float *good) {
  float out[DS_OUT];
  for (int i = 0; i < DS_OUT; i++)
    out[i] = 7.0f;
  clloss_status got = ds_call(k, ctx, s->bytes, out);
  CU_ASSERT_EQUAL(got, want);
  if (got != want)
    printf("\n  %s (%s): %s, expected %s", k->init, ctx ? "host" : "reference",
           clloss_status_name(got), clloss_status_name(want));
  if (want == CLLOSS_SUCCESS) {
    CU_ASSERT_EQUAL(memcmp(out, good, sizeof out), 0);
  } else {
    for (int i = 0; i < DS_OUT; i++)
      CU_ASSERT_EQUAL(out[i], 7.0f);
    if (ctx && detail)
      CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), detail));
  }
}

/* struct_size: this header's size works; below the first release's (here:
 * ending before the last field) is INVALID_ARGUMENT and names the
 * initialiser; a newer header's larger size works while the fields this
 * library does not know are zero, else UNSUPPORTED. At the reference and
 * host levels (the device level shares the check: see below) and for the
 * loss_count functions. */
static void test_ds_struct_size(void) {
  for (size_t ki = 0; ki < sizeof ds_kinds / sizeof ds_kinds[0]; ki++) {
    const ds_kind *k = &ds_kinds[ki];
    for (size_t level = 0; level < 1 + (tu_device_count() > 0); level++) {
      clloss_context *ctx = level ? tu_context(0) : NULL;
      ds_storage s;
      memset(&s, 0, sizeof s);
      ds_fill(k, s.bytes);
      float good[DS_OUT];
      for (int i = 0; i < DS_OUT; i++)
        good[i] = 7.0f;
      CU_ASSERT_EQUAL_FATAL(ds_call(k, ctx, s.bytes, good), CLLOSS_SUCCESS);
      size_t size;
      memcpy(&size, s.bytes, sizeof size);
      CU_ASSERT_EQUAL(size, k->size);

      ds_set_size(&s, k->size + TAIL); /* newer, unknown fields zero */
      ds_expect(k, ctx, &s, CLLOSS_SUCCESS, NULL, good);
      if (k->loss_count)
        CU_ASSERT_EQUAL(k->loss_count(s.bytes), 1);
      s.bytes[k->size + TAIL - 1] = 1; /* one unknown field set */
      ds_expect(k, ctx, &s, CLLOSS_UNSUPPORTED, "does not know", good);
      if (k->loss_count)
        CU_ASSERT_EQUAL(k->loss_count(s.bytes), 0);
      s.bytes[k->size + TAIL - 1] = 0;

      const size_t small[3] = {0, sizeof(size_t), k->last};
      for (int i = 0; i < 3; i++) {
        ds_set_size(&s, small[i]);
        ds_expect(k, ctx, &s, CLLOSS_INVALID_ARGUMENT, k->init, good);
        if (k->loss_count)
          CU_ASSERT_EQUAL(k->loss_count(s.bytes), 0);
      }
      ds_set_size(&s, k->size);
      ds_expect(k, ctx, &s, CLLOSS_SUCCESS, NULL, good);
    }
  }
}

/* The device-buffer calls take their descriptors through the same rule:
 * one of each outcome for cross_entropy, nothing written when it fails. */
static void test_ds_struct_size_device(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  cl_mem x = tu_buffer(ctx, sizeof ds_x, ds_x);
  cl_mem t = tu_buffer(ctx, sizeof ds_t, ds_t);
  const float init[DS_OUT] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
  float ref[DS_OUT];
  ds_storage s;
  memset(&s, 0, sizeof s);
  ds_fill(&ds_kinds[0], s.bytes);
  CU_ASSERT_EQUAL_FATAL(ds_call(&ds_kinds[0], NULL, s.bytes, ref),
                        CLLOSS_SUCCESS);
  const struct {
    size_t size;
    unsigned char tail;
    clloss_status want;
  } cases[] = {
      {sizeof(clloss_cross_entropy_desc), 0, CLLOSS_SUCCESS},
      {sizeof(clloss_cross_entropy_desc) + TAIL, 0, CLLOSS_SUCCESS},
      {sizeof(clloss_cross_entropy_desc) + TAIL, 3, CLLOSS_UNSUPPORTED},
      {0, 0, CLLOSS_INVALID_ARGUMENT}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ds_set_size(&s, cases[i].size);
    s.bytes[sizeof(clloss_cross_entropy_desc) + TAIL - 1] = cases[i].tail;
    cl_mem out = tu_buffer(ctx, sizeof init, init);
    clloss_buffer loss = {out, 0}, grad = {out, 1};
    cl_event ev = NULL;
    clloss_status st = clloss_cross_entropy(
        ctx, clloss_context_queue(ctx),
        (const clloss_cross_entropy_desc *)(const void *)s.bytes,
        CLLOSS_BUFFER(x), CLLOSS_BUFFER(t), CLLOSS_BUFFER_NONE,
        CLLOSS_BUFFER_NONE, loss, grad, 0, NULL, &ev);
    CU_ASSERT_EQUAL(st, cases[i].want);
    if (ev)
      clReleaseEvent(ev);
    float back[DS_OUT];
    tu_read(ctx, out, 0, sizeof back, back);
    if (st == CLLOSS_SUCCESS) {
      CU_ASSERT_EQUAL(
          tu_compare_f("ce device loss and grad", back, ref, DS_OUT, 0, 2e-6),
          0);
    } else {
      CU_ASSERT_EQUAL(memcmp(back, init, sizeof back), 0);
    }
    clReleaseMemObject(out);
  }
  clReleaseMemObject(x);
  clReleaseMemObject(t);
}

/* The initialisers give PyTorch's defaults and the new options' neutral
 * values. */
static void test_ds_defaults(void) {
  const clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  CU_ASSERT_EQUAL(ce.struct_size, sizeof ce);
  CU_ASSERT_EQUAL(ce.row_stride, 0);
  CU_ASSERT_EQUAL(ce.input_type, CLLOSS_FLOAT32);
  CU_ASSERT_EQUAL(ce.target_type, CLLOSS_INT64);
  CU_ASSERT_EQUAL(ce.reduction, CLLOSS_REDUCTION_MEAN);
  CU_ASSERT_EQUAL(ce.ignore_index, -100);
  CU_ASSERT_EQUAL(ce.label_smoothing, 0.0f);
  CU_ASSERT_EQUAL(ce.grad_scale, 1.0f);
  CU_ASSERT_EQUAL(ce.accumulate, 0);
  CU_ASSERT_EQUAL(ce.padding, CLLOSS_PADDING_AUTO);
  const clloss_nll_loss_desc nll = CLLOSS_NLL_LOSS_DESC_INIT;
  CU_ASSERT_EQUAL(nll.struct_size, sizeof nll);
  CU_ASSERT_EQUAL(nll.ignore_index, -100);
  CU_ASSERT_EQUAL(nll.grad_scale, 1.0f);
  CU_ASSERT_EQUAL(nll.accumulate, 0);
  CU_ASSERT_EQUAL(nll.padding, CLLOSS_PADDING_AUTO);
  const clloss_softmax_desc sm = CLLOSS_SOFTMAX_DESC_INIT;
  CU_ASSERT_EQUAL(sm.struct_size, sizeof sm);
  CU_ASSERT_EQUAL(sm.padding, CLLOSS_PADDING_AUTO);
  const clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_KL_DIV);
  CU_ASSERT_EQUAL(pw.struct_size, sizeof pw);
  CU_ASSERT_EQUAL(pw.loss, CLLOSS_KL_DIV);
  CU_ASSERT_EQUAL(pw.delta, 1.0f);
  CU_ASSERT_EQUAL(pw.beta, 1.0f);
  CU_ASSERT_EQUAL(pw.grad_scale, 1.0f);
  CU_ASSERT_EQUAL(pw.accumulate, 0);
}

/* The header says OpenCL's errors are negative: `s < 0` must be able to
 * be true, so clloss_status must be a signed type. */
static void test_ds_status_signed(void) {
  clloss_status s = (clloss_status)CL_OUT_OF_RESOURCES;
  CU_ASSERT_TRUE(s < 0);
  CU_ASSERT_STRING_EQUAL(clloss_status_name(s), "CL_OUT_OF_RESOURCES");
  s = CLLOSS_INVALID_ARGUMENT;
  CU_ASSERT_FALSE(s < 0);
  CU_ASSERT_FALSE(CLLOSS_INVALID_ARGUMENT < 0);
  CU_ASSERT_TRUE((clloss_status)-1 < 0);
  s = clloss_reference_softmax(NULL, NULL, NULL);
  CU_ASSERT_TRUE(s > 0);
}

/* llm.c's `int *` targets passed with the default int64 type read as
 * 1795296330048 and the like: the detail says what is likely wrong. So do
 * int64 targets (with ignore_index) passed as int32. A target that is
 * wrong either way gets no hint. */
static void test_ds_target_width_hint(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  enum { N = 4, C = 50257 };
  float *x = calloc(N * C, sizeof *x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  /* The int32 array holds 2N entries, so that read as int64 it holds N. */
  int32_t t32[2 * N] = {1795, 418, 50256, 0, 7, 9, 11, 13};
  int64_t t64[N] = {3, -100, 50000, 12};
  float loss;
  for (int nll = 0; nll < 2; nll++) {
    clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    clloss_nll_loss_desc nd = CLLOSS_NLL_LOSS_DESC_INIT;
    ce.rows = nd.rows = N;
    ce.classes = nd.classes = C;
#define DS_CALL(targets, type)                                                 \
  (ce.target_type = nd.target_type = (type),                                   \
   nll ? clloss_nll_loss_host(ctx, &nd, x, (targets), NULL, NULL, &loss, NULL) \
       : clloss_cross_entropy_host(ctx, &ce, x, (targets), NULL, NULL, &loss,  \
                                   NULL))
    CU_ASSERT_EQUAL(DS_CALL(t32, CLLOSS_INT64), CLLOSS_INVALID_TARGET);
    const char *d = clloss_context_error_detail(ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "are the targets int32? set target_type"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "CLLOSS_INT32"));
    CU_ASSERT_EQUAL(DS_CALL(t32, CLLOSS_INT32), CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(DS_CALL(t64, CLLOSS_INT32), CLLOSS_INVALID_TARGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx),
                                  "are the targets int64? set target_type"));
    CU_ASSERT_EQUAL(DS_CALL(t64, CLLOSS_INT64), CLLOSS_SUCCESS);
    t64[2] = 60000; /* out of range read either way */
    CU_ASSERT_EQUAL(DS_CALL(t64, CLLOSS_INT64), CLLOSS_INVALID_TARGET);
    d = clloss_context_error_detail(ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "target 60000 of row 2"));
    CU_ASSERT_PTR_NULL(strstr(d, "are the targets"));
    t64[2] = 50000;
#undef DS_CALL
  }
  free(x);
}

/* tests/header_cxx.cpp, built when CMake found a C++ compiler. */
static void test_ds_header_as_cxx(void) {
#ifdef CLLOSS_HEADER_CXX
  int rc = system(CLLOSS_HEADER_CXX);
  CU_ASSERT_TRUE(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
    printf("\n  %s: exit status %d", CLLOSS_HEADER_CXX,
           rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
#else
  tu_skip("no C++ compiler when CMake configured the build");
#endif
}

int test_descriptors_register(void) {
  TU_SUITE("descriptors", NULL, NULL, TU_TEST(test_ds_defaults),
           TU_TEST(test_ds_struct_size), TU_TEST(test_ds_struct_size_device),
           TU_TEST(test_ds_status_signed), TU_TEST(test_ds_target_width_hint),
           TU_TEST(test_ds_header_as_cxx));
}
