/* cli_bench.h - what `clloss bench` shares between its files: deterministic
 * pseudo-random data written into device buffers, and a plain copy kernel
 * timed as the device's reference bandwidth. */
#ifndef CLLOSS_CLI_BENCH_H
#define CLLOSS_CLI_BENCH_H
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

/* ---- the harness (cli_bench_harness.c) ---- */

/* The options every benchmark shares: --repeat R (>= 1), --warmup W,
 * --device I, --json-only, and those of `accept` among --dtype (float
 * types), --seed, --variant. The caller sets the defaults. */
enum { BENCH_DTYPE = 1, BENCH_SEED = 2, BENCH_VARIANT = 4 };
typedef struct bench_opts {
  int repeat, warmup, json_only;
  const char *device, *variant;
  clloss_dtype dtype;
  unsigned long long seed;
} bench_opts;

/* If argv[*i] is one of those options: *matched = 1, its value in *o, *i
 * past it. Returns CLI_OK, or the usage error of `clloss bench`. */
int bench_option(int argc, char **argv, int *i, unsigned accept, bench_opts *o,
                 int *matched);

/* A whole-number option "--name N" with N in [lo, hi], stored in the
 * size_t at `offset` in the caller's arguments. */
typedef struct bench_size {
  const char *name;
  size_t lo, hi, offset;
} bench_size;
int bench_size_option(int argc, char **argv, int *i, const bench_size *sizes,
                      size_t n, void *args, int *matched);

/* The dtype named v (`targets`: int64, int32; else the float types). */
int bench_parse_dtype(const char *name, const char *v, int targets,
                      clloss_dtype *out);

/* A call's status s, then (when it succeeded) until `queue` is done:
 * clFinish's error as a status. */
clloss_status bench_finish(cl_command_queue queue, clloss_status s);

/* The first value of a loss output `mem` of `type` (float32 or float64),
 * as a check that the call computed something; NaN when unreadable. */
double bench_read_value(cl_command_queue queue, cl_mem mem, clloss_dtype type);

/* `warmup` untimed rounds, then `repeat` timed ones; a round calls
 * step(state, k, timed) for k = 0 .. steps-1 in turn (a loss and what it
 * is compared with, so that both see the same machine load), each timed
 * on the host clock from call to return into times[k][i]. step returns
 * CLI_OK or an exit code (its message printed), which ends the rounds. */
typedef int (*bench_step)(void *state, int k, int timed);
int bench_rounds(int warmup, int repeat, bench_step step, int steps,
                 void *state, double *const *times);

/* Median and minimum of n timed runs (sorts `v`). */
void bench_stats(double *v, size_t n, double *median, double *min);

/* The machine's load averages from /proc/loadavg; 0 when unknown. */
int bench_loadavg(double load[3]);

/* One JSON object on one line: json_begin, the members, json_end. Every
 * string is quoted and escaped (a device name may hold '"' or '\'); a
 * number that is not finite, or a NULL string, is written as null. */
typedef struct json_writer {
  FILE *out;
  int count;
} json_writer;
void json_begin(json_writer *w, FILE *out);
void json_end(json_writer *w); /* "}\n" */
void json_name(json_writer *w, const char *key);
void json_str(json_writer *w, const char *key, const char *s);
void json_num(json_writer *w, const char *key, double v, const char *fmt);
void json_uint(json_writer *w, const char *key, unsigned long long v);
void json_bool(json_writer *w, const char *key, int v);
void json_null(json_writer *w, const char *key);
void json_nums(json_writer *w, const char *key, const double *v, size_t n,
               const char *fmt);
void json_sizes(json_writer *w, const char *key, const size_t *v, size_t n);
/* The values alone, for what the members above do not cover. */
void json_string(FILE *out, const char *s);
void json_number(FILE *out, double v, const char *fmt);

/* `clloss bench linear_cross_entropy ...` (cli_bench_linear.c), and its
 * --help text. The benchmarks below print no help: cli_bench does. */
int cli_bench_linear(int argc, char **argv);
extern const char *const bench_linear_help;

/* `clloss bench cross_entropy --vocab-parallel` under mpirun
 * (cli_bench_vocab_parallel.c); without MPI a clear error (cli_mpi.c). */
int cli_bench_vocab_parallel(int argc, char **argv);

/* `clloss bench linear_cross_entropy --vocab-parallel` under mpirun
 * (cli_bench_linear_vocab_parallel.c); without MPI a clear error
 * (cli_mpi.c). */
int cli_bench_linear_vocab_parallel(int argc, char **argv);

#endif
