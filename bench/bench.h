/* bench.h - `clloss bench`: one harness (options as data, the timed
 * rounds, the JSON writer, device set-up and release) and the benchmarks
 * as table entries; deterministic pseudo-random data in device buffers and
 * a plain copy kernel as the device's reference bandwidth. */
#ifndef CLLOSS_BENCH_H
#define CLLOSS_BENCH_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "clloss.h"

/* Writes `count` elements of type `dtype` into `mem` (blocking, in chunks,
 * through `queue`): float types uniform in [lo, hi), repeating every 8 MiB,
 * int32 and int64 uniform integers in [0, (int64)hi). Element i depends
 * only on (seed, i).
 * Returns CL_SUCCESS, an OpenCL error, or CL_OUT_OF_HOST_MEMORY. */
cl_int bench_fill(cl_command_queue queue, cl_mem mem, clloss_dtype dtype,
                  size_t count, double lo, double hi, uint64_t seed);

/* A plain copy on ctx's device and queue, the bandwidth reference: two
 * buffers of `bytes` / 2 (rounded down to 64 bytes, at least 64) and a few
 * copy kernels, built with clCreateProgramWithSource on ctx's cl_context.
 */
typedef struct bench_copy bench_copy;

/* Builds the kernels, allocates and touches the buffers, and keeps the
 * fastest kernel: each is run once, then timed `calibrate` times (enqueue
 * to clFinish), lowest median wins. Returns CL_SUCCESS, or an OpenCL error
 * with a sentence in msg (nothing is left allocated then). */
cl_int bench_copy_open(clloss_context *ctx, size_t bytes, int calibrate,
                       bench_copy **out, char *msg, size_t msglen);
/* One copy with the chosen kernel, timed from enqueue to clFinish. */
cl_int bench_copy_run(bench_copy *c, double *ms);
/* "float4", "float16 chunks", ...: the chosen kernel. */
const char *bench_copy_kernel(const bench_copy *c);
/* Bytes read plus bytes written by one copy. */
size_t bench_copy_bytes(const bench_copy *c);
/* Releases every OpenCL object of c; NULL is a no-op. */
void bench_copy_close(bench_copy *c);

/* ---- options (harness.c) ---- */

/* Every benchmark's arguments in one struct, so that an option is data:
 * its name, kind, range and where it is stored (offsetof). */
typedef struct bench_args {
  const struct cli_loss_info *loss; /* the loss benchmark's LOSS */
  const char *device, *variant;
  size_t repeat, warmup, seed;
  clloss_dtype dtype, target_dtype; /* target_dtype: BENCH_UNSET at first */
  clloss_reduction reduction;
  size_t rows, classes, numel, hidden, chunk_rows, vocab_block, limit;
  int json_only, no_grad, no_copy, bias, no_unfused;
} bench_args;
#define BENCH_UNSET ((clloss_dtype)-1)

enum bench_kind {
  BENCH_SIZE,      /* a whole number in [lo, hi] (size_t) */
  BENCH_FLAG,      /* no value: 1 (int) */
  BENCH_DTYPE,     /* a float type */
  BENCH_TARGET,    /* int64 or int32 */
  BENCH_REDUCTION, /* none, mean, sum, batchmean */
  BENCH_VARIANT,   /* auto, item, group, split, lanes */
  BENCH_DEVICE     /* a non-empty string */
};
typedef struct bench_opt {
  const char *name;
  enum bench_kind kind;
  size_t lo, hi, at, def; /* at: BENCH_AT(field); def: a size's default */
} bench_opt;
#define BENCH_AT(field) offsetof(bench_args, field)
#define BENCH_COUNT(table) (sizeof table / sizeof *table)
/* A benchmark's command line: its options (n of them) and those every
 * benchmark has (--repeat, --warmup, --device, --json-only), from
 * argv[first] on, after the defaults (sizes: def; --target-dtype:
 * BENCH_UNSET; the rest 0: float32, mean); `other` takes what no option
 * matches (CLI_OK, or its usage error); `check` the combination. */
typedef struct bench_parser {
  const bench_opt *opts;
  size_t n;
  int first;
  size_t repeat, warmup; /* their defaults */
  int (*other)(bench_args *a, const char *arg);
  int (*check)(bench_args *a);
} bench_parser;
int bench_parse(const bench_parser *p, int argc, char **argv, bench_args *a);

/* ---- device buffers (harness.c) ---- */

/* What fills a buffer, and where bench_buffers failed. */
enum bench_phase {
  BENCH_KEEP,      /* left as allocated */
  BENCH_RANDOM,    /* bench_fill's data in [lo, hi) from seed */
  BENCH_ZEROS,     /* touched once, so that no timed run pays for it */
  BENCH_TOO_LARGE, /* over the `max` given */
  BENCH_ALLOCATING
};
/* A buffer of `count` (0: none) elements of `type`. */
typedef struct bench_buf {
  const char *what;
  size_t count;
  clloss_dtype type;
  cl_mem_flags flags;
  enum bench_phase fill;
  double lo, hi;
  uint64_t seed;
} bench_buf;
/* Creates mem[i] for each of b[0..n) in turn, then fills them in turn:
 * CL_SUCCESS, or the error of buffer *bad in *phase (BENCH_TOO_LARGE:
 * bytes over max, unless max is 0). */
cl_int bench_buffers(clloss_context *ctx, const bench_buf *b, size_t n,
                     size_t max, cl_mem *mem, size_t *bad,
                     enum bench_phase *phase);
/* Releases mem[0..n) that exist, and clears them. */
void bench_release(cl_mem *mem, size_t n);

/* ---- one benchmark on one device (harness.c) ---- */

/* What bench_main keeps for a benchmark and releases; its own state
 * follows it (the benchmark's struct starts with a bench_run). */
typedef struct bench_run {
  bench_args a;
  clloss_context *ctx;
  cl_command_queue queue;
  cl_mem m[10];
  size_t device_index;
  const char *name; /* "loss" in the JSON line */
  double opencl_init_ms, context_ms, first_call_ms;
  int steps; /* 1 or 2 steps a round */
  double *times[2], median[2], min[2], max[2];
} bench_run;

/* One step of a round: the loss (k = 0), or what it is compared with
 * (k = 1); CLI_OK or an exit code, its message printed. */
typedef int (*bench_step)(void *state, int k, int timed);

typedef struct json_writer json_writer;
/* bench_main parses, opens the device (timing OpenCL's start-up and the
 * context), calls setup (buffers, the first call, r->steps), times the
 * rounds (`warmup` untimed, `repeat` timed; each step timed on the host
 * clock from call to return, one after the other, so that both see the
 * same machine load), takes each step's median, minimum and maximum,
 * prints text (unless --json-only) and the JSON line ("loss", "device",
 * "device_index", json's members, "loadavg", "clloss_version"), and
 * releases everything. */
typedef struct bench_spec {
  const bench_parser *parse;
  size_t size; /* of the benchmark's struct */
  int (*setup)(bench_run *r);
  bench_step step;
  void (*done)(bench_run *r); /* after the rounds: what the report reads */
  void (*text)(const bench_run *r);
  void (*json)(const bench_run *r, json_writer *w);
  void (*release)(bench_run *r); /* what else it holds, or NULL */
} bench_spec;
int bench_main(const bench_spec *s, int argc, char **argv);

/* `clloss bench linear_cross_entropy` (linear.c). */
extern const bench_spec bench_linear;

/* A call's status s, then (when it succeeded) until `queue` is done:
 * clFinish's error as a status. */
clloss_status bench_finish(cl_command_queue queue, clloss_status s);

/* The first value of a loss output `mem` of `type` (float32 or float64),
 * as a check that the call computed something; NaN when unreadable. */
double bench_read_value(cl_command_queue queue, cl_mem mem, clloss_dtype type);

/* Median and minimum of n timed runs (sorts `v`; stats.c). */
void bench_stats(double *v, size_t n, double *median, double *min);

/* The machine's load averages from /proc/loadavg; 0 when unknown. */
int bench_loadavg(double load[3]);

/* ---- JSON (harness.c) ---- */

/* One JSON object on one line: json_begin, the members, json_end. Every
 * string is quoted and escaped (a device name may hold '"' or '\'); a
 * number that is not finite, or a NULL string, is written as null. */
struct json_writer {
  FILE *out;
  int count;
};
void json_begin(json_writer *w, FILE *out);
void json_end(json_writer *w); /* "}\n" */
void json_str(json_writer *w, const char *key, const char *s);
void json_num(json_writer *w, const char *key, double v, const char *fmt);
void json_uint(json_writer *w, const char *key, unsigned long long v);
void json_bool(json_writer *w, const char *key, int v);
/* null for each of keys, up to the first NULL. */
void json_nulls(json_writer *w, const char *const *keys);
void json_nums(json_writer *w, const char *key, const double *v, size_t n,
               const char *fmt);
void json_sizes(json_writer *w, const char *key, const size_t *v, size_t n);

/* `clloss bench cross_entropy --vocab-parallel` and `clloss bench
 * linear_cross_entropy --vocab-parallel` under mpirun
 * (vocab_parallel.c); without MPI a clear error (bench.c). */
int cli_bench_vocab_parallel(int argc, char **argv);
int cli_bench_linear_vocab_parallel(int argc, char **argv);

#endif
