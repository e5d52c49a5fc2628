/* rowcall.c - one call of a row loss at any of the three levels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devcheck.h"
#include "rowcall.h"

rc_problem rc_default(rc_kind kind, size_t rows, size_t classes, size_t ld) {
  rc_problem p;
  memset(&p, 0, sizeof p);
  p.kind = kind, p.rows = rows, p.classes = classes, p.ld = ld ? ld : classes;
  p.input_type = CLLOSS_FLOAT32, p.target_type = CLLOSS_INT64;
  p.reduction = CLLOSS_REDUCTION_MEAN;
  p.grad_scale = 1.0f;
  p.padding = CLLOSS_PADDING_AUTO;
  return p;
}

const char *rc_name(const rc_problem *p) {
  return p->kind == RC_CE ? "ce" : p->kind == RC_NLL ? "nll" : "softmax";
}

/* The fields of cross_entropy's and nll_loss's descriptors. */
#define ROW_FIELDS(d, p)                                                       \
  ((d).rows = (p)->rows, (d).classes = (p)->classes, (d).row_stride = (p)->ld, \
   (d).input_type = (p)->input_type, (d).target_type = (p)->target_type,       \
   (d).reduction = (p)->reduction, (d).grad_scale = (p)->grad_scale,           \
   (d).accumulate = (p)->accumulate, (d).padding = (p)->padding)

rc_desc rc_make_desc(const rc_problem *p) {
  rc_desc u;
  memset(&u, 0, sizeof u);
  if (p->kind == RC_CE) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    ROW_FIELDS(d, p);
    u.ce = d;
  } else if (p->kind == RC_NLL) {
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

size_t rc_loss_count(const rc_problem *p) {
  if (p->kind == RC_SOFTMAX)
    return 0;
  return p->reduction == CLLOSS_REDUCTION_NONE ? p->rows : 1;
}

size_t rc_input_count(const rc_problem *p) {
  return p->rows * p->ld;
}

size_t rc_elem(const rc_problem *p) {
  return clloss_dtype_size(p->input_type);
}

size_t rc_loss_elem(const rc_problem *p) {
  return clloss_dtype_size(clloss_loss_dtype(p->input_type));
}

clloss_status rc_device(clloss_context *ctx, const rc_problem *p,
                        clloss_buffer input, clloss_buffer target,
                        clloss_buffer loss, clloss_buffer grad) {
  cl_command_queue q = clloss_context_queue(ctx);
  cl_event ev = NULL;
  const rc_desc d = rc_make_desc(p);
  clloss_status s;
  if (p->kind == RC_NLL)
    s = clloss_nll_loss(ctx, q, &d.nll, input, target, CLLOSS_BUFFER_NONE,
                        CLLOSS_BUFFER_NONE, loss, grad, 0, NULL, &ev);
  else if (p->kind == RC_CE)
    s = clloss_cross_entropy(ctx, q, &d.ce, input, target, CLLOSS_BUFFER_NONE,
                             CLLOSS_BUFFER_NONE, loss, grad, 0, NULL, &ev);
  else
    s = clloss_softmax(ctx, q, &d.softmax, input, grad, 0, NULL, &ev);
  CU_ASSERT_EQUAL(clFinish(q), CL_SUCCESS);
  if (ev)
    clReleaseEvent(ev);
  return s;
}

clloss_status rc_call(clloss_context *ctx, rc_kind kind, const void *desc,
                      const void *input, const void *target, void *loss,
                      void *grad) {
  switch (kind) {
  case RC_NLL:
    return ctx ? clloss_nll_loss_host(ctx, desc, input, target, NULL, NULL,
                                      loss, grad)
               : clloss_reference_nll_loss(desc, input, target, NULL, NULL,
                                           loss, grad);
  case RC_SOFTMAX:
    return ctx ? clloss_softmax_host(ctx, desc, input, grad)
               : clloss_reference_softmax(desc, input, grad);
  default:
    return ctx ? clloss_cross_entropy_host(ctx, desc, input, target, NULL, NULL,
                                           loss, grad)
               : clloss_reference_cross_entropy(desc, input, target, NULL, NULL,
                                                loss, grad);
  }
}

clloss_status rc_host(clloss_context *ctx, const rc_problem *p,
                      const void *input, const void *target, void *loss,
                      void *grad) {
  const rc_desc d = rc_make_desc(p);
  return rc_call(ctx, p->kind, &d, input, target, loss, grad);
}

clloss_status rc_reference(const rc_problem *p, const void *input,
                           const void *target, void *loss, void *grad) {
  const rc_desc d = rc_make_desc(p);
  return rc_call(NULL, p->kind, &d, input, target, loss, grad);
}

void *rc_filled(clloss_dtype type, size_t n, float v) {
  float *f = dc_alloc(n * sizeof *f);
  for (size_t i = 0; i < n; i++)
    f[i] = v;
  void *out = dc_from_float(type, f, n);
  free(f);
  return out;
}

rc_data rc_make(const rc_problem *p, float pad, uint64_t salt) {
  tu_rng r = tu_rng_make(salt);
  size_t n = rc_input_count(p);
  float *x = dc_alloc(n * sizeof *x);
  int64_t *t = dc_alloc(p->rows * sizeof *t);
  for (size_t i = 0; i < n; i++)
    x[i] = i % p->ld < p->classes ? tu_uniform(&r, -4.0f, 0.0f) : pad;
  for (size_t i = 0; i < p->rows; i++)
    t[i] = (int64_t)(tu_next(&r) % p->classes);
  rc_data d = {dc_from_float(p->input_type, x, n),
               p->kind == RC_SOFTMAX ? NULL
                                     : dc_targets(p->target_type, t, p->rows)};
  free(x);
  free(t);
  return d;
}

void rc_data_free(rc_data *d) {
  free(d->x);
  free(d->t);
  d->x = d->t = NULL;
}

/* ---- the device call with guarded buffers ---- */

/* A buffer of off + rows x ld + TU_CANARY elements: `data` at `off`, 0xC3
 * before it, a canary after; and the sub-buffer [0, off + elems) of it. */
typedef struct guarded {
  cl_mem parent, mem;
  unsigned char *image;
  size_t bytes;
} guarded;

static guarded guard(clloss_context *ctx, const rc_problem *p, const void *data,
                     size_t off, size_t elems) {
  const size_t es = rc_elem(p), n = rc_input_count(p);
  guarded g;
  g.bytes = (off + n + TU_CANARY) * es;
  g.image = dc_alloc(g.bytes);
  memset(g.image, 0xC3, off * es);
  if (data)
    memcpy(g.image + off * es, data, n * es);
  else
    memset(g.image + off * es, 0x5B, n * es);
  tu_canary_fill(g.image + (off + n) * es, es);
  g.parent = tu_buffer(ctx, g.bytes, g.image);
  g.mem = g.parent;
  if (elems && elems < n) {
    cl_buffer_region region = {0, (off + elems) * es};
    cl_int err;
    g.mem = clCreateSubBuffer(g.parent, CL_MEM_READ_WRITE,
                              CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
    CU_ASSERT_EQUAL_FATAL(err, CL_SUCCESS);
  }
  return g;
}

/* Reads the guarded buffer back: its rows x ld elements from `off` into a
 * new array; counts changes outside them (and any change at all when
 * `untouched`). */
static void *unguard(clloss_context *ctx, const rc_problem *p, guarded *g,
                     size_t off, int untouched, const char *name,
                     size_t *problems) {
  const size_t es = rc_elem(p), n = rc_input_count(p);
  unsigned char *back = dc_alloc(g->bytes);
  tu_read(ctx, g->parent, 0, g->bytes, back);
  if (memcmp(back, g->image, off * es) != 0 ||
      !tu_canary_intact(back + (off + n) * es, es) ||
      (untouched && memcmp(back, g->image, g->bytes) != 0)) {
    printf("\n  %s written %s", name,
           untouched ? "by a failed call" : "outside its rows");
    (*problems)++;
  }
  void *rows = dc_alloc(n * es);
  memcpy(rows, back + off * es, n * es);
  free(back);
  if (g->mem != g->parent)
    clReleaseMemObject(g->mem);
  clReleaseMemObject(g->parent);
  free(g->image);
  return rows;
}

void rc_device_run(clloss_context *ctx, const rc_problem *p, const rc_data *d,
                   rc_run *r) {
  const size_t lbytes = rc_loss_count(p) * rc_loss_elem(p);
  const size_t tbytes = p->rows * clloss_dtype_size(p->target_type);
  guarded x = guard(ctx, p, d->x, r->off, r->x_elems), g = {0};
  if (!r->in_place && !r->no_grad)
    g = guard(ctx, p, r->g_init, r->off, r->g_elems);
  unsigned char *loss0 = dc_alloc(lbytes);
  memset(loss0, 0x5B, lbytes);
  cl_mem t = tu_buffer(ctx, tbytes, d->t), loss = tu_buffer(ctx, lbytes, loss0);
  clloss_buffer grad = {r->in_place ? x.mem : g.mem, r->off};
  if (r->no_grad)
    grad = CLLOSS_BUFFER_NONE;
  r->status = rc_device(ctx, p, (clloss_buffer){x.mem, r->off},
                        CLLOSS_BUFFER(t), CLLOSS_BUFFER(loss), grad);
  const int failed = r->status != CLLOSS_SUCCESS;
  r->problems = 0;
  r->loss = dc_alloc(lbytes);
  tu_read(ctx, loss, 0, lbytes, r->loss);
  if (failed && memcmp(r->loss, loss0, lbytes) != 0) {
    printf("\n  loss written by a failed call");
    r->problems++;
  }
  r->x_after = unguard(ctx, p, &x, r->off, failed || !r->in_place, "input",
                       &r->problems);
  r->g_after =
      g.parent ? unguard(ctx, p, &g, r->off, failed, "grad_input", &r->problems)
               : NULL;
  CU_ASSERT_EQUAL(r->problems, 0);
  clReleaseMemObject(t);
  clReleaseMemObject(loss);
  free(loss0);
}

void rc_run_free(rc_run *r) {
  free(r->loss);
  free(r->x_after);
  free(r->g_after);
  r->loss = r->x_after = r->g_after = NULL;
}

const void *rc_run_grad(const rc_run *r) {
  return r->in_place ? r->x_after : r->g_after;
}

size_t rc_compare_rows(const char *what, const rc_problem *p, const void *got,
                       const void *want, double atol, double rtol) {
  size_t n = p->rows * p->classes, k = 0;
  double *g = dc_alloc(n * sizeof *g), *w = dc_alloc(n * sizeof *w);
  for (size_t i = 0; i < p->rows; i++)
    for (size_t j = 0; j < p->classes; j++, k++) {
      g[k] = dc_get(p->input_type, got, i * p->ld + j);
      w[k] = dc_get(p->input_type, want, i * p->ld + j);
    }
  size_t bad = tu_compare(what, g, CLLOSS_FLOAT64, w, n, atol, rtol);
  free(g);
  free(w);
  return bad;
}

size_t rc_check_padding(const char *what, const rc_problem *p, const void *got,
                        size_t zero_rows, const void *keep) {
  const size_t es = rc_elem(p);
  const unsigned char zero[8] = {0};
  size_t bad = 0;
  for (size_t i = 0; i < p->rows; i++)
    for (size_t j = p->classes; j < p->ld; j++) {
      size_t at = (i * p->ld + j) * es;
      const unsigned char *want =
          i < zero_rows ? zero : (const unsigned char *)keep + at;
      if (memcmp((const unsigned char *)got + at, want, es) == 0)
        continue;
      if (bad++ < 3)
        printf("\n  %s: padding (%zu, %zu) is %g, expected %s", what, i, j,
               dc_get(p->input_type, got, i * p->ld + j),
               i < zero_rows ? "+0" : "the value that was there");
    }
  return bad;
}
