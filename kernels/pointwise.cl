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

/* BCE's weight and pos_weight: absent (count 0) means 1; a count below n
 * broadcasts over the last dimension (element i uses v[i % count]). `r` is
 * i % count, kept by the caller as i advances, so that the hot loop does
 * no 64-bit division. */
FN real bcast1(__global const real *v, ulong count, ulong r) {
  return count == 0 ? (real)1 : v[r];
}
/* i advanced by `by` elements: its remainder modulo count. */
FN ulong advance_rem(ulong r, ulong by_rem, ulong count) {
  r += by_rem;
  return r >= count ? r - count : r;
}

/* Elements i of [begin, vend) VW at a time every vstep vectors, then the
 * remainder [tail_begin, end) element by element every `step`. Each
 * element is read, then written, by one work-item. Returns the sum of the
 * losses. */
FN real pw_span(POINTWISE_KERNEL_ARGS, ulong begin, ulong vend, ulong vstep,
                ulong tail_begin, ulong end, ulong step) {
  const pointwise_params p = P;
  x += p.x_off;
  y += p.y_off;
  grad += p.grad_off;
  loss += p.loss_off;
  g += p.g_off;
#if LOSS_ID == 4
  w += p.w_off;
  pw += p.pw_off;
  /* Remainders of i modulo the broadcast counts (1 when absent). */
  const ulong wc = p.wc ? p.wc : 1, pwc = p.pwc ? p.pwc : 1;
  ulong wr = begin % wc, pr = begin % pwc;
  const ulong wby = (vstep * VW) % wc, pby = (vstep * VW) % pwc;
#endif
  const real scale = (real)p.grad_scale / (p.divisor ? (real)p.divisor : 1);
  const real p1 = p.p1;
  const int flag = p.flag;
  (void)p1;
  (void)flag;
  realv acc = (realv)(0);
  real extra = 0; /* losses of vectors done element by element */
  for (ulong i = begin; i < vend; i += vstep * VW) {
    realv xv = LOADV(x, i), yv = LOADV(y, i), L, G;
#if LOSS_ID == 4
    if ((p.wc && wr + VW > p.wc) || (p.pwc && pr + VW > p.pwc)) {
      /* The vector crosses the end of a broadcast row: one by one. */
      ulong wk = wr, pk = pr;
      for (int k = 0; k < VW; k++) {
        real xe = LOAD(x, i + k), ye = LOAD(y, i + k), Le, Ge;
        real we = bcast1(w, p.wc, wk), pe = bcast1(pw, p.pwc, pk);
        ELEM(real, xe, ye, we, pe, Le, Ge);
        if (p.want_grad)
          STORE(ACCUM1(p.accumulate, Ge * upstream(g, i + k, p.g_mode) * scale,
                       grad, i + k),
                grad, i + k);
        if (p.loss_mode == CLLOSS_LOSSES_EACH)
          loss[i + k] = Le;
        extra += Le;
        wk = wk + 1 == wc ? 0 : wk + 1;
        pk = pk + 1 == pwc ? 0 : pk + 1;
      }
      wr = advance_rem(wr, wby, wc);
      pr = advance_rem(pr, pby, pwc);
      continue;
    }
    realv wv = p.wc ? VLOAD_(wr, w) : (realv)(1);
    realv pv = p.pwc ? VLOAD_(pr, pw) : (realv)(1);
    wr = advance_rem(wr, wby, wc);
    pr = advance_rem(pr, pby, pwc);
    ELEM(realv, xv, yv, wv, pv, L, G);
#else
    ELEM(realv, xv, yv, 1, 1, L, G); /* no weights */
#endif
    if (p.want_grad) {
      realv up = p.g_mode == CLLOSS_UPSTREAM_EACH ? VLOAD_(i, g) : (realv)(upstream(g, 0, p.g_mode));
      STOREV(ACCUMV(p.accumulate, G * up * scale, grad, i), grad, i);
    }
    if (p.loss_mode == CLLOSS_LOSSES_EACH)
      VSTORE_(L, i, loss);
    acc += L;
  }
  real sum = HSUM(acc) + extra;
  for (ulong i = tail_begin; i < end; i += step) {
    real xv = LOAD(x, i), yv = LOAD(y, i), L, G;
#if LOSS_ID == 4
    real wv = bcast1(w, p.wc, i % wc), pv = bcast1(pw, p.pwc, i % pwc);
    ELEM(real, xv, yv, wv, pv, L, G);
#else
    ELEM(real, xv, yv, 1, 1, L, G);
#endif
    if (p.want_grad)
      STORE(ACCUM1(p.accumulate, G * upstream(g, i, p.g_mode) * scale, grad, i),
            grad, i);
    if (p.loss_mode == CLLOSS_LOSSES_EACH)
      loss[i] = L;
    sum += L;
  }
  return sum;
}

#define PW_PASS x, y, w, pw, g, loss, grad, partials, P

/* One work-item per contiguous chunk of P.chunk elements (a multiple of
 * VW): long unit-stride vector runs for CPUs. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_ITEM)
__kernel void pw_item(POINTWISE_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  const ulong begin = get_global_id(0) * P.chunk;
  const ulong end = min(begin + P.chunk, P.n);
  real sum = 0;
  if (begin < P.n) {
    const ulong vend = begin + (end - begin) / VW * VW;
    sum = pw_span(PW_PASS, begin, vend, 1, vend, end, 1);
  }
  if (P.loss_mode == CLLOSS_LOSSES_PARTIALS) {
    real total = group_sum(sum, red);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif

/* Work-items stride over the whole array, VW elements at a time, so that
 * neighbouring work-items touch neighbouring memory: GPUs. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_GROUP)
__kernel void pw_group(POINTWISE_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  const ulong gid = get_global_id(0), gsz = get_global_size(0);
  const ulong vend = P.n / VW * VW;
  real sum = pw_span(PW_PASS, gid * VW, vend, gsz, vend + gid, P.n, gsz);
  if (P.loss_mode == CLLOSS_LOSSES_PARTIALS) {
    real total = group_sum(sum, red);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif
