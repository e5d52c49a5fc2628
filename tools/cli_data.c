/* cli_data.c - random problems for `selftest` and `demo`: splitmix64
 * numbers, typed arrays, and inputs in each loss's natural domain. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_data.h"

typedef struct cli_rng {
  uint64_t state;
} cli_rng;

static cli_rng cli_rng_make(uint64_t seed, uint64_t salt) {
  cli_rng r = {seed ^ (salt * 0x9e3779b97f4a7c15ull)};
  return r;
}

static uint64_t cli_rng_next(cli_rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double cli_uniform(cli_rng *r, double lo, double hi) {
  double u = (double)(cli_rng_next(r) >> 11) / 9007199254740992.0;
  return lo + (hi - lo) * u;
}

static int cli_array_alloc(npy_array *a, clloss_dtype dtype, int ndim,
                           const size_t *shape) {
  memset(a, 0, sizeof *a);
  a->dtype = dtype;
  a->ndim = ndim;
  a->count = 1;
  for (int i = 0; i < ndim; i++) {
    a->shape[i] = shape[i];
    a->count *= shape[i];
  }
  a->data = calloc(a->count ? a->count : 1, npy_dtype_size(dtype));
  return a->data != NULL;
}

/* Weights in [0.25, hi) over x's last dimension or (full) its shape. */
static int gen_weight(npy_array *w, clloss_dtype dtype, const npy_array *x,
                      int full, double hi, cli_rng *r) {
  clloss_dtype wt = dtype == CLLOSS_FLOAT64 ? dtype : CLLOSS_FLOAT32;
  size_t last = x->ndim ? x->shape[x->ndim - 1] : 1;
  if (!(full ? cli_array_alloc(w, wt, x->ndim, x->shape)
             : cli_array_alloc(w, wt, 1, &last)))
    return 0;
  for (size_t i = 0; i < w->count; i++)
    cli_store(w->data, wt, i, cli_uniform(r, 0.25, hi));
  return 1;
}

/* Class losses: logits (cross_entropy) or log-probabilities (nll_loss),
 * and indices or probability rows. */
static int gen_class(npy_array *g, const cli_loss_info *loss,
                     const cli_options *opt, clloss_dtype dtype, size_t rows,
                     size_t cols, unsigned flags, cli_rng *r) {
  int one = (flags & CLI_GEN_ONE_ROW) != 0;
  size_t shape[2] = {rows, cols};
  if (one)
    shape[0] = cols, rows = 1;
  if (!cli_array_alloc(&g[IN_X], dtype, one ? 1 : 2, shape))
    return 0;
  int nll = loss->family == CLI_NLL_LOSS;
  for (size_t i = 0; i < g[IN_X].count; i++)
    cli_store(g[IN_X].data, dtype, i,
              nll ? cli_uniform(r, -6.0, 0.0) : cli_uniform(r, -4.0, 4.0));
  if (flags & CLI_GEN_PROBS) {
    if (!cli_array_alloc(&g[IN_T], dtype, one ? 1 : 2, shape))
      return 0;
    for (size_t i = 0; i < rows; i++) {
      double sum = 0.0, *p = malloc(cols * sizeof *p);
      if (!p)
        return 0;
      for (size_t c = 0; c < cols; c++)
        sum += p[c] = cli_uniform(r, 0.0, 1.0);
      for (size_t c = 0; c < cols; c++)
        cli_store(g[IN_T].data, dtype, i * cols + c, p[c] / sum);
      free(p);
    }
  } else {
    clloss_dtype tt = flags & CLI_GEN_INT32 ? CLLOSS_INT32 : CLLOSS_INT64;
    if (!cli_array_alloc(&g[IN_T], tt, one ? 0 : 1, shape))
      return 0;
    for (size_t i = 0; i < rows; i++) {
      double t = (double)(cli_rng_next(r) % cols);
      if ((flags & CLI_GEN_IGNORE) && i % 7 == 3)
        t = (double)opt->ignore_index;
      cli_store(g[IN_T].data, tt, i, t);
    }
  }
  return !(flags & CLI_GEN_WEIGHT) ||
         gen_weight(&g[IN_W], dtype, &g[IN_X], 0, 2.0, r);
}

/* Element-wise losses: values where each loss is interesting. */
static double pw_input(const cli_loss_info *loss, cli_rng *r) {
  switch (loss->pointwise) {
  case CLLOSS_BCE_WITH_LOGITS:
    return cli_uniform(r, -6.0, 6.0);
  case CLLOSS_KL_DIV:
    return log(cli_uniform(r, 0.02, 1.0));
  default:
    return cli_uniform(r, -2.0, 2.0);
  }
}

static double pw_target(const cli_loss_info *loss, const cli_options *opt,
                        double x, size_t i, cli_rng *r) {
  switch (loss->pointwise) {
  case CLLOSS_BCE_WITH_LOGITS:
    return cli_uniform(r, 0.0, 1.0);
  case CLLOSS_KL_DIV:
    if (opt->log_target)
      return log(cli_uniform(r, 0.02, 1.0));
    return i % 9 == 4 ? 0.0 : cli_uniform(r, 0.0, 1.0); /* y = 0 terms */
  default:
    /* Some exact ties: d = 0 exercises sign(0) = 0. */
    return i % 11 == 5 ? x : cli_uniform(r, -2.0, 2.0);
  }
}

static int gen_pointwise(npy_array *g, const cli_loss_info *loss,
                         const cli_options *opt, clloss_dtype dtype,
                         size_t rows, size_t cols, unsigned flags, cli_rng *r) {
  size_t shape[3] = {2, rows, cols};
  int three = (flags & CLI_GEN_3D) != 0;
  const size_t *s = three ? shape : shape + 1;
  int nd = three ? 3 : 2;
  if (!cli_array_alloc(&g[IN_X], dtype, nd, s) ||
      !cli_array_alloc(&g[IN_T], dtype, nd, s))
    return 0;
  for (size_t i = 0; i < g[IN_X].count; i++) {
    double x = pw_input(loss, r);
    cli_store(g[IN_X].data, dtype, i, x);
    /* Read x back so that a tie survives rounding to float16. */
    x = cli_load(g[IN_X].data, dtype, i);
    cli_store(g[IN_T].data, dtype, i, pw_target(loss, opt, x, i, r));
  }
  if (flags & (CLI_GEN_WEIGHT | CLI_GEN_WEIGHT_FULL)) {
    if (!gen_weight(&g[IN_W], dtype, &g[IN_X],
                    (flags & CLI_GEN_WEIGHT_FULL) != 0, 3.0, r))
      return 0;
  }
  if (flags & CLI_GEN_POS_WEIGHT) {
    if (!gen_weight(&g[IN_PW], dtype, &g[IN_X], 0, 3.0, r))
      return 0;
  }
  return 1;
}

/* Random data suited to j's loss and options into j->in (and j->have):
 * logits, log-probabilities, probabilities, targets in range. rows x cols
 * is [N, C] for the class losses and the element-wise shape otherwise.
 * Returns 0 when out of memory. */
static int cli_generate(cli_job *j, clloss_dtype dtype, size_t rows,
                        size_t cols, unsigned flags, cli_rng *rng) {
  const cli_loss_info *loss = j->cmd->loss;
  j->have = 1u << IN_X | 1u << IN_T |
            (flags & (CLI_GEN_WEIGHT | CLI_GEN_WEIGHT_FULL) ? 1u << IN_W : 0) |
            (flags & CLI_GEN_POS_WEIGHT ? 1u << IN_PW : 0);
  return loss->family == CLI_POINTWISE
             ? gen_pointwise(j->in, loss, &j->a.opt, dtype, rows, cols, flags,
                             rng)
             : gen_class(j->in, loss, &j->a.opt, dtype, rows, cols, flags, rng);
}

/* The case's options through `run`'s parser, and the weights the data
 * holds; the loss and the gradient asked for (never written). */
static void case_args(const cli_case *c, run_args *a) {
  char text[128], *argv[8];
  int argc = 0, matched;
  a->opt = cli_default_options();
  snprintf(text, sizeof text, "%s", c->options);
  for (char *t = strtok(text, " "); t && argc < 8; t = strtok(NULL, " "))
    argv[argc++] = t;
  for (int i = 0; i < argc;)
    if (cli_run_option(argc, argv, &i, a, &matched) != CLI_OK || !matched)
      i++; /* the tables are right: run's own tests cover the parser */
  if (c->gen & (CLI_GEN_WEIGHT | CLI_GEN_WEIGHT_FULL))
    a->opt.given |= CLI_OPT_WEIGHT;
  if (c->gen & CLI_GEN_POS_WEIGHT)
    a->opt.given |= CLI_OPT_POS_WEIGHT;
  a->out[OUT_LOSS] = a->out[OUT_GRAD] = "-";
}

int cli_trial_run(cli_trial *t, const cli_case *c, uint64_t seed, uint64_t salt,
                  clloss_context *ctx, int runs) {
  cli_job *j = &t->j;
  cli_rng rng = cli_rng_make(seed, salt);
  memset(t, 0, sizeof *t);
  j->cmd = cli_find_command(c->loss);
  case_args(c, &j->a);
  if (!cli_generate(j, c->dtype, c->rows, c->cols, c->gen, &rng))
    return t->stage = CLI_TRIAL_MEMORY;
  cli_capture(1);
  t->rc = j->cmd->check(j);
  if (t->rc == CLI_OK)
    t->rc = cli_job_alloc(j);
  snprintf(t->msg, sizeof t->msg, "%s", cli_captured());
  cli_capture(0);
  if (t->rc != CLI_OK)
    return t->stage = CLI_TRIAL_CHECK;
  if (c->dtype == CLLOSS_FLOAT64 && !clloss_context_device_info(ctx)->has_fp64)
    return t->stage = CLI_TRIAL_NO_FP64;
  double t0 = cli_now_ms();
  t->s = j->cmd->reference(j);
  t->ref_ms = cli_now_ms() - t0;
  if (t->s != CLLOSS_SUCCESS)
    return t->stage = CLI_TRIAL_REFERENCE;
  for (int k = 0; k < 2; k++) {
    t->ref[k] = j->out[k].data;
    j->out[k].data = NULL;
  }
  if (cli_job_alloc(j) != CLI_OK)
    return t->stage = CLI_TRIAL_MEMORY;
  j->ctx = ctx;
  for (int k = 0; k < runs && t->s == CLLOSS_SUCCESS; k++) {
    t0 = cli_now_ms();
    t->s = j->cmd->run(j);
    t->dev_ms = cli_now_ms() - t0;
  }
  j->ctx = NULL; /* the caller's */
  return t->stage = t->s == CLLOSS_SUCCESS ? CLI_TRIAL_OK : CLI_TRIAL_DEVICE;
}

void cli_trial_free(cli_trial *t) {
  free(t->ref[0]);
  free(t->ref[1]);
  cli_job_free(&t->j);
}

/* 1 when a and b are both NaN or the same infinity; -1 when exactly one is
 * not finite or they are different infinities; 0 when both are finite. */
static int special(double a, double b) {
  if (isnan(a) || isnan(b))
    return isnan(a) && isnan(b) ? 1 : -1;
  if (isinf(a) || isinf(b))
    return a == b ? 1 : -1;
  return 0;
}

double cli_max_error(const void *got, const void *ref, clloss_dtype t, size_t n,
                     int relative) {
  double scale = 0.0, worst = 0.0;
  for (size_t i = 0; relative && i < n; i++) {
    double r = fabs(cli_load(ref, t, i));
    if (isfinite(r) && r > scale)
      scale = r;
  }
  double floor = 0.01 * scale;
  for (size_t i = 0; i < n; i++) {
    double g = cli_load(got, t, i), r = cli_load(ref, t, i);
    int sp = special(g, r);
    if (sp)
      worst = sp < 0 ? INFINITY : worst;
    else if (g != r) {
      double den = !relative ? 1.0 : fabs(r) > floor ? fabs(r) : floor;
      double e = den > 0.0 ? fabs(g - r) / den : INFINITY;
      worst = e > worst ? e : worst;
    }
  }
  return worst;
}

int cli_test_parse(const char *cmd, const char *help, int full, int argc,
                   char **argv, cli_test_args *a) {
  for (int i = 1; i < argc;) {
    const char *v;
    long long seed;
    if (cli_is_help(argv[i])) {
      fputs(help, stdout);
      return -1;
    } else if (cli_option(argc, argv, &i, "--device", &v)) {
      if (!v || !*v)
        return cli_error(cmd, CLI_USAGE, "--device needs a value");
      a->device = v;
    } else if (full && cli_option(argc, argv, &i, "--loss", &v)) {
      if (!v || !cli_find_loss(v))
        return cli_error(cmd, CLI_USAGE, "unknown loss '%s'", v ? v : "");
      a->only = v;
    } else if (full && cli_option(argc, argv, &i, "--seed", &v)) {
      if (!cli_parse_int64(v, &seed))
        return cli_error(cmd, CLI_USAGE, "--seed needs an integer");
      a->seed = (uint64_t)seed;
    } else if (full && cli_flag(argv[i], "--all")) {
      a->all = 1;
      i++;
    } else {
      return cli_error(cmd, CLI_USAGE,
                       "unknown argument '%s' (see clloss %s --help)", argv[i],
                       cmd);
    }
  }
  return CLI_OK;
}
