/* cross_entropy.cl - fused softmax cross-entropy loss and gradient (and
 * softmax itself), one pass over each row for statistics and one that
 * writes the gradient.
 *
 * Per row, v = x (or cap tanh(x / cap) with softcap), m = max v,
 * S = sum_c exp(v_c - m), lse = m + log S, and the loss is written so that
 * no term loses the precision of large logits (|x| ~ 1e4 and beyond):
 *   index targets t, a_c = w_c:
 *     loss = (1-e) w_t ((m - v_t) + log S) + (e/C) (W log S + D) + z lse^2
 *     with W = sum_c w_c and D = sum_c w_c (m - v_c) >= 0
 *     dx_j = s [p_j A - (e/C) w_j - (1-e) w_t [j = t]] dcap_j,
 *     A = (1-e) w_t + (e/C) W + 2 z lse
 *   probability targets (PROB_TARGETS), a_c = w_c y'_c, y' = (1-e) y + e/C:
 *     loss = SA log S + D + z lse^2, SA = sum a_c, D = sum a_c (m - v_c)
 *     dx_j = s [p_j (SA + 2 z lse) - a_j] dcap_j
 *   p_j = exp(v_j - m) / S; dcap_j = 1 - tanh^2(x_j / cap) or 1.
 *   softmax (P.softmax): grad = p, no loss.
 *
 * The statistics of a span of a row (the whole row, or a segment of it)
 * form a record (row_stats) whose combine is associative and commutative,
 * so that segments computed apart give the row's statistics exactly as
 * one pass would, up to rounding.
 *
 * Variants, every kernel taking ROWS_KERNEL_ARGS (params.h):
 *   ce_item   a run of rows per work-item, three passes (max, sum-exp,
 *             gradient), the exps kept between passes: CPUs;
 *   ce_group  a work-group per row, one online pass for the statistics,
 *             the row held in local memory for the gradient pass when it
 *             fits: GPUs;
 *   ce_split_stats + ce_split_grad: a row's segments in several
 *             work-groups, for few long rows. The first writes each
 *             segment's record; the second, launched after it, combines a
 *             row's records and writes its segment's gradient.
 * In place (grad = x) every element is read, then written, by the same
 * work-item (owns() in common.cl), and the target's logit travels in the
 * records: no work-item reads a logit another may overwrite.
 */
#ifndef PROB_TARGETS
#define PROB_TARGETS 0
#endif
/* SOFTCAP (build-time) keeps tanh out of the common programs' loops. */
#ifndef SOFTCAP
#define SOFTCAP 0
#endif
#if SOFTCAP
#define capv(v, cap) ((cap)*tanh((v) / (cap)))
#define cap1(v, cap) ((cap)*tanh((v) / (cap)))
#else
#define capv(v, cap) (v)
#define cap1(v, cap) (v)
#endif

/* Lane indices 0 .. VW-1. */
#if VW == 1
#define IOTA 0
#elif VW == 2
#define IOTA ((int2)(0, 1))
#elif VW == 4
#define IOTA ((int4)(0, 1, 2, 3))
#elif VW == 8
#define IOTA ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#else
#define IOTA ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#endif

/* 1 in lane k, 0 elsewhere. */
#if VW == 1
#define LANE_IS(k) ((real)((k) == 0))
#else
#define LANE_IS(k) convert_realv(-(IOTA == (intv)(k)))
#endif

/* A span of a row: its first element, length and the target's column
 * within it (outside [0, n) when the target lies elsewhere, or for none). */
typedef struct span {
  __global const in_t *x; /* logits */
  __global const in_t *y; /* probability targets */
  __global const real *w; /* class weights (only read when has_w) */
  __global in_t *g;       /* gradient */
  ulong n;
  long t;
} span;

/* Statistics of a span; see the header. */
typedef struct row_stats {
  real max;    /* of v; -REAL_MAX for an empty span */
  real sumexp; /* sum exp(v - max) */
  real sa;     /* sum a_c (only when smoothing or probability targets) */
  real sad;    /* sum a_c (max - v_c) */
  real xt;     /* v at the target, 0 if it is not in the span */
  real wt;     /* w at the target, 0 if it is not in the span */
} row_stats;
#define REC_SIZE CLLOSS_STATS_RECORD /* reals per record in memory */

FN row_stats empty_stats(void) {
  row_stats s = {-REAL_MAX, 0, 0, 0, 0, 0};
  return s;
}

/* The combine (online-softmax merge), in a fixed order of its operands. */
FN row_stats combine(row_stats a, row_stats b) {
  row_stats r;
  r.max = fmax(a.max, b.max);
  r.sumexp = a.sumexp * exp(a.max - r.max) + b.sumexp * exp(b.max - r.max);
  r.sad = (a.sad + a.sa * (r.max - a.max)) + (b.sad + b.sa * (r.max - b.max));
  r.sa = a.sa + b.sa;
  r.xt = a.xt + b.xt;
  r.wt = a.wt + b.wt;
  return r;
}

FN void store_stats(__global real *o, row_stats s) {
  o[0] = s.max;
  o[1] = s.sumexp;
  o[2] = s.sa;
  o[3] = s.sad;
  o[4] = s.xt;
  o[5] = s.wt;
}

FN row_stats load_stats(__global const real *o) {
  row_stats s = {o[0], o[1], o[2], o[3], o[4], o[5]};
  return s;
}

/* a_c for a vector of VW classes at c, and for one class. */
#if PROB_TARGETS
#define A_V(sp, c, eps, eoc, has_w)                                            \
  (((has_w) ? VLOAD_(c, (sp)->w) : (realv)(1)) *                               \
   ((1 - (eps)) * LOADV((sp)->y, c) + (eoc)))
#define A_1(sp, c, eps, eoc, has_w)                                            \
  (((has_w) ? (sp)->w[c] : (real)1) * ((1 - (eps)) * LOAD((sp)->y, c) + (eoc)))
#else
#define A_V(sp, c, eps, eoc, has_w) ((has_w) ? VLOAD_(c, (sp)->w) : (realv)(1))
#define A_1(sp, c, eps, eoc, has_w) ((has_w) ? (sp)->w[c] : (real)1)
#endif
/* Whether a_c is needed at all. */
#define WANT_A(eps) (PROB_TARGETS ? 1 : (eps) > 0)

/* ---- item variant: max, then sum-exp, then gradient ---------------- */

/* Pass 1: the max of the raw logits (the cap is monotonic, so the capped
 * max is the cap of it): four running maxima, so that the loop is not
 * bound by the latency of one compare-and-select chain. */
FN real pass_max(__global const in_t *x, ulong n) {
  const ulong full = n / VW * VW;
  realv m0 = (realv)(-REAL_MAX), m1 = m0, m2 = m0, m3 = m0;
  ulong c = 0;
  for (; c + 3 * VW < full; c += 4 * VW) {
    m0 = fmax(m0, LOADV(x, c));
    m1 = fmax(m1, LOADV(x, c + VW));
    m2 = fmax(m2, LOADV(x, c + 2 * VW));
    m3 = fmax(m3, LOADV(x, c + 3 * VW));
  }
  for (; c < full; c += VW)
    m0 = fmax(m0, LOADV(x, c));
  real m = HMAX(fmax(fmax(m0, m1), fmax(m2, m3)));
  for (; c < n; c++)
    m = fmax(m, LOAD(x, c));
  return m;
}

#if IN_TYPE == 0 || IN_TYPE == 3
#define KEEP_IN_GRAD 1 /* in_t is real: the gradient row holds the exps */
#else
#define KEEP_IN_GRAD 0
#endif

/* Pass 2, given the max m of the span: sum exp(v - m), and sa, sad when
 * want_a. With `kept` (else 0), each exp is also stored there, still in
 * cache for pass 3, which then needs no second exp: into the gradient row
 * itself for float32/float64 storage, into a row of the work-item's own
 * for 16-bit storage (rounding it to 16 bits would cost the gradient its
 * accuracy). Not with softcap: pass 3 would need the raw logits, gone
 * once the gradient overwrites them.
 *
 * With `next` (else 0), the next row of the same length, its max is
 * taken here too and returned in *next_max: on a CPU its reads from memory
 * then overlap this pass's arithmetic, and its own pass 1 is not needed.
 *
 * With `claim` (16-bit storage and exps kept in a row of their own, else
 * 0), the gradient row: zeros are stored into its aligned vectors here,
 * so that fetching its cache lines for writing overlaps this pass's
 * arithmetic (float32's kept exps do that by themselves) instead of
 * stalling pass 3, which overwrites them. Each vector is read before it
 * is claimed, by this work-item alone.
 *
 * The exps are summed in blocks of SUM_BLOCK vectors, each added to the
 * running sum: one running sum per lane over a long row lost up to 1e-5
 * of S (12 ulps of the loss at C = 13001, logits of two values, as 16-bit
 * storage makes them at +-1e4), each small exp rounded the same way into
 * a much larger sum. sa and sad the same way (they were summed per lane,
 * a chain of C / VW adds: 7.5 ulps of the gradient with probability
 * targets at C = 600, VW = 16), so that every sum of this pass has a
 * chain of at most SUM_BLOCK - 1 + C / (SUM_BLOCK VW) + log2 VW + VW - 1
 * roundings (README, "Error bounds"). */
#define SUM_BLOCK 32
FN row_stats pass_sumexp(const span *sp, real m, const rows_params *p,
                         __global real *kept, __global const in_t *next,
                         real *next_max, __global in_t *claim) {
  const ulong full = sp->n / VW * VW;
  const real eps = p->eps, eoc = eps / (real)p->classes;
  (void)eoc; /* probability targets only */
  const int want_a = WANT_A(eps);
  realv acc = (realv)(0), nm = (realv)(-REAL_MAX), sa = acc, sad = acc;
  realv part = acc, part_sa = acc, part_sad = acc;
  for (ulong c = 0; c < full; c += VW) {
    realv v = capv(LOADV(sp->x, c), p->cap);
    realv e = exp_nonpos(v - m);
    part += e;
    if (want_a) {
      realv a = A_V(sp, c, eps, eoc, p->has_w);
      part_sa += a;
      part_sad += a * (m - v);
    }
    if (c % (SUM_BLOCK * VW) == (SUM_BLOCK - 1) * VW) {
      acc += part;
      sa += part_sa;
      sad += part_sad;
      part = part_sa = part_sad = (realv)(0);
    }
    if (next)
      nm = fmax(nm, LOADV(next, c));
    if (kept)
      STORE_REALV(e, kept, c);
#if !KEEP_IN_GRAD
    if (claim && ALIGNED_FOR(ushortv, claim + c))
      *(__global ushortv *)(claim + c) = (ushortv)(0);
#endif
  }
  row_stats st = {
      m, HSUM(acc + part), HSUM(sa + part_sa), HSUM(sad + part_sad), 0, 0};
  real nm1 = HMAX(nm);
  for (ulong c = full; c < sp->n; c++) {
    real v = cap1(LOAD(sp->x, c), p->cap);
    real e = exp_nonpos1(v - m);
    st.sumexp += e;
    if (want_a) {
      real a = A_1(sp, c, eps, eoc, p->has_w);
      st.sa += a;
      st.sad += a * (m - v);
    }
    if (next)
      nm1 = fmax(nm1, LOAD(next, c));
    if (kept)
      kept[c] = e;
  }
  *next_max = nm1;
  return st;
}

/* ---- group and split variants: one online pass -------------------- */

/* One online step, m' = max(m, v): s <- s e^(m - m') + e^(v - m'), with one
 * exp: whichever of m and v is smaller lies d = |v - m| below m', so one
 * term is e^-d and the other e^0 = 1, written (v - m') + 1 so that v = +inf
 * still gives inf - inf = NaN as the two-exp form does. NaN in v: v > m is
 * false and e^-|NaN| is NaN. With a (want_a), sad <- sad + sa (m' - m) +
 * a (m' - v) and sa <- sa + a. */
#define ONLINE_STEP(T, m, s, v)                                                \
  do {                                                                         \
    T m2_ = fmax(m, v), e_ = exp(-fabs((v) - (m)));                            \
    s = (v) > (m) ? (s)*e_ + (((v)-m2_) + (T)(1)) : (s) + e_;                  \
    m = m2_;                                                                   \
  } while (0)
#define ONLINE_A(m_old, m_new, sa, sad, a, v)                                  \
  do {                                                                         \
    sad += (sa) * ((m_new) - (m_old)) + (a) * ((m_new) - (v));                 \
    sa += (a);                                                                 \
  } while (0)

/* Merges a block's online sums (mb, sb, sab, sadb) into the running ones
 * (m, s, sa, sad), as combine() does, with one exp: the smaller max lies
 * |mb - m| below the larger. */
#define ONLINE_MERGE(T, m, s, sa, sad, mb, sb, sab, sadb)                      \
  do {                                                                         \
    T m2_ = fmax(m, mb), e_ = exp(-fabs((mb) - (m)));                          \
    s = (mb) > (m) ? (s)*e_ + (sb) : (s) + (sb)*e_;                            \
    sad = ((sad) + (sa) * (m2_ - (m))) + ((sadb) + (sab) * (m2_ - (mb)));      \
    sa += (sab);                                                               \
    m = m2_;                                                                   \
  } while (0)

/* The statistics of this work-item's elements of the span (owns()),
 * online, in one read. With `cache` (local memory), the raw logits are
 * also copied there for the gradient pass, each by the work-item that
 * will read it. The target's logit is read by its owner.
 *
 * The vectors are taken in blocks of SUM_BLOCK, each summed online on its
 * own and merged into the running sums: one running sum over a row
 * rescaled each earlier term once per rise of its max, a chain of up to
 * C / (VW W) roundings and exps (W work-items) for an ascending row;
 * blocked, at most SUM_BLOCK - 1 + C / (SUM_BLOCK VW W) (README, "Error
 * bounds"), for one exp per block more. */
FN row_stats pass_online(const span *sp, const rows_params *p,
                         __local real *cache, int cached, ulong first,
                         ulong step) {
  const ulong full = sp->n / VW * VW;
  const real eps = p->eps, eoc = eps / (real)p->classes;
  (void)eoc; /* probability targets only */
  const int want_a = WANT_A(eps);
  realv mv = (realv)(-REAL_MAX), sv = (realv)(0), sav = sv, sadv = sv;
  realv mb = mv, sb = sv, sab = sv, sadb = sv; /* the current block's */
  uint k = 0;
  for (ulong c = first * VW; c < full; c += step * VW) {
    realv raw = LOADV(sp->x, c), v = capv(raw, p->cap), m_old = mb;
    if (cached)
      VSTORE_(raw, c, cache);
    ONLINE_STEP(realv, mb, sb, v);
    if (want_a)
      ONLINE_A(m_old, mb, sab, sadb, A_V(sp, c, eps, eoc, p->has_w), v);
    if (++k == SUM_BLOCK) {
      ONLINE_MERGE(realv, mv, sv, sav, sadv, mb, sb, sab, sadb);
      mb = (realv)(-REAL_MAX);
      sb = sab = sadb = (realv)(0);
      k = 0;
    }
  }
  ONLINE_MERGE(realv, mv, sv, sav, sadv, mb, sb, sab, sadb);
  row_stats st = empty_stats();
  st.max = HMAX(mv);
  st.sumexp = HSUM(sv * exp(mv - st.max));
  if (want_a) {
    st.sa = HSUM(sav);
    st.sad = HSUM(sadv + sav * (st.max - mv));
  }
  for (ulong c = full + first; c < sp->n; c += step) {
    real raw = LOAD(sp->x, c), v = cap1(raw, p->cap), m_old = st.max;
    if (cached)
      cache[c] = raw;
    ONLINE_STEP(real, st.max, st.sumexp, v);
    if (want_a)
      ONLINE_A(m_old, st.max, st.sa, st.sad, A_1(sp, c, eps, eoc, p->has_w), v);
  }
  if (sp->t >= 0 && (ulong)sp->t < sp->n &&
      owns((ulong)sp->t, sp->n, first, step)) {
    st.xt = cap1(LOAD(sp->x, sp->t), p->cap);
    st.wt = p->has_w ? sp->w[sp->t] : (real)1;
  }
  return st;
}

/* The span's statistics over the work-items that share it, `lane` of
 * `width` (a segment of the work-group: pass_online, then a max and one
 * four-way sum); each of them gets them. Every work-item of the group
 * calls it, with its own segment's span. */
FN row_stats span_stats(const span *sp, const rows_params *p,
                        __local real *scratch, __local REALN(4) * scratch4,
                        __local real *cache, int cached, uint lane,
                        uint width) {
  row_stats st = pass_online(sp, p, cache, cached, lane, width);
  const real m = segment_max(st.max, scratch, lane, width);
  REALN(4)
  part = (REALN(4))(st.sumexp * exp(st.max - m), st.sa,
                    st.sad + st.sa * (m - st.max), st.xt);
  REALN(4) sum = segment_sum4(part, scratch4, lane, width);
  row_stats r = {m, sum.x, sum.y, sum.z, sum.w, 0};
  /* wt: read by everyone, the weights are never written */
  r.wt = sp->t < 0 || (ulong)sp->t >= sp->n ? (real)0
         : p->has_w                         ? sp->w[sp->t]
                                            : (real)1;
  return r;
}

/* ---- what every variant shares ------------------------------------- */

/* What a row's target asks for. */
enum { ROW_TARGET, ROW_ALL, ROW_IGNORED, ROW_BAD };

/* A row's target column (-1 for none) and its kind: ROW_TARGET, ROW_ALL
 * (softmax and probability targets: every class), ROW_IGNORED
 * (ignore_index) or ROW_BAD (neither in [0, C) nor ignore_index). */
FN long row_target(__global const tgt_t *t, const rows_params *p, ulong row,
                   int *kind) {
  *kind = ROW_ALL;
  if (PROB_TARGETS ? 1 : p->softmax)
    return -1;
  long ti = t[p->t_off + row];
  *kind = ti == p->ignore                     ? ROW_IGNORED
          : ti < 0 || (ulong)ti >= p->classes ? ROW_BAD
                                              : ROW_TARGET;
  return *kind == ROW_TARGET ? ti : -1;
}

/* The gradient's scale s of a row: upstream gradient, mean's divisor and
 * grad_scale. */
FN real row_scale(__global const real *g, __global const real *stats,
                  const rows_params *p, ulong row) {
  real s;
  if (p->reduction == CLLOSS_ROWS_NONE) {
    s = upstream(g + p->g_off, row, p->g_mode);
  } else {
    s = upstream(g + p->g_off, 0, p->g_mode);
    if (p->reduction == CLLOSS_ROWS_MEAN)
      s /= p->norm > 0         ? (real)p->norm
           : p->mean_count > 0 ? (real)p->mean_count
                               : stats[0];
  }
  return s * (real)p->grad_scale;
}

/* What the gradient pass needs of a row, from its combined statistics. */
typedef struct grad_coef {
  real m, inv_s; /* max, 1 / S */
  real s;        /* the row's scale */
  real coef;     /* A */
  real tcoef;    /* (1-e) w_t: the target's own term */
  real eps, eoc, cap;
  int has_w;
} grad_coef;

/* The row's loss (returned) and its gradient coefficients, from the
 * combined statistics of the whole row. */
FN real row_finish(row_stats st, const rows_params *p, real s, grad_coef *k) {
  const real eps = p->eps, eoc = eps / (real)p->classes, z = p->z;
  const real log_s = log(st.sumexp), lse = st.max + log_s;
  const real zl = z > 0 ? z * lse * lse : 0, dz = z > 0 ? 2 * z * lse : 0;
  k->m = st.max;
  k->inv_s = 1 / st.sumexp;
  k->s = s;
  k->eps = eps;
  k->eoc = eoc;
  k->cap = p->cap;
  k->has_w = p->has_w;
  if (p->softmax) {
    k->coef = 1;
    k->tcoef = 0;
    k->eoc = 0; /* no smoothing term */
    k->s = 1;
    return 0;
  }
#if PROB_TARGETS
  k->coef = st.sa + dz;
  k->tcoef = 0;
  return st.sa * log_s + st.sad + zl;
#else
  k->tcoef = (1 - eps) * st.wt;
  k->coef = k->tcoef + (eps > 0 ? eoc * st.sa : 0) + dz;
  real loss = (1 - eps) * st.wt * ((st.max - st.xt) + log_s) + zl;
  if (eps > 0)
    loss += eoc * (st.sa * log_s + st.sad);
  return loss;
#endif
}

/* Pass 3: the gradient of this work-item's elements of the span (owns()):
 * dx = s (p A - b) dcap (+ the old value with accumulate), p from `kept`
 * exps (item variant, else 0) or from the logits, read from local memory
 * when `cached`. Each element is read before it is written, by the same
 * work-item. p = exp(v - m) / S either way: v - m is exact near the max,
 * where p matters, so p is within a few ulps; exp((v - m) - log S) would
 * add the rounding of that argument and of log S (12 ulps at p = 2e-4),
 * and would differ from the kept exps' p, so that accumulating onto zeros
 * would not give the gradient that is written without accumulate. */
FN void pass_grad(const span *sp, const grad_coef *k, const rows_params *p,
                  __global const real *kept, __local const real *cache,
                  int cached, ulong first, ulong step) {
  const ulong full = sp->n / VW * VW;
  const int acc = p->accumulate;
  for (ulong c = first * VW; c < full; c += step * VW) {
    realv pr, dcap = (realv)(1);
    if (kept) {
      pr = VLOAD_(c, kept) * k->inv_s;
    } else {
      realv v = cached ? VLOAD_(c, cache) : LOADV(sp->x, c);
      if (SOFTCAP) {
        realv th = tanh(v / k->cap);
        v = k->cap * th;
        dcap = 1 - th * th;
      }
      pr = exp_nonpos(v - k->m) * k->inv_s;
    }
#if PROB_TARGETS
    realv b = A_V(sp, c, k->eps, k->eoc, k->has_w);
#else
    realv b = k->eoc * A_V(sp, c, k->eps, k->eoc, k->has_w);
    if ((ulong)(sp->t - (long)c) < VW) /* the target is in this vector */
      b += k->tcoef * LANE_IS((int)(sp->t - (long)c));
#endif
    realv d = k->s * (pr * k->coef - b) * dcap;
    STOREV(ACCUMV(acc, d, sp->g, c), sp->g, c);
  }
  for (ulong c = full + first; c < sp->n; c += step) {
    real pr, dcap = 1;
    if (kept) {
      pr = kept[c] * k->inv_s;
    } else {
      real v = cached ? cache[c] : LOAD(sp->x, c);
      if (SOFTCAP) {
        real th = tanh(v / k->cap);
        v = k->cap * th;
        dcap = 1 - th * th;
      }
      pr = exp_nonpos1(v - k->m) * k->inv_s;
    }
#if PROB_TARGETS
    real b = A_1(sp, c, k->eps, k->eoc, k->has_w);
#else
    real b = k->eoc * A_1(sp, c, k->eps, k->eoc, k->has_w);
    if ((long)c == sp->t)
      b += k->tcoef;
#endif
    real d = k->s * (pr * k->coef - b) * dcap;
    STORE(ACCUM1(acc, d, sp->g, c), sp->g, c);
  }
}

/* The gradient of a row that has none to give: 0 for an ignored row (left
 * as it is with accumulate), NaN for a bad target. */
FN void fill_grad(const span *sp, const rows_params *p, int bad, ulong first,
                  ulong step) {
  if (bad || !p->accumulate)
    fill_row(sp->g, sp->n, bad ? NAN : 0, first, step);
}

/* Zeros into the gradient's padding, columns [C, ld) of the row. */
FN void zero_padding(__global in_t *grad_row, const rows_params *p, ulong row,
                     ulong first, ulong step) {
  if (row < p->pad_rows && p->ld > p->cb)
    fill_row(grad_row + p->cb, p->ld - p->cb, 0, first, step);
}

/* After a row's statistics are combined: its loss (returned) and, for
 * the work-items first..step of span sp, its gradient (or the fill of a
 * row without one) and, when pad_row (the row's gradient) is given, its
 * padding. */
FN real finish_row(const span *sp, row_stats st, int kind, const rows_params *p,
                   __global const real *g, __global const real *stats,
                   ulong row, __global const real *kept,
                   __local const real *cache, int cached,
                   __global in_t *pad_row, ulong first, ulong step) {
  const int bad = kind == ROW_BAD, ignored = kind == ROW_IGNORED;
  grad_coef k;
  const real s = p->want_grad && !bad ? row_scale(g, stats, p, row) : 0;
  const real row_loss = bad ? NAN : ignored ? 0 : row_finish(st, p, s, &k);
  if (p->want_grad) {
    if (bad || ignored)
      fill_grad(sp, p, bad, first, step);
    else
      pass_grad(sp, &k, p, kept, cache, cached, first, step);
    if (pad_row)
      zero_padding(pad_row, p, row, first, step);
  }
  return row_loss;
}

FN span row_span(__global const in_t *x, __global const in_t *y,
                 __global const real *w, __global in_t *grad,
                 const rows_params *p, ulong row, long t) {
  /* A shard's columns are the classes [c0, c0 + cb): its target column,
   * weights and probability targets are its own. */
  span sp = {x + p->x_off + row * p->ld,
             y + p->y_off + row * p->cb,
             w + p->w_off,
             grad + p->grad_off + row * p->ld,
             p->cb,
             t < 0 ? -1 : t - (long)p->c0};
  return sp;
}

/* ---- the kernels --------------------------------------------------- */

/* Item variant: work-item i takes rows [i run, (i + 1) run), one after the
 * other, in three passes each. Pass 2 of one row also takes the max of the
 * next, which then skips pass 1. `scratch` (16-bit storage, when
 * P.use_exps) has a row of C reals for each work-item, where pass 2 keeps
 * its exps for pass 3. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_ITEM)
__kernel void ce_item(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  const rows_params p = P;
  const ulong first = get_global_id(0) * p.run;
  const ulong end = first < p.rows ? min(first + p.run, p.rows) : first;
  real total = 0, next_max = 0;
  int have_max = 0;
  for (ulong row = first; row < end; row++) {
    int kind;
    const long ti = row_target(t, &p, row, &kind);
    span sp = row_span(x, y, w, grad, &p, row, ti);
    /* The target's logit, before pass 2 may overwrite it (in place). */
    const int here = sp.t >= 0 && (ulong)sp.t < sp.n;
    const real xt = here ? cap1(LOAD(sp.x, sp.t), p.cap) : 0;
    /* Not with accumulate: the gradient row holds what it adds to. */
    const int keep = SOFTCAP ? 0 : p.want_grad && !p.accumulate;
#if KEEP_IN_GRAD
    __global real *kept = keep ? sp.g : 0;
#else
    __global real *kept =
        keep && p.use_exps ? scratch + get_global_id(0) * p.cb : 0;
#endif
    const real m = cap1(have_max ? next_max : pass_max(sp.x, sp.n), p.cap);
    __global const in_t *next = row + 1 < end ? sp.x + p.ld : 0;
#if KEEP_IN_GRAD
    __global in_t *claim = 0;
#else
    __global in_t *claim = kept ? sp.g : 0;
#endif
    row_stats st = pass_sumexp(&sp, m, &p, kept, next, &next_max, claim);
    have_max = next != 0;
    st.xt = xt;
    st.wt = !here ? 0 : p.has_w ? sp.w[sp.t] : (real)1;
    const real row_loss =
        finish_row(&sp, st, kind, &p, g, stats, row, kept, 0, 0, sp.g, 0, 1);
    if (kind == ROW_BAD)
      report_bad_row(err, row);
    if (p.loss_mode == CLLOSS_LOSSES_EACH)
      loss[p.loss_off + row] = row_loss;
    total += row_loss;
  }
  if (p.loss_mode == CLLOSS_LOSSES_PARTIALS) {
    total = group_sum(total, red);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif

/* Group variant: one work-group per row. With P.cache_row, row_cache
 * (local memory, C reals) holds the row's logits from the statistics pass
 * to the gradient pass, which then reads nothing from global memory but
 * the gradient it writes. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_GROUP)
__kernel void ce_group(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  __local REALN(4) red4[WG_SIZE];
  const rows_params p = P;
  const uint lid = get_local_id(0), size = get_local_size(0);
  for (ulong row = get_group_id(0); row < p.rows; row += get_num_groups(0)) {
    int kind;
    const long ti = row_target(t, &p, row, &kind);
    span sp = row_span(x, y, w, grad, &p, row, ti);
    row_stats st =
        span_stats(&sp, &p, red, red4, row_cache, p.cache_row, lid, size);
    const real row_loss = finish_row(&sp, st, kind, &p, g, stats, row, 0,
                                     row_cache, p.cache_row, sp.g, lid, size);
    if (lid == 0) {
      if (kind == ROW_BAD)
        report_bad_row(err, row);
      put_row_loss(loss, partials, &p, row, row_loss);
    }
  }
}
#endif

/* Lanes variant, for short and medium rows on GPUs: P.lanes work-items
 * per row (8 to 64) and get_local_size / P.lanes rows per work-group. A
 * row's lanes read it with neighbouring vector loads (lane j takes vectors
 * j, j + lanes, ...), reduce in their segment of local memory, and, with
 * P.cache_row, keep the row there (P.cb reals per row of the group) for
 * the gradient pass, so that it is read from global memory once. The
 * group walks blocks of rows; rows past N in the last block take part in
 * the barriers with empty spans. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_LANES)
__kernel void ce_lanes(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  __local REALN(4) red4[WG_SIZE];
  const rows_params p = P;
  const uint lid = get_local_id(0), lanes = (uint)p.lanes;
  const uint lane = lid % lanes, slot = lid / lanes;
  const ulong per = get_local_size(0) / lanes;
  __local real *cache = row_cache + (p.cache_row ? slot * p.cb : 0);
  for (ulong first = get_group_id(0) * per; first < p.rows;
       first += get_num_groups(0) * per) {
    const ulong row = first + slot;
    const int live = row < p.rows;
    int kind = ROW_IGNORED;
    const long ti = live ? row_target(t, &p, row, &kind) : -1;
    span sp = row_span(x, y, w, grad, &p, live ? row : 0, ti);
    if (!live)
      sp.n = 0;
    row_stats st =
        span_stats(&sp, &p, red, red4, cache, p.cache_row, lane, lanes);
    if (!live)
      continue; /* after the last barrier of this block */
    const real row_loss = finish_row(&sp, st, kind, &p, g, stats, row, 0, cache,
                                     p.cache_row, sp.g, lane, lanes);
    if (lane == 0) {
      if (kind == ROW_BAD)
        report_bad_row(err, row);
      put_row_loss(loss, partials, &p, row, row_loss);
    }
  }
}
#endif

/* Split variant, for a few very long rows: each row is cut into P.segs
 * segments of P.seg_len elements (a multiple of VW), one work-group each.
 * Segment k of row r is job r segs + k. */
FN span segment_span(__global const in_t *x, __global const in_t *y,
                     __global const real *w, __global in_t *grad,
                     const rows_params *p, ulong row, ulong k, long ti) {
  span sp = row_span(x, y, w, grad, p, row, ti);
  const ulong begin = k * p->seg_len;
  sp.x += begin;
  sp.y += begin;
  sp.w += begin;
  sp.g += begin;
  sp.n = min(p->seg_len, p->cb - begin);
  sp.t = sp.t < 0 ? -1 : sp.t - (long)begin;
  return sp;
}

/* Writes every segment's record into scratch[job * REC_SIZE]. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_SPLIT)
__kernel void ce_split_stats(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  __local REALN(4) red4[WG_SIZE];
  const rows_params p = P;
  for (ulong job = get_group_id(0); job < p.rows * p.segs;
       job += get_num_groups(0)) {
    const ulong row = job / p.segs, k = job % p.segs;
    int kind;
    const long ti = row_target(t, &p, row, &kind);
    span sp = segment_span(x, y, w, grad, &p, row, k, ti);
    row_stats st = span_stats(&sp, &p, red, red4, row_cache, 0, get_local_id(0),
                              get_local_size(0));
    if (get_local_id(0) == 0)
      store_stats(scratch + p.rec_off + job * REC_SIZE, st);
  }
}
#endif

/* Combines a row's records in segment order (every work-group of the row
 * the same way), then writes its own segment's gradient; segment 0 owns
 * the row's loss, the last segment the row's padding. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_SPLIT)
__kernel void ce_split_grad(ROWS_KERNEL_ARGS) {
  const rows_params p = P;
  const uint lid = get_local_id(0), size = get_local_size(0);
  for (ulong job = get_group_id(0); job < p.rows * p.segs;
       job += get_num_groups(0)) {
    const ulong row = job / p.segs, k = job % p.segs;
    __global const real *rec = scratch + p.rec_off + row * p.segs * REC_SIZE;
    row_stats st = load_stats(rec);
    for (ulong j = 1; j < p.segs; j++)
      st = combine(st, load_stats(rec + j * REC_SIZE));
    int kind;
    const long ti = row_target(t, &p, row, &kind);
    span sp = segment_span(x, y, w, grad, &p, row, k, ti);
    const real row_loss = finish_row(
        &sp, st, kind, &p, g, stats, row, 0, 0, 0,
        k == p.segs - 1 ? grad + p.grad_off + row * p.ld : 0, lid, size);
    if (lid == 0 && k == 0) {
      if (kind == ROW_BAD)
        report_bad_row(err, row);
      put_row_loss(loss, partials, &p, row, row_loss);
    }
  }
}
#endif

/* ---- shards: a block of classes [c0, c0 + cb) of a V-class problem ---
 * The partial statistics of a block are ce_split_stats with one segment
 * (records at scratch + rec_off), its gradient and the row losses from
 * combined records are ce_split_grad with one segment. Two kernels of
 * their own: */

/* acc[i] = combine(acc[i], other[i]) for P.rows records: acc is scratch
 * from rec_off, other is partials (a second records buffer) from
 * loss_off. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_SPLIT)
__kernel void ce_stats_combine(ROWS_KERNEL_ARGS) {
  const rows_params p = P;
  for (ulong i = get_global_id(0); i < p.rows; i += get_global_size(0)) {
    __global real *a = scratch + p.rec_off + i * REC_SIZE;
    row_stats r = combine(load_stats(a),
                          load_stats(records + p.records_off + i * REC_SIZE));
    store_stats(a, r);
  }
}
#endif

/* One work-group, before ce_split_grad over combined records: stats[0] =
 * D, the sum of w_t (from the records) over rows whose target is valid;
 * a target outside [0, V) that is not ignore_index is reported. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_SPLIT)
__kernel void ce_shard_targets(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  const rows_params p = P;
  real d = 0;
  for (ulong i = get_local_id(0); i < p.rows; i += get_local_size(0)) {
    int kind;
    row_target(t, &p, i, &kind);
    if (kind == ROW_BAD)
      report_bad_row(err, i);
    else if (kind == ROW_TARGET)
      d += load_stats(scratch + p.rec_off + i * REC_SIZE).wt;
  }
  d = group_sum(d, red);
  if (get_local_id(0) == 0)
    stats[0] = d;
}
#endif
