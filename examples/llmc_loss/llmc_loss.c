/* llmc_loss.c - llm.c's loss step on clloss in both training-loop
 * patterns, checked against the CPU reference and timed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmc_loss.h"

llmc_config llmc_default_config(void) {
  llmc_config c = {4, 64, 50257, 50304, 5, 1};
  return c;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* What one pattern left on the host: per-position losses and dlogits. */
typedef struct outputs {
  float *losses, *dlogits;
} outputs;

/* The example's OpenCL state: llm.c keeps its logits in one buffer; a
 * second holds them as they were, to start each timed run from. */
typedef struct run {
  clloss_context *ctx;
  cl_command_queue q;
  cl_mem pristine, logits, targets, losses;
  size_t logit_bytes, loss_bytes;
  FILE *out;
} run;

static int failed(const run *r, const char *what, int status) {
  fprintf(r->out, "llmc_loss: %s failed: %s (%s)\n", what,
          clloss_status_name(status), clloss_context_error_detail(r->ctx));
  return 2;
}

/* The logits as the forward pass left them (before the loss step). */
static int restore(const run *r) {
  cl_int e = clEnqueueCopyBuffer(r->q, r->pristine, r->logits, 0, 0,
                                 r->logit_bytes, 0, NULL, NULL);
  if (e == CL_SUCCESS)
    e = clFinish(r->q);
  return e == CL_SUCCESS ? 0 : failed(r, "restoring the logits", e);
}

static int read_back(const run *r, outputs *o) {
  cl_int e = clEnqueueReadBuffer(r->q, r->losses, CL_TRUE, 0, r->loss_bytes,
                                 o->losses, 0, NULL, NULL);
  if (e == CL_SUCCESS)
    e = clEnqueueReadBuffer(r->q, r->logits, CL_TRUE, 0, r->logit_bytes,
                            o->dlogits, 0, NULL, NULL);
  return e == CL_SUCCESS ? 0 : failed(r, "reading the results", e);
}

/* One cross_entropy call on the example's queue, waited for; its time in
 * *ms. `loss` and `grad` may each be CLLOSS_BUFFER_NONE, not both. */
static int step(const run *r, const clloss_cross_entropy_desc *d,
                clloss_buffer loss, clloss_buffer grad, const char *what,
                double *ms) {
  double t0 = now_ms();
  clloss_status s = clloss_cross_entropy(
      r->ctx, r->q, d, (clloss_buffer){r->logits, 0},
      (clloss_buffer){r->targets, 0}, CLLOSS_BUFFER_NONE /* weight */,
      CLLOSS_BUFFER_NONE /* grad_output: 1 */, loss, grad, 0, NULL, NULL);
  cl_int e = s == CLLOSS_SUCCESS ? clFinish(r->q) : CL_SUCCESS;
  *ms = now_ms() - t0;
  if (s != CLLOSS_SUCCESS)
    return failed(r, what, s);
  return e == CL_SUCCESS ? 0 : failed(r, what, e);
}

/* Pattern 1, llm.c's CUDA trainer: one fused call in the forward pass; the
 * per-position losses come out and the logits become dlogits in place. */
static int pattern_fused(const run *r, const clloss_cross_entropy_desc *d,
                         int repeat, double *ms, outputs *o) {
  const clloss_buffer losses = {r->losses, 0}, logits = {r->logits, 0};
  for (int i = 0; i < repeat; i++) {
    int rc = restore(r);
    if (!rc)
      rc = step(r, d, losses, logits, "the fused call", &ms[i]);
    if (rc)
      return rc;
  }
  return read_back(r, o);
}

/* Pattern 2: the loss only in the forward pass (one read of the logits,
 * nothing written but the losses), the gradient in the backward pass. */
static int pattern_split(const run *r, const clloss_cross_entropy_desc *d,
                         int repeat, double *fwd, double *bwd, outputs *o) {
  const clloss_buffer losses = {r->losses, 0}, logits = {r->logits, 0};
  for (int i = 0; i < repeat; i++) {
    int rc = restore(r);
    if (!rc)
      rc =
          step(r, d, losses, CLLOSS_BUFFER_NONE, "the loss-only call", &fwd[i]);
    /* ... the rest of the forward pass, zero_grad ... */
    if (!rc)
      rc = step(r, d, CLLOSS_BUFFER_NONE, logits, "the backward call", &bwd[i]);
    if (rc)
      return rc;
  }
  return read_back(r, o);
}

/* Compares a pattern's outputs with the reference's; updates res. */
static void check(const llmc_config *c, const outputs *o, const outputs *ref,
                  llmc_result *res, double *mean_loss) {
  const size_t bt = c->B * c->T;
  double sum = 0.0;
  for (size_t i = 0; i < bt; i++) {
    double e = fabs(o->losses[i] - ref->losses[i]) / fabs(ref->losses[i]);
    res->loss_err = e > res->loss_err || isnan(e) ? e : res->loss_err;
    sum += o->losses[i];
    for (size_t j = 0; j < c->Vp; j++) {
      const float g = o->dlogits[i * c->Vp + j];
      if (j >= c->V) {
        res->padding_zero &= g == 0.0f && !signbit(g);
        continue;
      }
      double e2 = fabs(g - ref->dlogits[i * c->Vp + j]) * (double)bt;
      res->grad_err = e2 > res->grad_err || isnan(e2) ? e2 : res->grad_err;
    }
  }
  *mean_loss = sum / (double)bt;
}

/* Host data: logits uniform in [-4, 4] in the V real columns and 0 in the
 * padding (what llm.c's zero rows of the padded wte give), int targets. */
static void fill(const llmc_config *c, float *logits, int *targets) {
  unsigned long long s = 0x9e3779b97f4a7c15ull * (c->seed + 1);
  for (size_t i = 0; i < c->B * c->T * c->Vp; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    float u = (float)(s >> 40) / 16777216.0f;
    logits[i] = i % c->Vp < c->V ? 8.0f * u - 4.0f : 0.0f;
  }
  for (size_t i = 0; i < c->B * c->T; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    targets[i] = (int)(s % c->V);
  }
}

static int run_patterns(run *r, const llmc_config *c, float *logits,
                        const int *targets, llmc_result *res) {
  const size_t bt = c->B * c->T;
  /* The layout, as llm.c has it: the one thing to get right. */
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = bt;                         /* B*T positions */
  d.classes = c->V;                    /* the real vocabulary */
  d.row_stride = c->Vp;                /* the padded one */
  d.target_type = CLLOSS_INT32;        /* llm.c's int targets */
  d.reduction = CLLOSS_REDUCTION_NONE; /* per-position losses */
  d.grad_scale = 1.0f / (float)bt;     /* dloss = 1/(B*T) per position */
  /* d.padding = CLLOSS_PADDING_AUTO: in place, columns [V, Vp) get 0 */

  outputs ref = {malloc(bt * sizeof(float)), malloc(r->logit_bytes)};
  outputs o[2] = {{malloc(bt * sizeof(float)), malloc(r->logit_bytes)},
                  {malloc(bt * sizeof(float)), malloc(r->logit_bytes)}};
  double *ms = malloc(3 * (size_t)c->repeat * sizeof *ms);
  int rc = 2;
  if (!ref.losses || !ref.dlogits || !o[0].losses || !o[0].dlogits ||
      !o[1].losses || !o[1].dlogits || !ms) {
    fprintf(r->out, "llmc_loss: out of host memory\n");
    goto done;
  }
  rc = pattern_fused(r, &d, c->repeat, ms, &o[0]);
  if (!rc)
    rc = pattern_split(r, &d, c->repeat, ms + c->repeat, ms + 2 * c->repeat,
                       &o[1]);
  if (rc)
    goto done;
  res->fused_ms = median(ms, c->repeat);
  res->forward_ms = median(ms + c->repeat, c->repeat);
  res->backward_ms = median(ms + 2 * c->repeat, c->repeat);

  /* The CPU reference (double accumulation) on the same layout, with the
   * padding zeroed as the in-place call does it. */
  clloss_cross_entropy_desc rd = d;
  rd.padding = CLLOSS_PADDING_ZERO;
  clloss_status s = clloss_reference_cross_entropy(
      &rd, logits, targets, NULL, NULL, ref.losses, ref.dlogits);
  if (s != CLLOSS_SUCCESS) {
    rc = failed(r, "the reference", s);
    goto done;
  }
  double ref_sum = 0.0;
  for (size_t i = 0; i < bt; i++)
    ref_sum += ref.losses[i];
  res->ref_mean_loss = ref_sum / (double)bt;
  res->padding_zero = 1;
  check(c, &o[0], &ref, res, &res->mean_loss[0]);
  check(c, &o[1], &ref, res, &res->mean_loss[1]);
  res->ok = res->loss_err <= 1e-5 && res->grad_err <= 1e-5 && res->padding_zero;
  rc = res->ok ? 0 : 1;
done:
  free(ms);
  for (int k = 0; k < 2; k++) {
    free(o[k].losses);
    free(o[k].dlogits);
  }
  free(ref.losses);
  free(ref.dlogits);
  return rc;
}

static void report(FILE *out, const llmc_config *c, const llmc_result *res) {
  fprintf(out,
          "1. fused call in the forward pass (logits -> dlogits in place): "
          "mean loss %.6f, %.3f ms\n",
          res->mean_loss[0], res->fused_ms);
  fprintf(out,
          "2. loss only in the forward pass:                              "
          "mean loss %.6f, %.3f ms\n"
          "   then the gradient in the backward pass (dlogits in place):  "
          "%.3f ms\n",
          res->mean_loss[1], res->forward_ms, res->backward_ms);
  fprintf(out,
          "   (each from the call until clFinish returns, median of %d runs)\n",
          c->repeat);
  fprintf(out,
          "CPU reference: mean loss %.6f; losses within %.1e (relative), "
          "dlogits within %.1e (of 1/(B*T)), padding [V, Vp) %s: %s\n",
          res->ref_mean_loss, res->loss_err, res->grad_err,
          res->padding_zero ? "zero" : "NOT ZERO", res->ok ? "ok" : "MISMATCH");
}

int llmc_run(clloss_context *ctx, const llmc_config *c, FILE *out,
             llmc_result *res) {
  memset(res, 0, sizeof *res);
  if (!c->B || !c->T || !c->V || c->Vp < c->V || c->repeat < 1) {
    fprintf(out, "llmc_loss: need B, T, V >= 1, Vp >= V, repeat >= 1\n");
    return 2;
  }
  const size_t bt = c->B * c->T, n = bt * c->Vp;
  run r = {
      ctx, NULL, NULL, NULL, NULL, NULL, n * sizeof(float), bt * sizeof(float),
      out};
  fprintf(out,
          "llm.c layout: B=%zu T=%zu (%zu rows), V=%zu classes, row stride "
          "Vp=%zu, int32 targets, grad_scale 1/%zu\n",
          c->B, c->T, bt, c->V, c->Vp, bt);
  float *logits = malloc(r.logit_bytes);
  int *targets = malloc(bt * sizeof *targets);
  int rc = 2;
  cl_int e = CL_SUCCESS;
  if (!logits || !targets) {
    fprintf(out, "llmc_loss: out of host memory\n");
    goto done;
  }
  fill(c, logits, targets);
  cl_context cl = clloss_context_cl_context(ctx);
  r.q = clCreateCommandQueue(cl, clloss_context_device(ctx), 0, &e);
  if (r.q)
    r.pristine = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                r.logit_bytes, logits, &e);
  if (r.pristine)
    r.logits = clCreateBuffer(cl, CL_MEM_READ_WRITE, r.logit_bytes, NULL, &e);
  if (r.logits)
    r.targets = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               bt * sizeof *targets, targets, &e);
  if (r.targets)
    r.losses = clCreateBuffer(cl, CL_MEM_READ_WRITE, r.loss_bytes, NULL, &e);
  if (!r.losses) {
    rc = failed(&r, "creating the queue and buffers", e);
    goto done;
  }
  fprintf(out, "device: %s\n", clloss_context_device_info(ctx)->name);
  rc = run_patterns(&r, c, logits, targets, res);
  if (rc < 2) {
    fprintf(out, "variant: %s\n", clloss_context_last_variant(ctx));
    report(out, c, res);
  }
done:
  if (r.losses)
    clReleaseMemObject(r.losses);
  if (r.targets)
    clReleaseMemObject(r.targets);
  if (r.logits)
    clReleaseMemObject(r.logits);
  if (r.pristine)
    clReleaseMemObject(r.pristine);
  if (r.q)
    clReleaseCommandQueue(r.q);
  free(logits);
  free(targets);
  return rc;
}
