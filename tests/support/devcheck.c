/* devcheck.c - runs one loss call on a device or through the host-pointer
 * API, with guarded buffers, and compares it with the CPU reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devcheck.h"

const char *const dc_variants[DC_VARIANTS] = {"item", "group", "split", "lanes",
                                              "auto"};

/* Byte patterns: elements before an input's offset are NaN (0xFF bytes in
 * every float type, -1 as an index) so that a wrong offset shows; elements
 * before an output's offset are 0xC3 and must stay so; an output's data
 * region starts as 0x5B bytes, a finite value in every float type, so that
 * an element never written cannot pass for NaN. */
#define PRE_INPUT 0xFF
#define PRE_OUTPUT 0xC3
#define FILL_OUTPUT 0x5B

void *dc_alloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  return p;
}

void dc_fill_probabilities(tu_rng *r, float *p, size_t rows, size_t classes) {
  for (size_t i = 0; i < rows; i++) {
    double s = 0.0;
    for (size_t j = 0; j < classes; j++)
      s += p[i * classes + j] = expf(tu_uniform(r, -3.0f, 3.0f));
    for (size_t j = 0; j < classes; j++)
      p[i * classes + j] = (float)(p[i * classes + j] / s);
  }
}

dc_tol dc_default_tol(clloss_dtype input_type) {
  dc_tol t = {1e-5, 1e-5, 2e-6, 1e-4};
  if (input_type == CLLOSS_FLOAT16) {
    t.loss_atol = 1e-4, t.loss_rtol = 1e-4;
    t.grad_atol = 1e-3, t.grad_rtol = 2e-3;
  } else if (input_type == CLLOSS_BFLOAT16) {
    t.loss_atol = 1e-4, t.loss_rtol = 1e-4;
    t.grad_atol = 8e-3, t.grad_rtol = 1.6e-2;
  }
  return t;
}

static size_t esize(clloss_dtype t) {
  size_t s = clloss_dtype_size(t);
  return s ? s : 1;
}

void *dc_from_float(clloss_dtype type, const float *src, size_t n) {
  void *out = dc_alloc(n * esize(type));
  for (size_t i = 0; i < n; i++) {
    switch (type) {
    case CLLOSS_FLOAT16:
      ((uint16_t *)out)[i] = clloss_float_to_half(src[i]);
      break;
    case CLLOSS_BFLOAT16:
      ((uint16_t *)out)[i] = clloss_float_to_bfloat16(src[i]);
      break;
    case CLLOSS_FLOAT64:
      ((double *)out)[i] = src[i];
      break;
    default:
      ((float *)out)[i] = src[i];
      break;
    }
  }
  return out;
}

void *dc_targets(clloss_dtype type, const int64_t *t, size_t n) {
  void *out = dc_alloc(n * esize(type));
  for (size_t i = 0; i < n; i++) {
    if (type == CLLOSS_INT32)
      ((int32_t *)out)[i] = (int32_t)t[i];
    else
      ((int64_t *)out)[i] = t[i];
  }
  return out;
}

double dc_get(clloss_dtype type, const void *src, size_t i) {
  switch (type) {
  case CLLOSS_FLOAT16:
    return clloss_half_to_float(((const uint16_t *)src)[i]);
  case CLLOSS_BFLOAT16:
    return clloss_bfloat16_to_float(((const uint16_t *)src)[i]);
  case CLLOSS_FLOAT64:
    return ((const double *)src)[i];
  default:
    return ((const float *)src)[i];
  }
}

double *dc_to_double(clloss_dtype type, const void *src, size_t n) {
  double *out = dc_alloc(n * sizeof *out);
  for (size_t i = 0; i < n; i++)
    out[i] = dc_get(type, src, i);
  return out;
}

/* atol is scaled by max(max|expect|, min_scale). */
static size_t compare_scaled(const char *what, clloss_dtype type,
                             const void *got, const double *expect, size_t n,
                             double atol, double rtol, double min_scale) {
  double scale = min_scale;
  for (size_t i = 0; i < n; i++)
    if (isfinite(expect[i]) && fabs(expect[i]) > scale)
      scale = fabs(expect[i]);
  double *g = dc_to_double(type, got, n);
  size_t bad = tu_compare(what, g, CLLOSS_FLOAT64, expect, n,
                          atol * scale + 1e-30, rtol);
  free(g);
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

size_t dc_compare(const char *what, clloss_dtype type, const void *got,
                  const double *expect, size_t n, double atol, double rtol) {
  return compare_scaled(what, type, got, expect, n, atol, rtol, 0.0);
}

/* ---- one call, described generically ---- */
enum { KIND_CE, KIND_NLL, KIND_PW };

typedef struct spec {
  int kind;
  const void *desc;
  void *host[DC_NBUF]; /* storage-typed inputs (owned) */
  size_t n[DC_NBUF];
  clloss_dtype type[DC_NBUF];
  int given[DC_NBUF];
  size_t rows, classes, ld; /* layout of input and gradient */
  clloss_dtype in_type;
  double grad_scale; /* the upstream scale s: |g| / (mean ? n : 1) */
  char label[96];
} spec;

static void spec_free(spec *s) {
  for (int b = 0; b < DC_NBUF; b++)
    free(s->host[b]);
}

static clloss_dtype loss_type(clloss_dtype in) {
  return in == CLLOSS_FLOAT64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
}

static void spec_outputs(spec *s, size_t loss_n, const dc_opts *o) {
  clloss_dtype lt = loss_type(s->in_type);
  s->type[DC_LOSS] = lt, s->n[DC_LOSS] = loss_n,
  s->given[DC_LOSS] = !o->no_loss;
  s->type[DC_GRAD] = s->in_type, s->n[DC_GRAD] = s->rows * s->ld;
  s->given[DC_GRAD] = !o->no_grad;
}

static void spec_input(spec *s, int b, clloss_dtype t, const float *v,
                       size_t n) {
  if (!v)
    return;
  s->type[b] = t, s->n[b] = n, s->given[b] = 1;
  s->host[b] = dc_from_float(t, v, n);
}

/* The size of one term of the gradient, |g| times the reduction's factor:
 * float32 rounding of terms like (p - 1) or (sigmoid(x) - y) leaves an
 * absolute error of a few ulp of this, however small the difference. */
static double upstream_scale(const float *g, size_t ng, clloss_reduction r,
                             size_t n, size_t batch) {
  double s = g ? 0.0 : 1.0;
  for (size_t i = 0; g && i < ng; i++)
    s = fmax(s, fabs(g[i]));
  if (r == CLLOSS_REDUCTION_MEAN && n)
    s /= (double)n;
  if (r == CLLOSS_REDUCTION_BATCHMEAN && batch)
    s /= (double)batch;
  return s;
}

static spec spec_ce(const dc_ce_case *c, const dc_opts *o) {
  const clloss_cross_entropy_desc *d = &c->desc;
  spec s;
  memset(&s, 0, sizeof s);
  s.kind = KIND_CE, s.desc = d, s.in_type = d->input_type;
  s.rows = d->rows, s.classes = d->classes;
  s.ld = d->row_stride ? d->row_stride : d->classes;
  clloss_dtype lt = loss_type(d->input_type);
  size_t loss_n = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  spec_input(&s, DC_INPUT, d->input_type, c->x, s.rows * s.ld);
  if (d->target_type == CLLOSS_INT32 || d->target_type == CLLOSS_INT64) {
    s.type[DC_TARGET] = d->target_type, s.n[DC_TARGET] = d->rows;
    s.given[DC_TARGET] = 1;
    s.host[DC_TARGET] = dc_targets(d->target_type, c->t, d->rows);
  } else {
    spec_input(&s, DC_TARGET, d->target_type, c->p, d->rows * d->classes);
  }
  spec_input(&s, DC_WEIGHT, lt, c->w, d->classes);
  spec_input(&s, DC_GRAD_OUTPUT, lt, c->g, loss_n);
  spec_outputs(&s, loss_n, o);
  s.grad_scale = upstream_scale(c->g, loss_n, d->reduction, d->rows, 0);
  snprintf(s.label, sizeof s.label, "ce N=%zu C=%zu %s/%s %s", d->rows,
           d->classes, clloss_dtype_name(d->input_type),
           clloss_dtype_name(d->target_type),
           clloss_reduction_name(d->reduction));
  return s;
}

static spec spec_nll(const dc_nll_case *c, const dc_opts *o) {
  const clloss_nll_loss_desc *d = &c->desc;
  spec s;
  memset(&s, 0, sizeof s);
  s.kind = KIND_NLL, s.desc = d, s.in_type = d->input_type;
  s.rows = d->rows, s.classes = d->classes;
  s.ld = d->row_stride ? d->row_stride : d->classes;
  clloss_dtype lt = loss_type(d->input_type);
  size_t loss_n = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  spec_input(&s, DC_INPUT, d->input_type, c->x, s.rows * s.ld);
  s.type[DC_TARGET] = d->target_type, s.n[DC_TARGET] = d->rows;
  s.given[DC_TARGET] = 1;
  s.host[DC_TARGET] = dc_targets(d->target_type, c->t, d->rows);
  spec_input(&s, DC_WEIGHT, lt, c->w, d->classes);
  spec_input(&s, DC_GRAD_OUTPUT, lt, c->g, loss_n);
  spec_outputs(&s, loss_n, o);
  s.grad_scale = upstream_scale(c->g, loss_n, d->reduction, d->rows, 0);
  snprintf(s.label, sizeof s.label, "nll N=%zu C=%zu %s %s", d->rows,
           d->classes, clloss_dtype_name(d->input_type),
           clloss_reduction_name(d->reduction));
  return s;
}

static const char *pw_name(clloss_pointwise_loss l) {
  static const char *const names[] = {"mse",       "l1",  "huber",
                                      "smooth_l1", "bce", "kl_div"};
  return (unsigned)l < 6 ? names[l] : "?";
}

static spec spec_pw(const dc_pw_case *c, const dc_opts *o) {
  const clloss_pointwise_desc *d = &c->desc;
  spec s;
  memset(&s, 0, sizeof s);
  s.kind = KIND_PW, s.desc = d, s.in_type = d->input_type;
  s.rows = 1, s.classes = d->count, s.ld = d->count;
  clloss_dtype lt = loss_type(d->input_type);
  size_t loss_n = d->reduction == CLLOSS_REDUCTION_NONE ? d->count : 1;
  spec_input(&s, DC_INPUT, d->input_type, c->x, d->count);
  spec_input(&s, DC_TARGET, d->input_type, c->y, d->count);
  spec_input(&s, DC_WEIGHT, lt, c->w, d->weight_count);
  spec_input(&s, DC_POS_WEIGHT, lt, c->pw, d->pos_weight_count);
  spec_input(&s, DC_GRAD_OUTPUT, lt, c->g, loss_n);
  spec_outputs(&s, loss_n, o);
  s.grad_scale = upstream_scale(c->g, loss_n, d->reduction, d->count, d->batch);
  snprintf(s.label, sizeof s.label, "%s n=%zu %s %s", pw_name(d->loss),
           d->count, clloss_dtype_name(d->input_type),
           clloss_reduction_name(d->reduction));
  return s;
}

/* ---- the reference ---- */
typedef struct outputs {
  void *loss, *grad; /* data regions, loss_n / rows * ld elements */
} outputs;

static void *filled(size_t n, clloss_dtype t) {
  void *p = dc_alloc(n * esize(t));
  memset(p, FILL_OUTPUT, n * esize(t));
  return p;
}

static clloss_status run_reference(const spec *s, outputs *out) {
  out->loss = s->given[DC_LOSS] ? filled(s->n[DC_LOSS], s->type[DC_LOSS]) : 0;
  out->grad = s->given[DC_GRAD] ? filled(s->n[DC_GRAD], s->type[DC_GRAD]) : 0;
  void *const *h = s->host;
  switch (s->kind) {
  case KIND_CE:
    return clloss_reference_cross_entropy(s->desc, h[DC_INPUT], h[DC_TARGET],
                                          h[DC_WEIGHT], h[DC_GRAD_OUTPUT],
                                          out->loss, out->grad);
  case KIND_NLL:
    return clloss_reference_nll_loss(s->desc, h[DC_INPUT], h[DC_TARGET],
                                     h[DC_WEIGHT], h[DC_GRAD_OUTPUT], out->loss,
                                     out->grad);
  default:
    return clloss_reference_pointwise(s->desc, h[DC_INPUT], h[DC_TARGET],
                                      h[DC_WEIGHT], h[DC_POS_WEIGHT],
                                      h[DC_GRAD_OUTPUT], out->loss, out->grad);
  }
}

/* ---- the device call with guarded buffers ---- */
static const char *const buf_names[DC_NBUF] = {
    "input", "target", "weight", "pos_weight", "grad_output", "loss", "grad"};

cl_command_queue dc_queue(clloss_context *ctx) {
  cl_int err;
  cl_command_queue q = clCreateCommandQueue(
      clloss_context_cl_context(ctx), clloss_context_device(ctx), 0, &err);
  CU_ASSERT_PTR_NOT_NULL(q);
  return q;
}

static dc_result run_device(clloss_context *ctx, cl_command_queue q,
                            const spec *s, const dc_opts *o) {
  dc_result r;
  memset(&r, 0, sizeof r);
  cl_mem mem[DC_NBUF] = {0};
  unsigned char *image[DC_NBUF] = {0};
  size_t total[DC_NBUF] = {0}, off[DC_NBUF] = {0};
  for (int b = 0; b < DC_NBUF; b++) {
    if (!s->given[b] || (b == DC_GRAD && o->in_place))
      continue;
    int is_out = b == DC_LOSS || b == DC_GRAD;
    size_t es = esize(s->type[b]);
    off[b] = o->off[b];
    total[b] = (off[b] + s->n[b] + TU_CANARY) * es;
    image[b] = dc_alloc(total[b]);
    memset(image[b], is_out ? PRE_OUTPUT : PRE_INPUT, off[b] * es);
    if (is_out)
      memset(image[b] + off[b] * es, FILL_OUTPUT, s->n[b] * es);
    else if (s->n[b])
      memcpy(image[b] + off[b] * es, s->host[b], s->n[b] * es);
    tu_canary_fill(image[b] + (off[b] + s->n[b]) * es, es);
    mem[b] = tu_buffer(ctx, total[b], image[b]);
  }
  if (o->in_place && s->given[DC_GRAD])
    mem[DC_GRAD] = mem[DC_INPUT], off[DC_GRAD] = off[DC_INPUT];

  clloss_buffer buf[DC_NBUF];
  for (int b = 0; b < DC_NBUF; b++)
    buf[b].mem = mem[b], buf[b].offset = off[b];
  cl_event ev = NULL;
  switch (s->kind) {
  case KIND_CE:
    r.status = clloss_cross_entropy(
        ctx, q, s->desc, buf[DC_INPUT], buf[DC_TARGET], buf[DC_WEIGHT],
        buf[DC_GRAD_OUTPUT], buf[DC_LOSS], buf[DC_GRAD], 0, NULL, &ev);
    break;
  case KIND_NLL:
    r.status = clloss_nll_loss(ctx, q, s->desc, buf[DC_INPUT], buf[DC_TARGET],
                               buf[DC_WEIGHT], buf[DC_GRAD_OUTPUT],
                               buf[DC_LOSS], buf[DC_GRAD], 0, NULL, &ev);
    break;
  default:
    r.status = clloss_pointwise(ctx, q, s->desc, buf[DC_INPUT], buf[DC_TARGET],
                                buf[DC_WEIGHT], buf[DC_POS_WEIGHT],
                                buf[DC_GRAD_OUTPUT], buf[DC_LOSS], buf[DC_GRAD],
                                0, NULL, &ev);
    break;
  }
  if (r.status == CLLOSS_SUCCESS) {
    CU_ASSERT_PTR_NOT_NULL(ev);
    if (ev) {
      CU_ASSERT_EQUAL(clWaitForEvents(1, &ev), CL_SUCCESS);
    }
  }
  if (ev)
    clReleaseEvent(ev);
  CU_ASSERT_EQUAL(clFinish(q), CL_SUCCESS);

  r.loss_count = s->n[DC_LOSS], r.grad_count = s->n[DC_GRAD];
  for (int b = 0; b < DC_NBUF; b++) {
    if (!mem[b] || (b == DC_GRAD && o->in_place))
      continue;
    size_t es = esize(s->type[b]);
    unsigned char *back = dc_alloc(total[b]);
    cl_int err = clEnqueueReadBuffer(q, mem[b], CL_TRUE, 0, total[b], back, 0,
                                     NULL, NULL);
    CU_ASSERT_EQUAL(err, CL_SUCCESS);
    int is_out = b == DC_LOSS || b == DC_GRAD ||
                 (b == DC_INPUT && o->in_place && s->given[DC_GRAD]);
    const char *name =
        b == DC_INPUT && is_out ? "input (in place)" : buf_names[b];
    if (r.status != CLLOSS_SUCCESS || !is_out) {
      /* A failed call touches nothing; inputs are never written. */
      if (memcmp(back, image[b], total[b]) != 0) {
        printf("\n  %s: %s buffer modified (%s)", s->label, name,
               r.status == CLLOSS_SUCCESS ? "an input" : "failed call");
        r.problems++;
      }
    } else {
      if (memcmp(back, image[b], off[b] * es) != 0) {
        printf("\n  %s: %s written before its offset", s->label, name);
        r.problems++;
      }
      if (!tu_canary_intact(back + (off[b] + s->n[b]) * es, es)) {
        printf("\n  %s: %s canary overwritten", s->label, name);
        r.problems++;
      }
      void *data = dc_alloc(s->n[b] * es);
      if (s->n[b])
        memcpy(data, back + off[b] * es, s->n[b] * es);
      if (b == DC_LOSS)
        r.loss = data;
      else
        r.grad = data;
    }
    free(back);
  }
  for (int b = 0; b < DC_NBUF; b++) {
    if (mem[b] && !(b == DC_GRAD && o->in_place))
      clReleaseMemObject(mem[b]);
    free(image[b]);
  }
  CU_ASSERT_EQUAL(r.problems, 0);
  return r;
}

void dc_result_free(dc_result *r) {
  free(r->loss);
  free(r->grad);
  r->loss = r->grad = NULL;
}

dc_result dc_run_ce(clloss_context *ctx, cl_command_queue q,
                    const dc_ce_case *c, const dc_opts *o) {
  dc_opts none;
  memset(&none, 0, sizeof none);
  spec s = spec_ce(c, o ? o : &none);
  dc_result r = run_device(ctx, q, &s, o ? o : &none);
  spec_free(&s);
  return r;
}

dc_result dc_run_nll(clloss_context *ctx, cl_command_queue q,
                     const dc_nll_case *c, const dc_opts *o) {
  dc_opts none;
  memset(&none, 0, sizeof none);
  spec s = spec_nll(c, o ? o : &none);
  dc_result r = run_device(ctx, q, &s, o ? o : &none);
  spec_free(&s);
  return r;
}

dc_result dc_run_pw(clloss_context *ctx, cl_command_queue q,
                    const dc_pw_case *c, const dc_opts *o) {
  dc_opts none;
  memset(&none, 0, sizeof none);
  spec s = spec_pw(c, o ? o : &none);
  dc_result r = run_device(ctx, q, &s, o ? o : &none);
  spec_free(&s);
  return r;
}

/* ---- the host-pointer call with canaries after its outputs ---- */
static dc_result run_host(clloss_context *ctx, const spec *s) {
  dc_result r;
  memset(&r, 0, sizeof r);
  unsigned char *out[DC_NBUF] = {0};
  for (int b = DC_LOSS; b <= DC_GRAD; b++) {
    if (!s->given[b])
      continue;
    size_t es = esize(s->type[b]);
    out[b] = dc_alloc((s->n[b] + TU_CANARY) * es);
    memset(out[b], FILL_OUTPUT, s->n[b] * es);
    tu_canary_fill(out[b] + s->n[b] * es, es);
  }
  void *const *h = s->host;
  switch (s->kind) {
  case KIND_CE:
    r.status = clloss_cross_entropy_host(
        ctx, s->desc, h[DC_INPUT], h[DC_TARGET], h[DC_WEIGHT],
        h[DC_GRAD_OUTPUT], out[DC_LOSS], out[DC_GRAD]);
    break;
  case KIND_NLL:
    r.status = clloss_nll_loss_host(ctx, s->desc, h[DC_INPUT], h[DC_TARGET],
                                    h[DC_WEIGHT], h[DC_GRAD_OUTPUT],
                                    out[DC_LOSS], out[DC_GRAD]);
    break;
  default:
    r.status = clloss_pointwise_host(
        ctx, s->desc, h[DC_INPUT], h[DC_TARGET], h[DC_WEIGHT], h[DC_POS_WEIGHT],
        h[DC_GRAD_OUTPUT], out[DC_LOSS], out[DC_GRAD]);
    break;
  }
  r.loss_count = s->n[DC_LOSS], r.grad_count = s->n[DC_GRAD];
  for (int b = DC_LOSS; b <= DC_GRAD; b++) {
    if (!out[b])
      continue;
    size_t es = esize(s->type[b]);
    if (!tu_canary_intact(out[b] + s->n[b] * es, es)) {
      printf("\n  %s (host call): canary after %s overwritten", s->label,
             buf_names[b]);
      r.problems++;
    }
  }
  r.loss = out[DC_LOSS], r.grad = out[DC_GRAD];
  CU_ASSERT_EQUAL(r.problems, 0);
  return r;
}

/* ---- comparison ---- */
static size_t compare(const spec *s, const outputs *ref, const dc_result *r,
                      const dc_tol *tol, const char *how, int in_place) {
  size_t bad = r->problems;
  char what[192];
  if (s->given[DC_LOSS] && r->loss) {
    double *e = dc_to_double(s->type[DC_LOSS], ref->loss, s->n[DC_LOSS]);
    snprintf(what, sizeof what, "%s [%s] loss", s->label, how);
    bad += dc_compare(what, s->type[DC_LOSS], r->loss, e, s->n[DC_LOSS],
                      tol->loss_atol, tol->loss_rtol);
    free(e);
  }
  if (s->given[DC_GRAD] && r->grad) {
    size_t n = s->rows * s->classes, k = 0, pad_bad = 0;
    double *e = dc_alloc(n * sizeof *e), *g = dc_alloc(n * sizeof *g);
    size_t es = esize(s->in_type);
    unsigned char fill[8];
    memset(fill, FILL_OUTPUT, sizeof fill);
    for (size_t i = 0; i < s->rows; i++) {
      for (size_t j = 0; j < s->classes; j++, k++) {
        e[k] = dc_get(s->in_type, ref->grad, i * s->ld + j);
        g[k] = dc_get(s->in_type, r->grad, i * s->ld + j);
      }
      /* The padding between rows is never written, but in place, where
       * it gets zeros (CLLOSS_PADDING_AUTO: the input's rows are all
       * there, so every row's padding). */
      static const unsigned char zero[8];
      for (size_t j = s->classes; j < s->ld; j++) {
        const unsigned char *got =
            (const unsigned char *)r->grad + (i * s->ld + j) * es;
        const unsigned char *want = in_place ? zero : fill;
        if (memcmp(got, want, es) != 0 && pad_bad++ < 3)
          printf("\n  %s [%s]: padding element (%zu, %zu) written", s->label,
                 how, i, j);
      }
    }
    CU_ASSERT_EQUAL(pad_bad, 0);
    bad += pad_bad;
    snprintf(what, sizeof what, "%s [%s] grad", s->label, how);
    bad += compare_scaled(what, CLLOSS_FLOAT64, g, e, n, tol->grad_atol,
                          tol->grad_rtol, s->grad_scale);
    free(e);
    free(g);
  }
  return bad;
}

static size_t same_bits(const spec *s, const dc_result *a, const dc_result *b,
                        const char *how) {
  size_t bad = 0;
  if (a->loss && b->loss &&
      memcmp(a->loss, b->loss, s->n[DC_LOSS] * esize(s->type[DC_LOSS]))) {
    printf("\n  %s [%s]: loss differs between two identical calls", s->label,
           how);
    bad++;
  }
  if (a->grad && b->grad &&
      memcmp(a->grad, b->grad, s->n[DC_GRAD] * esize(s->type[DC_GRAD]))) {
    printf("\n  %s [%s]: gradient differs between two identical calls",
           s->label, how);
    bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

static size_t check(size_t dev, spec *s, const dc_opts *o) {
  clloss_context *ctx = tu_context(dev);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  dc_tol tol = o->tol ? *o->tol : dc_default_tol(s->in_type);
  outputs ref;
  clloss_status rs = run_reference(s, &ref);
  if (rs != CLLOSS_SUCCESS) {
    printf("\n  %s: the reference failed: %s", s->label,
           clloss_status_name(rs));
    CU_FAIL("reference failed");
    free(ref.loss);
    free(ref.grad);
    return 1;
  }
  const char *name = clloss_context_device_info(ctx)->name;
  size_t bad = 0;
  cl_command_queue q = dc_queue(ctx);
  int nv = o->all_variants ? DC_VARIANTS : 1;
  for (int v = 0; v < nv; v++) {
    char how[160];
    if (o->all_variants) {
      clloss_status vs = clloss_context_set_variant(ctx, dc_variants[v]);
      CU_ASSERT_EQUAL(vs, CLLOSS_SUCCESS);
    }
    snprintf(how, sizeof how, "%.100s, %s", name,
             o->all_variants ? dc_variants[v] : "current variant");
    dc_result r = run_device(ctx, q, s, o);
    if (r.status != CLLOSS_SUCCESS) {
      printf("\n  %s [%s]: %s (%s)", s->label, how,
             clloss_status_name(r.status), clloss_context_error_detail(ctx));
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      bad++;
    } else {
      bad += compare(s, &ref, &r, &tol, how, o->in_place);
      if (o->determinism) {
        /* auto may switch a shape class's variant once, on its third call
         * (clloss.h): compare two calls that ran the same variant. */
        char ran[16];
        snprintf(ran, sizeof ran, "%s", clloss_context_last_variant(ctx));
        dc_result r2 = run_device(ctx, q, s, o);
        CU_ASSERT_EQUAL(r2.status, CLLOSS_SUCCESS);
        if (strcmp(ran, clloss_context_last_variant(ctx)) != 0) {
          dc_result_free(&r);
          r = r2;
          snprintf(ran, sizeof ran, "%s", clloss_context_last_variant(ctx));
          r2 = run_device(ctx, q, s, o);
          CU_ASSERT_EQUAL(r2.status, CLLOSS_SUCCESS);
          CU_ASSERT_STRING_EQUAL(ran, clloss_context_last_variant(ctx));
        }
        bad += same_bits(s, &r, &r2, how);
        dc_result_free(&r2);
      }
    }
    dc_result_free(&r);
  }
  if (o->all_variants)
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
  clReleaseCommandQueue(q);
  if (o->host && !o->in_place) {
    char how[160];
    snprintf(how, sizeof how, "%.100s, host call", name);
    dc_result r = run_host(ctx, s);
    if (r.status != CLLOSS_SUCCESS) {
      printf("\n  %s [%s]: %s (%s)", s->label, how,
             clloss_status_name(r.status), clloss_context_error_detail(ctx));
      CU_ASSERT_EQUAL(r.status, CLLOSS_SUCCESS);
      bad++;
    } else {
      bad += compare(s, &ref, &r, &tol, how, 0);
    }
    dc_result_free(&r);
  }
  free(ref.loss);
  free(ref.grad);
  return bad;
}

size_t dc_check_ce(size_t dev, const dc_ce_case *c, const dc_opts *o) {
  dc_opts none;
  memset(&none, 0, sizeof none);
  spec s = spec_ce(c, o ? o : &none);
  size_t bad = check(dev, &s, o ? o : &none);
  spec_free(&s);
  return bad;
}

size_t dc_check_nll(size_t dev, const dc_nll_case *c, const dc_opts *o) {
  dc_opts none;
  memset(&none, 0, sizeof none);
  spec s = spec_nll(c, o ? o : &none);
  size_t bad = check(dev, &s, o ? o : &none);
  spec_free(&s);
  return bad;
}

size_t dc_check_pw(size_t dev, const dc_pw_case *c, const dc_opts *o) {
  dc_opts none;
  memset(&none, 0, sizeof none);
  spec s = spec_pw(c, o ? o : &none);
  size_t bad = check(dev, &s, o ? o : &none);
  spec_free(&s);
  return bad;
}

size_t dc_check_ce_all(const dc_ce_case *c, const dc_opts *o) {
  size_t bad = 0;
  for (size_t i = 0; i < tu_device_count(); i++)
    bad += dc_check_ce(i, c, o);
  return bad;
}

size_t dc_check_nll_all(const dc_nll_case *c, const dc_opts *o) {
  size_t bad = 0;
  for (size_t i = 0; i < tu_device_count(); i++)
    bad += dc_check_nll(i, c, o);
  return bad;
}

size_t dc_check_pw_all(const dc_pw_case *c, const dc_opts *o) {
  size_t bad = 0;
  for (size_t i = 0; i < tu_device_count(); i++)
    bad += dc_check_pw(i, c, o);
  return bad;
}
