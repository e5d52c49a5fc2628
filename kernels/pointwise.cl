/* pointwise.cl - element-wise losses (d = x - y) with their gradients, fused:
 * one read of input and target, one write of the gradient, the loss summed
 * into per-group partials (or written per element for reduction none).
 *
 * LOSS_ID (build-time): 0 mse_loss, 1 l1_loss, 2 huber_loss, 3
 * smooth_l1_loss, 4 binary_cross_entropy_with_logits, 5 kl_div.
 * ELEM(T, x, y, w, pw, L, G) computes loss L and gradient G of one lane
 * vector (T = realv) or one element (T = real); OpenCL's built-ins are
 * overloaded for both, and ?: selects per lane on vectors.
 * p1 is delta (huber) or beta (smooth_l1); flag is log_target (kl_div).
 */
#ifndef LOSS_ID
#define LOSS_ID 0
#endif

#if LOSS_ID == 0
#define ELEM(T, x, y, w, pw, L, G)                                            \
  do {                                                                        \
    T d_ = (x) - (y);                                                         \
    L = d_ * d_;                                                              \
    G = 2 * d_;                                                               \
  } while (0)
#elif LOSS_ID == 1
/* sign(0) = 0, and OpenCL's sign(NaN) = 0 as PyTorch's. */
#define ELEM(T, x, y, w, pw, L, G)                                            \
  do {                                                                        \
    T d_ = (x) - (y);                                                         \
    L = fabs(d_);                                                             \
    G = sign(d_);                                                             \
  } while (0)
#elif LOSS_ID == 2
/* The gradient clamps d to [-delta, delta] and keeps NaN, as PyTorch. */
#define ELEM(T, x, y, w, pw, L, G)                                            \
  do {                                                                        \
    T d_ = (x) - (y), a_ = fabs(d_);                                          \
    L = a_ < p1 ? (T)(0.5f) * d_ * d_ : p1 * (a_ - (T)(0.5f) * p1);           \
    G = d_ > p1 ? (T)(p1) : d_ < -p1 ? (T)(-p1) : d_;                         \
  } while (0)
#elif LOSS_ID == 3
/* beta = 0 is l1_loss. */
#define ELEM(T, x, y, w, pw, L, G)                                            \
  do {                                                                        \
    T d_ = (x) - (y), a_ = fabs(d_);                                          \
    if (p1 > 0) {                                                             \
      L = a_ < p1 ? (T)(0.5f) * d_ * d_ / p1 : a_ - (T)(0.5f) * p1;           \
      G = d_ > p1 ? (T)(1) : d_ < -p1 ? (T)(-1) : d_ / p1;                    \
    } else {                                                                  \
      L = a_;                                                                 \
      G = sign(d_);                                                           \
    }                                                                         \
  } while (0)
#elif LOSS_ID == 4
/* exp_nonpos (common.cl) for the type ELEM is given: realv or real. */
#define EXP_NONPOS_realv exp_nonpos
#define EXP_NONPOS_real exp_nonpos1
/* w [(1-y) x + lw (log1p(exp(-|x|)) + max(-x, 0))], lw = 1 + (pw - 1) y;
 * gradient w (lw sigmoid(x) - pw y). One exp serves both: with
 * e = exp(-|x|), sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below
 * (NaN stays NaN, +-inf give 1 and 0). */
#define ELEM(T, x, y, w, pw, L, G)                                            \
  do {                                                                        \
    T lw_ = 1 + ((pw)-1) * (y), e_ = EXP_NONPOS_##T(-fabs(x));                \
    L = (w) * ((1 - (y)) * (x) + lw_ * (log1p(e_) + fmax(-(x), (T)(0))));     \
    G = (w) * (lw_ * ((x) >= 0 ? (T)(1) : e_) / (1 + e_) - (pw) * (y));       \
  } while (0)
#else
/* kl_div: y (log y - x), 0 where y = 0 (PyTorch's xlogy); gradient -y.
 * log_target: e^y (y - x), gradient -e^y. */
#define ELEM(T, x, y, w, pw, L, G)                                            \
  do {                                                                        \
    if (flag) {                                                               \
      T ey_ = exp(y);                                                         \
      L = ey_ * ((y) - (x));                                                  \
      G = -ey_;                                                               \
    } else {                                                                  \
      L = ((y) == 0 ? (T)(0) : (y)*log(y)) - (y) * (x);                       \
      G = -(y);                                                               \
    }                                                                         \
  } while (0)
#endif

#define PW_ARGS                                                               \
  __global const in_t *x, ulong x_off, __global const in_t *y, ulong y_off,   \
      __global const real *w, ulong w_off, ulong wc,                          \
      __global const real *pw, ulong pw_off, ulong pwc,                       \
      __global const real *g, ulong g_off, int g_mode, real scale,            \
      __global real *loss, ulong loss_off, int loss_mode,                     \
      __global in_t *grad, ulong grad_off, int want_grad,                     \
      __global real *partials, ulong n, ulong chunk, real p1, int flag

/* BCE's weight and pos_weight: absent (count 0) means 1; a count below n
 * broadcasts over the last dimension (element i uses v[i % count]). */
inline real bcast1(__global const real *v, ulong count, ulong i) {
  return count == 0 ? (real)1 : v[i % count];
}
inline realv bcastv(__global const real *v, ulong count, ulong i, ulong n) {
  if (count == 0)
    return (realv)(1);
  if (count == n)
    return VLOAD_(real, i, v);
  realv r;
  for (int k = 0; k < VW; k++)
    ((real *)&r)[k] = v[(i + k) % count];
  return r;
}

/* Elements [begin, end) with vectors of VW every `vstep` vectors, then the
 * remainder [tail_begin, end) element by element every `step`. Returns the
 * sum of the losses. */
#define PW_PASS                                                               \
  x, x_off, y, y_off, w, w_off, wc, pw, pw_off, pwc, g, g_off, g_mode, scale, \
      loss, loss_off, loss_mode, grad, grad_off, want_grad, partials, n,      \
      chunk, p1, flag

inline real pw_span(PW_ARGS, ulong begin, ulong vend, ulong vstep,
                    ulong tail_begin, ulong end, ulong step) {
  x += x_off;
  y += y_off;
  w += w_off;
  pw += pw_off;
  grad += grad_off;
  loss += loss_off;
  realv acc = (realv)(0);
  for (ulong i = begin; i < vend; i += vstep * VW) {
    realv xv = LOADV(x, i), yv = LOADV(y, i), L, G;
#if LOSS_ID == 4
    realv wv = bcastv(w, wc, i, n), pv = bcastv(pw, pwc, i, n);
#else
    realv wv = (realv)(1), pv = (realv)(1);
#endif
    ELEM(realv, xv, yv, wv, pv, L, G);
    if (want_grad) {
      realv up = g_mode == 2 ? VLOAD_(real, i, g + g_off)
                             : (realv)(upstream(g + g_off, 0, g_mode));
      STOREV(G * up * scale, grad, i);
    }
    if (loss_mode == 1)
      VSTORE_(L, i, loss);
    acc += L;
  }
  real sum = HSUM(acc);
  for (ulong i = tail_begin; i < end; i += step) {
    real xv = LOAD(x, i), yv = LOAD(y, i), L, G;
#if LOSS_ID == 4
    real wv = bcast1(w, wc, i), pv = bcast1(pw, pwc, i);
#else
    real wv = 1, pv = 1;
#endif
    ELEM(real, xv, yv, wv, pv, L, G);
    if (want_grad)
      STORE(G * upstream(g + g_off, i, g_mode) * scale, grad, i);
    if (loss_mode == 1)
      loss[i] = L;
    sum += L;
  }
  return sum;
}

/* One work-item per contiguous chunk of `chunk` elements (a multiple of VW):
 * long unit-stride vector runs for CPUs. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_pw_item)
__kernel void pw_item(PW_ARGS) {
  __local real scratch[WG_SIZE];
  const ulong begin = get_global_id(0) * chunk;
  const ulong end = min(begin + chunk, n);
  real sum = 0;
  if (begin < n) {
    const ulong vend = begin + (end - begin) / VW * VW;
    sum = pw_span(PW_PASS, begin, vend, 1, vend, end, 1);
  }
  if (loss_mode == 2) {
    real total = group_sum(sum, scratch);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif

/* Work-items stride over the whole array, VW elements at a time, so that
 * neighbouring work-items touch neighbouring memory: GPUs. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_pw_group)
__kernel void pw_group(PW_ARGS) {
  __local real scratch[WG_SIZE];
  const ulong gid = get_global_id(0), gsz = get_global_size(0);
  const ulong vend = n / VW * VW;
  real sum = pw_span(PW_PASS, gid * VW, vend, gsz, vend + gid, n, gsz);
  if (loss_mode == 2) {
    real total = group_sum(sum, scratch);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif
