/* cli_run.c - `clloss run NAME ...`: one command of the table below (a
 * loss, linear_cross_entropy or softmax) on a device or the CPU reference,
 * its outputs written as .npy files; with --vocab-parallel its shard under
 * mpirun (cli_mpi.c). One parser, one driver for every entry. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_mpi.h"
#include "cli_run.h"

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

static const cli_loss_info linear_info = {
    "linear_cross_entropy", CLI_CROSS_ENTROPY, CLLOSS_MSE_LOSS, CLI_CE_OPTS};
static const cli_loss_info softmax_info = {"softmax", CLI_CROSS_ENTROPY,
                                           CLLOSS_MSE_LOSS, 0};

#define LOSS(k, shard)                                                         \
  {                                                                            \
    &cli_losses[k], 0, cli_job_load, cli_check_loss, cli_run_loss,             \
        cli_reference_loss, cli_describe_loss, shard                           \
  }
static const cli_command commands[] = {
    LOSS(0, &cli_ce_shard),
    LOSS(1, NULL),
    LOSS(2, NULL),
    LOSS(3, NULL),
    LOSS(4, NULL),
    LOSS(5, NULL),
    LOSS(6, NULL),
    LOSS(7, NULL),
    {&linear_info, CLI_ARGS_LINEAR, cli_job_load, cli_check_linear,
     cli_run_linear, cli_reference_linear, cli_describe_linear,
     &cli_linear_shard},
    {&softmax_info, CLI_ARGS_OUT, cli_job_load, cli_check_softmax,
     cli_run_softmax, cli_reference_softmax, cli_describe_softmax, NULL},
};

const cli_command *cli_find_command(const char *name) {
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(commands[i].loss->name, name) == 0)
      return &commands[i];
  return NULL;
}

/* The options: a file or a string (OPT_PATH), a loss parameter
 * (OPT_FLOAT, its CLI_OPT_* bit), a count, an index, the reduction, and
 * the flags without value (an int set to 1). */
enum { OPT_PATH, OPT_FLOAT, OPT_SIZE, OPT_INDEX, OPT_REDUCTION, OPT_FLAG };
#define ARG(field) offsetof(run_args, field)
#define PARAM(field) offsetof(run_args, opt) + offsetof(cli_options, field)
static const struct {
  const char *name;
  int kind;
  unsigned bit;
  size_t offset;
} options[] = {
    {"--input", OPT_PATH, 0, ARG(in[IN_X])},
    {"--target", OPT_PATH, 0, ARG(in[IN_T])},
    {"--weight", OPT_PATH, CLI_OPT_WEIGHT, ARG(in[IN_W])},
    {"--pos-weight", OPT_PATH, CLI_OPT_POS_WEIGHT, ARG(in[IN_PW])},
    {"--loss-out", OPT_PATH, 0, ARG(out[OUT_LOSS])},
    {"--grad-out", OPT_PATH, 0, ARG(out[OUT_GRAD])},
    {"--out", OPT_PATH, 0, ARG(out[OUT_P])},
    {"--device", OPT_PATH, 0, ARG(device)},
    {"--linear-weight", OPT_PATH, 0, ARG(in[IN_LW])},
    {"--linear-bias", OPT_PATH, 0, ARG(in[IN_LB])},
    {"--grad-weight-out", OPT_PATH, 0, ARG(out[OUT_GW])},
    {"--grad-bias-out", OPT_PATH, 0, ARG(out[OUT_GB])},
    {"--label-smoothing", OPT_FLOAT, CLI_OPT_LABEL_SMOOTHING,
     PARAM(label_smoothing)},
    {"--delta", OPT_FLOAT, CLI_OPT_DELTA, PARAM(delta)},
    {"--beta", OPT_FLOAT, CLI_OPT_BETA, PARAM(beta)},
    {"--z-loss", OPT_FLOAT, CLI_OPT_Z_LOSS, PARAM(z_loss)},
    {"--softcap", OPT_FLOAT, CLI_OPT_SOFTCAP, PARAM(softcap)},
    {"--grad-scale", OPT_FLOAT, CLI_OPT_GRAD_SCALE, PARAM(grad_scale)},
    {"--reduction", OPT_REDUCTION, CLI_OPT_REDUCTION, PARAM(reduction)},
    {"--chunk-rows", OPT_SIZE, 0, ARG(chunk_rows)},
    {"--vocab-block", OPT_SIZE, 0, ARG(vocab_block)},
    {"--ignore-index", OPT_INDEX, CLI_OPT_IGNORE_INDEX, PARAM(ignore_index)},
    {"--log-target", OPT_FLAG, CLI_OPT_LOG_TARGET, PARAM(log_target)},
    {"--cpu", OPT_FLAG, 0, ARG(cpu)},
    {"--vocab-parallel", OPT_FLAG, 0, ARG(vocab_parallel)},
    {"--quiet", OPT_FLAG, 0, ARG(quiet)},
    {"-q", OPT_FLAG, 0, ARG(quiet)},
};

int cli_run_option(int argc, char **argv, int *i, run_args *a, int *matched) {
  const char *v = NULL;
  size_t k = 0;
  for (; k < sizeof options / sizeof options[0]; k++)
    if (options[k].kind == OPT_FLAG
            ? cli_flag(argv[*i], options[k].name)
            : cli_option(argc, argv, i, options[k].name, &v))
      break;
  if (!(*matched = k < sizeof options / sizeof options[0]))
    return CLI_OK;
  void *dst = (char *)a + options[k].offset;
  const char *name = options[k].name;
  double d;
  long long n;
  a->opt.given |= options[k].bit;
  if (options[k].kind == OPT_FLAG) {
    *(int *)dst = 1;
    (*i)++;
    return CLI_OK;
  }
  if (options[k].kind == OPT_REDUCTION)
    return cli_parse_reduction("run", v, dst);
  if (!v || (options[k].kind == OPT_PATH && !*v))
    return usage("%s needs a value", name);
  switch (options[k].kind) {
  case OPT_PATH:
    *(const char **)dst = v;
    return CLI_OK;
  case OPT_FLOAT:
    if (!cli_parse_double(v, &d) || fabs(d) > 3.0e38)
      return usage("not a number: '%s'", v);
    *(float *)dst = (float)d;
    return CLI_OK;
  case OPT_SIZE:
    return cli_parse_size(v, dst) ? CLI_OK : usage("not a count: '%s'", v);
  default:
    if (!cli_parse_int64(v, &n))
      return usage("not an integer: '%s'", v);
    *(int64_t *)dst = n;
    return CLI_OK;
  }
}

/* An output that is an input (the same file by device and inode, through
 * links and other names too) would be replaced by the run that reads it:
 * a usage error, found before anything is read. `outs` outputs are
 * checked against each other too. */
static int files_apart(const run_args *a, int outs) {
  static const char *const in_names[IN_COUNT] = {
      "--input",  "--linear-weight", "--linear-bias",
      "--target", "--weight",        "--pos-weight"};
  static const char *const out_names[OUT_COUNT + 1] = {
      "--loss-out", "--grad-out", "--grad-weight-out", "--grad-bias-out",
      "--out"};
  static const int in_order[IN_COUNT] = {IN_X, IN_T, IN_W, IN_PW, IN_LW, IN_LB};
  const char *const *o = a->out;
  for (int k = 0; k < outs; k++)
    for (int j = k + 1; j < outs; j++)
      if (o[k] && o[j] && cli_same_file(o[k], o[j]))
        return usage("%s '%s' and %s '%s' are the same file", out_names[k],
                     o[k], out_names[j], o[j]);
  for (int k = 0; k <= OUT_COUNT; k++)
    for (int i = 0; i < IN_COUNT; i++) {
      const char *in = a->in[in_order[i]];
      if (o[k] && in && cli_same_file(o[k], in))
        return usage("%s '%s' is the input %s '%s': an output may not "
                     "replace an input",
                     out_names[k], o[k], in_names[in_order[i]], in);
    }
  return CLI_OK;
}

/* What the arguments must hold for command c (NULL: an unknown name,
 * checked as a loss's). */
static int check_args(const run_args *a, const cli_command *c) {
  const char *const *o = a->out;
  const unsigned args = c ? c->args : 0;
  if (a->cpu && a->device)
    return usage("%s", "--cpu and --device exclude each other");
  if (args & CLI_ARGS_OUT) {
    if (!a->in[IN_X] || !o[OUT_P])
      return usage("%s", "softmax needs --input and --out");
    if (a->in[IN_T] || o[OUT_LOSS] || o[OUT_GRAD] || a->opt.given ||
        a->opt.log_target || a->vocab_parallel)
      return usage("%s", "softmax takes --input, --out, --device, --cpu and "
                         "--quiet only");
    return files_apart(a, 0);
  }
  if (o[OUT_P])
    return usage("%s", "--out is softmax's; a loss writes --loss-out and "
                       "--grad-out");
  if (!a->in[IN_X] || !a->in[IN_T])
    return usage("%s", "--input and --target are required");
  if (!(args & CLI_ARGS_LINEAR) &&
      (a->in[IN_LW] || a->in[IN_LB] || o[OUT_GW] || o[OUT_GB] ||
       a->chunk_rows || a->vocab_block))
    return usage("%s", "--linear-*, --grad-weight-out, --grad-bias-out, "
                       "--chunk-rows and --vocab-block apply to "
                       "linear_cross_entropy only");
  if ((args & CLI_ARGS_LINEAR) && !a->in[IN_LW])
    return usage("%s", "linear_cross_entropy needs --linear-weight");
  if (!o[OUT_LOSS] && !o[OUT_GRAD] && !o[OUT_GW] && !o[OUT_GB])
    return usage("%s", "no output asked for: give --loss-out and/or "
                       "--grad-out");
  if (a->cpu && a->vocab_parallel)
    return usage("%s", "--cpu and --vocab-parallel exclude each other");
  return files_apart(a, OUT_COUNT);
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
      if (a->name)
        return usage("unexpected argument '%s'", arg);
      a->name = arg;
      i++;
      continue;
    }
    if ((rc = cli_run_option(argc, argv, &i, a, &matched)) != CLI_OK)
      return rc;
    if (!matched)
      return usage("unknown option '%s'", arg);
  }
  if (!a->name)
    return usage("%s", "no LOSS given");
  return check_args(a, cli_find_command(a->name));
}

/* Loads, checks, computes and writes: every command's steps, on its own
 * or (--vocab-parallel) as its shard on each process, `rank` writing. */
static int run_job(cli_job *j, int rank) {
  const cli_command *c = j->cmd;
  const int vp = j->a.vocab_parallel;
  const cli_shard *sh = vp ? c->shard : NULL;
  int rc = CLI_OK;
  if (vp && !sh)
    rc = cli_error("run", CLI_USAGE,
                   "--vocab-parallel applies to cross_entropy, not %s",
                   c->loss->name);
  if (rc == CLI_OK)
    rc = sh && sh->load ? sh->load(j) : c->load(j);
  if (rc == CLI_OK)
    rc = c->check(j);
  if (rc == CLI_OK)
    rc = cli_job_open(j);
  if (rc == CLI_OK && sh && sh->prepare)
    rc = sh->prepare(j);
  if (rc == CLI_OK)
    rc = cli_job_alloc(j);
  /* --vocab-parallel: every process ready, with the same outputs, or all
   * stop here, before a collective call that would wait for one. */
  if (vp) {
    unsigned wanted = 0;
    for (int k = 0; k < OUT_COUNT; k++)
      wanted |= j->a.out[k] ? 1u << k : 0u;
    rc = cli_vp_agree(rc, 1, wanted);
  }
  if (rc != CLI_OK)
    return rc;
  const double t0 = cli_now_ms();
  if (sh) {
    if ((rc = sh->run(j)) != CLI_OK)
      return rc;
  } else {
    clloss_status s = j->ctx ? c->run(j) : c->reference(j);
    if (s != CLLOSS_SUCCESS)
      return cli_job_failed(j, s);
  }
  const double ms = cli_now_ms() - t0;
  if (rank == 0 && (rc = cli_job_write(j)) == CLI_OK && !j->a.quiet)
    cli_job_summary(j, ms);
  /* Every process learns how process 0's writing went. */
  return vp ? cli_vp_agree(rc, 1, 0) : rc;
}

int cli_run(int argc, char **argv) {
  cli_job j;
  memset(&j, 0, sizeof j);
  int rc = parse_args(argc, argv, &j.a);
  if (rc != CLI_OK)
    return rc < 0 ? CLI_OK : rc;
  if (!(j.cmd = cli_find_command(j.a.name)))
    return usage("unknown loss '%s'", j.a.name);
  if ((rc = cli_check_options(j.cmd->loss, &j.a.opt)) != CLI_OK)
    return rc;
  int rank = 0, size = 1;
  if (j.a.vocab_parallel && (rc = cli_mpi_begin("run", &rank, &size)) != CLI_OK)
    return rc;
  cli_capture(j.a.vocab_parallel);
  rc = run_job(&j, rank);
  cli_capture(0);
  if (j.a.vocab_parallel)
    cli_mpi_end();
  cli_job_free(&j);
  return rc;
}
