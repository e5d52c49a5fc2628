/* cli_selftest.c - `clloss selftest`: every loss and option on random data,
 * on each chosen device, against the CPU reference, through the losses'
 * entries of `clloss run` (cli_run.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_data.h"
#include "cli_run.h"

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
#define W CLI_GEN_WEIGHT
#define IGN CLI_GEN_IGNORE
#define PROBS CLI_GEN_PROBS

/* clang-format off */
static const cli_case cases[] = {
    {"cross_entropy", F32, 37, 1000, 0, ""},
    {"cross_entropy", F32, 37, 1000, 0, "--reduction sum"},
    {"cross_entropy", F32, 37, 1000, 0, "--reduction none"},
    {"cross_entropy", F32, 37, 1000, W, ""},
    {"cross_entropy", F32, 37, 1000, IGN, ""},
    {"cross_entropy", F32, 37, 100, IGN, "--reduction none --ignore-index 3"},
    {"cross_entropy", F32, 37, 1000, 0, "--label-smoothing 0.1"},
    {"cross_entropy", F32, 37, 1000, W | IGN,
     "--reduction sum --label-smoothing 0.2"},
    {"cross_entropy", F32, 37, 1000, IGN, "--z-loss 1e-3"},
    {"cross_entropy", F32, 37, 1000, 0, "--softcap 3.0"},
    {"cross_entropy", F32, 19, 333, W | IGN,
     "--reduction none --label-smoothing 0.05 --z-loss 1e-4 --softcap 2.5"},
    {"cross_entropy", F32, 37, 1000, CLI_GEN_INT32, "--reduction sum"},
    {"cross_entropy", F32, 3, 32003, 0, ""},
    {"cross_entropy", F32, 1, 77, CLI_GEN_ONE_ROW, "--reduction none"},
    {"cross_entropy", F32, 37, 1000, PROBS, ""},
    {"cross_entropy", F32, 37, 1000, PROBS | W,
     "--reduction none --label-smoothing 0.2"},
    {"cross_entropy", F16, 37, 1000, 0, ""},
    {"cross_entropy", F16, 37, 1000, PROBS, "--reduction sum"},
    {"cross_entropy", F64, 37, 1000, W, ""},
    {"cross_entropy", F64, 37, 1000, PROBS, "--reduction none"},
    {"nll_loss", F32, 33, 17, 0, ""},
    {"nll_loss", F32, 33, 17, 0, "--reduction sum"},
    {"nll_loss", F32, 33, 17, 0, "--reduction none"},
    {"nll_loss", F32, 33, 17, W | IGN, ""},
    {"nll_loss", F32, 33, 17, CLI_GEN_INT32 | IGN,
     "--reduction sum --ignore-index 0"},
    {"nll_loss", F16, 33, 17, 0, ""},
    {"nll_loss", F64, 33, 17, W, "--reduction none"},
    {"mse_loss", F32, 31, 67, 0, ""},
    {"mse_loss", F32, 31, 67, 0, "--reduction sum"},
    {"mse_loss", F32, 5, 7, CLI_GEN_3D, "--reduction none"},
    {"mse_loss", F16, 31, 67, 0, ""},
    {"mse_loss", F64, 31, 67, 0, "--reduction sum"},
    {"l1_loss", F32, 31, 67, 0, ""},
    {"l1_loss", F32, 31, 67, 0, "--reduction none"},
    {"l1_loss", F16, 31, 67, 0, "--reduction sum"},
    {"huber_loss", F32, 31, 67, 0, ""},
    {"huber_loss", F32, 31, 67, 0, "--reduction none --delta 0.5"},
    {"huber_loss", F64, 31, 67, 0, "--reduction sum --delta 1.5"},
    {"smooth_l1_loss", F32, 31, 67, 0, ""},
    {"smooth_l1_loss", F32, 31, 67, 0, "--reduction none --beta 0.5"},
    {"smooth_l1_loss", F32, 31, 67, 0, "--reduction sum --beta 0.0"},
    {"binary_cross_entropy_with_logits", F32, 31, 67, 0, ""},
    {"binary_cross_entropy_with_logits", F32, 31, 67, 0, "--reduction none"},
    {"binary_cross_entropy_with_logits", F32, 31, 67, W, "--reduction sum"},
    {"binary_cross_entropy_with_logits", F32, 31, 67, CLI_GEN_WEIGHT_FULL, ""},
    {"binary_cross_entropy_with_logits", F32, 31, 67, CLI_GEN_POS_WEIGHT, ""},
    {"binary_cross_entropy_with_logits", F32, 5, 7,
     CLI_GEN_3D | W | CLI_GEN_POS_WEIGHT, "--reduction none"},
    {"binary_cross_entropy_with_logits", F16, 31, 67, 0, ""},
    {"kl_div", F32, 31, 67, 0, ""},
    {"kl_div", F32, 31, 67, 0, "--reduction batchmean"},
    {"kl_div", F32, 31, 67, 0, "--reduction sum"},
    {"kl_div", F32, 31, 67, 0, "--reduction none"},
    {"kl_div", F32, 31, 67, 0, "--reduction batchmean --log-target"},
    {"kl_div", F64, 31, 67, 0, "--reduction batchmean"},
};
/* clang-format on */

/* Pass thresholds on the relative error: float16 storage rounds the
 * gradient to 11 bits; float32 and float64 (float32 arithmetic at least on
 * the device) allow a few ulp of exp and log, summed over a row. */
static double tolerance(clloss_dtype t) {
  return t == CLLOSS_FLOAT16 ? 5e-3 : 1e-4;
}

/* The options as `run` would take them, plus what the data holds. */
static void describe(const cli_case *c, const cli_options *o, char *buf,
                     size_t len) {
  cli_describe_options(o, buf, len);
  size_t used = strlen(buf);
  snprintf(buf + used, len - used, "%s%s%s%s",
           c->gen & CLI_GEN_PROBS ? " probs" : "",
           c->gen & CLI_GEN_INT32 ? " int32" : "",
           (c->gen & CLI_GEN_IGNORE) && !(o->given & CLI_OPT_IGNORE_INDEX)
               ? " ignore=-100"
               : "",
           c->gen & CLI_GEN_WEIGHT_FULL ? "(full)" : "");
}

typedef struct st_counts {
  int passed, failed, skipped;
  int build_log_shown;
} st_counts;

/* One case on one device: 'pass', 'FAIL' or 'skip' and the errors. */
static void run_case(const cli_case *c, clloss_context *ctx, uint64_t seed,
                     size_t index, st_counts *n) {
  cli_trial t;
  const cli_output *l = &t.j.out[OUT_LOSS], *g = &t.j.out[OUT_GRAD];
  const char *verdict = "FAIL", *why = t.msg;
  double lerr = 0.0, gerr = 0.0;
  switch (cli_trial_run(&t, c, seed, index + 1, ctx, 1)) {
  case CLI_TRIAL_OK:
    lerr = cli_max_error(l->data, t.ref[0], l->type, l->count, 1);
    gerr = cli_max_error(g->data, t.ref[1], c->dtype, g->count, 1);
    if (lerr <= tolerance(c->dtype) && gerr <= tolerance(c->dtype))
      verdict = "pass";
    why = NULL;
    break;
  case CLI_TRIAL_MEMORY:
    why = "out of memory";
    break;
  case CLI_TRIAL_NO_FP64:
    verdict = "skip";
    why = "no fp64 on this device";
    break;
  case CLI_TRIAL_REFERENCE:
    snprintf(t.msg, sizeof t.msg, "reference: %s", clloss_status_name(t.s));
    break;
  case CLI_TRIAL_DEVICE:
    if (t.s == CLLOSS_UNSUPPORTED)
      verdict = "skip";
    snprintf(t.msg, sizeof t.msg, "%s%s%s",
             t.s == CLLOSS_UNSUPPORTED ? "" : clloss_status_name(t.s),
             t.s == CLLOSS_UNSUPPORTED ? "" : ": ",
             clloss_context_error_detail(ctx));
    if (t.s == CLLOSS_BUILD_FAILURE && !n->build_log_shown) {
      n->build_log_shown = 1; /* once per device: the logs repeat */
      printf("build log:\n%s\n", clloss_context_build_log(ctx));
    }
    break;
  }
  char opts[160], shape[64];
  describe(c, &t.j.a.opt, opts, sizeof opts);
  npy_format_shape(t.j.in[IN_X].ndim, t.j.in[IN_X].shape, shape, sizeof shape);
  if (!why)
    printf("%-32s %-7s %-11s %9.2e %9.2e  %-6s %s\n", c->loss,
           clloss_dtype_name(c->dtype), shape, lerr, gerr, verdict, opts);
  else
    printf("%-32s %-7s %-11s %9s %9s  %-6s %s: %s\n", c->loss,
           clloss_dtype_name(c->dtype), shape, "-", "-", verdict, opts, why);
  fflush(stdout); /* a crash in a driver must not hide earlier lines */
  if (verdict[0] == 'p')
    n->passed++;
  else if (verdict[0] == 's')
    n->skipped++;
  else
    n->failed++;
  cli_trial_free(&t);
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
  cli_test_args a = {NULL, NULL, 0, 20261126u};
  int rc = cli_test_parse("selftest", selftest_help, 1, argc, argv, &a);
  if (rc != CLI_OK)
    return rc < 0 ? CLI_OK : rc;
  if (a.all && a.device)
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
  if (a.all) {
    for (size_t i = 0; i < count; i++)
      if (test_device(i, a.only, a.seed, &total) != CLI_OK)
        rc = CLI_DATA_ERROR;
  } else {
    clloss_device_info info;
    size_t index;
    s = clloss_device_select(a.device, &info, &index);
    if (s != CLLOSS_SUCCESS)
      return cli_error("selftest", CLI_DATA_ERROR, "device '%s': %s",
                       a.device ? a.device : "(default)",
                       clloss_status_string(s));
    rc = test_device(index, a.only, a.seed, &total);
  }
  printf("selftest: %d passed, %d failed, %d skipped\n", total.passed,
         total.failed, total.skipped);
  return total.failed || rc != CLI_OK ? CLI_DATA_ERROR : CLI_OK;
}
