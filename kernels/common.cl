/* common.cl - storage-type loads and stores, work-group reductions and the
 * arithmetic types shared by every loss. Prepended (after params.h) to each
 * loss's source.
 *
 * Build-time parameters (each with a default, so every file compiles alone):
 *   IN_TYPE  storage of inputs and gradients: 0 float, 1 half, 2 bfloat16
 *            (both as ushort words), 3 double
 *   VW       vector width of explicit loads: 1, 2, 4, 8 or 16
 *   WG_SIZE  the largest work-group size the kernels are launched with (the
 *            size of the local-memory reduction arrays)
 *
 * Portability rules every kernel follows:
 *   - helpers are `static inline` (FN): plain C99 `inline` is not an
 *     external definition, and clang-based compilers leave such calls
 *     undefined;
 *   - loads and stores assume only the alignment of the element type, as
 *     the spec grants vloadN/vstoreN. 16-bit data is loaded and stored as
 *     ushort words and converted in integer arithmetic: some compilers
 *     (PoCL 3.1 on x86) compile vload_halfN/vstore_halfN (N >= 4) as
 *     vector-aligned accesses, which fault on rows at odd offsets. Vector
 *     pointers are dereferenced only after an alignment check (STORE_VEC);
 *   - no work-item reads global memory that another work-item of the same
 *     launch may write, except where a barrier with CLK_GLOBAL_MEM_FENCE
 *     orders the two within one work-group. In place, every element is read
 *     and then written by the same work-item.
 */
#ifndef IN_TYPE
#define IN_TYPE 0
#endif
#ifndef VW
#define VW 4
#endif
#ifndef WG_SIZE
#define WG_SIZE 64
#endif

/* Helpers: static, and marked unused because every program is the shared
 * prelude plus one loss, which calls only some of them. */
#if defined(__OPENCL_C_VERSION__) && __OPENCL_C_VERSION__ >= 120
#define FN static inline __attribute__((unused))
#else /* OpenCL C 1.0/1.1 have no static functions: never leave a call */
#define FN inline __attribute__((always_inline, unused))
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
/* T with VW lanes: float16, ushort4, ... (T itself when VW is 1). */
#if VW == 1
#define VEC(T) T
#else
#define VEC(T) CAT(T, VW)
#endif

#if IN_TYPE == 3
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define IN_NAME double
#define REAL_NAME double /* arithmetic and loss outputs */
#define REAL_MAX DBL_MAX
#else
#if IN_TYPE == 0
#define IN_NAME float
#else
#define IN_NAME ushort /* float16 or bfloat16 bits */
#endif
#define REAL_NAME float
#define REAL_MAX FLT_MAX
#endif
typedef IN_NAME in_t;
typedef REAL_NAME real;
/* real with n lanes: float4, double2, ... */
#define REALN(n) CAT(REAL_NAME, n)
#define realv VEC(REAL_NAME)
#define ushortv VEC(ushort)
#define uintv VEC(uint)
#define intv VEC(int)
#define convert_realv CAT(convert_, realv)

#ifndef TGT_TYPE
#define TGT_TYPE 5
#endif
#if TGT_TYPE == 4
typedef int tgt_t; /* class-index targets */
#else
typedef long tgt_t;
#endif

/* The kernel arguments of params.h: the buffers as __global pointers in
 * list order, then the scalars' struct. */
#define K_IN(T, name) __global const T *name,
#define K_OUT(T, name) __global T *name,
#define K_FIELD_8(name) ulong name;
#define K_FIELD_I8(name) long name;
#define K_FIELD_I4(name) int name;
#define K_FIELD_F4(name) float name;
typedef struct rows_params {
  CLLOSS_ROWS_PARAMS(K_FIELD_8, K_FIELD_I8, K_FIELD_I4, K_FIELD_F4)
} rows_params;
typedef struct pointwise_params {
  CLLOSS_POINTWISE_PARAMS(K_FIELD_8, K_FIELD_I8, K_FIELD_I4, K_FIELD_F4)
} pointwise_params;
typedef struct lce_params {
  CLLOSS_LCE_PARAMS(K_FIELD_8, K_FIELD_I8, K_FIELD_I4, K_FIELD_F4)
} lce_params;
typedef struct finish_params {
  CLLOSS_FINISH_PARAMS(K_FIELD_8, K_FIELD_I8, K_FIELD_I4, K_FIELD_F4)
} finish_params;
#define ROWS_KERNEL_ARGS                                                      \
  CLLOSS_ROWS_BUFFERS(K_IN, K_OUT) const rows_params P,                       \
      __local real *row_cache
#define POINTWISE_KERNEL_ARGS                                                 \
  CLLOSS_POINTWISE_BUFFERS(K_IN, K_OUT) const pointwise_params P

/* Vector loads/stores of VW elements at p + i (any alignment of the
 * element type). */
#if VW == 1
#define VLOAD_(i, p) ((p)[i])
#define VSTORE_(v, i, p) ((p)[i] = (v))
#else
#define VLOAD_(i, p) CAT(vload, VW)(0, (p) + (i))
#define VSTORE_(v, i, p) CAT(vstore, VW)((v), 0, (p) + (i))
#endif

/* Whether p is aligned for a whole vector of type T. */
#define ALIGNED_FOR(T, p) (((ulong)(p) & (sizeof(T) - 1)) == 0)
/* A vector v of type T (VW lanes) at `at`. Some compilers split vstoreN
 * into narrower stores (PoCL 3.1: three for a float16, sixteen for a
 * ushort16); where the address allows, a vector store is one instruction. */
#if VW == 1
#define STORE_VEC(T, v, at) (*(at) = (v))
#else
#define STORE_VEC(T, v, at)                                                   \
  do {                                                                        \
    if (ALIGNED_FOR(T, at))                                                   \
      *(__global T *)(at) = (v);                                              \
    else                                                                      \
      VSTORE_((v), 0, (at));                                                  \
  } while (0)
#endif
/* A realv into an array of real. */
#define STORE_REALV(v, p, i) STORE_VEC(realv, v, (p) + (i))

/* IEEE half <-> float in integer arithmetic, for any lane count (T: uint
 * or uintv; F: float or floatv; the comparisons give the mask select
 * wants in both cases). Exact, subnormals and NaN included; the store
 * rounds to nearest even. */
#define DEFINE_HALF_CONVERSIONS(suffix, T, F, U16)                            \
  FN F CAT(half_to_float, suffix)(U16 h) {                                    \
    T u = CAT(convert_, T)(h);                                                \
    T em = (u & 0x7fffu) << 13; /* exponent and mantissa, in place */         \
    T e = em & 0x0f800000u;                                                   \
    T o = em + ((T)(127 - 15) << 23);                                         \
    o = select(o, o + ((T)(128 - 16) << 23), e == 0x0f800000u); /* inf */     \
    F sub = CAT(as_, F)(o + (1u << 23)) - CAT(as_, F)((T)(113u << 23));       \
    o = select(o, CAT(as_, T)(sub), e == 0u); /* subnormal */                 \
    return CAT(as_, F)(o | ((u & 0x8000u) << 16));                            \
  }                                                                           \
  FN U16 CAT(float_to_half, suffix)(F x) {                                    \
    T f = CAT(as_, T)(x), sign = f & 0x80000000u;                             \
    f ^= sign;                                                                \
    /* >= 2^16 (rounds to inf) or inf: inf; NaN: a quiet NaN */               \
    T big = select((T)(0x7c00u), (T)(0x7e00u), f > 0x7f800000u);             \
    /* below 2^-14: adding 0.5 rounds the mantissa into place */              \
    T tiny = CAT(as_, T)(CAT(as_, F)(f) + (F)(0.5f)) - 0x3f000000u;           \
    /* normal: rebias, round to nearest even, shift */                        \
    T norm = (f + ((T)(15 - 127) << 23) + 0xfffu + ((f >> 13) & 1u)) >> 13;   \
    T o = select(select(norm, tiny, f < 0x38800000u), big, f >= 0x47800000u); \
    return CAT(convert_, U16)(o | (sign >> 16));                              \
  }
#if IN_TYPE == 1
DEFINE_HALF_CONVERSIONS(1, uint, float, ushort)
#if VW > 1
DEFINE_HALF_CONVERSIONS(v, uintv, VEC(float), ushortv)
#endif
#endif

/* bfloat16: the upper 16 bits of a float; stores round to nearest even,
 * NaN stays a (quiet) NaN. */
#define DEFINE_BF16_CONVERSIONS(suffix, T, F, U16)                            \
  FN F CAT(bf16_to_float, suffix)(U16 b) {                                    \
    return CAT(as_, F)(CAT(convert_, T)(b) << 16);                            \
  }                                                                           \
  FN U16 CAT(float_to_bf16, suffix)(F x) {                                    \
    T u = CAT(as_, T)(x);                                                     \
    T rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                       \
    T quiet = (u >> 16) | 0x40u;                                              \
    return CAT(convert_, U16)(select(rounded, quiet, isnan(x)));              \
  }
#if IN_TYPE == 2
DEFINE_BF16_CONVERSIONS(1, uint, float, ushort)
#if VW > 1
DEFINE_BF16_CONVERSIONS(v, uintv, VEC(float), ushortv)
#endif
#endif

/* LOAD/STORE: one element of in_t at p[i] as real; LOADV/STOREV: VW of
 * them at p + i. */
#if IN_TYPE == 1 || IN_TYPE == 2
#if IN_TYPE == 1
#define WORD_TO_REAL(u) half_to_float1(u)
#define REAL_TO_WORD(f) float_to_half1(f)
#define WORDV_TO_REALV(u) half_to_floatv(u)
#define REALV_TO_WORDV(f) float_to_halfv(f)
#else
#define WORD_TO_REAL(u) bf16_to_float1(u)
#define REAL_TO_WORD(f) float_to_bf161(f)
#define WORDV_TO_REALV(u) bf16_to_floatv(u)
#define REALV_TO_WORDV(f) float_to_bf16v(f)
#endif
#define LOAD(p, i) WORD_TO_REAL((p)[i])
#define STORE(v, p, i) ((p)[i] = REAL_TO_WORD((real)(v)))
#if VW == 1
#define LOADV(p, i) LOAD(p, i)
#define STOREV(v, p, i) STORE(v, p, i)
#else
#define LOADV(p, i) WORDV_TO_REALV(VLOAD_(i, p))
#define STOREV(v, p, i) STORE_VEC(ushortv, REALV_TO_WORDV(v), (p) + (i))
#endif
#else
#define LOAD(p, i) ((real)(p)[i])
#define STORE(v, p, i) ((p)[i] = (in_t)(v))
#define LOADV(p, i) VLOAD_(i, p)
#define STOREV(v, p, i) STORE_REALV(v, p, i)
#endif

/* Horizontal sum and max of a realv: pairwise halves, a fixed order. */
#if VW == 1
#define HSUM(v) (v)
#define HMAX(v) (v)
#else
FN real hsum(realv v) {
#if VW == 16
  realv a = v;
  REALN(8) b = a.lo + a.hi;
#elif VW == 8
  REALN(8) b = v;
#endif
#if VW >= 8
  REALN(4) c = b.lo + b.hi;
#elif VW == 4
  REALN(4) c = v;
#endif
#if VW >= 4
  REALN(2) d = c.lo + c.hi;
#else
  REALN(2) d = v;
#endif
  return d.x + d.y;
}
FN real hmax(realv v) {
#if VW == 16
  realv a = v;
  REALN(8) b = fmax(a.lo, a.hi);
#elif VW == 8
  REALN(8) b = v;
#endif
#if VW >= 8
  REALN(4) c = fmax(b.lo, b.hi);
#elif VW == 4
  REALN(4) c = v;
#endif
#if VW >= 4
  REALN(2) d = fmax(c.lo, c.hi);
#else
  REALN(2) d = v;
#endif
  return fmax(d.x, d.y);
}
#define HSUM(v) hsum(v)
#define HMAX(v) hmax(v)
#endif

/* Tree reductions over segments of a work-group: the work-items
 * [base, base + width) with base = lid - lane each contribute v and all of
 * them get the segment's result, for every segment at once (the segments
 * tile the group; a whole group is one segment). scratch has WG_SIZE
 * elements and is free again on return. Deterministic: the order depends
 * only on the width, which need not be a power of two. Every work-item of
 * the group must call it (barriers). */
#define DEFINE_SEGMENT_REDUCE(name, T, OP)                                    \
  FN T name(T v, __local T *scratch, uint lane, uint width) {                 \
    const uint lid = get_local_id(0);                                         \
    scratch[lid] = v;                                                         \
    barrier(CLK_LOCAL_MEM_FENCE);                                             \
    for (uint w = width; w > 1;) {                                            \
      const uint half_w = (w + 1) / 2;                                        \
      if (lane + half_w < w)                                                  \
        scratch[lid] = OP(scratch[lid], scratch[lid + half_w]);               \
      barrier(CLK_LOCAL_MEM_FENCE);                                           \
      w = half_w;                                                             \
    }                                                                         \
    T r = scratch[lid - lane];                                                \
    barrier(CLK_LOCAL_MEM_FENCE);                                             \
    return r;                                                                 \
  }
#define ADD_(a, b) ((a) + (b))
DEFINE_SEGMENT_REDUCE(segment_sum, real, ADD_)
DEFINE_SEGMENT_REDUCE(segment_max, real, fmax)
/* Four sums at once (one tree instead of four). */
DEFINE_SEGMENT_REDUCE(segment_sum4, REALN(4), ADD_)
/* The whole work-group as one segment. */
#define group_sum(v, scratch)                                                 \
  segment_sum((v), (scratch), get_local_id(0), get_local_size(0))

/* Error word: [0] = 1 once a bad target was seen, [1] = lowest bad row
 * (saturated to 32 bits). */
FN void report_bad_row(__global uint *err, ulong row) {
  __global volatile uint *e = err;
  atomic_or(&e[0], 1u);
  atomic_min(&e[1], (uint)min(row, (ulong)0xffffffffu));
}

/* A row's loss where the call wants it (rows_params.loss_mode,
 * CLLOSS_LOSSES_*). */
FN void put_row_loss(__global real *loss, __global real *partials,
                     const rows_params *p, ulong row, real value) {
  if (p->loss_mode == CLLOSS_LOSSES_EACH)
    loss[p->loss_off + row] = value;
  else if (p->loss_mode == CLLOSS_LOSSES_PARTIALS)
    partials[row] = value;
}

/* Upstream gradient g for output i, as mode (CLLOSS_UPSTREAM_*) says. */
FN real upstream(__global const real *g, ulong i, int mode) {
  return mode == CLLOSS_UPSTREAM_ONE      ? (real)1
         : mode == CLLOSS_UPSTREAM_SCALAR ? g[0]
                                          : g[i];
}

/* The elements [0, n) of a row that work-item `first` of `step` handles:
 * vectors first, first + step, ... of VW elements, then the scalar tail
 * [n / VW * VW, n) the same way. Every pass over a row uses this one
 * assignment, so that in place each element is read and written by the
 * same work-item. */
FN int owns(ulong c, ulong n, ulong first, ulong step) {
  const ulong full = n / VW * VW;
  return c < full ? (c / VW) % step == first : (c - full) % step == first;
}

/* Fills elements [0, n) of row g with v, as owns() assigns them. 16-bit
 * types are written as words (a loop-invariant conversion). */
FN void fill_row(__global in_t *g, ulong n, real v, ulong first, ulong step) {
  const ulong full = n / VW * VW;
#if IN_TYPE == 1 || IN_TYPE == 2
  const VEC(IN_NAME) vv = (VEC(IN_NAME))(REAL_TO_WORD(v));
#else
  const VEC(IN_NAME) vv = (VEC(IN_NAME))(v);
#endif
  for (ulong c = first * VW; c < full; c += step * VW)
    VSTORE_(vv, c, g);
  for (ulong c = full + first; c < n; c += step)
    STORE(v, g, c);
}

/* fma where the device says it is fast, else a multiply and an add: the
 * reduction and the polynomial are as accurate either way. */
#ifdef FP_FAST_FMAF
#define MULADD(a, b, c) fma(a, b, c)
#else
#define MULADD(a, b, c) ((a) * (b) + (c))
#endif

/* exp for the arguments softmax feeds it, x - max <= 0 (or NaN), inlined
 * in float arithmetic: exp(x) = 2^n exp(r), r = x - n ln2 in [-ln2/2,
 * ln2/2], exp(r) = 1 + r + r^2 q(r), q a degree-4 fit of least maximal
 * relative error (bench/exp_fit.py derives it: under 1 ulp from exp on
 * [-87.33, 0]). Below -87.33, where exp is subnormal or 0, it gives 0;
 * NaN stays NaN; x > 88 is outside its domain. PoCL's built-in exp costs
 * about twice as much per element. Double storage keeps the built-in. */
#define DEFINE_EXP_NONPOS(name, F, U)                                         \
  FN F name(F x) {                                                            \
    const F shifter = (F)(12582912.0f); /* 1.5 * 2^23: rounds to integer */   \
    F t = MULADD(x, (F)(1.44269504f), shifter);                               \
    F n = t - shifter;                                                        \
    F r = MULADD(n, (F)(-0.693145751953125f), x); /* exact */                 \
    r = MULADD(n, (F)(-1.42860682e-6f), r);                                   \
    F q = MULADD(r, (F)(1.38145965e-3f), (F)(8.36870540e-3f));                \
    q = MULADD(q, r, (F)(4.16683890e-2f));                                    \
    q = MULADD(q, r, (F)(1.66665211e-1f));                                    \
    q = MULADD(q, r, (F)(4.99999940e-1f));                                    \
    F p = MULADD(r * r, q, r) + (F)(1);                                       \
    /* 2^n: n + 127 into the exponent field (unsigned: wraps, never UB) */    \
    F scale = CAT(as_, F)((CAT(as_, U)(t) - (U)(0x4b400000u - 127u)) << 23); \
    return x < (F)(-87.33f) ? (F)(0) : p * scale;                             \
  }
#if IN_TYPE == 3
#define exp_nonpos(x) exp(x)
#define exp_nonpos1(x) exp(x)
#else
DEFINE_EXP_NONPOS(exp_nonpos1, float, uint)
#if VW == 1
#define exp_nonpos exp_nonpos1
#else
DEFINE_EXP_NONPOS(exp_nonpos, realv, uintv)
#endif
#endif

/* The gradient's scale and accumulation: out = v (+ the old value). */
#define ACCUM1(acc, v, p, i) ((acc) ? (v) + LOAD(p, i) : (v))
#define ACCUMV(acc, v, p, i) ((acc) ? (v) + LOADV(p, i) : (v))
