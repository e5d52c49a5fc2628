/* devcheck.c - the device harness: one loss call on guarded device buffers,
 * through the host-pointer API or the reference, compared with the
 * reference; and the random data of the row losses. */
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

/* ---- storage conversions ---- */
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

void *dc_filled(clloss_dtype type, size_t n, float v) {
  float *f = dc_alloc(n * sizeof *f);
  for (size_t i = 0; i < n; i++)
    f[i] = v;
  void *out = dc_from_float(type, f, n);
  free(f);
  return out;
}

/* ---- random data ---- */
void dc_fill_probabilities(tu_rng *r, float *p, size_t rows, size_t classes) {
  for (size_t i = 0; i < rows; i++) {
    double s = 0.0;
    for (size_t j = 0; j < classes; j++)
      s += p[i * classes + j] = expf(tu_uniform(r, -3.0f, 3.0f));
    for (size_t j = 0; j < classes; j++)
      p[i * classes + j] = (float)(p[i * classes + j] / s);
  }
}

void dc_fill_targets(tu_rng *r, int64_t *t, size_t rows, size_t classes,
                     double ignore, int64_t ignore_index) {
  for (size_t i = 0; i < rows; i++) {
    t[i] = (int64_t)(tu_next(r) % classes);
    if (tu_uniform(r, 0.0f, 1.0f) < ignore)
      t[i] = ignore_index;
  }
}

void dc_make(dc_data *d, const dc_gen *g, size_t rows, size_t classes,
             size_t ld, int64_t ignore_index, size_t grad_count) {
  memset(d, 0, sizeof *d);
  tu_rng r = tu_rng_make(g->salt);
  float lo = g->lo, hi = g->hi;
  if (lo == 0.0f && hi == 0.0f)
    lo = -4.0f, hi = 4.0f;
  d->x = dc_alloc(rows * ld * sizeof *d->x);
  tu_fill_uniform(&r, d->x, rows * ld, lo, hi);
  d->t = dc_alloc(rows * sizeof *d->t);
  dc_fill_targets(&r, d->t, rows, classes, g->ignore, ignore_index);
  if (g->probability) {
    d->p = dc_alloc(rows * classes * sizeof *d->p);
    dc_fill_probabilities(&r, d->p, rows, classes);
  }
  if (g->weights) {
    d->w = dc_alloc(classes * sizeof *d->w);
    tu_fill_uniform(&r, d->w, classes, 0.25f, 2.0f);
  }
  if (g->grad_output && grad_count) {
    d->g = dc_alloc(grad_count * sizeof *d->g);
    tu_fill_uniform(&r, d->g, grad_count, -1.5f, 1.5f);
    if (grad_count == 1)
      d->g[0] = 0.7f;
  }
}

void dc_data_free(dc_data *d) {
  free(d->x);
  free(d->y);
  free(d->p);
  free(d->pw);
  free(d->w);
  free(d->g);
  free(d->t);
  memset(d, 0, sizeof *d);
}

dc_ce_case dc_make_ce(dc_data *v, const clloss_cross_entropy_desc *d,
                      const dc_gen *g) {
  dc_make(v, g, d->rows, d->classes, d->row_stride ? d->row_stride : d->classes,
          d->ignore_index, d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1);
  const dc_ce_case c = {*d, v->x, v->t, v->p, v->w, v->g};
  return c;
}

dc_nll_case dc_make_nll(dc_data *v, const clloss_nll_loss_desc *d,
                        const dc_gen *g) {
  const size_t ld = d->row_stride ? d->row_stride : d->classes;
  dc_make(v, g, d->rows, d->classes, ld, d->ignore_index,
          d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1);
  for (size_t i = 0; i < d->rows; i++) {
    float *x = v->x + i * ld;
    double m = -INFINITY, s = 0.0;
    for (size_t j = 0; j < d->classes; j++)
      m = fmax(m, x[j]);
    for (size_t j = 0; j < d->classes; j++)
      s += exp(x[j] - m);
    for (size_t j = 0; j < d->classes; j++)
      x[j] = (float)(x[j] - m - log(s));
  }
  const dc_nll_case c = {*d, v->x, v->t, v->w, v->g};
  return c;
}

dc_pw_case dc_make_pw(dc_data *p, const clloss_pointwise_desc *d, uint64_t salt,
                      int grad_output) {
  memset(p, 0, sizeof *p);
  tu_rng r = tu_rng_make(salt);
  size_t n = d->count;
  p->x = dc_alloc(n * sizeof *p->x);
  p->y = dc_alloc(n * sizeof *p->y);
  for (size_t i = 0; i < n; i++) {
    float u = tu_uniform(&r, 0.0f, 1.0f);
    switch (d->loss) {
    case CLLOSS_BCE_WITH_LOGITS:
      p->x[i] = tu_uniform(&r, -12.0f, 12.0f);
      p->y[i] = u < 0.2f ? 0.0f : u > 0.8f ? 1.0f : u;
      break;
    case CLLOSS_KL_DIV:
      p->x[i] = tu_uniform(&r, -6.0f, 0.0f);
      if (d->log_target)
        p->y[i] = tu_uniform(&r, -6.0f, 0.0f);
      else
        p->y[i] = u < 0.1f ? 0.0f : u;
      break;
    default:
      p->x[i] = tu_uniform(&r, -3.0f, 3.0f);
      p->y[i] = u < 0.05f ? p->x[i] : tu_uniform(&r, -3.0f, 3.0f);
      break;
    }
  }
  if (d->weight_count) {
    p->w = dc_alloc(d->weight_count * sizeof *p->w);
    tu_fill_uniform(&r, p->w, d->weight_count, 0.0f, 2.0f);
  }
  if (d->pos_weight_count) {
    p->pw = dc_alloc(d->pos_weight_count * sizeof *p->pw);
    tu_fill_uniform(&r, p->pw, d->pos_weight_count, 0.5f, 3.0f);
  }
  if (grad_output) {
    size_t k = d->reduction == CLLOSS_REDUCTION_NONE ? n : 1;
    p->g = dc_alloc(k * sizeof *p->g);
    tu_fill_uniform(&r, p->g, k, -2.0f, 2.0f);
    if (k == 1)
      p->g[0] = 1.25f;
  }
  dc_pw_case c = {*d, p->x, p->y, p->w, p->pw, p->g};
  return c;
}

/* ---- comparison ---- */

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

/* The C columns of each row of v (rows x ld) as doubles. */
static double *rows_of(const dc_problem *p, const void *v) {
  double *out = dc_alloc(p->rows * p->classes * sizeof *out);
  for (size_t i = 0, k = 0; i < p->rows; i++)
    for (size_t j = 0; j < p->classes; j++, k++)
      out[k] = dc_get(p->input_type, v, i * p->ld + j);
  return out;
}

size_t dc_compare_rows(const char *what, const dc_problem *p, const void *got,
                       const void *want, double atol, double rtol) {
  double *g = rows_of(p, got), *w = rows_of(p, want);
  size_t bad =
      tu_compare(what, g, CLLOSS_FLOAT64, w, p->rows * p->classes, atol, rtol);
  free(g);
  free(w);
  return bad;
}

size_t dc_check_padding(const char *what, const dc_problem *p, const void *got,
                        size_t zero_rows, const void *keep) {
  const size_t es = dc_elem(p);
  const unsigned char zero[8] = {0};
  unsigned char fill[8];
  memset(fill, FILL_OUTPUT, sizeof fill);
  size_t bad = 0;
  for (size_t i = 0; i < p->rows; i++)
    for (size_t j = p->classes; j < p->ld; j++) {
      size_t at = (i * p->ld + j) * es;
      const unsigned char *want = i < zero_rows ? zero
                                  : keep ? (const unsigned char *)keep + at
                                         : fill;
      if (memcmp((const unsigned char *)got + at, want, es) == 0)
        continue;
      if (bad++ < 3)
        printf("\n  %s: padding (%zu, %zu) is %g, expected %s", what, i, j,
               dc_get(p->input_type, got, i * p->ld + j),
               i < zero_rows ? "+0" : "the value that was there");
    }
  return bad;
}

/* ---- one call, described generically ---- */
static const char *const row_names[DC_NBUF] = {
    "input", "target", "weight", "pos_weight", "grad_output", "loss", "grad"};

static const dc_opts *opts(const dc_opts *o) {
  static const dc_opts none;
  return o ? o : &none;
}

void dc_call_free(dc_call *c) {
  for (int b = 0; b < DC_MAXBUF; b++)
    free(c->owned[b]);
}

static void call_init(dc_call *c, dc_kind kind, clloss_dtype in_type,
                      size_t rows, size_t classes, size_t ld) {
  memset(c, 0, sizeof *c);
  c->kind = kind, c->in_type = in_type, c->names = row_names;
  c->rows = rows, c->classes = classes, c->ld = ld ? ld : classes;
  c->grad_scale = 1.0;
}

static void call_input(dc_call *c, int b, clloss_dtype t, const float *v,
                       size_t n) {
  if (!v)
    return;
  c->type[b] = t, c->n[b] = n, c->given[b] = 1;
  c->host[b] = c->owned[b] = dc_from_float(t, v, n);
}

static void call_targets(dc_call *c, clloss_dtype t, const int64_t *v) {
  c->type[DC_TARGET] = t, c->n[DC_TARGET] = c->rows, c->given[DC_TARGET] = 1;
  c->host[DC_TARGET] = c->owned[DC_TARGET] = dc_targets(t, v, c->rows);
}

static void call_outputs(dc_call *c, size_t loss_n, const dc_opts *o) {
  c->type[DC_LOSS] = clloss_loss_dtype(c->in_type), c->n[DC_LOSS] = loss_n;
  c->given[DC_LOSS] = loss_n && !o->no_loss;
  c->type[DC_GRAD] = c->in_type, c->n[DC_GRAD] = c->rows * c->ld;
  c->given[DC_GRAD] = !o->no_grad, c->host[DC_GRAD] = o->grad_init;
  c->output[DC_LOSS] = c->output[DC_GRAD] = 1;
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

static void call_ce(dc_call *s, const void *k, const dc_opts *o) {
  const dc_ce_case *c = k;
  const clloss_cross_entropy_desc *d = &c->desc;
  call_init(s, DC_CE, d->input_type, d->rows, d->classes, d->row_stride);
  s->d.ce = *d;
  clloss_dtype lt = clloss_loss_dtype(d->input_type);
  size_t loss_n = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  call_input(s, DC_INPUT, d->input_type, c->x, s->rows * s->ld);
  if (d->target_type == CLLOSS_INT32 || d->target_type == CLLOSS_INT64)
    call_targets(s, d->target_type, c->t);
  else
    call_input(s, DC_TARGET, d->target_type, c->p, d->rows * d->classes);
  call_input(s, DC_WEIGHT, lt, c->w, d->classes);
  call_input(s, DC_GRAD_OUTPUT, lt, c->g, loss_n);
  call_outputs(s, loss_n, o);
  s->grad_scale = upstream_scale(c->g, loss_n, d->reduction, d->rows, 0);
  snprintf(s->label, sizeof s->label, "ce N=%zu C=%zu %s/%s %s", d->rows,
           d->classes, clloss_dtype_name(d->input_type),
           clloss_dtype_name(d->target_type),
           clloss_reduction_name(d->reduction));
}

static void call_nll(dc_call *s, const void *k, const dc_opts *o) {
  const dc_nll_case *c = k;
  const clloss_nll_loss_desc *d = &c->desc;
  call_init(s, DC_NLL, d->input_type, d->rows, d->classes, d->row_stride);
  s->d.nll = *d;
  clloss_dtype lt = clloss_loss_dtype(d->input_type);
  size_t loss_n = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  call_input(s, DC_INPUT, d->input_type, c->x, s->rows * s->ld);
  call_targets(s, d->target_type, c->t);
  call_input(s, DC_WEIGHT, lt, c->w, d->classes);
  call_input(s, DC_GRAD_OUTPUT, lt, c->g, loss_n);
  call_outputs(s, loss_n, o);
  s->grad_scale = upstream_scale(c->g, loss_n, d->reduction, d->rows, 0);
  snprintf(s->label, sizeof s->label, "nll N=%zu C=%zu %s %s", d->rows,
           d->classes, clloss_dtype_name(d->input_type),
           clloss_reduction_name(d->reduction));
}

static void call_pw(dc_call *s, const void *k, const dc_opts *o) {
  static const char *const names[] = {"mse",       "l1",  "huber",
                                      "smooth_l1", "bce", "kl_div"};
  const dc_pw_case *c = k;
  const clloss_pointwise_desc *d = &c->desc;
  call_init(s, DC_PW, d->input_type, 1, d->count, d->count);
  s->d.pw = *d;
  clloss_dtype lt = clloss_loss_dtype(d->input_type);
  size_t loss_n = d->reduction == CLLOSS_REDUCTION_NONE ? d->count : 1;
  call_input(s, DC_INPUT, d->input_type, c->x, d->count);
  call_input(s, DC_TARGET, d->input_type, c->y, d->count);
  call_input(s, DC_WEIGHT, lt, c->w, d->weight_count);
  call_input(s, DC_POS_WEIGHT, lt, c->pw, d->pos_weight_count);
  call_input(s, DC_GRAD_OUTPUT, lt, c->g, loss_n);
  call_outputs(s, loss_n, o);
  s->grad_scale =
      upstream_scale(c->g, loss_n, d->reduction, d->count, d->batch);
  snprintf(s->label, sizeof s->label, "%s n=%zu %s %s",
           (unsigned)d->loss < 6 ? names[d->loss] : "?", d->count,
           clloss_dtype_name(d->input_type),
           clloss_reduction_name(d->reduction));
}

/* ---- the calls at each level ---- */

/* The call at the host-pointer level (ctx) or the reference (ctx NULL). */
#define HOST_OR_REFERENCE(name, ...)                                           \
  (ctx ? clloss_##name##_host(ctx, __VA_ARGS__)                                \
       : clloss_reference_##name(__VA_ARGS__))

clloss_status dc_host_call(clloss_context *ctx, dc_kind kind, const void *desc,
                           const void *const *in, void *const *out) {
  switch (kind) {
  case DC_CE:
    return HOST_OR_REFERENCE(cross_entropy, desc, in[DC_INPUT], in[DC_TARGET],
                             in[DC_WEIGHT], in[DC_GRAD_OUTPUT], out[DC_LOSS],
                             out[DC_GRAD]);
  case DC_NLL:
    return HOST_OR_REFERENCE(nll_loss, desc, in[DC_INPUT], in[DC_TARGET],
                             in[DC_WEIGHT], in[DC_GRAD_OUTPUT], out[DC_LOSS],
                             out[DC_GRAD]);
  case DC_PW:
    return HOST_OR_REFERENCE(pointwise, desc, in[DC_INPUT], in[DC_TARGET],
                             in[DC_WEIGHT], in[DC_POS_WEIGHT],
                             in[DC_GRAD_OUTPUT], out[DC_LOSS], out[DC_GRAD]);
  case DC_SOFTMAX:
    return HOST_OR_REFERENCE(softmax, desc, in[DC_INPUT], out[DC_GRAD]);
  default:
    return HOST_OR_REFERENCE(linear_cross_entropy, desc, in[0], in[1], in[2],
                             in[3], in[4], in[5], out[6], out[7], out[8],
                             out[9]);
  }
}

static clloss_status device_call(clloss_context *ctx, cl_command_queue q,
                                 const dc_call *c, const clloss_buffer *b,
                                 cl_event *ev) {
  switch (c->kind) {
  case DC_CE:
    return clloss_cross_entropy(ctx, q, &c->d.ce, b[DC_INPUT], b[DC_TARGET],
                                b[DC_WEIGHT], b[DC_GRAD_OUTPUT], b[DC_LOSS],
                                b[DC_GRAD], 0, NULL, ev);
  case DC_NLL:
    return clloss_nll_loss(ctx, q, &c->d.nll, b[DC_INPUT], b[DC_TARGET],
                           b[DC_WEIGHT], b[DC_GRAD_OUTPUT], b[DC_LOSS],
                           b[DC_GRAD], 0, NULL, ev);
  case DC_PW:
    return clloss_pointwise(ctx, q, &c->d.pw, b[DC_INPUT], b[DC_TARGET],
                            b[DC_WEIGHT], b[DC_POS_WEIGHT], b[DC_GRAD_OUTPUT],
                            b[DC_LOSS], b[DC_GRAD], 0, NULL, ev);
  case DC_SOFTMAX:
    return clloss_softmax(ctx, q, &c->d.softmax, b[DC_INPUT], b[DC_GRAD], 0,
                          NULL, ev);
  default:
    return clloss_linear_cross_entropy(ctx, q, &c->d.linear, b[0], b[1], b[2],
                                       b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                                       0, NULL, ev);
  }
}

/* Buffer b's image: `off` elements of the pre-offset pattern, its values
 * (an output's: 0x5B bytes unless it starts from given values), a canary;
 * *bytes its size. */
static unsigned char *image_of(const dc_call *c, int b, size_t off,
                               size_t *bytes) {
  const size_t es = esize(c->type[b]), n = c->n[b];
  *bytes = (off + n + TU_CANARY) * es;
  unsigned char *image = dc_alloc(*bytes);
  memset(image, c->output[b] ? PRE_OUTPUT : PRE_INPUT, off * es);
  if (c->host[b])
    memcpy(image + off * es, c->host[b], n * es);
  else
    memset(image + off * es, FILL_OUTPUT, n * es);
  tu_canary_fill(image + (off + n) * es, es);
  return image;
}

/* The values of an output (of image `back` at `off`), malloc'd. */
static void *values_of(const dc_call *c, int b, const unsigned char *back,
                       size_t off) {
  const size_t es = esize(c->type[b]);
  void *v = dc_alloc(c->n[b] * es);
  if (c->n[b])
    memcpy(v, back + off * es, c->n[b] * es);
  return v;
}

/* One check of a buffer after a call, printed and asserted; 1 if it
 * failed. */
static size_t intact(int ok, const dc_call *c, const char *name,
                     const char *what) {
  CU_ASSERT(ok);
  if (!ok)
    printf("\n  %s: %s %s", c->label, name, what);
  return !ok;
}

static void result_outputs(const dc_call *c, dc_result *r) {
  r->loss_count = c->n[DC_LOSS], r->grad_count = c->n[DC_GRAD];
  if (c->kind != DC_LINEAR)
    r->loss = r->out[DC_LOSS], r->grad = r->out[DC_GRAD];
}

dc_result dc_run(clloss_context *ctx, cl_command_queue q, const dc_call *c,
                 const dc_opts *o) {
  o = opts(o);
  dc_result r;
  memset(&r, 0, sizeof r);
  cl_mem parent[DC_MAXBUF] = {0};
  unsigned char *image[DC_MAXBUF] = {0};
  size_t total[DC_MAXBUF] = {0};
  clloss_buffer buf[DC_MAXBUF];
  memset(buf, 0, sizeof buf);
  const int alias = o->in_place && c->given[DC_GRAD];
  for (int b = 0; b < DC_MAXBUF; b++) {
    if (!c->given[b] || (b == DC_GRAD && alias))
      continue;
    const size_t es = esize(c->type[b]), off = o->off[b];
    image[b] = image_of(c, b, off, &total[b]);
    parent[b] = tu_buffer(ctx, total[b], image[b]);
    buf[b].mem = parent[b], buf[b].offset = off;
    if (o->held[b] && o->held[b] < c->n[b]) {
      cl_buffer_region region = {0, (off + o->held[b]) * es};
      cl_int err;
      buf[b].mem =
          clCreateSubBuffer(parent[b], CL_MEM_READ_WRITE,
                            CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
      CU_ASSERT_EQUAL_FATAL(err, CL_SUCCESS);
    }
  }
  if (alias)
    buf[DC_GRAD] = buf[DC_INPUT];

  cl_event ev = NULL;
  r.status = device_call(ctx, q, c, buf, &ev);
  /* A success returns an event of the queue it was given and leaves no
   * sentence about a failure (clloss.h); a failure says why and returns
   * no event. */
  const char *detail = clloss_context_error_detail(ctx);
  if (r.status == CLLOSS_SUCCESS) {
    cl_command_queue eq = NULL;
    CU_ASSERT_PTR_NOT_NULL(ev);
    if (ev)
      clGetEventInfo(ev, CL_EVENT_COMMAND_QUEUE, sizeof eq, &eq, NULL);
    CU_ASSERT_PTR_EQUAL(eq, q);
    CU_ASSERT_EQUAL(*detail, '\0');
  } else {
    CU_ASSERT_PTR_NULL(ev);
    CU_ASSERT_NOT_EQUAL(*detail, '\0');
  }
  if (ev) {
    CU_ASSERT_EQUAL(clWaitForEvents(1, &ev), CL_SUCCESS);
    clReleaseEvent(ev);
  }
  CU_ASSERT_EQUAL(clFinish(q), CL_SUCCESS);

  for (int b = 0; b < DC_MAXBUF; b++) {
    if (!image[b])
      continue;
    const size_t es = esize(c->type[b]), off = o->off[b];
    const int in_place = b == DC_INPUT && alias;
    const char *name = in_place ? "input (in place)" : c->names[b];
    unsigned char *back = dc_alloc(total[b]);
    CU_ASSERT_EQUAL(clEnqueueReadBuffer(q, parent[b], CL_TRUE, 0, total[b],
                                        back, 0, NULL, NULL),
                    CL_SUCCESS);
    if (r.status != CLLOSS_SUCCESS || !(c->output[b] || in_place)) {
      /* A failed call touches nothing; inputs are never written. */
      r.problems +=
          intact(memcmp(back, image[b], total[b]) == 0, c, name,
                 r.status == CLLOSS_SUCCESS ? "buffer modified (an input)"
                                            : "buffer modified (failed call)");
    } else {
      r.problems += intact(memcmp(back, image[b], off * es) == 0, c, name,
                           "written before its offset");
      r.problems += intact(tu_canary_intact(back + (off + c->n[b]) * es, es), c,
                           name, "canary overwritten");
      r.out[in_place ? DC_GRAD : b] = values_of(c, b, back, off);
    }
    free(back);
    if (buf[b].mem != parent[b])
      clReleaseMemObject(buf[b].mem);
    clReleaseMemObject(parent[b]);
    free(image[b]);
  }
  result_outputs(c, &r);
  return r;
}

void dc_result_free(dc_result *r) {
  for (int b = 0; b < DC_MAXBUF; b++)
    free(r->out[b]);
  memset(r->out, 0, sizeof r->out);
  r->loss = r->grad = NULL;
}

dc_result dc_run_host(clloss_context *ctx, const dc_call *c) {
  dc_result r;
  memset(&r, 0, sizeof r);
  const void *in[DC_MAXBUF] = {0};
  void *out[DC_MAXBUF] = {0};
  size_t bytes;
  for (int b = 0; b < DC_MAXBUF; b++) {
    if (!c->output[b])
      in[b] = c->host[b];
    else if (c->given[b])
      out[b] = image_of(c, b, 0, &bytes);
  }
  r.status = dc_host_call(ctx, c->kind, &c->d, in, out);
  for (int b = 0; b < DC_MAXBUF; b++) {
    if (!out[b])
      continue;
    const size_t es = esize(c->type[b]);
    r.problems +=
        intact(tu_canary_intact((unsigned char *)out[b] + c->n[b] * es, es), c,
               c->names[b],
               ctx ? "canary overwritten (host call)"
                   : "canary overwritten (reference)");
    r.out[b] = out[b];
  }
  result_outputs(c, &r);
  return r;
}

/* ---- a check against the reference ---- */
static size_t compare(const dc_call *c, const dc_result *ref,
                      const dc_result *r, const dc_tol *tol, const char *how,
                      int in_place) {
  size_t bad = r->problems;
  char what[256];
  if (c->given[DC_LOSS] && r->loss) {
    double *e = dc_to_double(c->type[DC_LOSS], ref->loss, c->n[DC_LOSS]);
    snprintf(what, sizeof what, "%s [%s] loss", c->label, how);
    bad += dc_compare(what, c->type[DC_LOSS], r->loss, e, c->n[DC_LOSS],
                      tol->loss_atol, tol->loss_rtol);
    free(e);
  }
  if (c->given[DC_GRAD] && r->grad) {
    /* The padding between rows is never written, but in place, where
     * it gets zeros (CLLOSS_PADDING_AUTO: the input's rows are all
     * there, so every row's padding). */
    dc_problem lay = dc_problem_make(c->kind, c->rows, c->classes, c->ld);
    lay.input_type = c->in_type;
    snprintf(what, sizeof what, "%s [%s] grad", c->label, how);
    size_t pad_bad =
        dc_check_padding(what, &lay, r->grad, in_place ? c->rows : 0, NULL);
    CU_ASSERT_EQUAL(pad_bad, 0);
    double *e = rows_of(&lay, ref->grad), *g = rows_of(&lay, r->grad);
    bad += pad_bad + compare_scaled(what, CLLOSS_FLOAT64, g, e,
                                    c->rows * c->classes, tol->grad_atol,
                                    tol->grad_rtol, c->grad_scale);
    free(e);
    free(g);
  }
  return bad;
}

static size_t same_bits(const dc_call *c, const dc_result *a,
                        const dc_result *b, const char *how) {
  size_t bad = 0;
  if (a->loss && b->loss &&
      memcmp(a->loss, b->loss, c->n[DC_LOSS] * esize(c->type[DC_LOSS]))) {
    printf("\n  %s [%s]: loss differs between two identical calls", c->label,
           how);
    bad++;
  }
  if (a->grad && b->grad &&
      memcmp(a->grad, b->grad, c->n[DC_GRAD] * esize(c->type[DC_GRAD]))) {
    printf("\n  %s [%s]: gradient differs between two identical calls",
           c->label, how);
    bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  return bad;
}

/* A failed call is printed and asserted; else compared. */
static size_t judge(clloss_context *ctx, const dc_call *c, const dc_result *ref,
                    const dc_result *r, const dc_tol *tol, const char *how,
                    int in_place) {
  if (r->status == CLLOSS_SUCCESS)
    return compare(c, ref, r, tol, how, in_place);
  printf("\n  %s [%s]: %s (%s)", c->label, how, clloss_status_name(r->status),
         clloss_context_error_detail(ctx));
  CU_ASSERT_EQUAL(r->status, CLLOSS_SUCCESS);
  return 1;
}

static size_t check(size_t dev, const dc_call *c, const dc_opts *o) {
  clloss_context *ctx = tu_context(dev);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  dc_tol tol = o->tol ? *o->tol : dc_default_tol(c->in_type);
  dc_result ref = dc_run_host(NULL, c);
  if (ref.status != CLLOSS_SUCCESS) {
    printf("\n  %s: the reference failed: %s", c->label,
           clloss_status_name(ref.status));
    CU_FAIL("reference failed");
    dc_result_free(&ref);
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
    dc_result r = dc_run(ctx, q, c, o);
    bad += judge(ctx, c, &ref, &r, &tol, how, o->in_place);
    if (r.status == CLLOSS_SUCCESS && o->determinism) {
      /* auto may switch a shape class's variant once, on its third call
       * (clloss.h): compare two calls that ran the same variant. */
      char ran[16];
      snprintf(ran, sizeof ran, "%s", clloss_context_last_variant(ctx));
      dc_result r2 = dc_run(ctx, q, c, o);
      CU_ASSERT_EQUAL(r2.status, CLLOSS_SUCCESS);
      if (strcmp(ran, clloss_context_last_variant(ctx)) != 0) {
        dc_result_free(&r);
        r = r2;
        snprintf(ran, sizeof ran, "%s", clloss_context_last_variant(ctx));
        r2 = dc_run(ctx, q, c, o);
        CU_ASSERT_EQUAL(r2.status, CLLOSS_SUCCESS);
        CU_ASSERT_STRING_EQUAL(ran, clloss_context_last_variant(ctx));
      }
      bad += same_bits(c, &r, &r2, how);
      dc_result_free(&r2);
    }
    dc_result_free(&r);
  }
  if (o->all_variants)
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
  clReleaseCommandQueue(q);
  if (o->host && !o->in_place) {
    char how[160];
    snprintf(how, sizeof how, "%.100s, host call", name);
    dc_result r = dc_run_host(ctx, c);
    bad += judge(ctx, c, &ref, &r, &tol, how, 0);
    dc_result_free(&r);
  }
  dc_result_free(&ref);
  return bad;
}

/* ---- the case entry points ---- */
typedef void (*build_fn)(dc_call *c, const void *k, const dc_opts *o);

static size_t check_with(build_fn build, size_t dev, const void *k,
                         const dc_opts *o) {
  dc_call c;
  build(&c, k, opts(o));
  size_t bad = check(dev, &c, opts(o));
  dc_call_free(&c);
  return bad;
}

static size_t check_all(build_fn build, const void *k, const dc_opts *o) {
  size_t bad = 0;
  for (size_t i = 0; i < tu_device_count(); i++)
    bad += check_with(build, i, k, o);
  return bad;
}

static dc_result run_with(build_fn build, clloss_context *ctx,
                          cl_command_queue q, const void *k, const dc_opts *o) {
  dc_call c;
  build(&c, k, opts(o));
  dc_result r = q ? dc_run(ctx, q, &c, o) : dc_run_host(ctx, &c);
  dc_call_free(&c);
  return r;
}

size_t dc_check_ce(size_t dev, const dc_ce_case *c, const dc_opts *o) {
  return check_with(call_ce, dev, c, o);
}
size_t dc_check_nll(size_t dev, const dc_nll_case *c, const dc_opts *o) {
  return check_with(call_nll, dev, c, o);
}
size_t dc_check_pw(size_t dev, const dc_pw_case *c, const dc_opts *o) {
  return check_with(call_pw, dev, c, o);
}
size_t dc_check_ce_all(const dc_ce_case *c, const dc_opts *o) {
  return check_all(call_ce, c, o);
}
size_t dc_check_nll_all(const dc_nll_case *c, const dc_opts *o) {
  return check_all(call_nll, c, o);
}
size_t dc_check_pw_all(const dc_pw_case *c, const dc_opts *o) {
  return check_all(call_pw, c, o);
}
dc_result dc_run_ce(clloss_context *ctx, cl_command_queue q,
                    const dc_ce_case *c, const dc_opts *o) {
  return run_with(call_ce, ctx, q, c, o);
}
dc_result dc_run_nll(clloss_context *ctx, cl_command_queue q,
                     const dc_nll_case *c, const dc_opts *o) {
  return run_with(call_nll, ctx, q, c, o);
}
dc_result dc_run_pw(clloss_context *ctx, cl_command_queue q,
                    const dc_pw_case *c, const dc_opts *o) {
  return run_with(call_pw, ctx, q, c, o);
}

void dc_run_cases(dc_kind kind, const dc_row_case *cases, size_t count) {
  static const clloss_reduction reds[] = {
      CLLOSS_REDUCTION_MEAN, CLLOSS_REDUCTION_SUM, CLLOSS_REDUCTION_NONE};
  for (size_t i = 0; i < count; i++) {
    const dc_row_case *k = &cases[i];
    for (int r = 0; r < (k->each_reduction ? 3 : 1); r++) {
      clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
      d.rows = k->rows, d.classes = k->classes, d.row_stride = k->row_stride;
      d.reduction = k->each_reduction ? reds[r] : k->reduction;
      d.input_type = k->input_type;
      d.target_type = k->g.probability   ? k->input_type
                      : k->int32_targets ? CLLOSS_INT32
                                         : CLLOSS_INT64;
      if (k->ignore_index)
        d.ignore_index = k->ignore_index;
      d.label_smoothing = k->label_smoothing;
      d.z_loss = k->z_loss, d.softcap = k->softcap;
      d.normalizer = k->normalizer;
      dc_gen g = k->g;
      g.salt += (uint64_t)r;
      dc_data v;
      size_t problems;
      if (kind == DC_NLL) {
        clloss_nll_loss_desc n = CLLOSS_NLL_LOSS_DESC_INIT;
        n.rows = d.rows, n.classes = d.classes, n.row_stride = d.row_stride;
        n.input_type = d.input_type, n.target_type = d.target_type;
        n.reduction = d.reduction, n.ignore_index = d.ignore_index;
        const dc_nll_case c = dc_make_nll(&v, &n, &g);
        problems = dc_check_nll_all(&c, &k->o);
      } else {
        const dc_ce_case c = dc_make_ce(&v, &d, &g);
        problems = dc_check_ce_all(&c, &k->o);
      }
      if (problems)
        printf("\n  case %s%s%s: %zu problems", k->name,
               k->each_reduction ? ", reduction " : "",
               k->each_reduction ? clloss_reduction_name(d.reduction) : "",
               problems);
      dc_data_free(&v);
    }
  }
}

cl_command_queue dc_queue(clloss_context *ctx) {
  cl_int err;
  cl_command_queue q = clCreateCommandQueue(
      clloss_context_cl_context(ctx), clloss_context_device(ctx), 0, &err);
  CU_ASSERT_PTR_NOT_NULL(q);
  return q;
}

/* ---- a row operation with the options of a training loop ---- */
dc_problem dc_problem_make(dc_kind kind, size_t rows, size_t classes,
                           size_t ld) {
  dc_problem p;
  memset(&p, 0, sizeof p);
  p.kind = kind, p.rows = rows, p.classes = classes, p.ld = ld ? ld : classes;
  p.input_type = CLLOSS_FLOAT32, p.target_type = CLLOSS_INT64;
  p.reduction = CLLOSS_REDUCTION_MEAN;
  p.grad_scale = 1.0f;
  p.padding = CLLOSS_PADDING_AUTO;
  return p;
}

const char *dc_problem_name(const dc_problem *p) {
  return p->kind == DC_CE ? "ce" : p->kind == DC_NLL ? "nll" : "softmax";
}

size_t dc_loss_count(const dc_problem *p) {
  if (p->kind == DC_SOFTMAX)
    return 0;
  return p->reduction == CLLOSS_REDUCTION_NONE ? p->rows : 1;
}

size_t dc_input_count(const dc_problem *p) {
  return p->rows * p->ld;
}

size_t dc_elem(const dc_problem *p) {
  return clloss_dtype_size(p->input_type);
}

size_t dc_loss_elem(const dc_problem *p) {
  return clloss_dtype_size(clloss_loss_dtype(p->input_type));
}

/* The fields of cross_entropy's and nll_loss's descriptors. */
#define ROW_FIELDS(d, p)                                                       \
  ((d).rows = (p)->rows, (d).classes = (p)->classes, (d).row_stride = (p)->ld, \
   (d).input_type = (p)->input_type, (d).target_type = (p)->target_type,       \
   (d).reduction = (p)->reduction, (d).grad_scale = (p)->grad_scale,           \
   (d).accumulate = (p)->accumulate, (d).padding = (p)->padding)

dc_desc dc_problem_desc(const dc_problem *p) {
  dc_desc u;
  memset(&u, 0, sizeof u);
  if (p->kind == DC_CE) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    ROW_FIELDS(d, p);
    u.ce = d;
  } else if (p->kind == DC_NLL) {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    ROW_FIELDS(d, p);
    u.nll = d;
  } else {
    clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
    d.rows = p->rows, d.classes = p->classes, d.row_stride = p->ld;
    d.input_type = p->input_type, d.padding = p->padding;
    u.softmax = d;
  }
  return u;
}

dc_stored dc_problem_data(const dc_problem *p, float pad, uint64_t salt) {
  const dc_gen g = {.salt = salt, .lo = -4.0f, .hi = 0.0f};
  dc_data v;
  dc_make(&v, &g, p->rows, p->classes, p->ld, 0, 0);
  for (size_t i = 0; i < dc_input_count(p); i++)
    if (i % p->ld >= p->classes)
      v.x[i] = pad;
  dc_stored d = {
      dc_from_float(p->input_type, v.x, dc_input_count(p)),
      p->kind == DC_SOFTMAX ? NULL : dc_targets(p->target_type, v.t, p->rows)};
  dc_data_free(&v);
  return d;
}

void dc_stored_free(dc_stored *d) {
  free(d->x);
  free(d->t);
  d->x = d->t = NULL;
}

dc_result dc_run_problem(clloss_context *ctx, const dc_problem *p,
                         const dc_stored *d, const dc_opts *o) {
  dc_opts q = *opts(o);
  q.off[DC_GRAD] = q.off[DC_INPUT];
  dc_call c;
  call_init(&c, p->kind, p->input_type, p->rows, p->classes, p->ld);
  c.d = dc_problem_desc(p);
  c.type[DC_INPUT] = p->input_type, c.n[DC_INPUT] = dc_input_count(p);
  c.given[DC_INPUT] = 1, c.host[DC_INPUT] = d->x;
  if (p->kind != DC_SOFTMAX) {
    c.type[DC_TARGET] = p->target_type, c.n[DC_TARGET] = p->rows;
    c.given[DC_TARGET] = 1, c.host[DC_TARGET] = d->t;
  }
  call_outputs(&c, dc_loss_count(p), &q);
  snprintf(c.label, sizeof c.label, "%s N=%zu C=%zu ld=%zu %s",
           dc_problem_name(p), p->rows, p->classes, p->ld,
           clloss_dtype_name(p->input_type));
  return dc_run(ctx, clloss_context_queue(ctx), &c, &q);
}

clloss_status dc_host(clloss_context *ctx, const dc_problem *p,
                      const void *input, const void *target, void *loss,
                      void *grad) {
  const dc_desc d = dc_problem_desc(p);
  const void *in[DC_MAXBUF] = {input, target};
  void *out[DC_MAXBUF] = {0};
  out[DC_LOSS] = loss, out[DC_GRAD] = grad;
  return dc_host_call(ctx, p->kind, &d, in, out);
}
