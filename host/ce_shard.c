/* ce_shard.c - TEMPORARY implementation of ce_shard.h: the logits, targets,
 * weights and records of a call are read back to the host, the statistics,
 * losses and gradients computed there in double, and the results written
 * back, all with blocking transfers on the call's queue (so each call
 * synchronises with the host). Correct, for the vocabulary-block method
 * to run end to end until device kernels take its place. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ce_shard.h"
#include "reference/reference.h"

#define REC CLLOSS__SHARD_RECORD

/* The wait list of the next transfer: the launch's last command, else the
 * caller's wait list. */
static cl_uint waits(const clloss__launch *l, const cl_event **list) {
  if (l->last) {
    *list = &l->last;
    return 1;
  }
  *list = l->num_events ? l->wait_list : NULL;
  return l->num_events;
}

/* Blocking copy of a rows x cols block of a row-major array (ld apart)
 * between b and host memory; a write becomes the launch's last command. */
static clloss_status transfer(clloss__launch *l, int write, clloss_buffer b,
                              size_t rows, size_t cols, size_t ld, size_t size,
                              void *host) {
  if (rows == 0)
    return CLLOSS_SUCCESS;
  const cl_event *list;
  cl_uint n = waits(l, &list);
  const size_t origin[3] = {b.offset * size, 0, 0}, zero[3] = {0, 0, 0};
  const size_t region[3] = {cols * size, rows, 1};
  cl_event ev = NULL;
  cl_int err =
      write ? clEnqueueWriteBufferRect(l->queue, b.mem, CL_TRUE, origin, zero,
                                       region, ld * size, 0, cols * size, 0,
                                       host, n, list, &ev)
            : clEnqueueReadBufferRect(l->queue, b.mem, CL_TRUE, origin, zero,
                                      region, ld * size, 0, cols * size, 0,
                                      host, n, list, NULL);
  if (err != CL_SUCCESS)
    return clloss__fail(l->ctx, clloss__cl_status(err),
                        "ce_shard: a copy between device and host failed");
  if (write) {
    if (l->last)
      clReleaseEvent(l->last);
    l->last = ev;
  }
  return CLLOSS_SUCCESS;
}

/* What a shard call reads, on the host. */
typedef struct shard_host {
  const clloss__shard *s;
  double *x;    /* [rows, cb] logits after the cap */
  double *dcap; /* [rows, cb] derivative of the cap */
  double *w;    /* [cb] class weights of the block */
  double *y;    /* [rows, cb] probability targets, or NULL */
  int64_t *t;   /* [rows] class indices, or NULL */
  void *raw;    /* scratch for the transfers */
} shard_host;

/* At least one element, so that malloc of an empty block is not NULL. */
static size_t nz(size_t n) {
  return n ? n : 1;
}

static void host_free(shard_host *h) {
  free(h->x);
  free(h->dcap);
  free(h->w);
  free(h->y);
  free(h->t);
  free(h->raw);
}

static int is_prob(const clloss__shard *s) {
  return s->desc->target_type != CLLOSS_INT32 &&
         s->desc->target_type != CLLOSS_INT64;
}

/* Reads the block's targets (and, with `logits`, its logits and weights). */
static clloss_status host_load(clloss__launch *l, const clloss__shard *s,
                               int logits, shard_host *h) {
  const size_t R = s->rows, cb = s->cb, C = s->desc->classes;
  const size_t rs = clloss_dtype_size(s->logits_type);
  const size_t ts = clloss_dtype_size(s->desc->target_type);
  memset(h, 0, sizeof *h);
  h->s = s;
  h->raw = malloc(nz(R) * nz(cb) * (rs > ts ? rs : ts) + cb * rs);
  h->w = malloc(nz(cb) * sizeof(double));
  if (logits) {
    h->x = malloc(nz(R * cb) * sizeof(double));
    h->dcap = malloc(nz(R * cb) * sizeof(double));
  }
  if (is_prob(s))
    h->y = malloc(nz(R * cb) * sizeof(double));
  else
    h->t = malloc(nz(R) * sizeof(int64_t));
  if (!h->raw || !h->w || (logits && (!h->x || !h->dcap)) || (!h->y && !h->t)) {
    host_free(h);
    return clloss__fail(l->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "ce_shard: no host memory for a block");
  }
  clloss_status st;
  if (is_prob(s)) {
    clloss_buffer at = {s->target.mem, s->target.offset + s->c0};
    if ((st = transfer(l, 0, at, R, cb, C, ts, h->raw)) != CLLOSS_SUCCESS)
      return host_free(h), st;
    for (size_t i = 0; i < R * cb; i++)
      h->y[i] = clloss__ref_load(h->raw, s->desc->target_type, i);
  } else {
    if ((st = transfer(l, 0, s->target, 1, R, R, ts, h->raw)) != CLLOSS_SUCCESS)
      return host_free(h), st;
    for (size_t i = 0; i < R; i++)
      h->t[i] = clloss__ref_target(h->raw, s->desc->target_type, i);
  }
  for (size_t j = 0; j < cb; j++)
    h->w[j] = 1.0;
  if (s->weight.mem) {
    clloss_buffer at = {s->weight.mem, s->weight.offset + s->c0};
    if ((st = transfer(l, 0, at, 1, cb, cb, rs, h->raw)) != CLLOSS_SUCCESS)
      return host_free(h), st;
    for (size_t j = 0; j < cb; j++)
      h->w[j] = clloss__ref_load(h->raw, s->logits_type, j);
  }
  if (!logits)
    return CLLOSS_SUCCESS;
  if ((st = transfer(l, 0, s->logits, R, cb, s->ld, rs, h->raw)) !=
      CLLOSS_SUCCESS)
    return host_free(h), st;
  const double cap = s->desc->softcap;
  for (size_t i = 0; i < R * cb; i++) {
    double v = clloss__ref_load(h->raw, s->logits_type, i);
    h->dcap[i] = 1.0;
    if (cap > 0.0) {
      double th = tanh(v / cap);
      v = cap * th;
      h->dcap[i] = 1.0 - th * th;
    }
    h->x[i] = v;
  }
  return CLLOSS_SUCCESS;
}

/* -1: ignored row, -2: bad target, else 0 (or the index for index
 * targets). */
static int64_t row_target(const shard_host *h, size_t r) {
  if (!h->t)
    return 0;
  int64_t t = h->t[r];
  if (t == h->s->desc->ignore_index)
    return -1;
  if (t < 0 || (uint64_t)t >= h->s->desc->classes)
    return -2;
  return t;
}

static void row_partial(const shard_host *h, size_t r, double *o) {
  const clloss__shard *s = h->s;
  const double e = s->desc->label_smoothing, C = (double)s->desc->classes;
  const double *x = h->x + r * s->cb;
  memset(o, 0, REC * sizeof *o);
  o[0] = -INFINITY;
  int64_t t = row_target(h, r);
  if (h->t && t < 0)
    return;
  for (size_t j = 0; j < s->cb; j++)
    if (x[j] > o[0])
      o[0] = x[j];
  for (size_t j = 0; j < s->cb; j++) {
    double w = h->w[j];
    o[1] += o[0] == -INFINITY ? 0.0 : exp(x[j] - o[0]);
    o[5] += w;
    if (h->y) {
      double yp = (1.0 - e) * h->y[r * s->cb + j] + e / C;
      o[2] += w * yp * x[j];
      o[3] += w * yp;
    } else {
      if ((size_t)t == s->c0 + j) {
        o[2] = x[j];
        o[3] = w;
      }
      if (e > 0.0)
        o[4] += w * x[j];
    }
  }
}

void clloss__shard_combine_record(double *a, const double *b) {
  double m = fmax(a[0], b[0]);
  double sa =
      a[0] == -INFINITY ? (isnan(a[1]) ? a[1] : 0.0) : a[1] * exp(a[0] - m);
  double sb =
      b[0] == -INFINITY ? (isnan(b[1]) ? b[1] : 0.0) : b[1] * exp(b[0] - m);
  a[0] = m;
  a[1] = sa + sb;
  for (int k = 2; k < REC; k++)
    a[k] += b[k];
}

/* Records between the device's real type and double. */
static clloss_status read_records(clloss__launch *l, clloss_dtype rt,
                                  clloss_buffer b, size_t rows, double *out) {
  size_t rs = clloss_dtype_size(rt);
  void *raw = malloc(rows * REC * rs + 1);
  if (!raw)
    return clloss__fail(l->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "ce_shard: no host memory for records");
  clloss_status st = transfer(l, 0, b, 1, rows * REC, rows * REC, rs, raw);
  for (size_t i = 0; st == CLLOSS_SUCCESS && i < rows * REC; i++)
    out[i] = clloss__ref_load(raw, rt, i);
  free(raw);
  return st;
}

static clloss_status write_reals(clloss__launch *l, clloss_dtype rt,
                                 clloss_buffer b, size_t rows, size_t cols,
                                 size_t ld, const double *in) {
  size_t rs = clloss_dtype_size(rt);
  void *raw = malloc(rows * cols * rs + 1);
  if (!raw)
    return clloss__fail(l->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "ce_shard: no host memory for results");
  for (size_t i = 0; i < rows * cols; i++)
    clloss__ref_store(raw, rt, i, in[i]);
  clloss_status st = transfer(l, 1, b, rows, cols, ld, rs, raw);
  free(raw);
  return st;
}

clloss_status clloss__shard_partial(clloss__launch *l, const clloss__shard *s,
                                    clloss_buffer records) {
  shard_host h;
  CLLOSS__TRY(host_load(l, s, 1, &h));
  double *rec = malloc(nz(s->rows) * REC * sizeof *rec);
  clloss_status st = CLLOSS_OUT_OF_HOST_MEMORY;
  if (rec) {
    for (size_t r = 0; r < s->rows; r++)
      row_partial(&h, r, rec + r * REC);
    st = write_reals(l, s->logits_type, records, s->rows, REC, REC, rec);
  }
  free(rec);
  host_free(&h);
  return st;
}

clloss_status clloss__shard_combine(clloss__launch *l, clloss_dtype real_type,
                                    size_t rows, clloss_buffer acc,
                                    clloss_buffer other) {
  double *a = malloc(nz(rows) * 2 * REC * sizeof *a);
  if (!a)
    return clloss__fail(l->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "ce_shard: no host memory for records");
  double *b = a + rows * REC;
  clloss_status st = read_records(l, real_type, acc, rows, a);
  if (st == CLLOSS_SUCCESS)
    st = read_records(l, real_type, other, rows, b);
  for (size_t r = 0; st == CLLOSS_SUCCESS && r < rows; r++)
    clloss__shard_combine_record(a + r * REC, b + r * REC);
  if (st == CLLOSS_SUCCESS)
    st = write_reals(l, real_type, acc, rows, REC, REC, a);
  free(a);
  return st;
}

/* lse of a merged record. */
static double record_lse(const double *o) {
  return o[0] + log(o[1]);
}

static double row_loss(const shard_host *h, size_t r, const double *o) {
  const clloss_cross_entropy_desc *d = h->s->desc;
  const double e = d->label_smoothing, z = d->z_loss;
  int64_t t = row_target(h, r);
  if (h->t && t == -1)
    return 0.0;
  if (h->t && t == -2)
    return NAN;
  double lse = record_lse(o), loss;
  if (h->y) {
    loss = o[3] * lse - o[2];
  } else {
    loss = (1.0 - e) * o[3] * (lse - o[2]);
    if (e > 0.0)
      loss += e / (double)d->classes * (o[5] * lse - o[4]);
  }
  if (z > 0.0)
    loss += z * lse * lse;
  return loss;
}

/* host_load, then the merged records into *rec (R records, then R more
 * doubles for the caller); everything is freed on failure. */
static clloss_status load_merged(clloss__launch *l, const clloss__shard *s,
                                 int logits, clloss_buffer records,
                                 shard_host *h, double **rec) {
  CLLOSS__TRY(host_load(l, s, logits, h));
  *rec = malloc(nz(s->rows) * (REC + 1) * sizeof **rec);
  clloss_status st =
      *rec ? read_records(l, s->logits_type, records, s->rows, *rec)
           : clloss__fail(l->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                          "ce_shard: no host memory for records");
  if (st != CLLOSS_SUCCESS) {
    free(*rec);
    host_free(h);
  }
  return st;
}

clloss_status clloss__shard_loss(clloss__launch *l, const clloss__shard *s,
                                 clloss_buffer records, clloss_buffer loss) {
  shard_host h;
  double *rec;
  CLLOSS__TRY(load_merged(l, s, 0, records, &h, &rec));
  const size_t R = s->rows;
  double *out = rec + R * REC;
  for (size_t r = 0; r < R; r++)
    out[r] = row_loss(&h, r, rec + r * REC);
  clloss_status st = write_reals(l, s->logits_type, loss, 1, R, R, out);
  free(rec);
  host_free(&h);
  return st;
}

/* The gradient of row r's block, in place of h->x. Each term is multiplied
 * by s on its own, as the reference does, so that s = inf gives NaN. */
static void row_grad(const shard_host *h, size_t r, const double *o, double s) {
  const clloss__shard *sh = h->s;
  const clloss_cross_entropy_desc *d = sh->desc;
  const double e = d->label_smoothing, z = d->z_loss;
  const double eoc = e / (double)d->classes;
  double *x = h->x + r * sh->cb;
  const double *dcap = h->dcap + r * sh->cb;
  int64_t t = row_target(h, r);
  double lse = record_lse(o);
  for (size_t j = 0; j < sh->cb; j++) {
    double p = exp(x[j] - lse), g;
    if (h->t && t == -1) {
      g = 0.0;
    } else if (h->t && t == -2) {
      g = NAN;
    } else if (h->y) {
      double yp = (1.0 - e) * h->y[r * sh->cb + j] + eoc;
      g = s * (o[3] * p - h->w[j] * yp);
    } else {
      g = s * ((1.0 - e) * o[3] * (p - ((size_t)t == sh->c0 + j ? 1.0 : 0.0)));
      if (e > 0.0)
        g += s * (eoc * (o[5] * p - h->w[j]));
    }
    if (z > 0.0 && !(h->t && t == -1))
      g += s * (2.0 * z * lse * p);
    x[j] = g * dcap[j];
  }
}

clloss_status clloss__shard_grad(clloss__launch *l, const clloss__shard *s,
                                 clloss_buffer records, clloss_buffer scale,
                                 int per_row) {
  shard_host h;
  double *rec;
  CLLOSS__TRY(load_merged(l, s, 1, records, &h, &rec));
  const size_t R = s->rows;
  double *sc = rec + R * REC;
  clloss_status st = CLLOSS_SUCCESS;
  for (size_t r = 0; r < R; r++)
    sc[r] = 1.0;
  if (scale.mem) {
    /* The scale is a real of the logits' type. */
    size_t rs = clloss_dtype_size(s->logits_type), n = per_row ? R : 1;
    void *raw = malloc(n * rs + 1);
    st = raw ? transfer(l, 0, scale, 1, n, n, rs, raw)
             : CLLOSS_OUT_OF_HOST_MEMORY;
    for (size_t r = 0; st == CLLOSS_SUCCESS && r < R; r++)
      sc[r] = clloss__ref_load(raw, s->logits_type, per_row ? r : 0);
    free(raw);
  }
  for (size_t r = 0; st == CLLOSS_SUCCESS && r < R; r++)
    row_grad(&h, r, rec + r * REC, sc[r]);
  if (st == CLLOSS_SUCCESS)
    st = write_reals(l, s->logits_type, s->logits, R, s->cb, s->ld, h.x);
  free(rec);
  host_free(&h);
  return st;
}
