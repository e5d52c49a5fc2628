/* cli_bench.h - what `clloss bench` shares between its files: deterministic
 * pseudo-random data written into device buffers, and a plain copy kernel
 * timed as the device's reference bandwidth. */
#ifndef CLLOSS_CLI_BENCH_H
#define CLLOSS_CLI_BENCH_H
#include <stddef.h>
#include <stdint.h>

#include "clloss.h"

/* Writes `count` elements of type `dtype` into `mem` (blocking, in chunks,
 * through `queue`): float types uniform in [lo, hi), int32 and int64
 * uniform integers in [0, (int64)hi). Element i depends only on (seed, i).
 * Returns CL_SUCCESS, an OpenCL error, or CL_OUT_OF_HOST_MEMORY. */
cl_int bench_fill(cl_command_queue queue, cl_mem mem, clloss_dtype dtype,
                  size_t count, double lo, double hi, uint64_t seed);

/* The fastest of a few plain copy kernels over the same bytes. */
typedef struct bench_copy_result {
  const char *kernel; /* which copy was fastest: "float4", "float16", ... */
  size_t bytes;       /* bytes read + bytes written by one copy */
  double median_ms, min_ms;
  double gbps; /* bytes / median */
} bench_copy_result;

/* Times copies of `bytes` / 2 (rounded down to 64 bytes) from one buffer
 * into another on ctx's device and queue: kernels built with
 * clCreateProgramWithSource on ctx's cl_context, each tried `warmup` times
 * then timed `repeat` times (enqueue to clFinish); keeps the one with the
 * lowest median. Every OpenCL object it makes is released. Returns
 * CL_SUCCESS, or an OpenCL error with a sentence in msg. */
cl_int bench_copy(clloss_context *ctx, size_t bytes, int repeat, int warmup,
                  bench_copy_result *out, char *msg, size_t msglen);

/* Median and minimum of n values (sorts `v`). */
void bench_stats(double *v, size_t n, double *median, double *min);

#endif
