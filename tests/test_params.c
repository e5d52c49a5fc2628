/* test_params.c - host and kernels agree on the scalars' structs of
 * kernels/params.h: every field at the same offset, the same size, and
 * values passed by value arriving intact on the device. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kernel_args.h"
#include "kernels.h"
#include "support/testutil.h"

/* A kernel per struct: out = [sizeof, offset of every field..., every
 * field's value as 64 bits...]. */
static const char probe_source[] =
    "#define OFF(f) out[i++] = (ulong)((__private char *)&q.f - "
    "(__private char *)&q);\n"
    "#define V64(f) out[i++] = (ulong)q.f;\n"
    "#define V32(f) out[i++] = (ulong)(uint)q.f;\n"
    "#define VF(f) out[i++] = (ulong)as_uint(q.f);\n"
    "#define PROBE(S, LIST) __kernel void probe_##S(__global ulong *out, "
    "const S P) { S q = P; int i = 0; out[i++] = sizeof(S); "
    "LIST(OFF, OFF, OFF, OFF) LIST(V64, V64, V32, VF) }\n"
    "PROBE(rows_params, CLLOSS_ROWS_PARAMS)\n"
    "PROBE(pointwise_params, CLLOSS_POINTWISE_PARAMS)\n"
    "PROBE(lce_params, CLLOSS_LCE_PARAMS)\n"
    "PROBE(finish_params, CLLOSS_FINISH_PARAMS)\n";

static const char *embedded(const char *name) {
  for (const clloss__kernel_source *k = clloss__kernel_sources; k->name; k++)
    if (strcmp(k->name, name) == 0)
      return k->text;
  return NULL;
}

typedef struct layout {
  size_t size, count;
  size_t offsets[64];
  cl_ulong values[64];
} layout;

/* Distinct values, field by field: 64-bit fields 0x0101... * (k + 1),
 * 32-bit ones 0x1000 + k, floats k + 0.5. */
static cl_ulong value64(size_t k) {
  return 0x0101010101010101ull * (k + 1);
}
static cl_uint value32(size_t k) {
  return 0x1000u + (cl_uint)k;
}
static float valuef(size_t k) {
  return (float)k + 0.5f;
}
static cl_ulong bits(float f) {
  cl_uint u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* The offsets of every field of struct S (list LIST) and distinct values
 * in each: 64-bit fields 0x0101... * (k + 1), 32-bit ones 0x1000 + k,
 * floats k + 0.5. */
#define F_OFF(f) l->offsets[n++] = offsetof(S_, f);
#define F_U64(f) (s->f = value64(n), l->values[n] = value64(n), n++);
#define F_I32(f) (s->f = (cl_int)value32(n), l->values[n] = value32(n), n++);
#define F_F32(f) (s->f = valuef(n), l->values[n] = bits(valuef(n)), n++);
#define DEFINE_FILL(name, S, LIST)                                             \
  static void name(S *s, layout *l) {                                          \
    typedef S S_;                                                              \
    size_t n = 0;                                                              \
    memset(s, 0, sizeof *s);                                                   \
    LIST(F_OFF, F_OFF, F_OFF, F_OFF)                                           \
    l->count = n;                                                              \
    l->size = sizeof *s;                                                       \
    n = 0;                                                                     \
    LIST(F_U64, F_U64, F_I32, F_F32)                                           \
  }
DEFINE_FILL(fill_rows, clloss__rows_params, CLLOSS_ROWS_PARAMS)
DEFINE_FILL(fill_pointwise, clloss__pointwise_params, CLLOSS_POINTWISE_PARAMS)
DEFINE_FILL(fill_lce, clloss__lce_params, CLLOSS_LCE_PARAMS)
DEFINE_FILL(fill_finish, clloss__finish_params, CLLOSS_FINISH_PARAMS)

/* Runs probe_<name> with `params` and compares with the host's layout. */
static void check_probe(cl_program prog, clloss_context *ctx, const char *name,
                        const void *params, const layout *l) {
  char kname[64];
  snprintf(kname, sizeof kname, "probe_%s", name);
  cl_int err;
  cl_kernel k = clCreateKernel(prog, kname, &err);
  CU_ASSERT_EQUAL_FATAL(err, CL_SUCCESS);
  const size_t words = 1 + 2 * l->count;
  cl_mem out = tu_buffer(ctx, words * sizeof(cl_ulong), NULL);
  CU_ASSERT_EQUAL(clSetKernelArg(k, 0, sizeof out, &out), CL_SUCCESS);
  CU_ASSERT_EQUAL(clSetKernelArg(k, 1, l->size, params), CL_SUCCESS);
  size_t one = 1;
  cl_command_queue q = clloss_context_queue(ctx);
  CU_ASSERT_EQUAL(
      clEnqueueNDRangeKernel(q, k, 1, NULL, &one, &one, 0, NULL, NULL),
      CL_SUCCESS);
  cl_ulong got[129];
  tu_read(ctx, out, 0, words * sizeof(cl_ulong), got);
  CU_ASSERT_EQUAL(got[0], l->size);
  for (size_t i = 0; i < l->count; i++) {
    if (got[1 + i] != l->offsets[i] || got[1 + l->count + i] != l->values[i])
      printf("\n  %s field %zu: device offset %llu value %llx, host offset "
             "%zu value %llx",
             name, i, (unsigned long long)got[1 + i],
             (unsigned long long)got[1 + l->count + i], l->offsets[i],
             (unsigned long long)l->values[i]);
    CU_ASSERT_EQUAL(got[1 + i], l->offsets[i]);
    CU_ASSERT_EQUAL(got[1 + l->count + i], l->values[i]);
  }
  clReleaseMemObject(out);
  clReleaseKernel(k);
}

static void test_params_layout_and_values(void) {
  TU_REQUIRE_DEVICE();
  for (size_t d = 0; d < tu_device_count(); d++) {
    clloss_context *ctx = tu_context(d);
    const char *texts[3] = {embedded("params"), embedded("common"),
                            probe_source};
    CU_ASSERT_PTR_NOT_NULL_FATAL(texts[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(texts[1]);
    cl_int err;
    cl_context cl = clloss_context_cl_context(ctx);
    cl_device_id dev = clloss_context_device(ctx);
    cl_program prog = clCreateProgramWithSource(cl, 3, texts, NULL, &err);
    CU_ASSERT_EQUAL_FATAL(err, CL_SUCCESS);
    err = clBuildProgram(prog, 1, &dev, "", NULL, NULL);
    CU_ASSERT_EQUAL_FATAL(err, CL_SUCCESS);
    clloss__rows_params rp;
    clloss__pointwise_params pp;
    clloss__lce_params lp;
    clloss__finish_params fp;
    layout l;
    fill_rows(&rp, &l);
    check_probe(prog, ctx, "rows_params", &rp, &l);
    fill_pointwise(&pp, &l);
    check_probe(prog, ctx, "pointwise_params", &pp, &l);
    fill_lce(&lp, &l);
    check_probe(prog, ctx, "lce_params", &lp, &l);
    fill_finish(&fp, &l);
    check_probe(prog, ctx, "finish_params", &fp, &l);
    clReleaseProgram(prog);
  }
}

/* Fields come 8-byte first, and the 4-byte ones are even in number, so
 * that no padding sits between them or after the last on any ABI: the
 * struct's size is exactly the sum of its fields' sizes. Tail padding is
 * what Rusticl refuses (CL_INVALID_ARG_SIZE: it sizes a by-value struct
 * without it), while PoCL accepts any argument size. */
static void test_params_no_padding(void) {
  size_t sum = 0;
#define S8(f) sum += 8;
#define S4(f) sum += 4;
#define NO_PADDING(S, LIST)                                                    \
  sum = 0;                                                                     \
  LIST(S8, S8, S4, S4)                                                         \
  CU_ASSERT_EQUAL(sizeof(S), sum);                                             \
  CU_ASSERT_EQUAL(sum % 8, 0);
  NO_PADDING(clloss__rows_params, CLLOSS_ROWS_PARAMS)
  NO_PADDING(clloss__pointwise_params, CLLOSS_POINTWISE_PARAMS)
  NO_PADDING(clloss__lce_params, CLLOSS_LCE_PARAMS)
  NO_PADDING(clloss__finish_params, CLLOSS_FINISH_PARAMS)
#undef NO_PADDING
#undef S8
#undef S4
}

int test_params_register(void) {
  TU_SUITE("params", NULL, NULL, TU_TEST(test_params_no_padding),
           TU_TEST(test_params_layout_and_values));
}
