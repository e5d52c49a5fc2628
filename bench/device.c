/* device.c - the device side of `clloss bench` that is not a loss:
 * deterministic pseudo-random data written into buffers, and the plain copy
 * kernels whose bandwidth the losses are measured against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "bench.h"

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
  /* Float data repeats every chunk (filled once: converting 2^31 values to
   * float16 one by one takes half a minute); class targets do not. */
  const int repeat = dtype != CLLOSS_INT32 && dtype != CLLOSS_INT64;
  cl_int err = CL_SUCCESS;
  for (size_t begin = 0; begin < count && err == CL_SUCCESS; begin += chunk) {
    size_t n = count - begin < chunk ? count - begin : chunk;
    if (begin == 0 || !repeat)
      fill_chunk(host, dtype, repeat ? 0 : begin,
                 repeat && count > chunk ? chunk : n, lo, hi, seed);
    err = clEnqueueWriteBuffer(queue, mem, CL_TRUE, begin * esize, n * esize,
                               host, 0, NULL, NULL);
  }
  free(host);
  return err;
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
#define NKINDS (sizeof kinds / sizeof *kinds)

struct bench_copy {
  cl_command_queue queue;
  cl_program program;
  cl_mem src, dst;
  size_t half;
  cl_kernel kernels[NKINDS];
  size_t global[NKINDS], local[NKINDS];
  int use_local[NKINDS];
  size_t chosen;
};

static size_t round_up(size_t v, size_t m) {
  return (v + m - 1) / m * m;
}

/* Creates kind i's kernel, its arguments and launch size. */
static cl_int make_kind(bench_copy *c, const clloss_device_info *info, size_t i,
                        char *msg, size_t msglen) {
  const copy_kind *kind = &kinds[i];
  const int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
  cl_int err;
  cl_kernel k = clCreateKernel(c->program, kind->kernel, &err);
  if (!k) {
    snprintf(msg, msglen, "creating the copy kernel %s failed (%s)",
             kind->kernel, clloss_status_name(err));
    return err;
  }
  c->kernels[i] = k;
  size_t wg = 0;
  if (clGetKernelWorkGroupInfo(k, info->device, CL_KERNEL_WORK_GROUP_SIZE,
                               sizeof wg, &wg, NULL) != CL_SUCCESS ||
      wg == 0)
    wg = 1;
  size_t local = wg < 256 ? wg : 256;
  const cl_ulong n = c->half / kind->vec;
  cl_ulong chunk = 0;
  size_t global;
  /* One-per-item kernels: the runtime picks the work-group size on CPUs. */
  c->use_local[i] = !(cpu && kind->mode == 0);
  if (kind->mode == 0) {
    global = round_up((size_t)n, local);
  } else if (kind->mode == 1) {
    global = local * 8 * (size_t)info->compute_units;
  } else {
    /* About 16 chunks per compute unit, each walked contiguously: CPUs. */
    size_t items = 16 * (size_t)info->compute_units;
    chunk = (n + items - 1) / items;
    if (chunk == 0)
      chunk = 1;
    global = round_up((size_t)((n + chunk - 1) / chunk), cpu ? 1 : local);
    if (cpu)
      local = 1;
  }
  c->global[i] = global;
  c->local[i] = local;
  err = clSetKernelArg(k, 0, sizeof c->src, &c->src);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(k, 1, sizeof c->dst, &c->dst);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(k, 2, sizeof n, &n);
  if (err == CL_SUCCESS && kind->mode == 2)
    err = clSetKernelArg(k, 3, sizeof chunk, &chunk);
  if (err != CL_SUCCESS)
    snprintf(msg, msglen, "setting the copy kernel's arguments failed (%s)",
             clloss_status_name(err));
  return err;
}

static cl_int run_kind(bench_copy *c, size_t i, double *ms) {
  double t0 = cli_now_ms();
  cl_int err = clEnqueueNDRangeKernel(
      c->queue, c->kernels[i], 1, NULL, &c->global[i],
      c->use_local[i] ? &c->local[i] : NULL, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clFinish(c->queue);
  *ms = cli_now_ms() - t0;
  return err;
}

cl_int bench_copy_run(bench_copy *c, double *ms) {
  return run_kind(c, c->chosen, ms);
}

const char *bench_copy_kernel(const bench_copy *c) {
  return kinds[c->chosen].label;
}

size_t bench_copy_bytes(const bench_copy *c) {
  return 2 * c->half;
}

void bench_copy_close(bench_copy *c) {
  if (!c)
    return;
  for (size_t i = 0; i < NKINDS; i++)
    if (c->kernels[i])
      clReleaseKernel(c->kernels[i]);
  if (c->dst)
    clReleaseMemObject(c->dst);
  if (c->src)
    clReleaseMemObject(c->src);
  if (c->program)
    clReleaseProgram(c->program);
  free(c);
}

/* Allocates and touches both buffers, so that no copy pays for first use. */
static cl_int make_buffers(bench_copy *c, cl_context cl, char *msg,
                           size_t msglen) {
  cl_int err;
  c->src = clCreateBuffer(cl, CL_MEM_READ_ONLY, c->half, NULL, &err);
  if (c->src)
    c->dst = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, c->half, NULL, &err);
  if (!c->src || !c->dst) {
    snprintf(msg, msglen,
             "allocating two copy buffers of %zu bytes failed (%s)", c->half,
             clloss_status_name(err));
    return err;
  }
  const cl_uint pattern = 0x3f800000u;
  err = clEnqueueFillBuffer(c->queue, c->src, &pattern, sizeof pattern, 0,
                            c->half, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clEnqueueFillBuffer(c->queue, c->dst, &pattern, sizeof pattern, 0,
                              c->half, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clFinish(c->queue);
  if (err != CL_SUCCESS)
    snprintf(msg, msglen,
             "initialising the copy buffers (2 x %zu bytes) failed (%s)",
             c->half, clloss_status_name(err));
  return err;
}

/* Times every kind and keeps the one with the lowest median. */
static cl_int choose(bench_copy *c, int calibrate, char *msg, size_t msglen) {
  double *t = calloc((size_t)calibrate, sizeof *t);
  double best = 0;
  cl_int err = t ? CL_SUCCESS : CL_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < NKINDS && err == CL_SUCCESS; i++) {
    double med, mn, once;
    err = run_kind(c, i, &once);
    for (int r = 0; r < calibrate && err == CL_SUCCESS; r++)
      err = run_kind(c, i, &t[r]);
    if (err != CL_SUCCESS)
      break;
    bench_stats(t, (size_t)calibrate, &med, &mn);
    if (i == 0 || med < best) {
      best = med;
      c->chosen = i;
    }
  }
  if (err != CL_SUCCESS)
    snprintf(msg, msglen, "running the copy kernels failed (%s)",
             clloss_status_name(err));
  free(t);
  return err;
}

cl_int bench_copy_open(clloss_context *ctx, size_t bytes, int calibrate,
                       bench_copy **out, char *msg, size_t msglen) {
  const clloss_device_info *info = clloss_context_device_info(ctx);
  cl_context cl = clloss_context_cl_context(ctx);
  *out = NULL;
  msg[0] = '\0';
  bench_copy *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(msg, msglen, "out of host memory");
    return CL_OUT_OF_HOST_MEMORY;
  }
  c->queue = clloss_context_queue(ctx);
  /* At least one float16 element: a tiny loss still gets a copy. */
  c->half = bytes / 2 / 64 * 64;
  if (c->half == 0)
    c->half = 64;
  if (c->half > info->max_alloc_size) {
    snprintf(msg, msglen,
             "the copy needs buffers of %zu bytes; the device's largest is "
             "%llu",
             c->half, (unsigned long long)info->max_alloc_size);
    bench_copy_close(c);
    return CL_INVALID_BUFFER_SIZE;
  }
  cl_int err;
  const char *text = copy_source;
  c->program = clCreateProgramWithSource(cl, 1, &text, NULL, &err);
  if (!c->program)
    snprintf(msg, msglen, "creating the copy program failed (%s)",
             clloss_status_name(err));
  else if ((err = clBuildProgram(c->program, 1, &info->device, "", NULL,
                                 NULL)) != CL_SUCCESS)
    snprintf(msg, msglen, "building the copy program failed (%s)",
             clloss_status_name(err));
  if (err == CL_SUCCESS)
    err = make_buffers(c, cl, msg, msglen);
  for (size_t i = 0; i < NKINDS && err == CL_SUCCESS; i++)
    err = make_kind(c, info, i, msg, msglen);
  if (err == CL_SUCCESS)
    err = choose(c, calibrate < 1 ? 1 : calibrate, msg, msglen);
  if (err != CL_SUCCESS) {
    bench_copy_close(c);
    return err;
  }
  *out = c;
  return CL_SUCCESS;
}
