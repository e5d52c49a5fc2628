/* cli_bench.c - `clloss bench LOSS ...`: times the fused forward+gradient
 * call of one loss on data already on the device, compares its bandwidth
 * with a plain copy kernel on the same device in the same run, and prints
 * readable lines and then one JSON object as the last line of stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench.h"
#include "cli_loss.h"

static const char *const bench_help =
    "usage: clloss bench LOSS [--rows N --classes C | --numel N]\n"
    "                    [--dtype T] [--device I] [--repeat R] [--warmup W]\n"
    "                    [--variant V] [--reduction R] [--no-grad]\n"
    "                    [--target-dtype int64|int32] [--seed S] [--no-copy]\n"
    "                    [--json-only]\n"
    "\n"
    "Times one loss and its gradient on a device: the device-buffer call\n"
    "(clloss_cross_entropy, clloss_nll_loss or clloss_pointwise) on buffers\n"
    "created and filled once, each run timed on the host clock from the\n"
    "call's enqueue until clFinish returns (every kernel, the final\n"
    "reduction included). The same bytes are then copied by a plain copy\n"
    "kernel on the same device, as the bandwidth the loss is compared with.\n"
    "\n"
    "LOSS (torch.nn.functional names): cross_entropy, nll_loss, mse_loss,\n"
    "  l1_loss, huber_loss, smooth_l1_loss, binary_cross_entropy_with_logits,\n"
    "  kl_div; and linear_cross_entropy, the fused linear layer (its own\n"
    "  options: clloss bench linear_cross_entropy --help)\n"
    "\n"
    "Options ('_' may replace '-'):\n"
    "  --rows N, --classes C  shape [N, C] (cross_entropy, nll_loss: default\n"
    "                       4096 x 32000; element-wise losses: any shape)\n"
    "  --numel N            element-wise losses: N elements (default 2^24)\n"
    "  --dtype T            input and gradient storage: float32 (default),\n"
    "                       float16, bfloat16, float64 (needs fp64)\n"
    "  --target-dtype T     cross_entropy, nll_loss: int64 (default), int32\n"
    "  --reduction R        mean (default), sum, none; kl_div: batchmean\n"
    "  --no-grad            the loss only (no gradient output)\n"
    "  --variant V          kernel variant: auto (default), item, group,\n"
    "                       lanes, split (see clloss.h)\n"
    "  --device I           device index or name substring (default: the\n"
    "                       CLLOSS_DEVICE variable, then the first GPU)\n"
    "  --repeat R           timed runs (default 10); the median is reported\n"
    "  --warmup W           untimed runs before them (default 2)\n"
    "  --seed S             seed of the pseudo-random data (default 1)\n"
    "  --no-copy            skip the copy kernel (copy_gbps is null)\n"
    "  --json-only          print only the JSON line\n"
    "  --vocab-parallel     cross_entropy under mpirun, the classes split\n"
    "                       over the processes (clloss bench --vocab-parallel\n"
    "                       --help)\n"
    "\n"
    "Data (float values repeat every 8 MiB; targets do not): logits and\n"
    "inputs uniform in [-5, 5), class targets uniform in\n"
    "[0, C), element-wise targets in [-5, 5) (binary_cross_entropy_with_\n"
    "logits: [0, 1); kl_div: input log q in [-5, 0), target p in (0, 1]);\n"
    "no weights; upstream gradient 1.\n"
    "\n"
    "Bytes (the least traffic the call can have: every input read once,\n"
    "every output written once):\n"
    "  cross_entropy:  N*C*s (input) + N*t (targets) + N*C*s (gradient)\n"
    "                  + loss\n"
    "  nll_loss:       N*s (the target's input entry of each row: nothing\n"
    "                  else is read) + N*t + N*C*s (gradient) + loss\n"
    "  element-wise:   n*s (input) + n*s (target) + n*s (gradient) + loss\n"
    "with s the dtype's size, t the target dtype's, loss = 4 bytes (8 for\n"
    "float64) for mean/sum, one per row or element for none; no gradient\n"
    "term with --no-grad. gbps = bytes / median time / 1e9. copy_gbps: a\n"
    "plain copy kernel moving bytes/2 from one buffer into another (the\n"
    "same bytes, read plus written), the fastest of a few (float4 and\n"
    "float16 elements, one per work-item, grid-stride or in chunks), run\n"
    "after each timed loss run so that both see the same machine load;\n"
    "ratio = gbps / copy_gbps. Its buffers exist alongside the loss's.\n"
    "\n"
    "Output: readable lines, then ONE JSON object as the last line of\n"
    "stdout: loss, device, device_index, platform, dtype, target_dtype,\n"
    "shape, reduction, grad, variant, repeat, warmup, median_ms, min_ms,\n"
    "max_ms, times_ms, bytes, gbps, copy_gbps, copy_kernel, copy_median_ms,\n"
    "copy_min_ms, copy_bytes, ratio, first_call_ms (the very first loss\n"
    "call of the process, program build included), opencl_init_ms (the\n"
    "process's first OpenCL call: the ICD loader and the drivers starting),\n"
    "context_ms (then device selection and context creation), loss_value\n"
    "(a check: NaN is null),\n"
    "loadavg (from /proc/loadavg), clloss_version.\n"
    "Exit status: 0 ok, 1 no device or a failed call, 2 bad usage.\n";

/* `clloss bench cross_entropy --vocab-parallel --help`: here, not in
 * cli_bench_vocab_parallel.c, which is built only with MPI. */
static const char *const vp_help =
    "usage: mpirun -np P clloss bench cross_entropy --vocab-parallel\n"
    "           [--rows N] [--classes V] [--dtype T] [--device I]\n"
    "           [--repeat R] [--warmup W] [--json-only]\n"
    "\n"
    "Times cross_entropy (loss and gradient, reduction mean) with the\n"
    "classes split evenly over the P processes of the job, through the MPI\n"
    "layer (clloss_mpi_cross_entropy on device buffers: partial statistics,\n"
    "one MPI_Allreduce of N + 1 records, finish); each run from a barrier\n"
    "until every process has its gradient (the slowest process's time).\n"
    "Then the same all-reduce alone, and the single-device call\n"
    "(clloss_cross_entropy) on the whole [N, V] problem on process 0's device\n"
    "while the others wait (asleep, not spinning in MPI). Medians of R runs\n"
    "after W untimed ones. Processes that share one device (a CPU device)\n"
    "contend for it: OMPI_MCA_mpi_yield_when_idle=1 keeps Open MPI's waits\n"
    "inside the call from spinning on its cores.\n"
    "\n"
    "  --rows N, --classes V  the whole problem (default 4096 x 32000)\n"
    "  --dtype T            float32 (default), float16, bfloat16, float64\n"
    "  --device I           every process's device (default: CLLOSS_DEVICE,\n"
    "                       then the first GPU)\n"
    "  --repeat R, --warmup W  (default 10 and 2)\n"
    "  --json-only          print only the JSON line\n"
    "\n"
    "bytes_per_process: what each process contributes to the all-reduce,\n"
    "(N + 1) records of 24 bytes (48 for float64); what crosses the wire\n"
    "depends on MPI's algorithm (a ring sends 2 (P-1)/P of it).\n";

/* `clloss bench linear_cross_entropy --vocab-parallel --help`. */
static const char *const lvp_help =
    "usage: mpirun -np P clloss bench linear_cross_entropy --vocab-parallel\n"
    "           [--rows N] [--hidden H] [--classes V] [--chunk-rows K]\n"
    "           [--device I] [--repeat R] [--warmup W] [--json-only]\n"
    "\n"
    "Times linear_cross_entropy (float32, reduction mean, bias; loss, dX,\n"
    "dW and db) with W's rows split evenly over the P processes, through\n"
    "the MPI layer (clloss_mpi_linear_cross_entropy on device buffers: per\n"
    "chunk of rows its logits, one MPI_Allreduce of the chunk's records,\n"
    "its gradients; then one MPI_Allreduce of d_hidden); each run from a\n"
    "barrier until every process has its results (the slowest process's\n"
    "time). Then the single-device call on the whole problem on process 0's\n"
    "device while the others wait asleep. Medians of R runs after W untimed\n"
    "ones. Processes that share one device (a CPU device) contend for it.\n"
    "\n"
    "  --rows N, --hidden H, --classes V  the whole problem (default\n"
    "                       2048 x 512 x 32000)\n"
    "  --chunk-rows K       rows per chunk (default: chosen as the\n"
    "                       single-device call chooses)\n"
    "  --device I           every process's device\n"
    "  --repeat R, --warmup W  (default 5 and 1)\n"
    "  --json-only          print only the JSON line\n"
    "\n"
    "bytes_per_process: what each process contributes to the all-reduces:\n"
    "3 doubles, (rows + chunks) records of 24 bytes, (N H + 1) floats of\n"
    "d_hidden.\n";

typedef struct bench_args {
  const cli_loss_info *loss;
  bench_opts o; /* --repeat, --warmup, --device, --dtype, --seed, ... */
  size_t rows, classes, numel;
  int have_rows, have_classes, have_numel;
  clloss_dtype target_dtype;
  int have_target_dtype;
  clloss_reduction reduction;
  int no_grad, no_copy;
} bench_args;

#define usage(...) cli_usage("bench", __VA_ARGS__)

/* One option at argv[*i]; *matched = 0 when it is none of ours. */
static int parse_option(int argc, char **argv, int *i, bench_args *a,
                        int *matched) {
  static const bench_size sizes[] = {
      {"--rows", 1, (size_t)1 << 40, offsetof(bench_args, rows)},
      {"--classes", 1, (size_t)1 << 40, offsetof(bench_args, classes)},
      {"--numel", 1, (size_t)1 << 46, offsetof(bench_args, numel)}};
  const char *v;
  int rc = bench_size_option(argc, argv, i, sizes, 3, a, matched);
  if (!*matched)
    rc = bench_option(argc, argv, i, BENCH_DTYPE | BENCH_SEED | BENCH_VARIANT,
                      &a->o, matched);
  if (*matched)
    return rc;
  *matched = 1;
  if (cli_option(argc, argv, i, "--target-dtype", &v)) {
    rc = bench_parse_dtype("--target-dtype", v, 1, &a->target_dtype);
    a->have_target_dtype = 1;
  } else if (cli_option(argc, argv, i, "--reduction", &v)) {
    rc = cli_parse_reduction("bench", v, &a->reduction);
  } else if (cli_flag(argv[*i], "--no-grad")) {
    a->no_grad = 1;
    (*i)++;
  } else if (cli_flag(argv[*i], "--no-copy")) {
    a->no_copy = 1;
    (*i)++;
  } else {
    *matched = 0;
  }
  return rc;
}

/* Checks the combination of options and fills in the defaults. */
static int finish_args(bench_args *a) {
  if (!a->loss)
    return usage("missing LOSS");
  a->have_rows = a->rows != 0;
  a->have_classes = a->classes != 0;
  a->have_numel = a->numel != 0;
  const int rows_family = a->loss->family != CLI_POINTWISE;
  if (rows_family) {
    if (a->have_numel)
      return usage("%s takes --rows and --classes, not --numel", a->loss->name);
    if (!a->have_rows)
      a->rows = 4096;
    if (!a->have_classes)
      a->classes = 32000;
  } else {
    if (a->have_target_dtype)
      return usage("--target-dtype is for cross_entropy and nll_loss");
    if (a->have_numel && (a->have_rows || a->have_classes))
      return usage("give either --numel or --rows and --classes");
    if (a->have_rows != a->have_classes)
      return usage("%s needs both --rows and --classes (or --numel)",
                   a->loss->name);
    if (!a->have_numel && !a->have_rows)
      a->numel = (size_t)1 << 24;
  }
  if (a->have_rows) {
    if (a->classes > ((size_t)1 << 46) / a->rows)
      return usage("--rows x --classes is too large");
    if (!rows_family)
      a->numel = a->rows * a->classes;
  }
  if (a->reduction == CLLOSS_REDUCTION_BATCHMEAN &&
      (a->loss->family != CLI_POINTWISE || a->loss->pointwise != CLLOSS_KL_DIV))
    return usage("--reduction batchmean is for kl_div only");
  if (a->o.variant && strcmp(a->o.variant, "split") == 0 &&
      a->loss->family != CLI_CROSS_ENTROPY)
    return usage("--variant split is for cross_entropy only");
  return CLI_OK;
}

static int parse_args(int argc, char **argv, bench_args *a) {
  for (int i = 1; i < argc;) {
    int matched;
    int rc = parse_option(argc, argv, &i, a, &matched);
    if (rc != CLI_OK)
      return rc;
    if (matched)
      continue;
    const char *arg = argv[i];
    if (strncmp(arg, "-", 1) == 0)
      return usage("unknown option '%s'", arg);
    if (a->loss)
      return usage("unexpected argument '%s'", arg);
    if (!(a->loss = cli_find_loss(arg)))
      return usage("unknown loss '%s'", arg);
    i++;
  }
  return finish_args(a);
}

/* ---- the benchmark ---- */

typedef struct bench_run {
  const bench_args *a;
  clloss_context *ctx;
  cl_command_queue queue;
  cl_mem input, target, loss, grad;
  size_t count;      /* input elements */
  size_t loss_count; /* loss outputs */
  clloss_dtype loss_type;
  clloss_cross_entropy_desc ce;
  clloss_nll_loss_desc nll;
  clloss_pointwise_desc pw;
  bench_copy *copy; /* the copy kernel, or NULL */
} bench_run;

static clloss_status call(bench_run *r) {
  const clloss_buffer none = {NULL, 0};
  const clloss_buffer in = {r->input, 0}, tg = {r->target, 0},
                      lo = {r->loss, 0}, gr = {r->grad, 0};
  switch (r->a->loss->family) {
  case CLI_CROSS_ENTROPY:
    return clloss_cross_entropy(r->ctx, r->queue, &r->ce, in, tg, none, none,
                                lo, gr, 0, NULL, NULL);
  case CLI_NLL_LOSS:
    return clloss_nll_loss(r->ctx, r->queue, &r->nll, in, tg, none, none, lo,
                           gr, 0, NULL, NULL);
  case CLI_POINTWISE:
    return clloss_pointwise(r->ctx, r->queue, &r->pw, in, tg, none, none, none,
                            lo, gr, 0, NULL, NULL);
  }
  return CLLOSS_INVALID_ARGUMENT;
}

/* One call, until the device is done. */
static clloss_status call_and_wait(bench_run *r) {
  return bench_finish(r->queue, call(r));
}

static void describe(bench_run *r) {
  const bench_args *a = r->a;
  const int rows_family = a->loss->family != CLI_POINTWISE;
  r->loss_type = a->o.dtype == CLLOSS_FLOAT64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  if (rows_family) {
    r->count = a->rows * a->classes;
    r->loss_count = a->reduction == CLLOSS_REDUCTION_NONE ? a->rows : 1;
  } else {
    r->count = a->numel;
    r->loss_count = a->reduction == CLLOSS_REDUCTION_NONE ? a->numel : 1;
  }
  clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  ce.rows = a->rows;
  ce.classes = a->classes;
  ce.input_type = a->o.dtype;
  ce.target_type = a->target_dtype;
  ce.reduction = a->reduction;
  r->ce = ce;
  clloss_nll_loss_desc nll = CLLOSS_NLL_LOSS_DESC_INIT;
  nll.rows = a->rows;
  nll.classes = a->classes;
  nll.input_type = a->o.dtype;
  nll.target_type = a->target_dtype;
  nll.reduction = a->reduction;
  r->nll = nll;
  clloss_pointwise_desc pw = CLLOSS_POINTWISE_DESC_INIT(a->loss->pointwise);
  pw.count = a->numel;
  pw.input_type = a->o.dtype;
  pw.reduction = a->reduction;
  pw.batch = a->have_rows ? a->rows : a->numel;
  r->pw = pw;
}

/* Bytes of the least traffic (see the help text). */
static unsigned long long traffic(const bench_run *r) {
  const bench_args *a = r->a;
  const unsigned long long s = clloss_dtype_size(a->o.dtype);
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

static void release_buffers(bench_run *r) {
  cl_mem *all[] = {&r->input, &r->target, &r->loss, &r->grad};
  for (size_t i = 0; i < 4; i++)
    if (*all[i]) {
      clReleaseMemObject(*all[i]);
      *all[i] = NULL;
    }
}

static int make_buffer(bench_run *r, const char *what, size_t bytes,
                       cl_mem_flags flags, cl_mem *out) {
  const clloss_device_info *info = clloss_context_device_info(r->ctx);
  char size[32], max[32];
  cli_format_bytes(bytes, size, sizeof size);
  if (bytes > info->max_alloc_size) {
    cli_format_bytes(info->max_alloc_size, max, sizeof max);
    return cli_error("bench", CLI_DATA_ERROR,
                     "the %s needs a buffer of %s; %s allows at most %s", what,
                     size, info->name, max);
  }
  cl_int err;
  *out = clCreateBuffer(clloss_context_cl_context(r->ctx), flags, bytes, NULL,
                        &err);
  if (!*out)
    return cli_error("bench", CLI_DATA_ERROR,
                     "allocating the %s (%s) failed: %s", what, size,
                     clloss_status_name(err));
  return CLI_OK;
}

static int fill(bench_run *r, const char *what, cl_mem mem, clloss_dtype t,
                size_t count, double lo, double hi, unsigned long long salt) {
  cl_int err = bench_fill(r->queue, mem, t, count, lo, hi,
                          r->a->o.seed * 0x100000001b3ull + salt);
  if (err != CL_SUCCESS)
    return cli_error("bench", CLI_DATA_ERROR, "writing the %s failed: %s", what,
                     clloss_status_name(err));
  return CLI_OK;
}

/* Buffers created and filled once. */
static int setup(bench_run *r) {
  const bench_args *a = r->a;
  const size_t s = clloss_dtype_size(a->o.dtype);
  const int rows_family = a->loss->family != CLI_POINTWISE;
  const size_t tcount = rows_family ? a->rows : r->count;
  const clloss_dtype tt = rows_family ? a->target_dtype : a->o.dtype;
  int rc;
  if ((rc = make_buffer(r, "input", r->count * s, CL_MEM_READ_ONLY,
                        &r->input)) != CLI_OK ||
      (rc = make_buffer(r, "target", tcount * clloss_dtype_size(tt),
                        CL_MEM_READ_ONLY, &r->target)) != CLI_OK ||
      (rc = make_buffer(r, "loss",
                        r->loss_count * clloss_dtype_size(r->loss_type),
                        CL_MEM_READ_WRITE, &r->loss)) != CLI_OK ||
      (!a->no_grad &&
       (rc = make_buffer(r, "gradient", r->count * s, CL_MEM_WRITE_ONLY,
                         &r->grad)) != CLI_OK))
    return rc;
  double in_lo = -5, in_hi = 5, t_lo = -5, t_hi = 5;
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
  if ((rc = fill(r, "input", r->input, a->o.dtype, r->count, in_lo, in_hi,
                 1)) != CLI_OK ||
      (rc = fill(r, "target", r->target, tt, tcount, t_lo, t_hi, 2)) != CLI_OK)
    return rc;
  if (!a->no_grad) {
    /* Touch the gradient once so that no timed run pays for first use. */
    const cl_uint zero = 0;
    cl_int err = clEnqueueFillBuffer(r->queue, r->grad, &zero, sizeof zero, 0,
                                     r->count * s, 0, NULL, NULL);
    if (err == CL_SUCCESS)
      err = clFinish(r->queue);
    if (err != CL_SUCCESS)
      return cli_error("bench", CLI_DATA_ERROR,
                       "initialising the gradient failed: %s",
                       clloss_status_name(err));
  }
  return CLI_OK;
}

static int call_failed(bench_run *r, const char *when, clloss_status s) {
  const char *detail = clloss_context_error_detail(r->ctx);
  const char *log = clloss_context_build_log(r->ctx);
  if (s == CLLOSS_BUILD_FAILURE && log && *log)
    fprintf(stderr, "%s\n", log);
  return cli_error("bench", CLI_DATA_ERROR, "%s %s failed: %s (%s)%s%s", when,
                   r->a->loss->name, clloss_status_name(s),
                   clloss_status_string(s), *detail ? ": " : "", detail);
}

/* ---- output ---- */

typedef struct bench_result {
  size_t device_index;
  const char *variant;
  double opencl_init_ms, context_ms, first_call_ms, median_ms, min_ms, max_ms;
  double *times; /* sorted */
  unsigned long long bytes;
  double gbps, loss_value;
  int have_copy;
  const char *copy_kernel;
  size_t copy_bytes;
  double copy_median_ms, copy_min_ms, copy_gbps;
  double *copy_times; /* sorted */
  int have_load;
  double load[3];
} bench_result;

static void print_shape(FILE *out, const bench_args *a, int json) {
  const char *sep = json ? "," : ", ";
  if (a->loss->family != CLI_POINTWISE || a->have_rows)
    fprintf(out, "[%zu%s%zu]", a->rows, sep, a->classes);
  else
    fprintf(out, "[%zu]", a->numel);
}

static void print_text(const bench_args *a, const bench_run *r,
                       const bench_result *res) {
  const clloss_device_info *info = clloss_context_device_info(r->ctx);
  char bytes[32];
  cli_format_bytes(res->bytes, bytes, sizeof bytes);
  printf("bench %s ", a->loss->name);
  print_shape(stdout, a, 0);
  printf(" %s", clloss_dtype_name(a->o.dtype));
  if (a->loss->family != CLI_POINTWISE)
    printf(" (targets %s)", clloss_dtype_name(a->target_dtype));
  printf(", reduction %s, %s\n", clloss_reduction_name(a->reduction),
         a->no_grad ? "loss only" : "loss and gradient");
  printf("device %zu: %s (%s), variant %s\n", res->device_index, info->name,
         info->platform_name, res->variant);
  printf("first call %.1f ms (program build included); context %.1f ms "
         "after %.1f ms of OpenCL start-up\n",
         res->first_call_ms, res->context_ms, res->opencl_init_ms);
  printf("%d runs after %d warm-up: median %.3f ms, min %.3f ms, max %.3f "
         "ms\n",
         a->o.repeat, a->o.warmup, res->median_ms, res->min_ms, res->max_ms);
  printf("traffic %s (%llu bytes): %.2f GB/s\n", bytes, res->bytes, res->gbps);
  if (res->have_copy)
    printf("copy kernel (%s, interleaved): median %.3f ms, %.2f GB/s; loss "
           "at %.2f of copy\n",
           res->copy_kernel, res->copy_median_ms, res->copy_gbps,
           res->gbps / res->copy_gbps);
  printf("loss value %.6g\n", res->loss_value);
}

static void print_json(const bench_args *a, const bench_run *r,
                       const bench_result *res) {
  const clloss_device_info *info = clloss_context_device_info(r->ctx);
  const int rows_family = a->loss->family != CLI_POINTWISE;
  const size_t shape[2] = {rows_family || a->have_rows ? a->rows : a->numel,
                           a->classes};
  json_writer w;
  json_begin(&w, stdout);
  json_str(&w, "loss", a->loss->name);
  json_str(&w, "device", info->name);
  json_uint(&w, "device_index", res->device_index);
  json_str(&w, "platform", info->platform_name);
  json_str(&w, "dtype", clloss_dtype_name(a->o.dtype));
  json_str(&w, "target_dtype",
           clloss_dtype_name(rows_family ? a->target_dtype : a->o.dtype));
  json_sizes(&w, "shape", shape, rows_family || a->have_rows ? 2 : 1);
  json_str(&w, "reduction", clloss_reduction_name(a->reduction));
  json_bool(&w, "grad", !a->no_grad);
  json_str(&w, "variant", res->variant);
  json_uint(&w, "repeat", (unsigned long long)a->o.repeat);
  json_uint(&w, "warmup", (unsigned long long)a->o.warmup);
  json_num(&w, "median_ms", res->median_ms, "%.4f");
  json_num(&w, "min_ms", res->min_ms, "%.4f");
  json_num(&w, "max_ms", res->max_ms, "%.4f");
  json_nums(&w, "times_ms", res->times, (size_t)a->o.repeat, "%.4f");
  json_uint(&w, "bytes", res->bytes);
  json_num(&w, "gbps", res->gbps, "%.4g");
  if (res->have_copy) {
    json_num(&w, "copy_gbps", res->copy_gbps, "%.4g");
    json_str(&w, "copy_kernel", res->copy_kernel);
    json_num(&w, "copy_median_ms", res->copy_median_ms, "%.4f");
    json_num(&w, "copy_min_ms", res->copy_min_ms, "%.4f");
    json_uint(&w, "copy_bytes", res->copy_bytes);
    json_num(&w, "ratio", res->gbps / res->copy_gbps, "%.4f");
  } else {
    static const char *const none[] = {"copy_gbps",      "copy_kernel",
                                       "copy_median_ms", "copy_min_ms",
                                       "copy_bytes",     "ratio"};
    for (size_t k = 0; k < 6; k++)
      json_null(&w, none[k]);
  }
  json_num(&w, "first_call_ms", res->first_call_ms, "%.3f");
  json_num(&w, "opencl_init_ms", res->opencl_init_ms, "%.3f");
  json_num(&w, "context_ms", res->context_ms, "%.3f");
  json_num(&w, "loss_value", res->loss_value, "%.9g");
  if (res->have_load)
    json_nums(&w, "loadavg", res->load, 3, "%.2f");
  else
    json_null(&w, "loadavg");
  json_str(&w, "clloss_version", CLLOSS_VERSION_STRING);
  json_end(&w);
}

/* A round of the timed loop: the loss (k = 0), then one copy (k = 1). */
static int round_step(void *state, int k, int timed) {
  bench_run *r = state;
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

/* Everything after the context exists. The first call comes before the
 * copy kernels are built, so that it is the process's first build. */
static int measure(bench_run *r, bench_result *res) {
  const bench_args *a = r->a;
  int rc = setup(r);
  if (rc != CLI_OK)
    return rc;
  double t0 = cli_now_ms();
  clloss_status s = call_and_wait(r);
  res->first_call_ms = cli_now_ms() - t0;
  if (s != CLLOSS_SUCCESS)
    return call_failed(r, "the first", s);
  uint64_t bad_row = 0;
  s = clloss_check_device_errors(r->ctx, r->queue, &bad_row);
  if (s != CLLOSS_SUCCESS)
    return call_failed(r, "checking the targets of", s);
  res->variant = clloss_context_last_variant(r->ctx);
  res->bytes = traffic(r);

  if (!a->no_copy) {
    char msg[256];
    if (bench_copy_open(r->ctx, (size_t)res->bytes, 3, &r->copy, msg,
                        sizeof msg) != CL_SUCCESS)
      return cli_error("bench", CLI_DATA_ERROR,
                       "copy kernel: %s (--no-copy skips it)", msg);
  }
  double *const times[2] = {res->times, res->copy_times};
  rc = bench_rounds(a->o.warmup, a->o.repeat, round_step, r->copy ? 2 : 1, r,
                    times);
  if (rc == CLI_OK) {
    res->loss_value = bench_read_value(r->queue, r->loss, r->loss_type);
    bench_stats(res->times, (size_t)a->o.repeat, &res->median_ms, &res->min_ms);
    res->max_ms = res->times[a->o.repeat - 1];
    res->gbps =
        res->median_ms > 0 ? (double)res->bytes / res->median_ms / 1e6 : 0;
  }
  if (rc == CLI_OK && r->copy) {
    bench_stats(res->copy_times, (size_t)a->o.repeat, &res->copy_median_ms,
                &res->copy_min_ms);
    res->copy_kernel = bench_copy_kernel(r->copy);
    res->copy_bytes = bench_copy_bytes(r->copy);
    res->copy_gbps = res->copy_median_ms > 0
                         ? (double)res->copy_bytes / res->copy_median_ms / 1e6
                         : 0;
    res->have_copy = 1;
  }
  return rc;
}

int cli_bench(int argc, char **argv) {
  const int linear = argc > 1 && strcmp(argv[1], "linear_cross_entropy") == 0;
  int vp = 0;
  for (int i = 1; i < argc; i++)
    vp |= cli_flag(argv[i], "--vocab-parallel");
  for (int i = 1; i < argc; i++)
    if (cli_is_help(argv[i])) {
      fputs(linear ? (vp ? lvp_help : bench_linear_help)
                   : (vp ? vp_help : bench_help),
            stdout);
      return CLI_OK;
    }
  if (linear)
    return vp ? cli_bench_linear_vocab_parallel(argc, argv)
              : cli_bench_linear(argc, argv);
  if (vp)
    return cli_bench_vocab_parallel(argc, argv);
  bench_args a;
  memset(&a, 0, sizeof a);
  a.o.dtype = CLLOSS_FLOAT32;
  a.target_dtype = CLLOSS_INT64;
  a.reduction = CLLOSS_REDUCTION_MEAN;
  a.o.repeat = 10;
  a.o.warmup = 2;
  a.o.seed = 1;
  int rc = parse_args(argc, argv, &a);
  if (rc != CLI_OK)
    return rc;

  bench_run r;
  memset(&r, 0, sizeof r);
  r.a = &a;
  describe(&r);
  bench_result res;
  memset(&res, 0, sizeof res);
  res.loss_value = NAN;
  res.times = calloc((size_t)a.o.repeat, sizeof *res.times);
  res.copy_times = calloc((size_t)a.o.repeat, sizeof *res.copy_times);
  if (!res.times || !res.copy_times) {
    free(res.times);
    free(res.copy_times);
    return cli_error("bench", CLI_DATA_ERROR, "out of host memory");
  }

  /* Start-up in parts: the drivers' own (loading and initialising them,
   * whoever makes the process's first OpenCL call), then clloss's. */
  double t0 = cli_now_ms();
  size_t devices = 0;
  clloss_list_devices(NULL, 0, &devices);
  res.opencl_init_ms = cli_now_ms() - t0;
  t0 = cli_now_ms();
  rc = cli_open_device("bench", a.o.device, &r.ctx, &res.device_index);
  res.context_ms = cli_now_ms() - t0;
  if (rc == CLI_OK) {
    r.queue = clloss_context_queue(r.ctx);
    const clloss_device_info *info = clloss_context_device_info(r.ctx);
    clloss_status s = CLLOSS_SUCCESS;
    if (a.o.variant)
      s = clloss_context_set_variant(r.ctx, a.o.variant);
    if (s != CLLOSS_SUCCESS)
      rc = cli_error("bench", CLI_DATA_ERROR, "variant %s: %s", a.o.variant,
                     clloss_status_string(s));
    else if (a.o.dtype == CLLOSS_FLOAT64 && !info->has_fp64)
      rc = cli_error("bench", CLI_DATA_ERROR,
                     "float64 needs a device with fp64; %s has none",
                     info->name);
    else
      rc = measure(&r, &res);
  }
  if (rc == CLI_OK) {
    res.have_load = bench_loadavg(res.load);
    if (!a.o.json_only)
      print_text(&a, &r, &res);
    print_json(&a, &r, &res);
    fflush(stdout);
  }
  release_buffers(&r);
  bench_copy_close(r.copy);
  clloss_context_release(r.ctx);
  free(res.times);
  free(res.copy_times);
  return rc;
}
