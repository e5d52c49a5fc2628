/* cli_run.c - `clloss run LOSS --input X.npy --target T.npy ...`: one loss
 * and its gradient on a device or the CPU reference, written to .npy files
 * (and `clloss run softmax`, cli_softmax.c).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_loss.h"
#include "cli_run.h"
#include "cli_softmax.h"
#include "npy.h"

static const char *const run_help =
    "usage: clloss run LOSS --input X.npy --target T.npy [options]\n"
    "                  [--loss-out L.npy] [--grad-out G.npy]\n"
    "       clloss run softmax --input X.npy --out P.npy [--device I | --cpu]\n"
    "\n"
    "Computes one loss and its gradient d(loss)/d(input) (upstream gradient\n"
    "1) and writes them as .npy files; at least one output is required.\n"
    "\n"
    "LOSS (torch.nn.functional names):\n"
    "  cross_entropy   input [N, C] or [C]; target int64/int32 indices [N]\n"
    "                  (or ()), or float probabilities of the input's shape\n"
    "  nll_loss        input log-probabilities [N, C] or [C]; indices\n"
    "  mse_loss, l1_loss, huber_loss, smooth_l1_loss,\n"
    "  binary_cross_entropy_with_logits, kl_div\n"
    "                  any shape; target of the same shape and dtype\n"
    "  linear_cross_entropy\n"
    "                  cross_entropy(input W^T + b, target): input [N, H] or\n"
    "                  [H], --linear-weight W [V, H], --linear-bias b [V],\n"
    "                  target as cross_entropy's with C = V; outputs\n"
    "                  --grad-out dX, --grad-weight-out dW, --grad-bias-out\n"
    "                  db (any of them, or --loss-out alone)\n"
    "  softmax         not a loss: the probabilities of X's rows (its last\n"
    "                  axis), written to --out in X's shape and dtype\n"
    "\n"
    "Options (as PyTorch names them; '_' may replace '-'):\n"
    "  --reduction R        none, mean (default) or sum; kl_div: batchmean\n"
    "  --ignore-index I     class index to skip (default -100)\n"
    "  --label-smoothing E  cross_entropy, in [0, 1] (default 0)\n"
    "  --weight W.npy       class weights [C]; BCE: the input's shape or its\n"
    "                       last dimension\n"
    "  --pos-weight P.npy   BCE's positive weight, shaped like --weight\n"
    "  --delta D            huber_loss (default 1)\n"
    "  --beta B             smooth_l1_loss (default 1)\n"
    "  --log-target         kl_div: the target is log p\n"
    "  --z-loss Z           cross_entropy: adds Z lse^2 per row (default 0)\n"
    "  --softcap S          cross_entropy: logits -> S tanh(x / S) (0 off)\n"
    "  --grad-scale S       multiplies the gradient, any reduction (default\n"
    "                       1; llm.c's 1/(B*T) with --reduction none)\n"
    "  --linear-weight W.npy, --linear-bias B.npy\n"
    "                       linear_cross_entropy's W [V, H] and b [V]\n"
    "  --grad-weight-out F, --grad-bias-out F\n"
    "                       linear_cross_entropy: write dW, db\n"
    "  --chunk-rows K       linear_cross_entropy: rows per chunk (0: chosen)\n"
    "  --vocab-block B      linear_cross_entropy: vocabulary blocks of B\n"
    "                       classes instead of row chunks\n"
    "  --device I           device index or name substring (default: the\n"
    "                       CLLOSS_DEVICE variable, then the first GPU)\n"
    "  --cpu                use the CPU reference instead of a device\n"
    "  --vocab-parallel     cross_entropy under mpirun: each process takes\n"
    "                       its block of the classes (columns of --input,\n"
    "                       of probability targets and of --weight) on its\n"
    "                       device; one MPI_Allreduce of per-row statistics;\n"
    "                       process 0 writes the loss and the gathered\n"
    "                       gradient (needs clloss built with MPI);\n"
    "                       linear_cross_entropy: each process takes its\n"
    "                       rows of --linear-weight (and of --linear-bias,\n"
    "                       --weight); process 0 writes the loss, d_hidden\n"
    "                       (summed over the processes) and the gathered\n"
    "                       dW and db. Every process must be given the same\n"
    "                       files' contents, options and outputs (--device\n"
    "                       and --chunk-rows may differ); when one fails or\n"
    "                       differs, every process prints one line naming\n"
    "                       it and exits 1 (2 for other outputs)\n"
    "  --quiet              no summary line (loss, device, and the time of\n"
    "                       the call: copies and any first-use kernel build\n"
    "                       included)\n"
    "\n"
    "Inputs: .npy 1.0-3.0, little-endian, C order; float32, float16 or\n"
    "float64 input. Outputs: the loss as float32 (float64 for float64\n"
    "input), shape () for mean/sum, [N] or the input's shape for none; the\n"
    "gradient in the input's shape and dtype. Exit status: 0 ok, 1 bad data\n"
    "or a failed computation, 2 bad usage.\n";

#define usage(...) cli_usage("run", __VA_ARGS__)

static int parse_float_opt(const char *name, const char *v, float *out) {
  double d;
  if (!v)
    return usage("%s needs a value", name);
  if (!cli_parse_double(v, &d) || fabs(d) > 3.0e38)
    return usage("not a number: '%s'", v);
  *out = (float)d;
  return CLI_OK;
}

/* Options that take a file or a string value. */
static int string_option(int argc, char **argv, int *i, run_args *a,
                         int *matched) {
  static const struct {
    const char *name;
    size_t offset;
  } opts[] = {
      {"--input", offsetof(run_args, input)},
      {"--target", offsetof(run_args, target)},
      {"--weight", offsetof(run_args, weight)},
      {"--pos-weight", offsetof(run_args, pos_weight)},
      {"--loss-out", offsetof(run_args, loss_out)},
      {"--grad-out", offsetof(run_args, grad_out)},
      {"--out", offsetof(run_args, out)},
      {"--device", offsetof(run_args, device)},
      {"--linear-weight", offsetof(run_args, linear_weight)},
      {"--linear-bias", offsetof(run_args, linear_bias)},
      {"--grad-weight-out", offsetof(run_args, grad_weight_out)},
      {"--grad-bias-out", offsetof(run_args, grad_bias_out)},
  };
  for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
    const char *v;
    if (!cli_option(argc, argv, i, opts[k].name, &v))
      continue;
    *matched = 1;
    if (!v || !*v)
      return usage("%s needs a value", opts[k].name);
    *(const char **)((char *)a + opts[k].offset) = v;
    if (strcmp(opts[k].name, "--weight") == 0)
      a->opt.given |= CLI_OPT_WEIGHT;
    if (strcmp(opts[k].name, "--pos-weight") == 0)
      a->opt.given |= CLI_OPT_POS_WEIGHT;
    return CLI_OK;
  }
  *matched = 0;
  return CLI_OK;
}

/* Options that set a loss parameter. */
static int number_option(int argc, char **argv, int *i, run_args *a,
                         int *matched) {
  static const struct {
    const char *name;
    unsigned bit;
    size_t offset;
  } opts[] = {
      {"--label-smoothing", CLI_OPT_LABEL_SMOOTHING,
       offsetof(cli_options, label_smoothing)},
      {"--delta", CLI_OPT_DELTA, offsetof(cli_options, delta)},
      {"--beta", CLI_OPT_BETA, offsetof(cli_options, beta)},
      {"--z-loss", CLI_OPT_Z_LOSS, offsetof(cli_options, z_loss)},
      {"--softcap", CLI_OPT_SOFTCAP, offsetof(cli_options, softcap)},
      {"--grad-scale", CLI_OPT_GRAD_SCALE, offsetof(cli_options, grad_scale)},
  };
  const char *v;
  *matched = 1;
  for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
    if (cli_option(argc, argv, i, opts[k].name, &v)) {
      a->opt.given |= opts[k].bit;
      return parse_float_opt(opts[k].name, v,
                             (float *)((char *)&a->opt + opts[k].offset));
    }
  if (cli_option(argc, argv, i, "--reduction", &v)) {
    a->opt.given |= CLI_OPT_REDUCTION;
    return cli_parse_reduction("run", v, &a->opt.reduction);
  }
  const char *sizes[2] = {"--chunk-rows", "--vocab-block"};
  size_t *dst[2] = {&a->chunk_rows, &a->vocab_block};
  for (int k = 0; k < 2; k++)
    if (cli_option(argc, argv, i, sizes[k], &v)) {
      if (!v)
        return usage("%s needs a value", sizes[k]);
      if (!cli_parse_size(v, dst[k]))
        return usage("not a count: '%s'", v);
      return CLI_OK;
    }
  if (cli_option(argc, argv, i, "--ignore-index", &v)) {
    long long n;
    a->opt.given |= CLI_OPT_IGNORE_INDEX;
    if (!v)
      return usage("%s needs a value", "--ignore-index");
    if (!cli_parse_int64(v, &n))
      return usage("not an integer: '%s'", v);
    a->opt.ignore_index = n;
    return CLI_OK;
  }
  *matched = 0;
  return CLI_OK;
}

/* An output that is an input (the same file by device and inode, through
 * links and other names too) would be replaced by the run that reads it:
 * a usage error, found before anything is read. */
static int outputs_apart_from_inputs(const run_args *a) {
  const char *ins[6] = {a->input,      a->target,        a->weight,
                        a->pos_weight, a->linear_weight, a->linear_bias};
  static const char *const in_names[6] = {"--input",         "--target",
                                          "--weight",        "--pos-weight",
                                          "--linear-weight", "--linear-bias"};
  const char *outs[5] = {a->loss_out, a->grad_out, a->grad_weight_out,
                         a->grad_bias_out, a->out};
  static const char *const out_names[5] = {"--loss-out", "--grad-out",
                                           "--grad-weight-out",
                                           "--grad-bias-out", "--out"};
  for (int k = 0; k < 5; k++)
    for (int j = 0; j < 6; j++)
      if (outs[k] && ins[j] && cli_same_file(outs[k], ins[j]))
        return usage("%s '%s' is the input %s '%s': an output may not "
                     "replace an input",
                     out_names[k], outs[k], in_names[j], ins[j]);
  return CLI_OK;
}

/* Parses argv; returns CLI_OK, CLI_USAGE, or -1 after printing help. */
static int parse_args(int argc, char **argv, run_args *a) {
  memset(a, 0, sizeof *a);
  a->opt = cli_default_options();
  for (int i = 1; i < argc;) {
    const char *arg = argv[i];
    int matched, rc;
    if (cli_is_help(arg)) {
      fputs(run_help, stdout);
      return -1;
    }
    if (arg[0] != '-' || arg[1] == '\0') {
      if (a->loss_name)
        return usage("unexpected argument '%s'", arg);
      a->loss_name = arg;
      i++;
      continue;
    }
    if ((rc = string_option(argc, argv, &i, a, &matched)) != CLI_OK)
      return rc;
    if (matched)
      continue;
    if ((rc = number_option(argc, argv, &i, a, &matched)) != CLI_OK)
      return rc;
    if (matched)
      continue;
    if (cli_flag(arg, "--log-target")) {
      a->opt.log_target = 1;
      a->opt.given |= CLI_OPT_LOG_TARGET;
    } else if (cli_flag(arg, "--cpu")) {
      a->cpu = 1;
    } else if (cli_flag(arg, "--vocab-parallel")) {
      a->vocab_parallel = 1;
    } else if (cli_flag(arg, "--quiet") || strcmp(arg, "-q") == 0) {
      a->quiet = 1;
    } else {
      return usage("unknown option '%s'", arg);
    }
    i++;
  }
  if (!a->loss_name)
    return usage("%s", "no LOSS given");
  if (a->cpu && a->device)
    return usage("%s", "--cpu and --device exclude each other");
  if (strcmp(a->loss_name, "softmax") == 0) {
    if (!a->input || !a->out)
      return usage("%s", "softmax needs --input and --out");
    if (a->target || a->loss_out || a->grad_out || a->opt.given ||
        a->opt.log_target || a->vocab_parallel)
      return usage("%s", "softmax takes --input, --out, --device, --cpu and "
                         "--quiet only");
    return outputs_apart_from_inputs(a);
  }
  if (a->out)
    return usage("%s", "--out is softmax's; a loss writes --loss-out and "
                       "--grad-out");
  if (!a->input || !a->target)
    return usage("%s", "--input and --target are required");
  const int linear = strcmp(a->loss_name, "linear_cross_entropy") == 0;
  if (!linear && (a->linear_weight || a->linear_bias || a->grad_weight_out ||
                  a->grad_bias_out || a->chunk_rows || a->vocab_block))
    return usage("%s", "--linear-*, --grad-weight-out, --grad-bias-out, "
                       "--chunk-rows and --vocab-block apply to "
                       "linear_cross_entropy only");
  if (linear && !a->linear_weight)
    return usage("%s", "linear_cross_entropy needs --linear-weight");
  if (!a->loss_out && !a->grad_out && !a->grad_weight_out && !a->grad_bias_out)
    return usage("%s", "no output asked for: give --loss-out and/or "
                       "--grad-out");
  const char *outs[4] = {a->loss_out, a->grad_out, a->grad_weight_out,
                         a->grad_bias_out};
  static const char *const out_names[4] = {
      "--loss-out", "--grad-out", "--grad-weight-out", "--grad-bias-out"};
  for (int k = 0; k < 4; k++)
    for (int j = k + 1; j < 4; j++)
      if (outs[k] && outs[j] && cli_same_file(outs[k], outs[j]))
        return usage("%s '%s' and %s '%s' are the same file", out_names[k],
                     outs[k], out_names[j], outs[j]);
  if (a->cpu && a->vocab_parallel)
    return usage("%s", "--cpu and --vocab-parallel exclude each other");
  return outputs_apart_from_inputs(a);
}

typedef struct run_data {
  npy_array input, target, weight, pos_weight;
} run_data;

static int load(const char *path, npy_array *out) {
  char msg[512];
  if (!path)
    return CLI_OK;
  if (npy_read(path, out, msg, sizeof msg) != NPY_OK)
    return cli_error("run", CLI_DATA_ERROR, "%s", msg);
  return CLI_OK;
}

static void free_data(run_data *d) {
  npy_free(&d->input);
  npy_free(&d->target);
  npy_free(&d->weight);
  npy_free(&d->pos_weight);
}

/* Runs the checked problem and writes the outputs. */
static int compute(const run_args *a, const cli_problem *p) {
  clloss_context *ctx;
  char where[320];
  int rc = cli_run_open(a, &ctx, where, sizeof where);
  if (rc != CLI_OK)
    return rc;
  size_t lbytes = p->loss_count * (p->loss_type == CLLOSS_FLOAT64 ? 8 : 4);
  size_t gbytes = p->input->count * npy_dtype_size(p->input->dtype);
  void *loss = malloc(lbytes ? lbytes : 1);
  void *grad = malloc(gbytes ? gbytes : 1);
  if (!loss || !grad) {
    rc = cli_error("run", CLI_DATA_ERROR, "out of memory");
  } else {
    /* The loss is always computed: the summary line shows it. */
    double t0 = cli_now_ms();
    clloss_status s = cli_problem_run(p, ctx, loss, a->grad_out ? grad : NULL);
    double ms = cli_now_ms() - t0;
    if (s != CLLOSS_SUCCESS) {
      const char *detail = ctx ? clloss_context_error_detail(ctx) : "";
      rc = cli_error("run", CLI_DATA_ERROR, "%s on %s failed: %s (%s)%s%s",
                     p->loss->name, where, clloss_status_string(s),
                     clloss_status_name(s), *detail ? ": " : "", detail);
      /* A kernel that does not build is a bug to report: show its log. */
      if (s == CLLOSS_BUILD_FAILURE && ctx)
        fprintf(stderr, "build log:\n%s\n", clloss_context_build_log(ctx));
    } else {
      rc = cli_run_write_outputs(a, p, loss, grad);
      if (rc == CLI_OK && !a->quiet)
        cli_run_summary(a, p, loss, where, ms);
    }
  }
  free(loss);
  free(grad);
  clloss_context_release(ctx);
  return rc;
}

int cli_run(int argc, char **argv) {
  run_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc != CLI_OK)
    return rc < 0 ? CLI_OK : rc;
  if (strcmp(a.loss_name, "linear_cross_entropy") == 0)
    return cli_run_linear(&a);
  if (strcmp(a.loss_name, "softmax") == 0)
    return cli_run_softmax(a.input, a.out, a.device, a.cpu, a.quiet);
  const cli_loss_info *loss = cli_find_loss(a.loss_name);
  if (!loss)
    return usage("unknown loss '%s'", a.loss_name);
  char msg[512];
  if (cli_check_options(loss, &a.opt, msg, sizeof msg) != CLI_OK)
    return cli_error("run", CLI_USAGE, "%s", msg);
  if (a.vocab_parallel)
    return cli_run_vocab_parallel(&a, loss);
  run_data d;
  memset(&d, 0, sizeof d);
  if ((rc = load(a.input, &d.input)) == CLI_OK &&
      (rc = load(a.target, &d.target)) == CLI_OK &&
      (rc = load(a.weight, &d.weight)) == CLI_OK &&
      (rc = load(a.pos_weight, &d.pos_weight)) == CLI_OK) {
    cli_problem p;
    rc = cli_problem_init(&p, loss, &a.opt, &d.input, &d.target,
                          a.weight ? &d.weight : NULL,
                          a.pos_weight ? &d.pos_weight : NULL, msg, sizeof msg);
    if (rc != CLI_OK) {
      cli_error("run", rc, "%s", msg);
    } else {
      rc = compute(&a, &p);
      cli_problem_free(&p);
    }
  }
  free_data(&d);
  return rc;
}
