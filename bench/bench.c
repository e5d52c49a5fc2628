/* bench.c - `clloss bench LOSS ...`: times the fused forward+gradient
 * call of one loss on data already on the device, compares its bandwidth
 * with a plain copy kernel on the same device in the same run, and prints
 * readable lines and then one JSON object as the last line of stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "bench.h"
#include "cli_loss.h"

/* The help texts; what they leave out (the data, how bytes are counted,
 * the JSON fields) is in bench/README.md. */
static const char *const bench_help =
    "usage: clloss bench LOSS [--rows N --classes C | --numel N]\n"
    "                    [--dtype T] [--device I] [--repeat R] [--warmup W]\n"
    "                    [--variant V] [--reduction R] [--no-grad]\n"
    "                    [--target-dtype int64|int32] [--seed S] [--no-copy]\n"
    "                    [--json-only]\n"
    "\n"
    "Times one loss and its gradient on a device (clloss_cross_entropy,\n"
    "clloss_nll_loss or clloss_pointwise on buffers filled once), each run\n"
    "from the call's enqueue until clFinish returns, against a plain copy\n"
    "kernel of the same bytes on the same device, run after each timed run.\n"
    "\n"
    "LOSS: cross_entropy, nll_loss, mse_loss, l1_loss, huber_loss,\n"
    "  smooth_l1_loss, binary_cross_entropy_with_logits, kl_div; and\n"
    "  linear_cross_entropy (clloss bench linear_cross_entropy --help)\n"
    "\n"
    "Options ('_' may replace '-'):\n"
    "  --rows N, --classes C  shape [N, C] (cross_entropy, nll_loss: default\n"
    "                       4096 x 32000; element-wise losses: any shape)\n"
    "  --numel N            element-wise losses: N elements (default 2^24)\n"
    "  --dtype T            float32 (default), float16, bfloat16, float64\n"
    "  --target-dtype T     cross_entropy, nll_loss: int64 (default), int32\n"
    "  --reduction R        mean (default), sum, none; kl_div: batchmean\n"
    "  --no-grad            the loss only (no gradient output)\n"
    "  --variant V          auto (default), item, group, lanes, split\n"
    "  --device I           device index or name substring (default: the\n"
    "                       CLLOSS_DEVICE variable, then the first GPU)\n"
    "  --repeat R           timed runs (default 10); the median is reported\n"
    "  --warmup W           untimed runs before them (default 2)\n"
    "  --seed S             seed of the pseudo-random data (default 1)\n"
    "  --no-copy            skip the copy kernel (copy_gbps is null)\n"
    "  --json-only          print only the JSON line (else readable lines\n"
    "                       first; the JSON object is the last line)\n"
    "  --vocab-parallel     cross_entropy under mpirun (clloss bench\n"
    "                       --vocab-parallel --help)\n"
    "Exit status: 0 ok, 1 no device or a failed call, 2 bad usage.\n"
    "Bytes counted, data, JSON fields: bench/README.md.\n";

static const char *const vp_help =
    "usage: mpirun -np P clloss bench cross_entropy --vocab-parallel\n"
    "           [--rows N] [--classes V] [--dtype T] [--device I]\n"
    "           [--repeat R] [--warmup W] [--json-only]\n"
    "\n"
    "Times cross_entropy (loss and gradient, mean) with the classes split\n"
    "evenly over the P processes (clloss_mpi_cross_entropy), then its\n"
    "all-reduce alone, then clloss_cross_entropy on the whole problem on\n"
    "process 0 while the others wait asleep: medians of R runs after W.\n"
    "\n"
    "  --rows N, --classes V  the whole problem (default 4096 x 32000)\n"
    "  --dtype T            float32 (default), float16, bfloat16, float64\n"
    "  --device I           every process's device (default: CLLOSS_DEVICE,\n"
    "                       then the first GPU)\n"
    "  --repeat R, --warmup W  (default 10 and 2)\n"
    "  --json-only          print only the JSON line\n"
    "Timing, bytes_per_process: bench/README.md.\n";

static const char *const lvp_help =
    "usage: mpirun -np P clloss bench linear_cross_entropy --vocab-parallel\n"
    "           [--rows N] [--hidden H] [--classes V] [--chunk-rows K]\n"
    "           [--device I] [--repeat R] [--warmup W] [--json-only]\n"
    "\n"
    "Times linear_cross_entropy (float32, mean, bias; loss, dX, dW, db) with\n"
    "W's rows split evenly over the P processes\n"
    "(clloss_mpi_linear_cross_entropy), then the single-device call on the\n"
    "whole problem on process 0 while the others wait asleep: medians of R\n"
    "runs after W.\n"
    "\n"
    "  --rows N, --hidden H, --classes V  the whole problem (default\n"
    "                       2048 x 512 x 32000)\n"
    "  --chunk-rows K       rows per chunk (default: chosen as the\n"
    "                       single-device call chooses)\n"
    "  --device I           every process's device\n"
    "  --repeat R, --warmup W  (default 5 and 1)\n"
    "  --json-only          print only the JSON line\n"
    "Timing, bytes_per_process: bench/README.md.\n";

static const char *const linear_help =
    "usage: clloss bench linear_cross_entropy --rows N --hidden H --classes V\n"
    "           [--chunk-rows K | --vocab-block B] [--workspace-limit BYTES]\n"
    "           [--dtype T] [--bias] [--no-grad] [--no-unfused] [--device I]\n"
    "           [--repeat R] [--warmup W] [--seed S] [--json-only]\n"
    "\n"
    "Times clloss_linear_cross_entropy (loss, dX, dW, and db with --bias) on\n"
    "device buffers filled once, each run from enqueue to clFinish, and in\n"
    "the same run the unfused path: CLBlast's GEMM to the full logits\n"
    "[N, V], clloss_cross_entropy in place, GEMMs for dX and dW (float32 and\n"
    "float64, without --bias; its fields are null otherwise).\n"
    "\n"
    "  --rows N, --hidden H, --classes V   shapes (default 2048, 512, 32000)\n"
    "  --chunk-rows K       rows per chunk (default: chosen)\n"
    "  --vocab-block B      vocabulary blocks of B classes instead\n"
    "  --workspace-limit BYTES  the automatic chunk's budget (default: none)\n"
    "  --dtype T            float32 (default), float16, bfloat16, float64\n"
    "  --bias               with a bias (and its gradient)\n"
    "  --no-grad            the loss only\n"
    "  --no-unfused         skip the unfused path\n"
    "  --device I           device index or name substring\n"
    "  --repeat R, --warmup W  timed and untimed runs (default 5, 1)\n"
    "  --seed S             seed of the pseudo-random data (default 1)\n"
    "  --json-only          print only the JSON line\n"
    "Data, memory (peak_bytes), JSON fields: bench/README.md.\n";

#define usage(...) cli_usage("bench", __VA_ARGS__)

/* ---- cross_entropy, nll_loss and the element-wise losses ---- */

/* LOSS: the one argument that is no option. */
static int loss_arg(bench_args *a, const char *arg) {
  if (strncmp(arg, "-", 1) == 0)
    return usage("unknown option '%s'", arg);
  if (a->loss)
    return usage("unexpected argument '%s'", arg);
  if (!(a->loss = cli_find_loss(arg)))
    return usage("unknown loss '%s'", arg);
  return CLI_OK;
}

/* Checks the combination of options and fills in the defaults; a size
 * that is 0 was not given. */
static int loss_check(bench_args *a) {
  if (!a->loss)
    return usage("missing LOSS");
  const int have_rows = a->rows != 0, have_classes = a->classes != 0,
            have_numel = a->numel != 0;
  const int rows_family = a->loss->family != CLI_POINTWISE;
  if (rows_family) {
    if (have_numel)
      return usage("%s takes --rows and --classes, not --numel", a->loss->name);
    if (!have_rows)
      a->rows = 4096;
    if (!have_classes)
      a->classes = 32000;
  } else {
    if (a->target_dtype != BENCH_UNSET)
      return usage("--target-dtype is for cross_entropy and nll_loss");
    if (have_numel && (have_rows || have_classes))
      return usage("give either --numel or --rows and --classes");
    if (have_rows != have_classes)
      return usage("%s needs both --rows and --classes (or --numel)",
                   a->loss->name);
    if (!have_numel && !have_rows)
      a->numel = (size_t)1 << 24;
  }
  if (a->target_dtype == BENCH_UNSET)
    a->target_dtype = CLLOSS_INT64;
  if (a->rows) {
    if (a->classes > ((size_t)1 << 46) / a->rows)
      return usage("--rows x --classes is too large");
    if (!rows_family)
      a->numel = a->rows * a->classes;
  }
  if (a->reduction == CLLOSS_REDUCTION_BATCHMEAN &&
      (a->loss->family != CLI_POINTWISE || a->loss->pointwise != CLLOSS_KL_DIV))
    return usage("--reduction batchmean is for kl_div only");
  if (a->variant && strcmp(a->variant, "split") == 0 &&
      a->loss->family != CLI_CROSS_ENTROPY)
    return usage("--variant split is for cross_entropy only");
  return CLI_OK;
}

enum { L_INPUT, L_TARGET, L_LOSS, L_GRAD, L_COUNT };

typedef struct loss_run {
  bench_run b;
  size_t count;      /* input elements */
  size_t loss_count; /* loss outputs */
  clloss_dtype loss_type;
  clloss_cross_entropy_desc ce;
  clloss_nll_loss_desc nll;
  clloss_pointwise_desc pw;
  bench_copy *copy; /* the copy kernel, or NULL */
  const char *variant;
  unsigned long long bytes;
  double loss_value;
} loss_run;

/* One call, until the device is done. */
static clloss_status call_and_wait(loss_run *r) {
  const clloss_buffer none = {NULL, 0};
  const clloss_buffer in = {r->b.m[L_INPUT], 0}, tg = {r->b.m[L_TARGET], 0},
                      lo = {r->b.m[L_LOSS], 0}, gr = {r->b.m[L_GRAD], 0};
  clloss_context *ctx = r->b.ctx;
  cl_command_queue q = r->b.queue;
  clloss_status s = CLLOSS_INVALID_ARGUMENT;
  switch (r->b.a.loss->family) {
  case CLI_CROSS_ENTROPY:
    s = clloss_cross_entropy(ctx, q, &r->ce, in, tg, none, none, lo, gr, 0,
                             NULL, NULL);
    break;
  case CLI_NLL_LOSS:
    s = clloss_nll_loss(ctx, q, &r->nll, in, tg, none, none, lo, gr, 0, NULL,
                        NULL);
    break;
  case CLI_POINTWISE:
    s = clloss_pointwise(ctx, q, &r->pw, in, tg, none, none, none, lo, gr, 0,
                         NULL, NULL);
    break;
  }
  return bench_finish(q, s);
}

static void describe(loss_run *r) {
  const bench_args *a = &r->b.a;
  r->b.name = a->loss->name;
  r->loss_type = a->dtype == CLLOSS_FLOAT64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  if (a->loss->family != CLI_POINTWISE) {
    r->count = a->rows * a->classes;
    r->loss_count = a->reduction == CLLOSS_REDUCTION_NONE ? a->rows : 1;
  } else {
    r->count = a->numel;
    r->loss_count = a->reduction == CLLOSS_REDUCTION_NONE ? a->numel : 1;
  }
  clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  ce.rows = a->rows;
  ce.classes = a->classes;
  ce.input_type = a->dtype;
  ce.target_type = a->target_dtype;
  ce.reduction = a->reduction;
  r->ce = ce;
  clloss_nll_loss_desc nll = CLLOSS_NLL_LOSS_DESC_INIT;
  nll.rows = a->rows;
  nll.classes = a->classes;
  nll.input_type = a->dtype;
  nll.target_type = a->target_dtype;
  nll.reduction = a->reduction;
  r->nll = nll;
  clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(a->loss->pointwise);
  pw.count = a->numel;
  pw.input_type = a->dtype;
  pw.reduction = a->reduction;
  pw.batch = a->rows ? a->rows : a->numel;
  r->pw = pw;
}

/* Bytes of the least traffic (bench/README.md). */
static unsigned long long traffic(const loss_run *r) {
  const bench_args *a = &r->b.a;
  const unsigned long long s = clloss_dtype_size(a->dtype);
  /* nll_loss needs only the target's entry of each row of its input. */
  unsigned long long b =
      (unsigned long long)(a->loss->family == CLI_NLL_LOSS ? a->rows
                                                           : r->count) *
      s;
  if (a->loss->family == CLI_POINTWISE)
    b += (unsigned long long)r->count * s; /* target */
  else
    b += (unsigned long long)a->rows * clloss_dtype_size(a->target_dtype);
  if (!a->no_grad)
    b += (unsigned long long)r->count * s;
  b += (unsigned long long)r->loss_count * clloss_dtype_size(r->loss_type);
  return b;
}

/* Buffers created and filled once (bench/README.md), the gradient
 * touched. */
static int make_buffers(loss_run *r) {
  const bench_args *a = &r->b.a;
  const clloss_device_info *info = clloss_context_device_info(r->b.ctx);
  const int rows_family = a->loss->family != CLI_POINTWISE;
  const unsigned long long seed = a->seed * 0x100000001b3ull;
  double in_hi = 5, t_lo = -5, t_hi = 5;
  if (rows_family) {
    t_lo = 0;
    t_hi = (double)a->classes;
  } else if (a->loss->pointwise == CLLOSS_BCE_WITH_LOGITS) {
    t_lo = 0;
    t_hi = 1;
  } else if (a->loss->pointwise == CLLOSS_KL_DIV) {
    in_hi = 0;
    t_lo = 1; /* p = 1 - u in (0, 1] */
    t_hi = 0;
  }
  const bench_buf b[L_COUNT] = {
      {"input", r->count, a->dtype, CL_MEM_READ_ONLY, BENCH_RANDOM, -5, in_hi,
       seed + 1},
      {"target", rows_family ? a->rows : r->count,
       rows_family ? a->target_dtype : a->dtype, CL_MEM_READ_ONLY, BENCH_RANDOM,
       t_lo, t_hi, seed + 2},
      {"loss", r->loss_count, r->loss_type, CL_MEM_READ_WRITE, BENCH_KEEP, 0, 0,
       0},
      {"gradient", a->no_grad ? 0 : r->count, a->dtype, CL_MEM_WRITE_ONLY,
       BENCH_ZEROS, 0, 0, 0}};
  size_t k;
  enum bench_phase phase;
  const cl_int err = bench_buffers(r->b.ctx, b, L_COUNT, info->max_alloc_size,
                                   r->b.m, &k, &phase);
  if (err == CL_SUCCESS)
    return CLI_OK;
  char size[32], max[32];
  cli_format_bytes(b[k].count * clloss_dtype_size(b[k].type), size,
                   sizeof size);
  cli_format_bytes(info->max_alloc_size, max, sizeof max);
  if (phase == BENCH_TOO_LARGE)
    return cli_error("bench", CLI_DATA_ERROR,
                     "the %s needs a buffer of %s; %s allows at most %s",
                     b[k].what, size, info->name, max);
  if (phase == BENCH_ALLOCATING)
    return cli_error("bench", CLI_DATA_ERROR,
                     "allocating the %s (%s) failed: %s", b[k].what, size,
                     clloss_status_name(err));
  return cli_error("bench", CLI_DATA_ERROR,
                   phase == BENCH_ZEROS ? "initialising the %s failed: %s"
                                        : "writing the %s failed: %s",
                   b[k].what, clloss_status_name(err));
}

static int call_failed(loss_run *r, const char *when, clloss_status s) {
  const char *detail = clloss_context_error_detail(r->b.ctx);
  const char *log = clloss_context_build_log(r->b.ctx);
  if (s == CLLOSS_BUILD_FAILURE && log && *log)
    fprintf(stderr, "%s\n", log);
  return cli_error("bench", CLI_DATA_ERROR, "%s %s failed: %s (%s)%s%s", when,
                   r->b.a.loss->name, clloss_status_name(s),
                   clloss_status_string(s), *detail ? ": " : "", detail);
}

/* The variant, the buffers, then the first call, before the copy kernels
 * are built, so that it is the process's first build. */
static int loss_setup(bench_run *b) {
  loss_run *r = (loss_run *)b;
  const bench_args *a = &b->a;
  const clloss_device_info *info = clloss_context_device_info(b->ctx);
  describe(r);
  clloss_status s = CLLOSS_SUCCESS;
  if (a->variant)
    s = clloss_context_set_variant(b->ctx, a->variant);
  if (s != CLLOSS_SUCCESS)
    return cli_error("bench", CLI_DATA_ERROR, "variant %s: %s", a->variant,
                     clloss_status_string(s));
  if (a->dtype == CLLOSS_FLOAT64 && !info->has_fp64)
    return cli_error("bench", CLI_DATA_ERROR,
                     "float64 needs a device with fp64; %s has none",
                     info->name);
  int rc = make_buffers(r);
  if (rc != CLI_OK)
    return rc;
  double t0 = cli_now_ms();
  s = call_and_wait(r);
  b->first_call_ms = cli_now_ms() - t0;
  if (s != CLLOSS_SUCCESS)
    return call_failed(r, "the first", s);
  uint64_t bad_row = 0;
  s = clloss_check_device_errors(b->ctx, b->queue, &bad_row);
  if (s != CLLOSS_SUCCESS)
    return call_failed(r, "checking the targets of", s);
  r->variant = clloss_context_last_variant(b->ctx);
  r->bytes = traffic(r);
  char msg[256];
  if (!a->no_copy && bench_copy_open(b->ctx, (size_t)r->bytes, 3, &r->copy, msg,
                                     sizeof msg) != CL_SUCCESS)
    return cli_error("bench", CLI_DATA_ERROR,
                     "copy kernel: %s (--no-copy skips it)", msg);
  b->steps = r->copy ? 2 : 1;
  return CLI_OK;
}

/* A round of the timed loop: the loss (k = 0), then one copy (k = 1). */
static int loss_step(void *state, int k, int timed) {
  loss_run *r = state;
  double ms;
  if (k == 1)
    return bench_copy_run(r->copy, &ms) == CL_SUCCESS
               ? CLI_OK
               : cli_error("bench", CLI_DATA_ERROR, "a copy kernel run failed");
  const clloss_status s = call_and_wait(r);
  return s == CLLOSS_SUCCESS
             ? CLI_OK
             : call_failed(r, timed ? "a timed run of" : "a warm-up run of", s);
}

static void loss_done(bench_run *b) {
  loss_run *r = (loss_run *)b;
  r->loss_value = bench_read_value(b->queue, r->b.m[L_LOSS], r->loss_type);
}

/* Bytes per ms in GB/s; 0 for no time. */
static double gbps(double bytes, double ms) {
  return ms > 0 ? bytes / ms / 1e6 : 0;
}

static void loss_text(const bench_run *b) {
  const loss_run *r = (const loss_run *)b;
  const bench_args *a = &b->a;
  const clloss_device_info *info = clloss_context_device_info(b->ctx);
  const double rate = gbps((double)r->bytes, b->median[0]);
  char bytes[32];
  cli_format_bytes(r->bytes, bytes, sizeof bytes);
  printf("bench %s ", a->loss->name);
  if (a->loss->family != CLI_POINTWISE || a->rows)
    printf("[%zu, %zu]", a->rows, a->classes);
  else
    printf("[%zu]", a->numel);
  printf(" %s", clloss_dtype_name(a->dtype));
  if (a->loss->family != CLI_POINTWISE)
    printf(" (targets %s)", clloss_dtype_name(a->target_dtype));
  printf(", reduction %s, %s\n", clloss_reduction_name(a->reduction),
         a->no_grad ? "loss only" : "loss and gradient");
  printf("device %zu: %s (%s), variant %s\n", b->device_index, info->name,
         info->platform_name, r->variant);
  printf("first call %.1f ms (program build included); context %.1f ms "
         "after %.1f ms of OpenCL start-up\n",
         b->first_call_ms, b->context_ms, b->opencl_init_ms);
  printf("%zu runs after %zu warm-up: median %.3f ms, min %.3f ms, max %.3f "
         "ms\n",
         a->repeat, a->warmup, b->median[0], b->min[0], b->max[0]);
  printf("traffic %s (%llu bytes): %.2f GB/s\n", bytes, r->bytes, rate);
  if (r->copy) {
    const double copy = gbps((double)bench_copy_bytes(r->copy), b->median[1]);
    printf("copy kernel (%s, interleaved): median %.3f ms, %.2f GB/s; loss "
           "at %.2f of copy\n",
           bench_copy_kernel(r->copy), b->median[1], copy, rate / copy);
  }
  printf("loss value %.6g\n", r->loss_value);
}

static void loss_json(const bench_run *b, json_writer *w) {
  static const char *const no_copy[] = {
      "copy_gbps", "copy_kernel", "copy_median_ms", "copy_min_ms", "copy_bytes",
      "ratio",     NULL};
  const loss_run *r = (const loss_run *)b;
  const bench_args *a = &b->a;
  const clloss_device_info *info = clloss_context_device_info(b->ctx);
  const int rows_family = a->loss->family != CLI_POINTWISE;
  const size_t shape[2] = {rows_family || a->rows ? a->rows : a->numel,
                           a->classes};
  const double rate = gbps((double)r->bytes, b->median[0]);
  json_str(w, "platform", info->platform_name);
  json_str(w, "dtype", clloss_dtype_name(a->dtype));
  json_str(w, "target_dtype",
           clloss_dtype_name(rows_family ? a->target_dtype : a->dtype));
  json_sizes(w, "shape", shape, rows_family || a->rows ? 2 : 1);
  json_str(w, "reduction", clloss_reduction_name(a->reduction));
  json_bool(w, "grad", !a->no_grad);
  json_str(w, "variant", r->variant);
  json_uint(w, "repeat", a->repeat);
  json_uint(w, "warmup", a->warmup);
  json_num(w, "median_ms", b->median[0], "%.4f");
  json_num(w, "min_ms", b->min[0], "%.4f");
  json_num(w, "max_ms", b->max[0], "%.4f");
  json_nums(w, "times_ms", b->times[0], a->repeat, "%.4f");
  json_uint(w, "bytes", r->bytes);
  json_num(w, "gbps", rate, "%.4g");
  if (r->copy) {
    const size_t bytes = bench_copy_bytes(r->copy);
    const double copy = gbps((double)bytes, b->median[1]);
    json_num(w, "copy_gbps", copy, "%.4g");
    json_str(w, "copy_kernel", bench_copy_kernel(r->copy));
    json_num(w, "copy_median_ms", b->median[1], "%.4f");
    json_num(w, "copy_min_ms", b->min[1], "%.4f");
    json_uint(w, "copy_bytes", bytes);
    json_num(w, "ratio", rate / copy, "%.4f");
  } else {
    json_nulls(w, no_copy);
  }
  json_num(w, "first_call_ms", b->first_call_ms, "%.3f");
  json_num(w, "opencl_init_ms", b->opencl_init_ms, "%.3f");
  json_num(w, "context_ms", b->context_ms, "%.3f");
  json_num(w, "loss_value", r->loss_value, "%.9g");
}

static void loss_release(bench_run *b) {
  bench_copy_close(((loss_run *)b)->copy);
}

static const bench_opt loss_opts[] = {
    {"--rows", BENCH_SIZE, 1, (size_t)1 << 40, BENCH_AT(rows), 0},
    {"--classes", BENCH_SIZE, 1, (size_t)1 << 40, BENCH_AT(classes), 0},
    {"--numel", BENCH_SIZE, 1, (size_t)1 << 46, BENCH_AT(numel), 0},
    {"--dtype", BENCH_DTYPE, 0, 0, BENCH_AT(dtype), 0},
    {"--seed", BENCH_SIZE, 0, (size_t)-1 >> 1, BENCH_AT(seed), 1},
    {"--variant", BENCH_VARIANT, 0, 0, BENCH_AT(variant), 0},
    {"--target-dtype", BENCH_TARGET, 0, 0, BENCH_AT(target_dtype), 0},
    {"--reduction", BENCH_REDUCTION, 0, 0, BENCH_AT(reduction), 0},
    {"--no-grad", BENCH_FLAG, 0, 0, BENCH_AT(no_grad), 0},
    {"--no-copy", BENCH_FLAG, 0, 0, BENCH_AT(no_copy), 0}};

static const bench_parser loss_parser = {
    loss_opts, BENCH_COUNT(loss_opts), 1, 10, 2, loss_arg, loss_check};

static const bench_spec bench_losses = {
    &loss_parser, sizeof(loss_run), loss_setup, loss_step,
    loss_done,    loss_text,        loss_json,  loss_release};

/* ---- the benchmarks: argv[1] (NULL: any) and --vocab-parallel ---- */

#ifndef CLLOSS_CLI_HAVE_MPI
/* Without the MPI layer vocab_parallel.c is not built: its entry points
 * say how to get it. */
static int no_mpi(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_no_mpi("bench");
}
#define cli_bench_linear_vocab_parallel no_mpi
#define cli_bench_vocab_parallel no_mpi
#endif

static const struct {
  const char *name;
  int vocab_parallel;
  const char *help;
  const bench_spec *spec;            /* on one device, */
  int (*mpi)(int argc, char **argv); /* or under mpirun */
} benches[] = {{"linear_cross_entropy", 0, linear_help, &bench_linear, NULL},
               {"linear_cross_entropy", 1, lvp_help, NULL,
                cli_bench_linear_vocab_parallel},
               {NULL, 1, vp_help, NULL, cli_bench_vocab_parallel},
               {NULL, 0, bench_help, &bench_losses, NULL}};

int cli_bench(int argc, char **argv) {
  int vp = 0, k = 0;
  for (int i = 1; i < argc; i++)
    vp |= cli_flag(argv[i], "--vocab-parallel");
  while (
      benches[k].vocab_parallel != vp ||
      (benches[k].name && (argc < 2 || strcmp(argv[1], benches[k].name) != 0)))
    k++;
  for (int i = 1; i < argc; i++)
    if (cli_is_help(argv[i])) {
      fputs(benches[k].help, stdout);
      return CLI_OK;
    }
  return benches[k].spec ? bench_main(benches[k].spec, argc, argv)
                         : benches[k].mpi(argc, argv);
}
