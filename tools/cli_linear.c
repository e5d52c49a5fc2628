/* cli_linear.c - `clloss run linear_cross_entropy`: cross_entropy of
 * input W^T + b from .npy files, on a device (clloss_linear_cross_entropy_
 * host) or the CPU reference, with its loss and the gradients of the input,
 * W and b written as .npy files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mpi.h"
#include "cli_run.h"
#include "npy.h"

#define run_error(...) cli_error("run", CLI_DATA_ERROR, __VA_ARGS__)

enum { A_X, A_W, A_B, A_T, A_CW, A_COUNT };

typedef struct lin_problem {
  npy_array in[A_COUNT];
  void *class_weight; /* in the loss type, or NULL */
  clloss_linear_cross_entropy_desc d;
  int one_row;
} lin_problem;

static int is_float(clloss_dtype t) {
  return t == CLLOSS_FLOAT16 || t == CLLOSS_FLOAT32 || t == CLLOSS_FLOAT64;
}

static const char *shape_of(const npy_array *a, char *buf, size_t len) {
  npy_format_shape(a->ndim, a->shape, buf, len);
  return buf;
}

/* Shapes and dtypes: X [N, H] or [H]; W [V, H]; b [V]; targets [N] or ()
 * (indices) or X's leading shape plus V (probabilities, X's dtype). */
static int check_shapes(lin_problem *p, const run_args *a) {
  const npy_array *x = &p->in[A_X], *w = &p->in[A_W], *b = &p->in[A_B];
  const npy_array *t = &p->in[A_T];
  char s1[256], s2[256];
  if (!is_float(x->dtype) || (x->ndim != 1 && x->ndim != 2))
    return run_error("input must be a float array [N, H] or [H], not %s %s",
                     clloss_dtype_name(x->dtype), shape_of(x, s1, sizeof s1));
  p->one_row = x->ndim == 1;
  const size_t N = p->one_row ? 1 : x->shape[0], H = x->shape[x->ndim - 1];
  if (w->ndim != 2 || w->shape[1] != H || w->shape[0] == 0 || H == 0)
    return run_error("linear weight %s does not fit input %s: it needs shape "
                     "[V, %zu] with V, H >= 1",
                     shape_of(w, s2, sizeof s2), shape_of(x, s1, sizeof s1), H);
  const size_t V = w->shape[0];
  if (w->dtype != x->dtype || (a->linear_bias && b->dtype != x->dtype))
    return run_error("linear weight and bias must have the input's dtype %s",
                     clloss_dtype_name(x->dtype));
  if (a->linear_bias && (b->ndim != 1 || b->shape[0] != V))
    return run_error("linear bias %s must have shape (%zu,)",
                     shape_of(b, s1, sizeof s1), V);
  if (is_float(t->dtype)) {
    int ok = t->dtype == x->dtype && t->ndim == x->ndim &&
             t->shape[t->ndim - 1] == V && (p->one_row || t->shape[0] == N);
    if (!ok)
      return run_error("probability target %s %s must be %s of shape [N, V] "
                       "(or [V] for one row)",
                       clloss_dtype_name(t->dtype), shape_of(t, s1, sizeof s1),
                       clloss_dtype_name(x->dtype));
  } else if (t->dtype == CLLOSS_INT64 || t->dtype == CLLOSS_INT32) {
    if (p->one_row ? t->ndim != 0 : t->ndim != 1 || t->shape[0] != N)
      return run_error("target %s does not fit input %s: class indices need "
                       "shape %s",
                       shape_of(t, s2, sizeof s2), shape_of(x, s1, sizeof s1),
                       p->one_row ? "()" : "[N]");
  } else {
    return run_error("target: unsupported dtype %s",
                     clloss_dtype_name(t->dtype));
  }
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.ce.rows = N;
  d.ce.classes = V;
  d.hidden = H;
  d.ce.input_type = x->dtype;
  d.ce.target_type = t->dtype;
  d.chunk_rows = a->chunk_rows;
  d.vocab_block = a->vocab_block;
  p->d = d;
  return CLI_OK;
}

/* Options, targets and class weights, into p->d. */
static int check_options(lin_problem *p, const run_args *a) {
  /* cross_entropy's options, under this name in the messages. */
  cli_loss_info info = *cli_find_loss("cross_entropy");
  info.name = "linear_cross_entropy";
  char msg[512];
  if (cli_check_options(&info, &a->opt, msg, sizeof msg) != CLI_OK)
    return cli_error("run", CLI_USAGE, "%s", msg);
  const cli_options *o = &a->opt;
  clloss_cross_entropy_desc *ce_d = &p->d.ce;
  ce_d->reduction = o->reduction;
  ce_d->ignore_index = o->ignore_index;
  ce_d->label_smoothing = o->label_smoothing;
  ce_d->z_loss = o->z_loss;
  ce_d->softcap = o->softcap;
  ce_d->grad_scale = o->grad_scale;
  const npy_array *t = &p->in[A_T];
  if (!is_float(t->dtype) &&
      cli_check_targets(t, ce_d->classes, o->ignore_index, msg, sizeof msg) !=
          CLI_OK)
    return run_error("%s", msg);
  if (a->weight) {
    const npy_array *w = &p->in[A_CW];
    if (w->ndim != 1 || w->shape[0] != ce_d->classes)
      return run_error("weight must have shape (%zu,), one per class",
                       ce_d->classes);
    if (cli_convert_weight("weight", w, clloss_loss_dtype(ce_d->input_type),
                           &p->class_weight, msg, sizeof msg) != CLI_OK)
      return run_error("%s", msg);
  }
  return CLI_OK;
}

static void problem_free(lin_problem *p) {
  for (int k = 0; k < A_COUNT; k++)
    npy_free(&p->in[k]);
  free(p->class_weight);
}

/* The four outputs: buffers, and where and how they are written. */
typedef struct lin_outputs {
  void *data[4];
  const char *path[4];
  clloss_dtype type[4];
  int ndim[4];
  size_t shape[4][2], count[4];
} lin_outputs;

static int outputs_alloc(lin_outputs *o, const lin_problem *p,
                         const run_args *a) {
  const clloss_cross_entropy_desc *ce = &p->d.ce;
  const npy_array *x = &p->in[A_X], *w = &p->in[A_W];
  const int none = ce->reduction == CLLOSS_REDUCTION_NONE;
  memset(o, 0, sizeof *o);
  const char *paths[4] = {a->loss_out, a->grad_out, a->grad_weight_out,
                          a->grad_bias_out};
  memcpy(o->path, paths, sizeof paths);
  o->type[0] = clloss_loss_dtype(ce->input_type);
  o->type[1] = o->type[2] = o->type[3] = ce->input_type;
  o->ndim[0] = none && !p->one_row;
  o->shape[0][0] = ce->rows;
  o->count[0] = clloss_cross_entropy_loss_count(ce);
  o->ndim[1] = x->ndim;
  memcpy(o->shape[1], x->shape, (size_t)x->ndim * sizeof(size_t));
  o->count[1] = x->count;
  o->ndim[2] = 2;
  memcpy(o->shape[2], w->shape, 2 * sizeof(size_t));
  o->count[2] = w->count;
  o->ndim[3] = 1;
  o->shape[3][0] = ce->classes;
  o->count[3] = ce->classes;
  for (int k = 0; k < 4; k++) {
    /* The loss is always computed: the summary line shows it. */
    if (k > 0 && !o->path[k])
      continue;
    size_t bytes = o->count[k] * clloss_dtype_size(o->type[k]);
    if (!(o->data[k] = malloc(bytes ? bytes : 1)))
      return run_error("out of memory");
  }
  return CLI_OK;
}

static void outputs_free(lin_outputs *o) {
  for (int k = 0; k < 4; k++)
    free(o->data[k]);
}

/* All outputs appear together or none does. */
static int outputs_write(lin_outputs *o) {
  npy_staged st[4];
  char msg[512];
  int rc = CLI_OK, k;
  memset(st, 0, sizeof st);
  for (k = 0; k < 4; k++)
    st[k].fd = -1;
  for (k = 0; k < 4 && rc == CLI_OK; k++)
    if (o->path[k] && npy_stage(o->path[k], o->type[k], o->ndim[k], o->shape[k],
                                o->data[k], &st[k], msg, sizeof msg) != NPY_OK)
      rc = run_error("%s", msg);
  if (rc != CLI_OK) {
    for (k = 0; k < 4; k++)
      npy_discard(&st[k]);
  } else if (npy_commit_all(st, 4, msg, sizeof msg) != NPY_OK) {
    rc = run_error("%s", msg);
  }
  return rc;
}

/* --vocab-parallel: the outputs asked for, as cli_vp_agree's bits. */
static unsigned wanted(const run_args *a) {
  return (a->loss_out ? 1u : 0u) | (a->grad_out ? 2u : 0u) |
         (a->grad_weight_out ? 4u : 0u) | (a->grad_bias_out ? 8u : 0u);
}

static int compute(const run_args *a, lin_problem *p) {
  clloss_context *ctx = NULL;
  char where[320];
  lin_outputs o;
  memset(&o, 0, sizeof o);
  int rc = cli_run_open(a, &ctx, where, sizeof where);
  if (rc == CLI_OK)
    rc = outputs_alloc(&o, p, a);
  /* --vocab-parallel: every process ready, with the same outputs, or all
   * stop here. */
  if (a->vocab_parallel)
    rc = cli_vp_agree(rc, 1, wanted(a));
  if (rc == CLI_OK) {
    const void *b = a->linear_bias ? p->in[A_B].data : NULL;
    double t0 = cli_now_ms();
    int writer = 1; /* --vocab-parallel: process 0 only */
    const cli_linear_call vp = {
        ctx,       &p->d,           p->in[A_X].data, p->in[A_W].data,
        b,         p->in[A_T].data, p->class_weight, o.data[0],
        o.data[1], o.data[2],       o.data[3]};
    clloss_status s = a->vocab_parallel
                          ? cli_linear_vocab_parallel(&vp, &writer)
                      : ctx ? clloss_linear_cross_entropy_host(
                                  ctx, &p->d, p->in[A_X].data, p->in[A_W].data,
                                  b, p->in[A_T].data, p->class_weight, NULL,
                                  o.data[0], o.data[1], o.data[2], o.data[3])
                            : clloss_reference_linear_cross_entropy(
                                  &p->d, p->in[A_X].data, p->in[A_W].data, b,
                                  p->in[A_T].data, p->class_weight, NULL,
                                  o.data[0], o.data[1], o.data[2], o.data[3]);
    double ms = cli_now_ms() - t0;
    if (s != CLLOSS_SUCCESS) {
      const char *detail = ctx ? clloss_context_error_detail(ctx) : "";
      rc = run_error("linear_cross_entropy on %s failed: %s (%s)%s%s", where,
                     clloss_status_string(s), clloss_status_name(s),
                     *detail ? ": " : "", detail);
    } else if (writer && (rc = outputs_write(&o)) == CLI_OK && !a->quiet &&
               cli_summary_stream(o.path, 4)) {
      double sum = 0.0;
      for (size_t i = 0; i < o.count[0]; i++)
        sum += cli_load(o.data[0], o.type[0], i);
      fprintf(cli_summary_stream(o.path, 4),
              "linear_cross_entropy(%s, %s, N=%zu H=%zu V=%zu): loss%s %.9g "
              "on %s in %.3f ms\n",
              clloss_reduction_name(p->d.ce.reduction),
              clloss_dtype_name(p->d.ce.input_type), p->d.ce.rows, p->d.hidden,
              p->d.ce.classes, o.count[0] == 1 ? "" : " sum", sum, where, ms);
    }
    /* Every process learns how the call and process 0's writing went. */
    if (a->vocab_parallel)
      rc = cli_vp_agree(rc, s != CLLOSS_COLLECTIVE_FAILURE, 0);
  }
  outputs_free(&o);
  clloss_context_release(ctx);
  return rc;
}

static int run_linear(const run_args *a) {
  if (a->pos_weight)
    return cli_error("run", CLI_USAGE,
                     "--pos-weight does not apply to linear_cross_entropy");
  lin_problem p;
  memset(&p, 0, sizeof p);
  const char *paths[A_COUNT] = {a->input, a->linear_weight, a->linear_bias,
                                a->target, a->weight};
  char msg[512];
  int rc = CLI_OK;
  for (int k = 0; k < A_COUNT && rc == CLI_OK; k++)
    if (paths[k] && npy_read(paths[k], &p.in[k], msg, sizeof msg) != NPY_OK)
      rc = run_error("%s", msg);
  if (rc == CLI_OK)
    rc = check_shapes(&p, a);
  if (rc == CLI_OK)
    rc = check_options(&p, a);
  if (rc == CLI_OK)
    rc = compute(a, &p);
  else if (a->vocab_parallel)
    rc = cli_vp_agree(rc, 1, wanted(a)); /* compute's first agreement */
  problem_free(&p);
  return rc;
}

int cli_run_linear(const run_args *a) {
  if (!a->vocab_parallel)
    return run_linear(a);
  int rank, size;
  int rc = cli_mpi_begin("run", &rank, &size);
  if (rc != CLI_OK)
    return rc;
  cli_capture(1);
  rc = run_linear(a);
  cli_capture(0);
  cli_mpi_end();
  return rc;
}
