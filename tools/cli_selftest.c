/* cli_selftest.c - `clloss selftest`: every loss and option on random data,
 * on each chosen device, against the CPU reference. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_data.h"
#include "cli_loss.h"

static const char *const selftest_help =
    "usage: clloss selftest [--device I | --all] [--loss NAME] [--seed S]\n"
    "\n"
    "Runs every loss and option on random data on each chosen device (the\n"
    "default one, device I, or all of them) and compares the loss and the\n"
    "gradient with the CPU reference. Prints one line per case: the largest\n"
    "relative error |dev - ref| / max(|ref|, 0.01 max|ref|) of the loss and\n"
    "of the gradient. --loss keeps the cases of one loss. Exit status: 0 when "
    "every case passes, 1 when any\n"
    "fails (or no device exists), 2 for bad usage.\n";

#define F32 CLLOSS_FLOAT32
#define F16 CLLOSS_FLOAT16
#define F64 CLLOSS_FLOAT64
#define MEAN CLLOSS_REDUCTION_MEAN
#define SUM CLLOSS_REDUCTION_SUM
#define NONE CLLOSS_REDUCTION_NONE
#define BATCHMEAN CLLOSS_REDUCTION_BATCHMEAN

typedef struct st_param {
  unsigned bit; /* CLI_OPT_*; 0 ends the list */
  double value;
} st_param;

typedef struct st_case {
  const char *loss;
  clloss_dtype dtype;
  size_t rows, cols;
  unsigned gen; /* CLI_GEN_* */
  clloss_reduction reduction;
  st_param params[3];
} st_case;

#define P(bit, v)                                                              \
  { CLI_OPT_##bit, v }

static const st_case cases[] = {
    {"cross_entropy", F32, 37, 1000, 0, MEAN, {{0, 0}}},
    {"cross_entropy", F32, 37, 1000, 0, SUM, {{0, 0}}},
    {"cross_entropy", F32, 37, 1000, 0, NONE, {{0, 0}}},
    {"cross_entropy", F32, 37, 1000, CLI_GEN_WEIGHT, MEAN, {{0, 0}}},
    {"cross_entropy", F32, 37, 1000, CLI_GEN_IGNORE, MEAN, {{0, 0}}},
    {"cross_entropy", F32, 37, 100, CLI_GEN_IGNORE, NONE, {P(IGNORE_INDEX, 3)}},
    {"cross_entropy", F32, 37, 1000, 0, MEAN, {P(LABEL_SMOOTHING, 0.1)}},
    {"cross_entropy",
     F32,
     37,
     1000,
     CLI_GEN_WEIGHT | CLI_GEN_IGNORE,
     SUM,
     {P(LABEL_SMOOTHING, 0.2)}},
    {"cross_entropy", F32, 37, 1000, CLI_GEN_IGNORE, MEAN, {P(Z_LOSS, 1e-3)}},
    {"cross_entropy", F32, 37, 1000, 0, MEAN, {P(SOFTCAP, 3.0)}},
    {"cross_entropy",
     F32,
     19,
     333,
     CLI_GEN_WEIGHT | CLI_GEN_IGNORE,
     NONE,
     {P(LABEL_SMOOTHING, 0.05), P(Z_LOSS, 1e-4), P(SOFTCAP, 2.5)}},
    {"cross_entropy", F32, 37, 1000, CLI_GEN_INT32, SUM, {{0, 0}}},
    {"cross_entropy", F32, 3, 32003, 0, MEAN, {{0, 0}}},
    {"cross_entropy", F32, 1, 77, CLI_GEN_ONE_ROW, NONE, {{0, 0}}},
    {"cross_entropy", F32, 37, 1000, CLI_GEN_PROBS, MEAN, {{0, 0}}},
    {"cross_entropy",
     F32,
     37,
     1000,
     CLI_GEN_PROBS | CLI_GEN_WEIGHT,
     NONE,
     {P(LABEL_SMOOTHING, 0.2)}},
    {"cross_entropy", F16, 37, 1000, 0, MEAN, {{0, 0}}},
    {"cross_entropy", F16, 37, 1000, CLI_GEN_PROBS, SUM, {{0, 0}}},
    {"cross_entropy", F64, 37, 1000, CLI_GEN_WEIGHT, MEAN, {{0, 0}}},
    {"cross_entropy", F64, 37, 1000, CLI_GEN_PROBS, NONE, {{0, 0}}},
    {"nll_loss", F32, 33, 17, 0, MEAN, {{0, 0}}},
    {"nll_loss", F32, 33, 17, 0, SUM, {{0, 0}}},
    {"nll_loss", F32, 33, 17, 0, NONE, {{0, 0}}},
    {"nll_loss", F32, 33, 17, CLI_GEN_WEIGHT | CLI_GEN_IGNORE, MEAN, {{0, 0}}},
    {"nll_loss",
     F32,
     33,
     17,
     CLI_GEN_INT32 | CLI_GEN_IGNORE,
     SUM,
     {P(IGNORE_INDEX, 0)}},
    {"nll_loss", F16, 33, 17, 0, MEAN, {{0, 0}}},
    {"nll_loss", F64, 33, 17, CLI_GEN_WEIGHT, NONE, {{0, 0}}},
    {"mse_loss", F32, 31, 67, 0, MEAN, {{0, 0}}},
    {"mse_loss", F32, 31, 67, 0, SUM, {{0, 0}}},
    {"mse_loss", F32, 5, 7, CLI_GEN_3D, NONE, {{0, 0}}},
    {"mse_loss", F16, 31, 67, 0, MEAN, {{0, 0}}},
    {"mse_loss", F64, 31, 67, 0, SUM, {{0, 0}}},
    {"l1_loss", F32, 31, 67, 0, MEAN, {{0, 0}}},
    {"l1_loss", F32, 31, 67, 0, NONE, {{0, 0}}},
    {"l1_loss", F16, 31, 67, 0, SUM, {{0, 0}}},
    {"huber_loss", F32, 31, 67, 0, MEAN, {{0, 0}}},
    {"huber_loss", F32, 31, 67, 0, NONE, {P(DELTA, 0.5)}},
    {"huber_loss", F64, 31, 67, 0, SUM, {P(DELTA, 1.5)}},
    {"smooth_l1_loss", F32, 31, 67, 0, MEAN, {{0, 0}}},
    {"smooth_l1_loss", F32, 31, 67, 0, NONE, {P(BETA, 0.5)}},
    {"smooth_l1_loss", F32, 31, 67, 0, SUM, {P(BETA, 0.0)}},
    {"binary_cross_entropy_with_logits", F32, 31, 67, 0, MEAN, {{0, 0}}},
    {"binary_cross_entropy_with_logits", F32, 31, 67, 0, NONE, {{0, 0}}},
    {"binary_cross_entropy_with_logits",
     F32,
     31,
     67,
     CLI_GEN_WEIGHT,
     SUM,
     {{0, 0}}},
    {"binary_cross_entropy_with_logits",
     F32,
     31,
     67,
     CLI_GEN_WEIGHT_FULL,
     MEAN,
     {{0, 0}}},
    {"binary_cross_entropy_with_logits",
     F32,
     31,
     67,
     CLI_GEN_POS_WEIGHT,
     MEAN,
     {{0, 0}}},
    {"binary_cross_entropy_with_logits",
     F32,
     5,
     7,
     CLI_GEN_3D | CLI_GEN_WEIGHT | CLI_GEN_POS_WEIGHT,
     NONE,
     {{0, 0}}},
    {"binary_cross_entropy_with_logits", F16, 31, 67, 0, MEAN, {{0, 0}}},
    {"kl_div", F32, 31, 67, 0, MEAN, {{0, 0}}},
    {"kl_div", F32, 31, 67, 0, BATCHMEAN, {{0, 0}}},
    {"kl_div", F32, 31, 67, 0, SUM, {{0, 0}}},
    {"kl_div", F32, 31, 67, 0, NONE, {{0, 0}}},
    {"kl_div", F32, 31, 67, 0, BATCHMEAN, {P(LOG_TARGET, 1)}},
    {"kl_div", F64, 31, 67, 0, BATCHMEAN, {{0, 0}}},
};

/* Pass thresholds on the relative error: float16 storage rounds the
 * gradient to 11 bits; float32 and float64 (float32 arithmetic at least on
 * the device) allow a few ulp of exp and log, summed over a row. */
static double tolerance(clloss_dtype t) {
  return t == CLLOSS_FLOAT16 ? 5e-3 : 1e-4;
}

static cli_options case_options(const st_case *c) {
  cli_options o = cli_default_options();
  o.reduction = c->reduction;
  if (c->reduction != MEAN)
    o.given |= CLI_OPT_REDUCTION;
  if (c->gen & (CLI_GEN_WEIGHT | CLI_GEN_WEIGHT_FULL))
    o.given |= CLI_OPT_WEIGHT;
  if (c->gen & CLI_GEN_POS_WEIGHT)
    o.given |= CLI_OPT_POS_WEIGHT;
  for (int k = 0; k < 3 && c->params[k].bit; k++) {
    const st_param *p = &c->params[k];
    float v = (float)p->value;
    o.given |= p->bit;
    switch (p->bit) {
    case CLI_OPT_IGNORE_INDEX:
      o.ignore_index = (int64_t)p->value;
      break;
    case CLI_OPT_LABEL_SMOOTHING:
      o.label_smoothing = v;
      break;
    case CLI_OPT_DELTA:
      o.delta = v;
      break;
    case CLI_OPT_BETA:
      o.beta = v;
      break;
    case CLI_OPT_Z_LOSS:
      o.z_loss = v;
      break;
    case CLI_OPT_SOFTCAP:
      o.softcap = v;
      break;
    case CLI_OPT_LOG_TARGET:
      o.log_target = 1;
      break;
    default:
      break;
    }
  }
  return o;
}

/* The options as `run` would take them, plus what the data holds. */
static void describe(const st_case *c, const cli_problem *p, char *buf,
                     size_t len) {
  cli_describe_options(p, buf, len);
  size_t used = strlen(buf);
  snprintf(buf + used, len - used, "%s%s%s%s",
           c->gen & CLI_GEN_PROBS ? " probs" : "",
           c->gen & CLI_GEN_INT32 ? " int32" : "",
           (c->gen & CLI_GEN_IGNORE) && !(p->opt.given & CLI_OPT_IGNORE_INDEX)
               ? " ignore=-100"
               : "",
           c->gen & CLI_GEN_WEIGHT_FULL ? "(full)" : "");
}

typedef struct st_counts {
  int passed, failed, skipped;
  int build_log_shown;
} st_counts;

/* One case on one device: 'pass', 'FAIL' or 'skip' and the errors. */
static void run_case(const st_case *c, clloss_context *ctx, uint64_t seed,
                     size_t index, st_counts *n) {
  const cli_loss_info *loss = cli_find_loss(c->loss);
  cli_options o = case_options(c);
  cli_rng rng = cli_rng_make(seed, index + 1);
  cli_generated g;
  char opts[160], shape[64], msg[512] = "";
  cli_problem p;
  void *dl = NULL, *rl = NULL, *dg = NULL, *rg = NULL;
  const char *verdict = "FAIL";
  double lerr = 0.0, gerr = 0.0;
  if (!cli_generate(&g, loss, &o, c->dtype, c->rows, c->cols, c->gen, &rng)) {
    snprintf(msg, sizeof msg, "out of memory");
    memset(&g, 0, sizeof g);
    memset(&p, 0, sizeof p);
    p.loss = loss;
    p.opt = o;
    goto report;
  }
  if (cli_problem_init(
          &p, loss, &o, &g.input, &g.target, g.has_weight ? &g.weight : NULL,
          g.has_pos_weight ? &g.pos_weight : NULL, msg, sizeof msg) != CLI_OK)
    goto report;
  size_t lb = p.loss_count * npy_dtype_size(p.loss_type);
  size_t gb = g.input.count * npy_dtype_size(c->dtype);
  dl = calloc(1, lb), rl = calloc(1, lb), dg = calloc(1, gb);
  rg = calloc(1, gb);
  if (!dl || !rl || !dg || !rg) {
    snprintf(msg, sizeof msg, "out of memory");
    goto report;
  }
  const clloss_device_info *info = clloss_context_device_info(ctx);
  if (c->dtype == CLLOSS_FLOAT64 && !info->has_fp64) {
    verdict = "skip";
    snprintf(msg, sizeof msg, "no fp64 on this device");
    goto report;
  }
  clloss_status s = cli_problem_run(&p, NULL, rl, rg);
  if (s != CLLOSS_SUCCESS) {
    snprintf(msg, sizeof msg, "reference: %s", clloss_status_name(s));
    goto report;
  }
  s = cli_problem_run(&p, ctx, dl, dg);
  if (s == CLLOSS_UNSUPPORTED) {
    verdict = "skip";
    snprintf(msg, sizeof msg, "%s", clloss_context_error_detail(ctx));
    goto report;
  }
  if (s != CLLOSS_SUCCESS) {
    snprintf(msg, sizeof msg, "%s: %s", clloss_status_name(s),
             clloss_context_error_detail(ctx));
    if (s == CLLOSS_BUILD_FAILURE && !n->build_log_shown) {
      n->build_log_shown = 1; /* once per device: the logs repeat */
      printf("build log:\n%s\n", clloss_context_build_log(ctx));
    }
    goto report;
  }
  lerr = cli_max_rel_error(dl, rl, p.loss_type, p.loss_count);
  gerr = cli_max_rel_error(dg, rg, c->dtype, g.input.count);
  verdict = lerr <= tolerance(c->dtype) && gerr <= tolerance(c->dtype) ? "pass"
                                                                       : "FAIL";
report:
  describe(c, &p, opts, sizeof opts);
  npy_format_shape(g.input.ndim, g.input.shape, shape, sizeof shape);
  if (strcmp(verdict, "pass") == 0 || (strcmp(verdict, "FAIL") == 0 && !*msg))
    printf("%-32s %-7s %-11s %9.2e %9.2e  %-6s %s\n", c->loss,
           clloss_dtype_name(c->dtype), shape, lerr, gerr, verdict, opts);
  else
    printf("%-32s %-7s %-11s %9s %9s  %-6s %s: %s\n", c->loss,
           clloss_dtype_name(c->dtype), shape, "-", "-", verdict, opts, msg);
  fflush(stdout); /* a crash in a driver must not hide earlier lines */
  if (verdict[0] == 'p')
    n->passed++;
  else if (verdict[0] == 's')
    n->skipped++;
  else
    n->failed++;
  free(dl);
  free(rl);
  free(dg);
  free(rg);
  cli_problem_free(&p);
  cli_generated_free(&g);
}

static int test_device(size_t index, const char *only, uint64_t seed,
                       st_counts *total) {
  clloss_context *ctx;
  size_t got;
  char sel[32];
  snprintf(sel, sizeof sel, "%zu", index);
  if (cli_open_device("selftest", sel, &ctx, &got) != CLI_OK)
    return CLI_DATA_ERROR;
  const clloss_device_info *info = clloss_context_device_info(ctx);
  printf("device %zu: %s (%s), seed %" PRIu64 "\n", got, info->name,
         info->platform_name, seed);
  printf("%-32s %-7s %-11s %9s %9s  %-6s %s\n", "loss", "dtype", "shape",
         "loss err", "grad err", "result", "options");
  st_counts n = {0, 0, 0, 0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (!only || strcmp(only, cases[i].loss) == 0)
      run_case(&cases[i], ctx, seed, i, &n);
  printf("device %zu: %d passed, %d failed, %d skipped\n\n", got, n.passed,
         n.failed, n.skipped);
  fflush(stdout);
  total->passed += n.passed;
  total->failed += n.failed;
  total->skipped += n.skipped;
  clloss_context_release(ctx);
  return CLI_OK;
}

int cli_selftest(int argc, char **argv) {
  const char *device = NULL, *only = NULL;
  int all = 0;
  uint64_t seed = 20261126u;
  for (int i = 1; i < argc;) {
    const char *v;
    if (cli_is_help(argv[i])) {
      fputs(selftest_help, stdout);
      return CLI_OK;
    } else if (cli_option(argc, argv, &i, "--device", &v)) {
      if (!v || !*v)
        return cli_error("selftest", CLI_USAGE, "--device needs a value");
      device = v;
    } else if (cli_option(argc, argv, &i, "--loss", &v)) {
      if (!v || !cli_find_loss(v))
        return cli_error("selftest", CLI_USAGE, "unknown loss '%s'",
                         v ? v : "");
      only = v;
    } else if (cli_option(argc, argv, &i, "--seed", &v)) {
      long long s;
      if (!cli_parse_int64(v, &s))
        return cli_error("selftest", CLI_USAGE, "--seed needs an integer");
      seed = (uint64_t)s;
    } else if (cli_flag(argv[i], "--all")) {
      all = 1;
      i++;
    } else {
      return cli_error("selftest", CLI_USAGE,
                       "unknown argument '%s' (see clloss selftest --help)",
                       argv[i]);
    }
  }
  if (all && device)
    return cli_error("selftest", CLI_USAGE,
                     "--all and --device exclude each other");
  clloss_device_info *infos;
  size_t count;
  clloss_status s = cli_list_devices(&infos, &count);
  if (s != CLLOSS_SUCCESS)
    return cli_error("selftest", CLI_DATA_ERROR, "cannot list devices: %s",
                     clloss_status_string(s));
  free(infos);
  if (count == 0)
    return cli_error("selftest", CLI_DATA_ERROR,
                     "no OpenCL device found: nothing to test");
  st_counts total = {0, 0, 0, 0};
  int rc = CLI_OK;
  if (all) {
    for (size_t i = 0; i < count; i++)
      if (test_device(i, only, seed, &total) != CLI_OK)
        rc = CLI_DATA_ERROR;
  } else {
    clloss_device_info info;
    size_t index;
    s = clloss_select_device(device, &info, &index);
    if (s != CLLOSS_SUCCESS)
      return cli_error("selftest", CLI_DATA_ERROR, "device '%s': %s",
                       device ? device : "(default)", clloss_status_string(s));
    rc = test_device(index, only, seed, &total);
  }
  printf("selftest: %d passed, %d failed, %d skipped\n", total.passed,
         total.failed, total.skipped);
  return total.failed || rc != CLI_OK ? CLI_DATA_ERROR : CLI_OK;
}
