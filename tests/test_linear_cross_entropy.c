/* test_linear_cross_entropy.c - linear_cross_entropy on every device against
 * the CPU reference: row chunks and vocabulary blocks (sizes that do not
 * divide N or V), every option, each output alone, accumulation, storage
 * types, the host-pointer call, edge cases and errors. Shapes are small:
 * the suite is about the chunking, not the GEMMs' speed. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "linear.h"
#include "support/devcheck.h"
#include "support/linear.h"
#include "support/testutil.h"

enum { B_X, B_W, B_B, B_T, B_CW, B_G, B_LOSS, B_DX, B_DW, B_DB, NB };
static const char *const names[NB] = {"input",
                                      "linear_weight",
                                      "linear_bias",
                                      "target",
                                      "weight",
                                      "grad_output",
                                      "loss",
                                      "grad_input",
                                      "grad_linear_weight",
                                      "grad_linear_bias"};

/* Outputs, one bit each (0: all four). */
enum { W_LOSS = 1, W_DX = 2, W_DW = 4, W_DB = 8, W_ALL = 15 };

typedef struct gen {
  uint64_t salt;
  int bias, weights, grad_output, prob;
  double ignore;
  int outputs;
} gen;

/* One case: a call of the harness, its storage-typed arrays of every
 * argument (for accumulated gradients, their values before the call). */
typedef dc_call lcase;

static void *random_storage(tu_rng *r, clloss_dtype t, size_t n, float lo,
                            float hi) {
  float *f = dc_alloc(n * sizeof *f);
  tu_fill_uniform(r, f, n, lo, hi);
  void *out = dc_from_float(t, f, n);
  free(f);
  return out;
}

static void make(lcase *c, const clloss_linear_cross_entropy_desc *d,
                 const gen *g) {
  memset(c, 0, sizeof *c);
  c->kind = DC_LINEAR, c->d.linear = *d, c->names = names;
  for (int b = B_LOSS; b < NB; b++)
    c->output[b] = 1;
  tu_rng r = tu_rng_make(g->salt);
  const size_t N = d->ce.rows, V = d->ce.classes, H = d->hidden;
  const clloss_dtype st = d->ce.input_type, rt = clloss_loss_dtype(st);
  const int outputs = g->outputs ? g->outputs : W_ALL;
  const size_t lc = clloss_cross_entropy_output_count(&d->ce);
  const size_t n[NB] = {N * H, V * H, V, g->prob ? N * V : N, V, lc, lc,
                        N * H, V * H, V};
  const clloss_dtype type[NB] = {st, st, st, d->ce.target_type, rt, rt, rt,
                                 st, st, st};
  memcpy(c->n, n, sizeof n);
  memcpy(c->type, type, sizeof type);
  c->owned[B_X] = random_storage(&r, st, N * H, -1.0f, 1.0f);
  c->owned[B_W] = random_storage(&r, st, V * H, -0.7f, 0.7f);
  c->given[B_X] = c->given[B_W] = c->given[B_T] = 1;
  if (g->bias)
    c->owned[B_B] = random_storage(&r, st, V, -1.0f, 1.0f);
  if (g->prob) {
    float *p = dc_alloc(N * V * sizeof *p);
    dc_fill_probabilities(&r, p, N, V);
    c->owned[B_T] = dc_from_float(st, p, N * V);
    free(p);
  } else {
    int64_t *t = dc_alloc(N * sizeof *t);
    dc_fill_targets(&r, t, N, V, g->ignore, d->ce.ignore_index);
    c->owned[B_T] = dc_targets(d->ce.target_type, t, N);
    free(t);
  }
  if (g->weights)
    c->owned[B_CW] = random_storage(&r, rt, V, 0.25f, 2.0f);
  if (g->grad_output)
    c->owned[B_G] = random_storage(&r, rt, lc, -1.5f, 1.5f);
  c->given[B_B] = g->bias, c->given[B_CW] = g->weights;
  c->given[B_G] = g->grad_output;
  c->given[B_LOSS] = (outputs & W_LOSS) != 0;
  c->given[B_DX] = (outputs & W_DX) != 0;
  c->given[B_DW] = (outputs & W_DW) != 0;
  c->given[B_DB] = (outputs & W_DB) != 0;
  if (d->ce.accumulate)
    c->owned[B_DX] = random_storage(&r, st, N * H, -1.0f, 1.0f);
  if (d->accumulate_grad_linear_weight)
    c->owned[B_DW] = random_storage(&r, st, V * H, -1.0f, 1.0f);
  if (d->accumulate_grad_bias)
    c->owned[B_DB] = random_storage(&r, st, V, -1.0f, 1.0f);
  for (int b = 0; b < NB; b++)
    c->host[b] = c->owned[b];
  snprintf(c->label, sizeof c->label,
           "%s N=%zu H=%zu V=%zu %s%s%s%s%s chunk=%zu block=%zu e=%g z=%g "
           "cap=%g norm=%g scale=%g acc=%d%d%d out=%d",
           clloss_dtype_name(st), N, H, V,
           clloss_reduction_name(d->ce.reduction), g->bias ? " bias" : "",
           g->weights ? " weights" : "", g->grad_output ? " g" : "",
           g->prob ? " probs" : "", d->chunk_rows, d->vocab_block,
           d->ce.label_smoothing, d->ce.z_loss, d->ce.softcap, d->ce.normalizer,
           d->ce.grad_scale, d->ce.accumulate, d->accumulate_grad_linear_weight,
           d->accumulate_grad_bias, outputs);
}

/* The reference's outputs in double: every input converted exactly to
 * float64 (the values the device sees), the call made in float64. */
static void reference(const lcase *c, double *out[NB]) {
  clloss_linear_cross_entropy_desc d = c->d.linear;
  const int prob = c->type[B_T] != CLLOSS_INT32 && c->type[B_T] != CLLOSS_INT64;
  d.ce.input_type = CLLOSS_FLOAT64;
  if (prob)
    d.ce.target_type = CLLOSS_FLOAT64;
  double *in[NB] = {0};
  for (int b = 0; b < NB; b++) {
    out[b] = NULL;
    if (c->host[b] && (b != B_T || prob))
      in[b] = dc_to_double(c->type[b], c->host[b], c->n[b]);
    if (c->output[b] && c->given[b]) {
      out[b] = dc_alloc(c->n[b] * sizeof(double));
      if (in[b])
        memcpy(out[b], in[b], c->n[b] * sizeof(double));
    }
  }
  clloss_status s = clloss_reference_linear_cross_entropy(
      &d, in[B_X], in[B_W], in[B_B], prob ? (void *)in[B_T] : c->host[B_T],
      in[B_CW], in[B_G], out[B_LOSS], out[B_DX], out[B_DW], out[B_DB]);
  CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
  for (int b = 0; b < NB; b++)
    free(in[b]);
}

/* The device-buffer call, each buffer at offset off + b elements. */
static dc_result run_device(clloss_context *ctx, cl_command_queue q,
                            const lcase *c, size_t off) {
  dc_opts o;
  memset(&o, 0, sizeof o);
  for (int b = 0; off && b < NB; b++)
    o.off[b] = off + (size_t)b;
  return dc_run(ctx, q, c, &o);
}

static void tolerances(clloss_dtype st, double *loss, double *grad_atol,
                       double *grad_rtol) {
  *loss = st == CLLOSS_FLOAT64 ? 1e-10 : 2e-5;
  *grad_atol = st == CLLOSS_FLOAT64 ? 1e-10 : 1e-5;
  *grad_rtol = st == CLLOSS_FLOAT64 ? 1e-9 : 1e-4;
  if (st == CLLOSS_FLOAT16)
    *grad_atol = 1e-3, *grad_rtol = 2e-3;
  else if (st == CLLOSS_BFLOAT16)
    *grad_atol = 8e-3, *grad_rtol = 1.6e-2;
}

/* Compares a result with the reference; returns the number of mismatches. */
static size_t compare(const lcase *c, const dc_result *r, double *ref[NB]) {
  double lt, ga, gr;
  tolerances(c->d.linear.ce.input_type, &lt, &ga, &gr);
  size_t bad = 0;
  for (int b = B_LOSS; b < NB; b++) {
    if (!c->given[b] || !r->out[b])
      continue;
    char what[200];
    snprintf(what, sizeof what, "%s: %s", c->label, names[b]);
    bad +=
        b == B_LOSS
            ? dc_compare(what, c->type[b], r->out[b], ref[b], c->n[b], lt, lt)
            : dc_compare(what, c->type[b], r->out[b], ref[b], c->n[b], ga, gr);
  }
  return bad;
}

/* The device call on every device, at offsets, against the reference. */
static size_t check(const lcase *c, int host_too) {
  double *ref[NB];
  reference(c, ref);
  size_t bad = 0;
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    if (!tu_runs_type(ctx, c->d.linear.ce.input_type))
      continue;
    cl_command_queue q = dc_queue(ctx);
    dc_result r = run_device(ctx, q, c, 3);
    if (r.status != CLLOSS_SUCCESS)
      printf("\n  %s: %s (%s)", c->label, clloss_status_name(r.status),
             clloss_context_error_detail(ctx));
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    bad += compare(c, &r, ref);
    dc_result_free(&r);
    if (host_too) {
      r = dc_run_host(ctx, c);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      bad += compare(c, &r, ref);
      dc_result_free(&r);
    }
    clReleaseCommandQueue(q);
  }
  for (int b = 0; b < NB; b++)
    free(ref[b]);
  return bad;
}

/* A case from the generator, checked (and through the host call). */
static void check_case(const clloss_linear_cross_entropy_desc *d, const gen *g,
                       int host_too) {
  lcase c;
  make(&c, d, g);
  CU_ASSERT_EQUAL(check(&c, host_too), 0);
  dc_call_free(&c);
}

/* ---- every option, both methods ---- */

typedef struct option_case {
  clloss_reduction red;
  clloss_dtype tgt;
  float e, z, cap, norm;
  gen g;
} option_case;

static const option_case option_cases[] = {
    {CLLOSS_REDUCTION_MEAN, CLLOSS_INT64, 0, 0, 0, 0, {1, 1, 0, 0, 0, 0.0, 0}},
    {CLLOSS_REDUCTION_SUM, CLLOSS_INT32, 0, 0, 0, 0, {2, 1, 1, 1, 0, 0.2, 0}},
    {CLLOSS_REDUCTION_NONE,
     CLLOSS_INT64,
     0.15f,
     0,
     0,
     0,
     {3, 1, 1, 1, 0, 0.2, 0}},
    {CLLOSS_REDUCTION_MEAN,
     CLLOSS_INT64,
     0,
     0.01f,
     3.0f,
     0,
     {4, 1, 0, 0, 0, 0.15, 0}},
    {CLLOSS_REDUCTION_MEAN,
     CLLOSS_INT32,
     0.1f,
     0,
     0,
     7.5f,
     {5, 0, 1, 1, 0, 0.1, 0}},
    {CLLOSS_REDUCTION_MEAN,
     CLLOSS_INT64,
     0.2f,
     0.02f,
     2.5f,
     0,
     {6, 1, 1, 1, 0, 0.3, 0}},
    {CLLOSS_REDUCTION_MEAN,
     CLLOSS_FLOAT32,
     0.05f,
     0,
     0,
     0,
     {7, 1, 1, 0, 1, 0.0, 0}},
    {CLLOSS_REDUCTION_NONE,
     CLLOSS_FLOAT32,
     0,
     0.01f,
     0,
     0,
     {8, 0, 0, 1, 1, 0.0, 0}},
};

/* chunk_rows / vocab_block pairs: chunks that do not divide N = 23,
 * automatic chunks, blocks that do not divide V = 37. */
static const size_t methods[][2] = {{5, 0}, {0, 0}, {0, 7}, {9, 16}};

static void run_options(int vocab) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  for (size_t k = 0; k < sizeof option_cases / sizeof *option_cases; k++) {
    const option_case *o = &option_cases[k];
    for (size_t m = 0; m < 4; m++) {
      if ((methods[m][1] != 0) != vocab)
        continue;
      clloss_linear_cross_entropy_desc d = tl_desc(23, 12, 37, o->red);
      d.ce.target_type = o->tgt;
      d.ce.label_smoothing = o->e;
      d.ce.z_loss = o->z;
      d.ce.softcap = o->cap;
      d.ce.normalizer = o->norm;
      d.chunk_rows = methods[m][0];
      d.vocab_block = methods[m][1];
      check_case(&d, &o->g, 0);
    }
  }
}

static void test_options_row_chunks(void) {
  run_options(0);
}
static void test_options_vocab_blocks(void) {
  run_options(1);
}

/* ---- each output alone, and bias off ---- */
static void test_each_output_alone(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  const int outs[] = {W_LOSS, W_DX, W_DW, W_DB, W_DX | W_DB};
  for (size_t m = 0; m < 4; m += 2)
    for (size_t k = 0; k < sizeof outs / sizeof *outs; k++)
      for (int bias = 0; bias < 2; bias++) {
        clloss_linear_cross_entropy_desc d =
            tl_desc(19, 8, 29, CLLOSS_REDUCTION_MEAN);
        d.chunk_rows = 6;
        d.vocab_block = methods[m][1] ? 10 : 0;
        d.ce.label_smoothing = 0.1f;
        gen g = {20 + k, bias, 1, 0, 0, 0.2, outs[k]};
        check_case(&d, &g, 0);
      }
}

/* ---- gradient accumulation into existing dX (ce.accumulate), dW, db ---- */
static void test_accumulate(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  const clloss_dtype types[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16};
  for (size_t t = 0; t < 2; t++)
    for (size_t m = 0; m < 4; m++) {
      clloss_linear_cross_entropy_desc d =
          tl_desc(23, 12, 37, CLLOSS_REDUCTION_SUM);
      d.ce.input_type = types[t];
      d.chunk_rows = methods[m][0];
      d.vocab_block = methods[m][1];
      d.accumulate_grad_linear_weight = m != 2;
      d.accumulate_grad_bias = m % 2;
      d.ce.accumulate = m != 1;
      gen g = {30 + m, 1, 0, 0, 0, 0.1, 0};
      check_case(&d, &g, 0);
    }
}

/* ---- grad_scale multiplies every gradient, with every reduction ---- */
static void test_grad_scale(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  const float scales[] = {0.25f, 3.0f, 0.0f};
  for (size_t m = 0; m < 4; m++)
    for (int red = 0; red < 3; red++) {
      clloss_linear_cross_entropy_desc d =
          tl_desc(23, 12, 37, (clloss_reduction)red);
      d.chunk_rows = methods[m][0];
      d.vocab_block = methods[m][1];
      d.ce.grad_scale = scales[(m + (size_t)red) % 3];
      d.ce.label_smoothing = 0.1f;
      d.ce.z_loss = red == 1 ? 0.01f : 0.0f;
      gen g = {100 + 3 * m + (uint64_t)red, 1, 1, red != 0, 0, 0.2, 0};
      check_case(&d, &g, m == 3);
    }
}

/* ---- storage types: 16-bit converted to float32, float64 in double ---- */
static void test_storage_types(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  const clloss_dtype types[] = {CLLOSS_FLOAT16, CLLOSS_BFLOAT16,
                                CLLOSS_FLOAT64};
  for (size_t t = 0; t < 3; t++)
    for (size_t m = 0; m < 4; m += 2)
      for (int prob = 0; prob < 2; prob++) {
        clloss_linear_cross_entropy_desc d = tl_desc(
            17, 10, 31, prob ? CLLOSS_REDUCTION_MEAN : CLLOSS_REDUCTION_NONE);
        d.ce.input_type = types[t];
        d.ce.target_type = prob ? types[t] : CLLOSS_INT64;
        d.ce.label_smoothing = 0.1f;
        d.chunk_rows = 4;
        d.vocab_block = methods[m][1];
        gen g = {40 + t, 1, 1, 1, prob, prob ? 0.0 : 0.2, 0};
        check_case(&d, &g, 0);
      }
}

/* ---- the host-pointer call ---- */
static void test_host_call(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  for (size_t m = 0; m < 4; m++) {
    clloss_linear_cross_entropy_desc d =
        tl_desc(21, 9, 33, CLLOSS_REDUCTION_MEAN);
    d.chunk_rows = methods[m][0];
    d.vocab_block = methods[m][1];
    d.accumulate_grad_bias = 1;
    gen g = {50 + m, 1, 1, 1, 0, 0.2, 0};
    check_case(&d, &g, 1);
  }
}

/* ---- edge cases ---- */

/* Degenerate shapes and chunk sizes beyond the problem's. */
static void test_small_shapes(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  const size_t shapes[][5] = {/* N, H, V, chunk, block */
                              {1, 1, 1, 0, 0},
                              {3, 1, 5, 1, 1},
                              {4, 3, 1, 0, 4},
                              {5, 4, 6, 100, 0},
                              {5, 4, 6, 2, 100}};
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    clloss_linear_cross_entropy_desc d = tl_desc(
        shapes[k][0], shapes[k][1], shapes[k][2], CLLOSS_REDUCTION_MEAN);
    d.chunk_rows = shapes[k][3];
    d.vocab_block = shapes[k][4];
    gen g = {60 + k, 1, 0, 0, 0, 0.0, 0};
    check_case(&d, &g, 0);
  }
}

/* Every row ignored (mean: NaN loss, zero gradients), and no rows at all
 * (sum: 0; dW and db zero, or unchanged when accumulated). */
static void test_ignored_and_empty(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  for (size_t m = 0; m < 4; m++) {
    clloss_linear_cross_entropy_desc d =
        tl_desc(7, 5, 11, CLLOSS_REDUCTION_MEAN);
    d.chunk_rows = methods[m][0] ? 3 : 0;
    d.vocab_block = methods[m][1] ? 4 : 0;
    gen g = {70 + m, 1, 1, 0, 0, 1.0, 0};
    check_case(&d, &g, 0);
    for (int red = 0; red < 3; red++) {
      d = tl_desc(0, 5, 11, (clloss_reduction)red);
      d.vocab_block = methods[m][1];
      d.accumulate_grad_linear_weight = (int)(m % 2);
      gen e = {80 + m,
               1,
               0,
               0,
               0,
               0.0,
               red == CLLOSS_REDUCTION_NONE ? W_DW | W_DB : 0};
      check_case(&d, &e, 0);
    }
  }
}

/* ---- the same call twice gives the same bits ---- */
static void test_deterministic(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  for (size_t m = 0; m < 4; m += 2) {
    clloss_linear_cross_entropy_desc d =
        tl_desc(23, 12, 37, CLLOSS_REDUCTION_MEAN);
    d.chunk_rows = 5;
    d.vocab_block = methods[m][1];
    gen g = {90 + m, 1, 1, 0, 0, 0.1, 0};
    lcase c;
    make(&c, &d, &g);
    clloss_context *ctx = tu_context(0);
    cl_command_queue q = dc_queue(ctx);
    dc_result a = run_device(ctx, q, &c, 0), b = run_device(ctx, q, &c, 0);
    for (int k = B_LOSS; k < NB; k++)
      CU_ASSERT(memcmp(a.out[k], b.out[k],
                       c.n[k] * clloss_dtype_size(c.type[k])) == 0);
    dc_result_free(&a);
    dc_result_free(&b);
    clReleaseCommandQueue(q);
    dc_call_free(&c);
  }
}

/* ---- queues and events ---- */

/* An out-of-order queue (where the device has one): barriers keep CLBlast's
 * GEMMs after our kernels. A user event in the wait list holds the call
 * back until it completes. */
static void test_queue_and_wait_list(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  clloss_context *ctx = tu_context(0);
  cl_int err;
  cl_command_queue ooo = clCreateCommandQueue(
      clloss_context_cl_context(ctx), clloss_context_device(ctx),
      CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
  clloss_linear_cross_entropy_desc d =
      tl_desc(23, 12, 37, CLLOSS_REDUCTION_MEAN);
  d.chunk_rows = 5;
  gen g = {95, 1, 1, 0, 0, 0.1, 0};
  lcase c;
  make(&c, &d, &g);
  double *ref[NB];
  reference(&c, ref);
  if (ooo) {
    dc_result r = run_device(ctx, ooo, &c, 2);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    CU_ASSERT_EQUAL(compare(&c, &r, ref), 0);
    dc_result_free(&r);
    clReleaseCommandQueue(ooo);
  } else {
    tu_skip_part("out-of-order queues are not supported");
  }
  /* The user event gates the whole call. */
  cl_command_queue q = dc_queue(ctx);
  cl_event gate = clCreateUserEvent(clloss_context_cl_context(ctx), &err);
  const size_t lbytes = sizeof(float);
  cl_mem loss = tu_buffer(ctx, lbytes, NULL);
  cl_mem x = tu_buffer(ctx, c.n[B_X] * 4, c.host[B_X]);
  cl_mem w = tu_buffer(ctx, c.n[B_W] * 4, c.host[B_W]);
  cl_mem t = tu_buffer(ctx, c.n[B_T] * 8, c.host[B_T]);
  cl_event done = NULL;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy(
                      ctx, q, &c.d.linear, CLLOSS_BUFFER(x), CLLOSS_BUFFER(w),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(t), CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(loss),
                      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
                      CLLOSS_BUFFER_NONE, 1, &gate, &done),
                  CLLOSS_SUCCESS);
  cl_int state = CL_COMPLETE;
  clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state,
                 NULL);
  CU_ASSERT_NOT_EQUAL(state, CL_COMPLETE);
  clSetUserEventStatus(gate, CL_COMPLETE);
  CU_ASSERT_EQUAL(clWaitForEvents(1, &done), CL_SUCCESS);
  clReleaseEvent(done);
  clReleaseEvent(gate);
  clReleaseMemObject(loss);
  clReleaseMemObject(x);
  clReleaseMemObject(w);
  clReleaseMemObject(t);
  clReleaseCommandQueue(q);
  for (int b = 0; b < NB; b++)
    free(ref[b]);
  dc_call_free(&c);
}

/* ---- workspace ---- */
static void test_workspace(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  clloss_context *ctx = tu_context(0);
  clloss_linear_cross_entropy_desc d =
      tl_desc(2048, 512, 32000, CLLOSS_REDUCTION_MEAN);
  const size_t logits_row = 32000 * 4;
  size_t bytes, rows;
  /* Automatic: N H float32 of logits, at least 256 rows; CLBlast's copies
   * (device-dependent) stay near the chunk's logits. */
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(rows, 256);
  CU_ASSERT(bytes >= 256 * logits_row && bytes <= 3 * 256 * logits_row);
  /* An explicit limit sets the chunk, and one that cannot hold a row is
   * refused. */
  d.workspace_limit = 5u << 20;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_SUCCESS);
  CU_ASSERT(rows >= 15 && rows <= 20);
  CU_ASSERT(bytes >= rows * logits_row && bytes <= 2 * d.workspace_limit);
  d.workspace_limit = 1000;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_INVALID_ARGUMENT);
  /* Vocabulary blocks: all rows in one chunk, rows x block of logits. */
  d.workspace_limit = 0;
  d.vocab_block = 256;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(rows, 2048);
  CU_ASSERT(bytes >= (size_t)2048 * 256 * 4 &&
            bytes * 32 <= (size_t)2048 * logits_row);
  /* 16-bit storage adds W and dW in float32. */
  d.vocab_block = 0;
  d.chunk_rows = 64;
  d.ce.input_type = CLLOSS_FLOAT16;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(rows, 64);
  CU_ASSERT(bytes >= (size_t)2 * 32000 * 512 * 4 + 64 * logits_row);
  /* What a call allocates (on a fresh context) is what the query said. */
  for (size_t m = 0; m < 4; m++) {
    clloss_context *fresh;
    CU_ASSERT_EQUAL_FATAL(clloss_context_create(clloss_context_cl_context(ctx),
                                                clloss_context_device(ctx),
                                                &fresh),
                          CLLOSS_SUCCESS);
    d = tl_desc(23, 12, 37, CLLOSS_REDUCTION_MEAN);
    d.chunk_rows = methods[m][0];
    d.vocab_block = methods[m][1];
    gen g = {98, 1, 0, 0, 0, 0.0, 0};
    lcase c;
    make(&c, &d, &g);
    CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(
                        fresh, &d, 1, 1, 1, &bytes, &rows),
                    CLLOSS_SUCCESS);
    cl_command_queue q = dc_queue(fresh);
    dc_result r = run_device(fresh, q, &c, 0);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    size_t held = 0;
    for (int k = 0; k <= LCE_TEMP; k++)
      held += fresh->linear->bytes[k];
    /* LCE_TEMP holds at least a byte even when CLBlast needs none. */
    CU_ASSERT(held == bytes || held == bytes + 1);
    dc_result_free(&r);
    dc_call_free(&c);
    clReleaseCommandQueue(q);
    clloss_context_release(fresh);
  }
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Issue 21: the query took time proportional to chunks x slices (58 s for
 * N = 16384, H = 4096, V = 131072, chunk_rows = 1) and wrapped around
 * past SIZE_MAX. */
static void test_workspace_cost_and_overflow(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  clloss_context *ctx = tu_context(0);
  clloss_linear_cross_entropy_desc d =
      tl_desc(16384, 4096, 131072, CLLOSS_REDUCTION_MEAN);
  d.chunk_rows = 1;
  size_t bytes = 0, rows = 0;
  double t0 = seconds();
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_SUCCESS);
  const double took = seconds() - t0;
  CU_ASSERT(took < 1.0);
  if (took >= 1.0)
    printf("\n  16384 chunks x 2048 slices: the query took %.2f s", took);
  CU_ASSERT_EQUAL(rows, 1);
  CU_ASSERT(bytes >= (size_t)131072 * 4 && bytes < ((size_t)1 << 32));
  /* The chunk alone (bytes NULL), as the MPI layer asks for it; not both
   * NULL. */
  d.chunk_rows = 0;
  size_t full_rows = 0, only_rows = 0;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(
                      ctx, &d, 1, 1, 1, &bytes, &full_rows),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             NULL, &only_rows),
                  CLLOSS_SUCCESS);
  CU_ASSERT(full_rows > 0 && only_rows == full_rows);
  CU_ASSERT_EQUAL(
      clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1, NULL, NULL),
      CLLOSS_INVALID_ARGUMENT);
  /* A descriptor the checks accept (N H, V H and N V below SIZE_MAX / 16)
   * whose workspace passes SIZE_MAX: 16-bit storage, probability targets
   * and one chunk of all rows need about 24 N V bytes. */
  d = tl_desc((size_t)1 << 30, ((size_t)1 << 30) - 1, ((size_t)1 << 30) - 1,
              CLLOSS_REDUCTION_MEAN);
  d.ce.input_type = d.ce.target_type = CLLOSS_FLOAT16;
  d.chunk_rows = d.ce.rows;
  bytes = 12345, rows = 12345;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1,
                                                             &bytes, &rows),
                  CLLOSS_OUT_OF_DEVICE_MEMORY);
  CU_ASSERT(bytes == 12345 && rows == 12345);
  CU_ASSERT(strstr(clloss_context_error_detail(ctx), "SIZE_MAX") != NULL);
  /* The automatic chunk of a float32 problem that size fits. */
  d.chunk_rows = 0;
  d.ce.input_type = CLLOSS_FLOAT32;
  d.ce.target_type = CLLOSS_INT64;
  rows = 0;
  CU_ASSERT_EQUAL(
      clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1, NULL, &rows),
      CLLOSS_SUCCESS);
  CU_ASSERT(rows >= 1 && rows <= d.ce.rows);
}

/* The sizing pass visits the first, second and last chunk and slice only:
 * a call of 6 chunks of 10 slices still hands CLBlast enough temporary
 * memory, at offsets 0 and 3, and gives the reference's results. */
static void test_workspace_many_chunks(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  clloss_linear_cross_entropy_desc d =
      tl_desc(23, 60, 600, CLLOSS_REDUCTION_MEAN);
  d.chunk_rows = 4;
  gen g = {77, 1, 1, 1, 0, 0.1, 0};
  check_case(&d, &g, 1);
  d.chunk_rows = 5;
  d.vocab_block = 64;
  check_case(&d, &g, 1);
}

/* ---- errors ---- */

static clloss_status call_with(clloss_context *ctx,
                               const clloss_linear_cross_entropy_desc *d,
                               cl_mem x, cl_mem w, cl_mem t, cl_mem loss,
                               cl_mem dx, size_t dx_off) {
  return clloss_linear_cross_entropy(
      ctx, clloss_context_queue(ctx), d, CLLOSS_BUFFER(x), CLLOSS_BUFFER(w),
      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(t), CLLOSS_BUFFER_NONE,
      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER(loss), (clloss_buffer){dx, dx_off},
      CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE, 0, NULL, NULL);
}

static void test_errors(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  clloss_context *ctx = tu_context(0);
  clloss_linear_cross_entropy_desc d = tl_desc(4, 3, 5, CLLOSS_REDUCTION_MEAN);
  float xs[12] = {0}, ws[15] = {0}, big[64] = {0};
  int64_t ts[4] = {0, 1, 2, 3};
  cl_mem x = tu_buffer(ctx, sizeof xs, xs), w = tu_buffer(ctx, sizeof ws, ws);
  cl_mem t = tu_buffer(ctx, sizeof ts, ts), loss = tu_buffer(ctx, 4, NULL);
  cl_mem dx = tu_buffer(ctx, sizeof big, big);
  CU_ASSERT_EQUAL(call_with(NULL, &d, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(call_with(ctx, NULL, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(call_with(ctx, &d, x, w, t, NULL, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(call_with(ctx, &d, NULL, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  /* W too small for V x H. */
  CU_ASSERT_EQUAL(call_with(ctx, &d, x, x, t, loss, NULL, 0),
                  CLLOSS_BUFFER_TOO_SMALL);
  CU_ASSERT(strstr(clloss_context_error_detail(ctx), "linear_weight") != NULL);
  /* grad_input over the input, and over the weight. */
  CU_ASSERT_EQUAL(call_with(ctx, &d, dx, w, t, loss, dx, 4),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT_EQUAL(call_with(ctx, &d, x, dx, t, loss, dx, 0),
                  CLLOSS_INVALID_ARGUMENT);
  clloss_linear_cross_entropy_desc e = d;
  e.struct_size = sizeof(size_t); /* before the first release */
  CU_ASSERT_EQUAL(call_with(ctx, &e, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT(strstr(clloss_context_error_detail(ctx),
                   "CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT") != NULL);
  e = d;
  e.ce.struct_size = 0; /* `ce` is taken by its own struct_size */
  CU_ASSERT_EQUAL(call_with(ctx, &e, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  CU_ASSERT(strstr(clloss_context_error_detail(ctx),
                   "CLLOSS_CROSS_ENTROPY_DESC_INIT") != NULL);
  e = d;
  e.hidden = 0;
  CU_ASSERT_EQUAL(call_with(ctx, &e, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  e = d;
  e.ce.row_stride = 9;
  CU_ASSERT_EQUAL(call_with(ctx, &e, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  e = d;
  e.ce.reduction = CLLOSS_REDUCTION_BATCHMEAN;
  CU_ASSERT_EQUAL(call_with(ctx, &e, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  e = d;
  e.ce.target_type = CLLOSS_FLOAT16; /* probabilities of another type */
  CU_ASSERT_EQUAL(call_with(ctx, &e, x, w, t, loss, NULL, 0),
                  CLLOSS_INVALID_ARGUMENT);
  /* Host call: a bad target is reported before any output is touched. */
  int64_t bad[4] = {0, 1, 5, -100};
  float lh = 123.0f, dxh[12];
  for (size_t i = 0; i < 12; i++)
    dxh[i] = 7.0f;
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_host(ctx, &d, xs, ws, NULL, bad,
                                                   NULL, NULL, &lh, dxh, NULL,
                                                   NULL),
                  CLLOSS_INVALID_TARGET);
  CU_ASSERT_EQUAL(lh, 123.0f);
  CU_ASSERT_EQUAL(dxh[0], 7.0f);
  CU_ASSERT_EQUAL(clloss_linear_cross_entropy_host(ctx, &d, xs, ws, NULL, bad,
                                                   NULL, NULL, NULL, NULL, NULL,
                                                   NULL),
                  CLLOSS_INVALID_ARGUMENT);
  clReleaseMemObject(x);
  clReleaseMemObject(w);
  clReleaseMemObject(t);
  clReleaseMemObject(loss);
  clReleaseMemObject(dx);
}

/* A bad target on the device: NaN for its row, and the error word names
 * its row in X, not in its chunk. */
static void test_device_bad_target(void) {
  TU_REQUIRE_DEVICE();
  TL_REQUIRE_CLBLAST();
  clloss_context *ctx = tu_context(0);
  cl_command_queue q = clloss_context_queue(ctx);
  CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, NULL, NULL), CLLOSS_SUCCESS);
  for (size_t m = 0; m < 4; m += 2) {
    clloss_linear_cross_entropy_desc d =
        tl_desc(23, 6, 13, CLLOSS_REDUCTION_NONE);
    d.chunk_rows = 5;
    d.vocab_block = methods[m][1];
    gen g = {99, 0, 0, 0, 0, 0.0, W_LOSS};
    lcase c;
    make(&c, &d, &g);
    ((int64_t *)c.host[B_T])[17] = 13;
    dc_result r = run_device(ctx, q, &c, 0);
    CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
    const float *l = r.out[B_LOSS];
    CU_ASSERT(isnan(l[17]) && !isnan(l[16]) && !isnan(l[2]));
    uint64_t row = 0;
    CU_ASSERT_EQUAL(clloss_check_device_errors(ctx, NULL, &row),
                    CLLOSS_INVALID_TARGET);
    CU_ASSERT_EQUAL(row, 17);
    dc_result_free(&r);
    dc_call_free(&c);
  }
}

/* With CLBlast a small call succeeds; without it every call is
 * CLLOSS_UNSUPPORTED with the reason, and writes nothing. */
static void test_clblast_or_unsupported(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = tu_context(0);
  clloss_linear_cross_entropy_desc d = tl_desc(4, 3, 5, CLLOSS_REDUCTION_MEAN);
  const float x[12] = {0}, w[15] = {0};
  const int64_t t[4] = {0, 1, 2, 3};
  float loss = -1.0f;
  const clloss_status s = clloss_linear_cross_entropy_host(
      ctx, &d, x, w, NULL, t, NULL, NULL, &loss, NULL, NULL, NULL);
#ifdef CLLOSS_TEST_HAVE_CLBLAST
  CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(loss, log(5.0), 1e-6); /* zero logits */
#else
  CU_ASSERT_EQUAL(s, CLLOSS_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(clloss_context_error_detail(ctx), "CLBlast"));
  CU_ASSERT_EQUAL(loss, -1.0f);
#endif
}

int test_linear_cross_entropy_register(void) {
  TU_SUITE("linear_cross_entropy", NULL, NULL, TU_TEST(test_options_row_chunks),
           TU_TEST(test_options_vocab_blocks), TU_TEST(test_each_output_alone),
           TU_TEST(test_accumulate), TU_TEST(test_grad_scale),
           TU_TEST(test_storage_types), TU_TEST(test_host_call),
           TU_TEST(test_small_shapes), TU_TEST(test_ignored_and_empty),
           TU_TEST(test_deterministic), TU_TEST(test_queue_and_wait_list),
           TU_TEST(test_workspace), TU_TEST(test_workspace_cost_and_overflow),
           TU_TEST(test_workspace_many_chunks), TU_TEST(test_errors),
           TU_TEST(test_device_bad_target),
           TU_TEST(test_clblast_or_unsupported));
}
