/* test_training_loop.c - what a C training loop needs from the losses:
 * llm.c's exact layout (B, T, V, Vp, int32 targets, 1/(B*T), the gradient
 * in place with zeroed padding) in both of its patterns, on every variant;
 * grad_scale with every reduction; accumulate (rows and element-wise,
 * device and host level, in place rejected); the padding options AUTO,
 * ZERO and KEEP, BUFFER_TOO_SMALL included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/devcheck.h"
#include "support/testutil.h"
#ifdef CLLOSS_HAVE_LLMC_EXAMPLE
#include "llmc_loss/llmc_loss.h"
#endif

/* Tolerances of a row loss against the reference, per storage type: of
 * the loss, and of the gradient (absolute, the size of its terms being
 * at most 1 times the scale s of the row; relative). */
typedef struct tl_tol {
  double loss_rtol, grad_atol, grad_rtol;
} tl_tol;

static tl_tol tl_tolerance(clloss_dtype type, double s) {
  tl_tol t = {2e-6, 4e-7 * s, 1e-5};
  if (type == CLLOSS_FLOAT16)
    t.grad_atol = 1e-3 * s, t.grad_rtol = 2e-3;
  else if (type == CLLOSS_BFLOAT16)
    t.grad_atol = 8e-3 * s, t.grad_rtol = 1.6e-2;
  return t;
}

/* Compares a run's loss and gradient with the reference's. */
static size_t tl_compare(const char *what, const dc_problem *p,
                         const void *loss, const void *grad,
                         const void *ref_loss, const void *ref_grad, double s) {
  tl_tol t = tl_tolerance(p->input_type, s);
  char label[160];
  size_t bad = 0;
  if (loss) {
    size_t nl = dc_loss_count(p);
    clloss_dtype lt = clloss_loss_dtype(p->input_type);
    double *want = dc_to_double(lt, ref_loss, nl);
    snprintf(label, sizeof label, "%s loss", what);
    bad += dc_compare(label, lt, loss, want, nl, 1e-6, t.loss_rtol);
    free(want);
  }
  if (grad) {
    snprintf(label, sizeof label, "%s grad", what);
    bad += dc_compare_rows(label, p, grad, ref_grad, t.grad_atol, t.grad_rtol);
  }
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

/* The reference's loss and gradient (padding: zeros) of a problem, its
 * options as given but accumulate. */
typedef struct tl_ref {
  void *loss, *grad;
} tl_ref;

static tl_ref tl_reference(const dc_problem *p, const dc_stored *d) {
  dc_problem q = *p;
  q.accumulate = 0;
  q.padding = CLLOSS_PADDING_ZERO;
  tl_ref r = {dc_alloc(dc_loss_count(p) * dc_loss_elem(p)),
              dc_filled(p->input_type, dc_input_count(p), NAN)};
  CU_ASSERT_EQUAL_FATAL(dc_host(NULL, &q, d->x, d->t, r.loss, r.grad),
                        CLLOSS_SUCCESS);
  return r;
}

static void tl_ref_free(tl_ref *r) {
  free(r->loss);
  free(r->grad);
}

/* ---- llm.c's layout ---- */
enum { LLMC_B = 4, LLMC_T = 8, LLMC_V = 50, LLMC_VP = 64 };

/* llm.c's train_gpt2.c: logits (B, T, Vp) of which the first V columns are
 * classes, int targets, per-position losses, dlogits scaled by 1/(B*T).
 * The padding holds 30, which would dominate every row if it were read as
 * a class. */
static dc_problem llmc_problem(void) {
  dc_problem p = dc_problem_make(DC_CE, LLMC_B * LLMC_T, LLMC_V, LLMC_VP);
  p.target_type = CLLOSS_INT32;
  p.reduction = CLLOSS_REDUCTION_NONE;
  p.grad_scale = 1.0f / (LLMC_B * LLMC_T);
  return p;
}

/* The fused call of the forward pass: the logits become dlogits, their
 * padding zeros (every row: the buffer holds B*T*Vp). */
static void llmc_check_fused(clloss_context *ctx, const dc_problem *p,
                             const dc_stored *d, const tl_ref *ref,
                             const char *how, void *loss_out) {
  const dc_opts o = {.in_place = 1};
  dc_result r = dc_run_problem(ctx, p, d, &o);
  CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
  if (r.status == CLLOSS_SUCCESS) {
    tl_compare(how, p, r.loss, r.grad, ref->loss, ref->grad, p->grad_scale);
    CU_ASSERT_EQUAL(dc_check_padding(how, p, r.grad, p->rows, NULL), 0);
    if (loss_out)
      memcpy(loss_out, r.loss, dc_loss_count(p) * dc_loss_elem(p));
  }
  dc_result_free(&r);
}

static void test_tl_llmc_layout(void) {
  TU_REQUIRE_DEVICE();
  dc_problem p = llmc_problem();
  dc_stored d = dc_problem_data(&p, 30.0f, 2101);
  tl_ref ref = tl_reference(&p, &d);
  const size_t nl = dc_loss_count(&p);
  float *fused_loss = dc_alloc(nl * sizeof *fused_loss);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    for (int v = 0; v < DC_VARIANTS; v++) {
      char how[96];
      CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, dc_variants[v]),
                      CLLOSS_SUCCESS);
      /* Pattern 1: the fused call in the forward pass. */
      snprintf(how, sizeof how, "llm.c fused [%s]", dc_variants[v]);
      llmc_check_fused(ctx, &p, &d, &ref, how, fused_loss);
      if (v < DC_VARIANTS - 1)
        CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx),
                               dc_variants[v]);
      /* Pattern 2: loss only in the forward pass (the logits stay as they
       * are, padding included), then the fused call in the backward. */
      snprintf(how, sizeof how, "llm.c loss only [%s]", dc_variants[v]);
      const dc_opts o = {.no_grad = 1}; /* the harness checks the logits */
      dc_result r = dc_run_problem(ctx, &p, &d, &o);
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      if (r.status == CLLOSS_SUCCESS) {
        tl_compare(how, &p, r.loss, NULL, ref.loss, NULL, p.grad_scale);
        /* Both calls' losses agree to rounding. */
        CU_ASSERT_EQUAL(tu_compare_f(how, r.loss, fused_loss, nl, 0, 2e-6), 0);
      }
      dc_result_free(&r);
      snprintf(how, sizeof how, "llm.c backward [%s]", dc_variants[v]);
      llmc_check_fused(ctx, &p, &d, &ref, how, NULL);
    }
    clloss_context_set_variant(ctx, "auto");
  }
  free(fused_loss);
  tl_ref_free(&ref);
  dc_stored_free(&d);
}

/* examples/llmc_loss on a small shape, every variant: both patterns agree
 * with the reference and the report says so. */
static void test_tl_llmc_example(void) {
  TU_REQUIRE_DEVICE();
#ifdef CLLOSS_HAVE_LLMC_EXAMPLE
  clloss_context *ctx = tu_context(0);
  llmc_config c = {2, 4, 50, 64, 1, 7};
  for (int v = 0; v < DC_VARIANTS - 1; v++) {
    clloss_context_set_variant(ctx, dc_variants[v]);
    FILE *out = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    llmc_result res;
    int rc = llmc_run(ctx, &c, out, &res);
    char text[4096];
    rewind(out);
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = '\0';
    fclose(out);
    if (rc != 0)
      printf("\n  llmc_loss [%s] returned %d:\n%s", dc_variants[v], rc, text);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(res.ok && res.padding_zero);
    CU_ASSERT_TRUE(fabs(res.mean_loss[0] - res.ref_mean_loss) < 1e-5 &&
                   fabs(res.mean_loss[1] - res.ref_mean_loss) < 1e-5);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "1. fused call in the forward pass"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "2. loss only in the forward pass"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "padding [V, Vp) zero: ok"));
  }
  clloss_context_set_variant(ctx, "auto");
#else
  tu_skip("examples/llmc_loss is not built");
#endif
}

/* ---- grad_scale ---- */

/* Scaling by 0.25 is exact in binary floating point: the gradient with
 * grad_scale 0.25 is the one with 1 times 0.25 bit for bit, and the loss
 * does not change at all; 0.37 is checked against the reference. For
 * cross_entropy and nll_loss, every reduction, every variant, all three
 * levels. */
static size_t tl_scaled_exactly(const char *how, const dc_problem *p,
                                const void *l1, const void *g1, const void *l2,
                                const void *g2) {
  size_t bad = memcmp(l1, l2, dc_loss_count(p) * dc_loss_elem(p)) != 0;
  for (size_t i = 0; i < dc_input_count(p); i++)
    if (i % p->ld < p->classes &&
        dc_get(p->input_type, g2, i) != 0.25 * dc_get(p->input_type, g1, i) &&
        bad++ < 3)
      printf("\n  %s: grad[%zu] %g with grad_scale 0.25, %g with 1", how, i,
             dc_get(p->input_type, g2, i), dc_get(p->input_type, g1, i));
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

/* The host-pointer call or the reference into new arrays. */
static clloss_status tl_level(clloss_context *ctx, const dc_problem *p,
                              const dc_stored *d, const void *g_init,
                              void **loss, void **grad) {
  *loss = dc_alloc(dc_loss_count(p) * dc_loss_elem(p));
  *grad = g_init ? dc_alloc(dc_input_count(p) * dc_elem(p))
                 : dc_filled(p->input_type, dc_input_count(p), 7.0f);
  if (g_init)
    memcpy(*grad, g_init, dc_input_count(p) * dc_elem(p));
  return ctx ? dc_host(ctx, p, d->x, d->t, *loss, *grad)
             : dc_host(NULL, p, d->x, d->t, *loss, *grad);
}

static void tl_grad_scale_levels(clloss_context *ctx, const dc_problem *p,
                                 const dc_stored *d, const char *level) {
  dc_problem q = *p;
  void *l[3], *g[3];
  const float scales[3] = {1.0f, 0.25f, 0.37f};
  for (int k = 0; k < 3; k++) {
    q.grad_scale = scales[k];
    CU_ASSERT_EQUAL(tl_level(ctx, &q, d, NULL, &l[k], &g[k]), CLLOSS_SUCCESS);
  }
  tl_ref ref = tl_reference(&q, d);
  tl_scaled_exactly(level, p, l[0], g[0], l[1], g[1]);
  tl_compare(level, &q, l[2], g[2], ref.loss, ref.grad,
             0.37 / (p->reduction == CLLOSS_REDUCTION_MEAN ? p->rows : 1));
  for (int k = 0; k < 3; k++) {
    free(l[k]);
    free(g[k]);
  }
  tl_ref_free(&ref);
}

static void test_tl_grad_scale(void) {
  TU_REQUIRE_DEVICE();
  static const clloss_reduction reds[] = {
      CLLOSS_REDUCTION_MEAN, CLLOSS_REDUCTION_SUM, CLLOSS_REDUCTION_NONE};
  for (int nll = 0; nll < 2; nll++)
    for (int k = 0; k < 3; k++) {
      dc_problem p = dc_problem_make(nll ? DC_NLL : DC_CE, 9, 37, 40);
      p.reduction = reds[k];
      dc_stored d = dc_problem_data(&p, 5.0f, 2201 + (uint64_t)(nll * 3 + k));
      char how[128];
      snprintf(how, sizeof how, "%s %s reference", nll ? "nll" : "ce",
               clloss_reduction_name(reds[k]));
      tl_grad_scale_levels(NULL, &p, &d, how);
      for (size_t dev = 0; dev < tu_device_count(); dev++) {
        clloss_context *ctx = tu_context(dev);
        for (int v = 0; v < DC_VARIANTS - 1; v++) {
          clloss_context_set_variant(ctx, dc_variants[v]);
          dc_result r[3];
          const float scales[3] = {1.0f, 0.25f, 0.37f};
          for (int s = 0; s < 3; s++) {
            dc_problem q = p;
            q.grad_scale = scales[s];
            r[s] = dc_run_problem(ctx, &q, &d, NULL);
            CU_ASSERT_EQUAL(r[s].status, CLLOSS_SUCCESS);
          }
          snprintf(how, sizeof how, "%s %s [%s]", nll ? "nll" : "ce",
                   clloss_reduction_name(reds[k]), dc_variants[v]);
          tl_scaled_exactly(how, &p, r[0].loss, r[0].grad, r[1].loss,
                            r[1].grad);
          dc_problem q = p;
          q.grad_scale = 0.37f;
          tl_ref ref = tl_reference(&q, &d);
          tl_compare(how, &q, r[2].loss, r[2].grad, ref.loss, ref.grad,
                     0.37 / (reds[k] == CLLOSS_REDUCTION_MEAN ? p.rows : 1));
          tl_ref_free(&ref);
          for (int s = 0; s < 3; s++)
            dc_result_free(&r[s]);
        }
        snprintf(how, sizeof how, "%s %s host call", nll ? "nll" : "ce",
                 clloss_reduction_name(reds[k]));
        tl_grad_scale_levels(ctx, &p, &d, how);
        clloss_context_set_variant(ctx, "auto");
      }
      dc_stored_free(&d);
    }
}

/* ---- element-wise losses: grad_scale and accumulate ---- */

static const clloss_pointwise_loss tl_pw_losses[] = {
    CLLOSS_MSE_LOSS,       CLLOSS_L1_LOSS,         CLLOSS_HUBER_LOSS,
    CLLOSS_SMOOTH_L1_LOSS, CLLOSS_BCE_WITH_LOGITS, CLLOSS_KL_DIV};

/* Inputs every element-wise loss takes: x in [-3, 0) (log-probabilities
 * for kl_div), y in (0, 1]. */
static void tl_pw_data(float *x, float *y, size_t n, uint64_t salt) {
  tu_rng r = tu_rng_make(salt);
  for (size_t i = 0; i < n; i++) {
    x[i] = tu_uniform(&r, -3.0f, 0.0f);
    y[i] = tu_uniform(&r, 0.01f, 1.0f);
  }
}

/* One element-wise call at the device level, on the context's own queue:
 * the gradient starts as g_init (n values), or with `in_place` is the
 * input; the loss and gradient are copied out after a success. */
static clloss_status tl_pw_device(clloss_context *ctx,
                                  const clloss_pointwise_desc *d,
                                  const float *x, const float *y,
                                  const float *g_init, int in_place,
                                  float *loss, float *grad) {
  const dc_pw_case c = {*d, x, y, NULL, NULL, NULL};
  const dc_opts o = {.in_place = in_place, .grad_init = g_init};
  dc_result r = dc_run_pw(ctx, clloss_context_queue(ctx), &c, &o);
  if (r.loss)
    memcpy(loss, r.loss, r.loss_count * sizeof *loss);
  if (r.grad)
    memcpy(grad, r.grad, r.grad_count * sizeof *grad);
  dc_result_free(&r);
  return r.status;
}

/* grad_scale 0.25 exactly (see the row losses), 0.37 against the
 * reference, and accumulate onto g0: g0 + the gradient. Every loss, none
 * and mean, device and host level. */
static void test_tl_pointwise_options(void) {
  TU_REQUIRE_DEVICE();
  enum { N = 1003 };
  float *x = dc_alloc(N * 4), *y = dc_alloc(N * 4), *g0 = dc_alloc(N * 4);
  float *l[4], *g[4];
  for (int k = 0; k < 4; k++)
    l[k] = dc_alloc(N * 4), g[k] = dc_alloc(N * 4);
  tl_pw_data(x, y, N, 2301);
  tu_rng r = tu_rng_make(2302);
  tu_fill_uniform(&r, g0, N, -1.0f, 1.0f);
  for (int li = 0; li < 6; li++)
    for (int red = 0; red < 2; red++) {
      clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(tl_pw_losses[li]);
      d.count = N;
      d.reduction = red ? CLLOSS_REDUCTION_MEAN : CLLOSS_REDUCTION_NONE;
      const size_t nl = clloss_pointwise_output_count(&d);
      const double s = red ? 1.0 / N : 1.0;
      /* The reference: 0.37, and accumulated onto g0. */
      float *rl = dc_alloc(nl * 4), *rg = dc_alloc(N * 4),
            *ra = dc_alloc(N * 4);
      clloss_pointwise_desc q = d;
      q.grad_scale = 0.37f;
      CU_ASSERT_EQUAL(
          clloss_reference_pointwise(&q, x, y, NULL, NULL, NULL, rl, rg),
          CLLOSS_SUCCESS);
      q.accumulate = 1;
      memcpy(ra, g0, N * 4);
      CU_ASSERT_EQUAL(
          clloss_reference_pointwise(&q, x, y, NULL, NULL, NULL, NULL, ra),
          CLLOSS_SUCCESS);
      double *want = dc_alloc(N * sizeof *want);
      for (size_t i = 0; i < N; i++)
        want[i] = (double)g0[i] + rg[i];
      for (size_t dev = 0; dev < tu_device_count(); dev++) {
        clloss_context *ctx = tu_context(dev);
        for (int level = 0; level < 2; level++) {
          char how[96];
          snprintf(how, sizeof how, "pointwise %d %s %s", (int)tl_pw_losses[li],
                   clloss_reduction_name(d.reduction),
                   level ? "host call" : "device");
          const float scales[4] = {1.0f, 0.25f, 0.37f, 0.37f};
          for (int k = 0; k < 4; k++) {
            q = d;
            q.grad_scale = scales[k];
            q.accumulate = k == 3;
            memcpy(g[k], g0, N * 4);
            clloss_status st =
                level ? clloss_pointwise_host(ctx, &q, x, y, NULL, NULL, NULL,
                                              l[k], g[k])
                      : tl_pw_device(ctx, &q, x, y, g0, 0, l[k], g[k]);
            CU_ASSERT_EQUAL(st, CLLOSS_SUCCESS);
          }
          size_t bad = memcmp(l[0], l[1], nl * 4) != 0;
          for (size_t i = 0; i < N; i++)
            bad += g[1][i] != 0.25f * g[0][i];
          bad += tu_compare_f(how, l[2], rl, nl, 1e-6, 2e-6);
          bad += tu_compare_f(how, g[2], rg, N, 4e-7 * s, 1e-5);
          bad += tu_compare(how, g[3], CLLOSS_FLOAT32, want, N, 4e-7, 1e-5);
          bad += tu_compare(how, ra, CLLOSS_FLOAT32, want, N, 4e-7, 1e-6);
          if (bad)
            printf("\n  %s: %zu problems", how, bad);
          CU_ASSERT_EQUAL(bad, 0);
        }
      }
      free(want);
      free(rl);
      free(rg);
      free(ra);
    }
  for (int k = 0; k < 4; k++) {
    free(l[k]);
    free(g[k]);
  }
  free(x);
  free(y);
  free(g0);
}

/* ---- accumulate ---- */

static const clloss_dtype tl_types[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16,
                                        CLLOSS_BFLOAT16, CLLOSS_FLOAT64};

/* g0: values in [-1, 1) in the rows, 9 in the padding. */
static void *tl_g0(const dc_problem *p, uint64_t salt) {
  const size_t n = dc_input_count(p);
  float *f = dc_alloc(n * sizeof *f);
  tu_rng r = tu_rng_make(salt);
  for (size_t i = 0; i < n; i++)
    f[i] = i % p->ld < p->classes ? tu_uniform(&r, -1.0f, 1.0f) : 9.0f;
  void *g = dc_from_float(p->input_type, f, n);
  free(f);
  return g;
}

/* want = g0 + the reference's gradient, as the storage would hold it. */
static void *tl_accumulated(const dc_problem *p, const void *g0,
                            const void *ref_grad) {
  const size_t n = dc_input_count(p);
  float *f = dc_alloc(n * sizeof *f);
  for (size_t i = 0; i < n; i++)
    f[i] = (float)(dc_get(p->input_type, g0, i) +
                   (i % p->ld < p->classes ? dc_get(p->input_type, ref_grad, i)
                                           : 0.0));
  void *w = dc_from_float(p->input_type, f, n);
  free(f);
  return w;
}

/* grad += the gradient: g0 plus the reference's gradient in the rows, the
 * padding as it was (AUTO, not in place) or zeros (ZERO); onto zeros, the
 * plain gradient. Both row losses, every storage type, every variant, the
 * three levels. */
static void tl_accumulate_one(const dc_problem *p, uint64_t salt) {
  dc_stored d = dc_problem_data(p, 5.0f, salt);
  tl_ref ref = tl_reference(p, &d);
  void *g0 = tl_g0(p, salt + 1);
  void *want = tl_accumulated(p, g0, ref.grad);
  const double s = p->reduction == CLLOSS_REDUCTION_MEAN ? 1.0 / p->rows : 1;
  tl_tol tol = tl_tolerance(p->input_type, 1.0);
  const size_t zero_rows = p->padding == CLLOSS_PADDING_ZERO ? p->rows : 0;
  char how[160];
  for (int level = 0; level < 3; level++) {
    if (level > 0 && tu_device_count() == 0)
      break;
    clloss_context *ctx = level ? tu_context(0) : NULL;
    for (int v = 0; v < (level == 1 ? DC_VARIANTS - 1 : 1); v++) {
      void *loss = NULL, *grad = NULL;
      dc_result r;
      memset(&r, 0, sizeof r);
      snprintf(how, sizeof how, "%s %s %s accumulate [%s]", dc_problem_name(p),
               clloss_dtype_name(p->input_type),
               p->padding == CLLOSS_PADDING_ZERO ? "ZERO" : "AUTO",
               level == 0   ? "reference"
               : level == 2 ? "host call"
                            : dc_variants[v]);
      if (level == 1) {
        clloss_context_set_variant(ctx, dc_variants[v]);
        const dc_opts o = {.grad_init = g0};
        r = dc_run_problem(ctx, p, &d, &o);
        CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
        loss = r.loss, grad = r.grad;
      } else {
        CU_ASSERT_EQUAL(tl_level(ctx, p, &d, g0, &loss, &grad), CLLOSS_SUCCESS);
      }
      if (grad) {
        tl_compare(how, p, loss, NULL, ref.loss, NULL, s);
        CU_ASSERT_EQUAL(
            dc_compare_rows(how, p, grad, want, tol.grad_atol, tol.grad_rtol),
            0);
        CU_ASSERT_EQUAL(dc_check_padding(how, p, grad, zero_rows, g0), 0);
      }
      if (level == 1) {
        dc_result_free(&r);
        /* Onto zeros: what the call writes without accumulate. */
        void *zeros = dc_filled(p->input_type, dc_input_count(p), 0.0f);
        dc_problem plain = *p;
        plain.accumulate = 0;
        const dc_opts o = {.grad_init = zeros};
        dc_result a = dc_run_problem(ctx, p, &d, &o);
        dc_result b = dc_run_problem(ctx, &plain, &d, &o);
        size_t bad = 0;
        for (size_t i = 0; a.grad && b.grad && i < dc_input_count(p); i++) {
          double ga = dc_get(p->input_type, a.grad, i);
          double gb = dc_get(p->input_type, b.grad, i);
          if (ga != gb && bad++ < 3)
            printf("\n  %s onto zeros: grad[%zu] %g, without accumulate %g",
                   how, i, ga, gb);
        }
        CU_ASSERT_EQUAL(bad, 0);
        dc_result_free(&a);
        dc_result_free(&b);
        free(zeros);
      } else {
        free(loss);
        free(grad);
      }
    }
    if (ctx)
      clloss_context_set_variant(ctx, "auto");
  }
  free(g0);
  free(want);
  tl_ref_free(&ref);
  dc_stored_free(&d);
}

static void test_tl_accumulate_rows(void) {
  for (int nll = 0; nll < 2; nll++)
    for (int ti = 0; ti < 4; ti++) {
      if (tl_types[ti] == CLLOSS_FLOAT64 &&
          (tu_device_count() == 0 ||
           !tu_runs_type(tu_context(0), tl_types[ti])))
        continue;
      dc_problem p = dc_problem_make(nll ? DC_NLL : DC_CE, 7, 45, 48);
      p.input_type = tl_types[ti];
      p.accumulate = 1;
      tl_accumulate_one(&p, 2401 + (uint64_t)(nll * 4 + ti));
      if (ti == 0) {
        p.padding = CLLOSS_PADDING_ZERO;
        p.reduction = CLLOSS_REDUCTION_NONE;
        tl_accumulate_one(&p, 2411 + (uint64_t)nll);
      }
    }
}

/* accumulate adds to grad_input, so grad_input cannot be the input: every
 * level says INVALID_ARGUMENT and writes nothing. */
static void test_tl_accumulate_in_place_rejected(void) {
  for (int nll = 0; nll < 2; nll++) {
    dc_problem p = dc_problem_make(nll ? DC_NLL : DC_CE, 4, 21, 24);
    p.accumulate = 1;
    dc_stored d = dc_problem_data(&p, 5.0f, 2501);
    const size_t bytes = dc_input_count(&p) * dc_elem(&p);
    void *x = dc_alloc(bytes);
    float loss = 3.0f;
    memcpy(x, d.x, bytes);
    CU_ASSERT_EQUAL(dc_host(NULL, &p, x, d.t, &loss, x),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(memcmp(x, d.x, bytes), 0);
    for (size_t dev = 0; dev < tu_device_count(); dev++) {
      clloss_context *ctx = tu_context(dev);
      CU_ASSERT_EQUAL(dc_host(ctx, &p, x, d.t, &loss, x),
                      CLLOSS_INVALID_ARGUMENT);
      CU_ASSERT_PTR_NOT_NULL(
          strstr(clloss_context_error_detail(ctx), "accumulate"));
      CU_ASSERT_EQUAL(memcmp(x, d.x, bytes), 0);
      CU_ASSERT_EQUAL(loss, 3.0f);
      const dc_opts o = {.in_place = 1, .off = {[DC_INPUT] = 3}};
      /* checks that nothing was written */
      dc_result r = dc_run_problem(ctx, &p, &d, &o);
      CU_ASSERT_EQUAL(r.status, CLLOSS_INVALID_ARGUMENT);
      CU_ASSERT_PTR_NOT_NULL(
          strstr(clloss_context_error_detail(ctx), "accumulate"));
      dc_result_free(&r);
    }
    free(x);
    dc_stored_free(&d);
  }
  enum { N = 33 };
  float x[N], y[N], x0[N], l = 3.0f;
  tl_pw_data(x, y, N, 2502);
  memcpy(x0, x, sizeof x);
  clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  d.count = N;
  d.accumulate = 1;
  CU_ASSERT_EQUAL(clloss_reference_pointwise(&d, x, y, NULL, NULL, NULL, &l, x),
                  CLLOSS_INVALID_ARGUMENT);
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    CU_ASSERT_EQUAL(
        clloss_pointwise_host(ctx, &d, x, y, NULL, NULL, NULL, &l, x),
        CLLOSS_INVALID_ARGUMENT);
    float g[N]; /* the harness checks that nothing was written */
    CU_ASSERT_EQUAL(tl_pw_device(ctx, &d, x, y, NULL, 1, &l, g),
                    CLLOSS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(clloss_context_error_detail(ctx), "accumulate"));
  }
  CU_ASSERT_EQUAL(memcmp(x, x0, sizeof x), 0);
  CU_ASSERT_EQUAL(l, 3.0f);
}

/* ---- padding ---- */

/* One device call with a padding option and a buffer layout; `zero_rows`
 * rows must get zeros in their padding, the others keep what was there;
 * zero_rows (size_t)-1: BUFFER_TOO_SMALL, nothing written. */
static void tl_padding_case(clloss_context *ctx, const dc_problem *p,
                            const dc_stored *d, const tl_ref *ref, dc_opts o,
                            size_t zero_rows, const char *how) {
  const int too_small = zero_rows == (size_t)-1;
  void *g0 = dc_filled(p->input_type, dc_input_count(p), 11.0f);
  if (!o.in_place)
    o.grad_init = g0;
  dc_result r = dc_run_problem(ctx, p, d, &o);
  if (too_small) {
    CU_ASSERT_EQUAL(r.status, CLLOSS_BUFFER_TOO_SMALL);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(clloss_context_error_detail(ctx), "grad_input"));
  } else if (r.status != CLLOSS_SUCCESS) {
    printf("\n  %s: %s (%s)", how, clloss_status_name(r.status),
           clloss_context_error_detail(ctx));
    CU_FAIL("the call failed");
  } else {
    tl_compare(how, p, r.loss, r.grad, ref->loss, ref->grad,
               p->reduction == CLLOSS_REDUCTION_MEAN ? 1.0 / p->rows : 1);
    CU_ASSERT_EQUAL(
        dc_check_padding(how, p, r.grad, zero_rows, o.in_place ? d->x : g0), 0);
  }
  dc_result_free(&r);
  free(g0);
}

/* Device level: in place and not, with the gradient's buffer holding all
 * rows x ld elements or only the rows' extent ((N-1) ld + C: the last
 * row's padding lies past it, in a larger buffer that must not change),
 * at offset 0 and 7. AUTO zeros in place, where the buffer holds the
 * padding; ZERO zeros every row or fails with BUFFER_TOO_SMALL; KEEP never
 * writes there. Both row losses, every variant. */
static void test_tl_padding_device(void) {
  TU_REQUIRE_DEVICE();
  const size_t NONE = (size_t)-1;
  for (int nll = 0; nll < 2; nll++) {
    dc_problem p = dc_problem_make(nll ? DC_NLL : DC_CE, 5, 37, 48);
    const size_t n = p.rows, extent = (n - 1) * p.ld + p.classes;
    dc_stored d = dc_problem_data(&p, 5.0f, 2601 + (uint64_t)nll);
    tl_ref ref = tl_reference(&p, &d);
    /* layout: in place, elements held, offset; rows zeroed per padding. */
    static const struct {
      int in_place;
      int extent_only;
      size_t off;
    } layouts[] = {{1, 0, 0}, {1, 1, 0}, {0, 0, 0}, {0, 1, 0},
                   {1, 0, 7}, {1, 1, 7}, {0, 1, 7}};
    for (size_t dev = 0; dev < tu_device_count(); dev++) {
      clloss_context *ctx = tu_context(dev);
      for (int v = 0; v < DC_VARIANTS - 1; v++) {
        clloss_context_set_variant(ctx, dc_variants[v]);
        for (size_t k = 0; k < sizeof layouts / sizeof layouts[0]; k++) {
          const int ip = layouts[k].in_place, ex = layouts[k].extent_only;
          const size_t held = ex ? extent : 0;
          const size_t zero[3] = {/* AUTO */ ip ? (ex ? n - 1 : n) : 0,
                                  /* ZERO */ ex ? NONE : n,
                                  /* KEEP */ 0};
          for (int m = 0; m < 3; m++) {
            dc_problem q = p;
            q.padding = (clloss_padding)m;
            dc_opts o = {.in_place = ip, .off = {[DC_INPUT] = layouts[k].off}};
            o.held[ip ? DC_INPUT : DC_GRAD] = held;
            char how[160];
            snprintf(
                how, sizeof how, "%s padding %d, %s, %s rows, offset %zu [%s]",
                nll ? "nll" : "ce", m, ip ? "in place" : "own buffer",
                ex ? "extent of the" : "all", layouts[k].off, dc_variants[v]);
            tl_padding_case(ctx, &q, &d, &ref, o, zero[m], how);
          }
        }
      }
      clloss_context_set_variant(ctx, "auto");
    }
    tl_ref_free(&ref);
    dc_stored_free(&d);
  }
}

/* 16-bit and float64 storage write their zeros with other stores: AUTO
 * in place and ZERO into a buffer of its own, every variant. */
static void test_tl_padding_types(void) {
  TU_REQUIRE_DEVICE();
  for (int nll = 0; nll < 2; nll++)
    for (int ti = 1; ti < 4; ti++) {
      clloss_context *ctx = tu_context(0);
      if (!tu_runs_type(ctx, tl_types[ti]))
        continue;
      dc_problem p = dc_problem_make(nll ? DC_NLL : DC_CE, 5, 37, 48);
      p.input_type = tl_types[ti];
      dc_stored d = dc_problem_data(&p, 5.0f, 2701 + (uint64_t)ti);
      tl_ref ref = tl_reference(&p, &d);
      for (int v = 0; v < DC_VARIANTS - 1; v++) {
        char how[128];
        clloss_context_set_variant(ctx, dc_variants[v]);
        snprintf(how, sizeof how, "%s %s padding [%s]", nll ? "nll" : "ce",
                 clloss_dtype_name(p.input_type), dc_variants[v]);
        const dc_opts in_place = {.in_place = 1}, own = {.in_place = 0};
        tl_padding_case(ctx, &p, &d, &ref, in_place, p.rows, how);
        dc_problem q = p;
        q.padding = CLLOSS_PADDING_ZERO;
        tl_padding_case(ctx, &q, &d, &ref, own, p.rows, how);
      }
      clloss_context_set_variant(ctx, "auto");
      tl_ref_free(&ref);
      dc_stored_free(&d);
    }
}

/* Host level and reference: the caller's gradient array keeps its padding
 * but with ZERO (zeros in all N rows), even when it is the input array
 * (AUTO: the logits stay there). An unknown padding value is rejected. */
static void test_tl_padding_host(void) {
  for (int nll = 0; nll < 2; nll++) {
    dc_problem p = dc_problem_make(nll ? DC_NLL : DC_CE, 5, 37, 48);
    dc_stored d = dc_problem_data(&p, 5.0f, 2801 + (uint64_t)nll);
    tl_ref ref = tl_reference(&p, &d);
    void *g0 = dc_filled(p.input_type, dc_input_count(&p), 11.0f);
    const size_t bytes = dc_input_count(&p) * dc_elem(&p);
    for (int level = 0; level < 2; level++) {
      if (level && tu_device_count() == 0)
        break;
      clloss_context *ctx = level ? tu_context(0) : NULL;
      for (int m = 0; m < 3; m++)
        for (int ip = 0; ip < 2; ip++) {
          dc_problem q = p;
          q.padding = (clloss_padding)m;
          char how[96];
          snprintf(how, sizeof how, "%s padding %d%s [%s]", nll ? "nll" : "ce",
                   m, ip ? " in place" : "", level ? "host call" : "reference");
          void *loss = dc_alloc(4), *grad = dc_alloc(bytes);
          memcpy(grad, ip ? d.x : g0, bytes);
          clloss_status s =
              ctx ? dc_host(ctx, &q, ip ? grad : d.x, d.t, loss, grad)
                  : dc_host(NULL, &q, ip ? grad : d.x, d.t, loss, grad);
          CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
          tl_compare(how, &q, loss, grad, ref.loss, ref.grad, 1.0 / p.rows);
          CU_ASSERT_EQUAL(
              dc_check_padding(how, &q, grad,
                               m == CLLOSS_PADDING_ZERO ? p.rows : 0,
                               ip ? d.x : g0),
              0);
          free(loss);
          free(grad);
        }
    }
    dc_problem q = p;
    q.padding = (clloss_padding)3;
    float loss;
    CU_ASSERT_EQUAL(dc_host(NULL, &q, d.x, d.t, &loss, NULL),
                    CLLOSS_INVALID_ARGUMENT);
    for (size_t dev = 0; dev < tu_device_count(); dev++) {
      clloss_context *ctx = tu_context(dev);
      CU_ASSERT_EQUAL(dc_host(ctx, &q, d.x, d.t, &loss, NULL),
                      CLLOSS_INVALID_ARGUMENT);
      CU_ASSERT_PTR_NOT_NULL(
          strstr(clloss_context_error_detail(ctx), "padding"));
    }
    free(g0);
    tl_ref_free(&ref);
    dc_stored_free(&d);
  }
}

int test_training_loop_register(void) {
  TU_SUITE("training_loop", NULL, NULL, TU_TEST(test_tl_llmc_layout),
           TU_TEST(test_tl_llmc_example), TU_TEST(test_tl_grad_scale),
           TU_TEST(test_tl_pointwise_options), TU_TEST(test_tl_accumulate_rows),
           TU_TEST(test_tl_accumulate_in_place_rejected),
           TU_TEST(test_tl_padding_device), TU_TEST(test_tl_padding_types),
           TU_TEST(test_tl_padding_host));
}
