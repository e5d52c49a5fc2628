/* cli_bench_device.c - the device side of `clloss bench` that is not a loss:
 * deterministic pseudo-random data written into buffers, and the plain copy
 * kernels whose bandwidth the losses are measured against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench.h"

/* splitmix64 of the element's index: element i depends on (seed, i) only. */
static uint64_t mix(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 random bits: exact in float32. */
static double unit(uint64_t h) {
  return (double)(h >> 40) * (1.0 / 16777216.0);
}

static void fill_chunk(void *dst, clloss_dtype t, size_t begin, size_t n,
                       double lo, double hi, uint64_t seed) {
  const double span = hi - lo;
  for (size_t k = 0; k < n; k++) {
    uint64_t h = mix(seed, begin + k);
    switch (t) {
    case CLLOSS_FLOAT32:
      ((float *)dst)[k] = (float)(lo + span * unit(h));
      break;
    case CLLOSS_FLOAT16:
      ((uint16_t *)dst)[k] = clloss_float_to_half((float)(lo + span * unit(h)));
      break;
    case CLLOSS_BFLOAT16:
      ((uint16_t *)dst)[k] =
          clloss_float_to_bfloat16((float)(lo + span * unit(h)));
      break;
    case CLLOSS_FLOAT64:
      ((double *)dst)[k] = lo + span * unit(h);
      break;
    case CLLOSS_INT32:
      ((int32_t *)dst)[k] = (int32_t)(h % (uint64_t)hi);
      break;
    case CLLOSS_INT64:
      ((int64_t *)dst)[k] = (int64_t)(h % (uint64_t)hi);
      break;
    }
  }
}

cl_int bench_fill(cl_command_queue queue, cl_mem mem, clloss_dtype dtype,
                  size_t count, double lo, double hi, uint64_t seed) {
  const size_t esize = clloss_dtype_size(dtype);
  const size_t chunk = ((size_t)8 << 20) / esize; /* 8 MiB at a time */
  if ((dtype == CLLOSS_INT32 || dtype == CLLOSS_INT64) && !(hi >= 1))
    return CL_INVALID_VALUE;
  void *host = malloc(chunk * esize);
  if (!host)
    return CL_OUT_OF_HOST_MEMORY;
  cl_int err = CL_SUCCESS;
  for (size_t begin = 0; begin < count && err == CL_SUCCESS; begin += chunk) {
    size_t n = count - begin < chunk ? count - begin : chunk;
    fill_chunk(host, dtype, begin, n, lo, hi, seed);
    err = clEnqueueWriteBuffer(queue, mem, CL_TRUE, begin * esize, n * esize,
                               host, 0, NULL, NULL);
  }
  free(host);
  return err;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void bench_stats(double *v, size_t n, double *median, double *min) {
  qsort(v, n, sizeof *v, cmp_double);
  *min = v[0];
  *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* n counts elements of the kernel's vector type; `chunk` (copy16_chunk) is
 * how many each work-item copies, one after the other. */
static const char copy_source[] =
    "__kernel void copy4(__global const float4 *src, __global float4 *dst,\n"
    "                    ulong n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) dst[i] = src[i];\n"
    "}\n"
    "__kernel void copy16(__global const float16 *src, __global float16 *dst,\n"
    "                     ulong n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) dst[i] = src[i];\n"
    "}\n"
    "__kernel void copy4_stride(__global const float4 *src,\n"
    "                           __global float4 *dst, ulong n) {\n"
    "  for (size_t i = get_global_id(0); i < n; i += get_global_size(0))\n"
    "    dst[i] = src[i];\n"
    "}\n"
    "__kernel void copy16_chunk(__global const float16 *src,\n"
    "                           __global float16 *dst, ulong n, ulong chunk) "
    "{\n"
    "  ulong b = get_global_id(0) * chunk, e = min(b + chunk, n);\n"
    "  for (ulong i = b; i < e; i++) dst[i] = src[i];\n"
    "}\n";

typedef struct copy_kind {
  const char *kernel, *label;
  size_t vec; /* bytes per element of the kernel */
  int mode;   /* 0 one element per item, 1 grid stride, 2 chunks */
} copy_kind;

static const copy_kind kinds[] = {
    {"copy4", "float4", 16, 0},
    {"copy16", "float16", 64, 0},
    {"copy4_stride", "float4 grid-stride", 16, 1},
    {"copy16_chunk", "float16 chunks", 64, 2},
};

static size_t round_up(size_t v, size_t m) {
  return (v + m - 1) / m * m;
}

/* Times one kind; *median_ms and *min_ms receive its times. */
static cl_int time_kind(clloss_context *ctx, cl_program prog,
                        const copy_kind *kind, cl_mem src, cl_mem dst,
                        size_t half, int repeat, int warmup, double *median_ms,
                        double *min_ms, char *msg, size_t msglen) {
  const clloss_device_info *info = clloss_context_device_info(ctx);
  cl_command_queue q = clloss_context_queue(ctx);
  const int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
  cl_int err;
  cl_kernel k = clCreateKernel(prog, kind->kernel, &err);
  if (!k) {
    snprintf(msg, msglen, "creating the copy kernel %s failed (%s)",
             kind->kernel, clloss_status_name(err));
    return err;
  }
  size_t wg = 0;
  if (clGetKernelWorkGroupInfo(k, info->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof wg, &wg, NULL) != CL_SUCCESS ||
      wg == 0)
    wg = 1;
  size_t local = wg < 256 ? wg : 256;
  const cl_ulong n = half / kind->vec;
  cl_ulong chunk = 0;
  size_t global;
  if (kind->mode == 0) {
    global = round_up((size_t)n, local);
  } else if (kind->mode == 1) {
    global = local * 8 * (size_t)info->compute_units;
  } else {
    /* About 16 chunks per compute unit, walked contiguously: CPUs. */
    size_t items = 16 * (size_t)info->compute_units;
    chunk = (n + items - 1) / items;
    if (chunk == 0)
      chunk = 1;
    global = round_up((size_t)((n + chunk - 1) / chunk), cpu ? 1 : local);
    if (cpu)
      local = 1;
  }
  err = clSetKernelArg(k, 0, sizeof src, &src);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(k, 1, sizeof dst, &dst);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(k, 2, sizeof n, &n);
  if (err == CL_SUCCESS && kind->mode == 2)
    err = clSetKernelArg(k, 3, sizeof chunk, &chunk);
  double *times = calloc((size_t)repeat, sizeof *times);
  if (!times)
    err = CL_OUT_OF_HOST_MEMORY;
  /* One-per-item kernels: the runtime picks the work-group size on CPUs. */
  const size_t *lp = (cpu && kind->mode == 0) ? NULL : &local;
  for (int r = -warmup; r < repeat && err == CL_SUCCESS; r++) {
    double t0 = cli_now_ms();
    err = clEnqueueNDRangeKernel(q, k, 1, NULL, &global, lp, 0, NULL, NULL);
    if (err == CL_SUCCESS)
      err = clFinish(q);
    if (r >= 0)
      times[r] = cli_now_ms() - t0;
  }
  if (err == CL_SUCCESS)
    bench_stats(times, (size_t)repeat, median_ms, min_ms);
  else
    snprintf(msg, msglen, "running the copy kernel %s failed (%s)",
             kind->kernel, clloss_status_name(err));
  free(times);
  clReleaseKernel(k);
  return err;
}

cl_int bench_copy(clloss_context *ctx, size_t bytes, int repeat, int warmup,
                  bench_copy_result *out, char *msg, size_t msglen) {
  const clloss_device_info *info = clloss_context_device_info(ctx);
  cl_context cl = clloss_context_cl_context(ctx);
  cl_command_queue q = clloss_context_queue(ctx);
  const size_t half = bytes / 2 / 64 * 64;
  memset(out, 0, sizeof *out);
  msg[0] = '\0';
  if (half == 0) {
    snprintf(msg, msglen, "too few bytes (%zu) for the copy kernel", bytes);
    return CL_INVALID_VALUE;
  }
  if (half > info->max_alloc_size) {
    snprintf(msg, msglen,
             "the copy needs buffers of %zu bytes; the device's largest is "
             "%llu",
             half, (unsigned long long)info->max_alloc_size);
    return CL_INVALID_BUFFER_SIZE;
  }
  cl_int err;
  const char *src_text = copy_source;
  cl_program prog = clCreateProgramWithSource(cl, 1, &src_text, NULL, &err);
  if (!prog) {
    snprintf(msg, msglen, "creating the copy program failed (%s)",
             clloss_status_name(err));
    return err;
  }
  err = clBuildProgram(prog, 1, &info->device, "", NULL, NULL);
  if (err != CL_SUCCESS) {
    snprintf(msg, msglen, "building the copy program failed (%s)",
             clloss_status_name(err));
    clReleaseProgram(prog);
    return err;
  }
  cl_mem src = clCreateBuffer(cl, CL_MEM_READ_ONLY, half, NULL, &err);
  cl_mem dst =
      src ? clCreateBuffer(cl, CL_MEM_WRITE_ONLY, half, NULL, &err) : NULL;
  if (!src || !dst) {
    snprintf(msg, msglen,
             "allocating two copy buffers of %zu bytes failed (%s)", half,
             clloss_status_name(err));
  } else {
    /* Touch both buffers once, so that no copy pays for first use. */
    const cl_uint pattern = 0x3f800000u;
    err = clEnqueueFillBuffer(q, src, &pattern, sizeof pattern, 0, half, 0,
                              NULL, NULL);
    if (err == CL_SUCCESS)
      err = clEnqueueFillBuffer(q, dst, &pattern, sizeof pattern, 0, half, 0,
                                NULL, NULL);
    if (err == CL_SUCCESS)
      err = clFinish(q);
    if (err != CL_SUCCESS)
      snprintf(msg, msglen, "initialising the copy buffers failed (%s)",
               clloss_status_name(err));
  }
  for (size_t i = 0; err == CL_SUCCESS && i < sizeof kinds / sizeof *kinds;
       i++) {
    double med = 0, mn = 0;
    err = time_kind(ctx, prog, &kinds[i], src, dst, half, repeat, warmup, &med,
                    &mn, msg, msglen);
    if (err == CL_SUCCESS && (!out->kernel || med < out->median_ms)) {
      out->kernel = kinds[i].label;
      out->median_ms = med;
      out->min_ms = mn;
    }
  }
  if (err == CL_SUCCESS) {
    out->bytes = 2 * half;
    out->gbps =
        out->median_ms > 0 ? (double)out->bytes / out->median_ms / 1e6 : 0;
  }
  if (dst)
    clReleaseMemObject(dst);
  if (src)
    clReleaseMemObject(src);
  clReleaseProgram(prog);
  return err;
}
