/* common.cl - storage-type loads and stores, work-group reductions and the
 * arithmetic types shared by every loss. Prepended to each loss's source.
 *
 * Build-time parameters (each with a default, so every file compiles alone):
 *   IN_TYPE  storage of inputs and gradients: 0 float, 1 half, 2 bfloat16
 *            (ushort words), 3 double
 *   VW       vector width of explicit loads: 1, 2, 4, 8 or 16
 *   WG_SIZE  the work-group size the kernels are launched with (the size of
 *            the local-memory reduction arrays)
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

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#if IN_TYPE == 3
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double in_t;
typedef double real;                  /* arithmetic and loss outputs */
#if VW == 1
#define realv double
#else
#define realv CAT(double, VW)
#endif
#define convert_realv CAT(convert_double, VW)
#define REAL_MAX DBL_MAX
#else
#if IN_TYPE == 1
typedef half in_t;
#elif IN_TYPE == 2
typedef ushort in_t;
#else
typedef float in_t;
#endif
typedef float real;
#if VW == 1
#define realv float
#else
#define realv CAT(float, VW)
#endif
#define convert_realv CAT(convert_float, VW)
#define REAL_MAX FLT_MAX
#endif

#if VW == 1
#define ushortv ushort
#else
#define ushortv CAT(ushort, VW)
#endif

#ifndef TGT_TYPE
#define TGT_TYPE 5
#endif
#if TGT_TYPE == 4
typedef int tgt_t; /* class-index targets */
#else
typedef long tgt_t;
#endif

/* Vector loads/stores of VW elements at p + i (any alignment of in_t). */
#if VW == 1
#define VLOAD_(T, i, p) ((p)[i])
#define VSTORE_(v, i, p) ((p)[i] = (v))
#else
#define VLOAD_(T, i, p) CAT(vload, VW)(0, (p) + (i))
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
/* A realv into an array of real (STOREV, where in_t is real). */
#define STORE_REALV(v, p, i) STORE_VEC(realv, v, (p) + (i))

#if IN_TYPE == 1
#define LOAD(p, i) vload_half((i), (p))
#define STORE(v, p, i) vstore_half_rte((float)(v), (i), (p))
#if VW == 1
#define LOADV(p, i) vload_half((i), (p))
#define STOREV(v, p, i) vstore_half_rte((v), (i), (p))
#else
#define LOADV(p, i) CAT(vload_half, VW)(0, (p) + (i))
#define STOREV(v, p, i) CAT(CAT(vstore_half, VW), _rte)((v), 0, (p) + (i))
#endif
#elif IN_TYPE == 2
/* bfloat16: the upper 16 bits of a float; stores round to nearest even. */
inline float bf16_load(ushort u) { return as_float((uint)u << 16); }
inline ushort bf16_round(float f) {
  uint u = as_uint(f);
  if (isnan(f))
    return (ushort)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (ushort)(u >> 16);
}
#define LOAD(p, i) bf16_load((p)[i])
#define STORE(v, p, i) ((p)[i] = bf16_round((float)(v)))
#if VW == 1
#define LOADV(p, i) bf16_load((p)[i])
#define STOREV(v, p, i) ((p)[i] = bf16_round(v))
#else
#define LOADV(p, i)                                                           \
  as_realv(CAT(convert_uint, VW)(VLOAD_(ushort, i, p)) << 16)
#define as_realv CAT(as_float, VW)
#define uintv CAT(uint, VW)
/* bf16_round on every lane, in vector arithmetic. */
inline ushortv bf16_round_v(realv f) {
  uintv u = CAT(as_uint, VW)(f);
  uintv rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uintv quiet = (u >> 16) | 0x40u;
  return CAT(convert_ushort, VW)(isnan(f) ? quiet : rounded);
}
#define STOREV(v, p, i) STORE_VEC(ushortv, bf16_round_v(v), (p) + (i))
#endif
#else
#define LOAD(p, i) ((real)(p)[i])
#define STORE(v, p, i) ((p)[i] = (in_t)(v))
#define LOADV(p, i) VLOAD_(in_t, i, p)
#define STOREV(v, p, i) STORE_REALV(v, p, i)
#endif

/* Horizontal sum and max of a realv, in a fixed order. */
#if VW == 1
#define HSUM(v) (v)
#define HMAX(v) (v)
#else
inline real hsum(realv v) {
  real *a = (real *)&v;
  real s = 0;
  for (int k = 0; k < VW; k++)
    s += a[k];
  return s;
}
inline real hmax(realv v) {
  real *a = (real *)&v;
  real m = a[0];
  for (int k = 1; k < VW; k++)
    m = fmax(m, a[k]);
  return m;
}
#define HSUM(v) hsum(v)
#define HMAX(v) hmax(v)
#endif

/* Work-group tree reductions over `scratch[WG_SIZE]`; every work-item gets
 * the result. Deterministic: the order depends only on the group size. The
 * size need not be a power of two. */
inline real group_sum(real v, __local real *scratch) {
  const uint lid = get_local_id(0), n = get_local_size(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint width = n; width > 1;) {
    uint half_w = (width + 1) / 2;
    if (lid + half_w < width)
      scratch[lid] += scratch[lid + half_w];
    barrier(CLK_LOCAL_MEM_FENCE);
    width = half_w;
  }
  real r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

inline real group_max(real v, __local real *scratch) {
  const uint lid = get_local_id(0), n = get_local_size(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint width = n; width > 1;) {
    uint half_w = (width + 1) / 2;
    if (lid + half_w < width)
      scratch[lid] = fmax(scratch[lid], scratch[lid + half_w]);
    barrier(CLK_LOCAL_MEM_FENCE);
    width = half_w;
  }
  real r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* Error word: [0] = 1 once a bad target was seen, [1] = lowest bad row
 * (saturated to 32 bits), [2] = its high 32 bits are not tracked. */
inline void report_bad_row(__global volatile uint *err, ulong row) {
  atomic_or(&err[0], 1u);
  atomic_min(&err[1], (uint)min(row, (ulong)0xffffffffu));
}

/* Upstream gradient g: mode 0 = 1, 1 = one scalar, 2 = one per output. */
inline real upstream(__global const real *g, ulong i, int mode) {
  return mode == 0 ? (real)1 : mode == 1 ? g[0] : g[i];
}

/* Fills elements [0, n) of row g with v, VW at a time: the work-items
 * first, first + step, ... take turns by vector. 16-bit types are written as
 * integer words: PoCL 3.1 miscompiles vstore_half16_rte of a loop-invariant
 * value into an aligned store that faults on odd element offsets. */
inline void fill_row(__global in_t *g, ulong n, real v, ulong first,
                     ulong step) {
  const ulong full = n / VW * VW;
#if IN_TYPE == 1 || IN_TYPE == 2
#if IN_TYPE == 1
  ushort bits;
  vstore_half_rte(v, 0, (__private half *)&bits);
#else
  const ushort bits = bf16_round(v);
#endif
  __global ushort *w = (__global ushort *)g;
  for (ulong c = first * VW; c < full; c += step * VW)
    VSTORE_((ushortv)(bits), c, w);
#else
  for (ulong c = first * VW; c < full; c += step * VW)
    VSTORE_((realv)(v), c, g);
#endif
  for (ulong c = full + first; c < n; c += step)
    STORE(v, g, c);
}

/* The arguments every row loss (cross_entropy, nll_loss) starts with, in
 * the order host/rows.c sets them. loss_mode: 0 no loss output, 1 one value
 * per row into `loss`, 2 partial sums into `partials` (finished by
 * finish_sum). g_mode: see upstream(). */
#define ROWS_ARGS                                                             \
  __global const in_t *x, ulong x_off, ulong ld, ulong rows, ulong classes,   \
      __global const tgt_t *t, ulong t_off, __global const real *w,           \
      ulong w_off, int has_w, __global const real *g, ulong g_off,            \
      int g_mode, __global const real *stats, __global real *loss,           \
      ulong loss_off, int loss_mode, __global in_t *grad, ulong grad_off,     \
      int want_grad, __global real *partials, long ignore, int reduction,     \
      __global volatile uint *err

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
  inline F name(F x) {                                                        \
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
DEFINE_EXP_NONPOS(exp_nonpos, realv, CAT(uint, VW))
#endif
#endif
