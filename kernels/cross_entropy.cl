/* cross_entropy.cl - fused softmax cross-entropy loss and gradient, one pass
 * over each row for statistics and one that writes the gradient.
 *
 *   lse_i  = m_i + log sum_c exp(x_ic - m_i)        (x capped when cap > 0)
 *   index targets:
 *     loss_i = (1-e) w_t (lse - x_t) + (e/C)(W lse - sum_c w_c x_c) + z lse^2
 *     dx_j   = s [p_j A - (e/C) w_j - (1-e) w_t [j = t]],
 *              A = (1-e) w_t + (e/C) W + 2 z lse
 *   probability targets (PROB_TARGETS), y' = (1-e) y + e/C:
 *     loss_i = lse SY - SYX + z lse^2,  SY = sum w y',  SYX = sum w y' x
 *     dx_j   = s [p_j (SY + 2 z lse) - w_j y'_j]
 *   softcap: x -> cap tanh(x / cap), dx times 1 - tanh^2(x / cap).
 *
 * Variants, all starting with the arguments CE_ARGS: ce_item (a run of rows
 * per work-item, explicit VW-wide loads, exps kept between passes; CPUs),
 * ce_group (one work-group per row; GPUs) and the split pair (a row's
 * segments in several work-groups; few long rows). `first`/`step` below
 * count VW-wide chunks: the item kernel walks its row alone (0, 1), the
 * group kernel's work-items interleave (lid, size).
 */
#ifndef PROB_TARGETS
#define PROB_TARGETS 0
#endif

/* A span of one row: the whole row, or one segment of it (split). */
typedef struct row_args {
  __global const in_t *x; /* the span's first logit */
  __global const in_t *y; /* its probability targets */
  __global const real *w; /* its class weights (unused when !has_w) */
  ulong classes;          /* C, of the whole row */
  ulong n;                /* elements in the span */
  int has_w;
  real eps, cap;
} row_args;

/* Per-row statistics, partial (per work-item) until combined. */
typedef struct row_stats {
  real max, sumexp, swx, sy, syx;
} row_stats;

/* SOFTCAP (build-time) keeps tanh out of the common programs' loops. */
#ifndef SOFTCAP
#define SOFTCAP 0
#endif
#if SOFTCAP
inline realv capv(realv v, real cap) { return cap * tanh(v / cap); }
inline real cap1(real v, real cap) { return cap * tanh(v / cap); }
#else
#define capv(v, cap) (v)
#define cap1(v, cap) (v)
#endif

inline realv weights_v(const row_args *a, ulong c) {
  return a->has_w ? VLOAD_(real, c, a->w) : (realv)(1);
}
inline real weight1(const row_args *a, ulong c) {
  return a->has_w ? a->w[c] : (real)1;
}

/* Pass 1: max of the row, and the linear sums that label smoothing and
 * probability targets need. */
inline row_stats pass_max(const row_args *a) {
  const ulong full = a->n / VW * VW;
#if PROB_TARGETS
  const real eoc = a->eps / (real)a->classes;
#endif
  realv mv = (realv)(-REAL_MAX), swx = (realv)(0), sy = (realv)(0),
        syx = (realv)(0);
  ulong c0 = 0;
  if (!PROB_TARGETS && !(a->eps > 0)) {
    /* The max alone (the common case): four running maxima, so that the
     * loop is not bound by the latency of one compare-and-select chain. */
    realv m1 = mv, m2 = mv, m3 = mv;
    for (; c0 + 3 * VW < full; c0 += 4 * VW) {
      mv = fmax(mv, capv(LOADV(a->x, c0), a->cap));
      m1 = fmax(m1, capv(LOADV(a->x, c0 + VW), a->cap));
      m2 = fmax(m2, capv(LOADV(a->x, c0 + 2 * VW), a->cap));
      m3 = fmax(m3, capv(LOADV(a->x, c0 + 3 * VW), a->cap));
    }
    mv = fmax(fmax(mv, m1), fmax(m2, m3));
  }
  for (ulong c = c0; c < full; c += VW) {
    realv v = capv(LOADV(a->x, c), a->cap);
    mv = fmax(mv, v);
#if PROB_TARGETS
    realv wy = weights_v(a, c) * ((1 - a->eps) * LOADV(a->y, c) + eoc);
    sy += wy;
    syx += wy * v;
#else
    if (a->eps > 0)
      swx += weights_v(a, c) * v;
#endif
  }
  row_stats s = {HMAX(mv), 0, HSUM(swx), HSUM(sy), HSUM(syx)};
  for (ulong c = full; c < a->n; c++) {
    real v = cap1(LOAD(a->x, c), a->cap);
    s.max = fmax(s.max, v);
#if PROB_TARGETS
    real wy = weight1(a, c) * ((1 - a->eps) * LOAD(a->y, c) + eoc);
    s.sy += wy;
    s.syx += wy * v;
#else
    if (a->eps > 0)
      s.swx += weight1(a, c) * v;
#endif
  }
  return s;
}

#define KEEP_OK (!SOFTCAP)
#if IN_TYPE == 0 || IN_TYPE == 3
#define KEEP_IN_GRAD 1 /* in_t is real: the gradient row holds the exps */
#else
#define KEEP_IN_GRAD 0
#endif

/* Pass 2: sum_c exp(x_c - m). With `kept` (else NULL), each exp is also
 * stored there, still in cache for pass 3, which then needs no second exp:
 * into the gradient row itself for float32/float64 storage, into a row of
 * the work-item's own for 16-bit storage (rounding it to 16 bits would
 * cost the gradient its accuracy). Not with softcap: pass 3 would need the
 * raw logits, gone once the gradient overwrites them.
 *
 * With `next` (else NULL), the next row of the same length, its max is
 * taken here too and returned in *next_max: on a CPU its reads from memory
 * then overlap this pass's arithmetic, and its own pass 1 is not needed.
 *
 * With `claim` (16-bit storage and exps kept in a row of their own, else
 * NULL), the gradient row: zeros are stored into its aligned vectors here,
 * so that fetching its cache lines for writing overlaps this pass's
 * arithmetic (float32's kept exps do that by themselves) instead of
 * stalling pass 3, which overwrites them. */
inline real pass_sumexp(const row_args *a, real m, __global real *kept,
                        __global const in_t *next, real *next_max,
                        __global in_t *claim) {
  const ulong full = a->n / VW * VW;
  realv acc = (realv)(0), nm = (realv)(-REAL_MAX);
  for (ulong c = 0; c < full; c += VW) {
    realv e = exp_nonpos(capv(LOADV(a->x, c), a->cap) - m);
    acc += e;
    if (next)
      nm = fmax(nm, LOADV(next, c));
    if (kept)
      STORE_REALV(e, kept, c);
#if !KEEP_IN_GRAD
    if (claim && ALIGNED_FOR(ushortv, claim + c))
      *(__global ushortv *)(claim + c) = (ushortv)(0);
#endif
  }
  real s = HSUM(acc), nm1 = HMAX(nm);
  for (ulong c = full; c < a->n; c++) {
    real e = exp_nonpos1(cap1(LOAD(a->x, c), a->cap) - m);
    s += e;
    if (next)
      nm1 = fmax(nm1, LOAD(next, c));
    if (kept)
      kept[c] = e;
  }
  *next_max = nm1;
  return s;
}

/* Pass 3: dx_j = s (p_j A - B_j) dcap_j with B_j = (e/C) w_j for index
 * targets and w_j y'_j for probability targets, p_j = exp(x_j - lse), or
 * kept[j] / sum (kept[j] = exp(x_j - m), pass 2; NULL if none). The
 * logits come from `on_chip` (local memory, filled by pass_online) when
 * not NULL. The target's own term is added afterwards by the caller. In place
 * is safe: each element is read before it is written, by the same
 * work-item (as is each element of `on_chip`). */
inline void pass_grad(const row_args *a, __global in_t *g, real lse,
                      real inv_sum, __global const real *kept,
                      __local const real *on_chip, real s, real coef, ulong first,
                      ulong step) {
  const ulong full = a->n / VW * VW;
  const real eoc = a->eps / (real)a->classes;
  for (ulong c = first * VW; c < full; c += step * VW) {
    realv p, dcap = (realv)(1);
    if (kept) {
      p = VLOAD_(real, c, kept) * inv_sum;
    } else {
      realv v = on_chip ? VLOAD_(real, c, on_chip) : LOADV(a->x, c);
      if (SOFTCAP) {
        realv th = tanh(v / a->cap);
        v = a->cap * th;
        dcap = 1 - th * th;
      }
      p = exp_nonpos(v - lse);
    }
#if PROB_TARGETS
    realv b = weights_v(a, c) * ((1 - a->eps) * LOADV(a->y, c) + eoc);
#else
    realv b = eoc * weights_v(a, c);
#endif
    STOREV(s * (p * coef - b) * dcap, g, c);
  }
  for (ulong c = full + first; c < a->n; c += step) {
    real p, dcap = 1;
    if (kept) {
      p = kept[c] * inv_sum;
    } else {
      real v = on_chip ? on_chip[c] : LOAD(a->x, c);
      if (SOFTCAP) {
        real th = tanh(v / a->cap);
        v = a->cap * th;
        dcap = 1 - th * th;
      }
      p = exp_nonpos1(v - lse);
    }
#if PROB_TARGETS
    real b = weight1(a, c) * ((1 - a->eps) * LOAD(a->y, c) + eoc);
#else
    real b = eoc * weight1(a, c);
#endif
    STORE(s * (p * coef - b) * dcap, g, c);
  }
}

/* Kernel arguments, shared by every variant: the row losses' own, then
 * probability targets (y, dense [N, C]), label smoothing, z-loss, softcap
 * and the mean's external normaliser (0: none). */
#define CE_ARGS                                                               \
  ROWS_ARGS, __global const in_t *y, ulong y_off, real eps, real z, real cap, \
      real norm

/* reduction: 0 mean, 1 sum, 2 none (clloss_reduction). */
inline real row_scale(__global const real *g, ulong row, int g_mode,
                      int reduction, __global const real *stats, real norm) {
  if (reduction == 2)
    return upstream(g, row, g_mode);
  real s = upstream(g, 0, g_mode);
  return reduction == 0 ? s / (norm > 0 ? norm : stats[0]) : s;
}

/* What the target's own gradient entry needs once the rest of the row is
 * written (index targets): the group kernel writes it after a barrier, so
 * that no barrier sits in the item kernel's divergent code. */
typedef struct target_fix {
  long t;   /* column to rewrite, or -1 */
  real raw; /* its logit before the cap */
  real coef, s, lse;
} target_fix;

inline void write_target_fix(const row_args *a, __global in_t *gr,
                             target_fix f) {
  if (f.t < 0)
    return;
  const real e = a->eps, eoc = e / (real)a->classes;
  real wt = weight1(a, f.t), v = f.raw, dcap = 1;
  if (SOFTCAP) {
    real th = tanh(f.raw / a->cap);
    v = a->cap * th;
    dcap = 1 - th * th;
  }
  real p = exp_nonpos1(v - f.lse);
  STORE(f.s * (p * f.coef - eoc * wt - (1 - e) * wt) * dcap, gr, f.t);
}

/* Everything one row needs after its statistics are known: the row's loss
 * (returned) and, when asked, its gradient but for the target's entry,
 * which *fix describes. */
inline real finish_row(const row_args *a, const row_args *span,
                       row_stats st, ulong row, __global const tgt_t *t,
                       __global in_t *span_gr,
                       real raw_t, int want_grad, __global const real *kept,
                       __local const real *on_chip, real s, real z,
                       real wsum, long ignore, __global volatile uint *err,
                       ulong first, ulong step, int leader, target_fix *fix) {
  real lse = st.max + log(st.sumexp);
  real inv_sum = 1 / st.sumexp;
  real zl = z > 0 ? z * lse * lse : 0;
  real dz = z > 0 ? 2 * z * lse : 0;
  fix->t = -1;
#if PROB_TARGETS
  if (want_grad)
    pass_grad(span, span_gr, lse, inv_sum, kept, on_chip, s, st.sy + dz,
              first, step);
  return lse * st.sy - st.syx + zl;
#else
  long ti = t[row];
  if (ti == ignore) {
    if (want_grad)
      fill_row(span_gr, span->n, 0, first, step);
    return 0;
  }
  if (ti < 0 || (ulong)ti >= a->classes) {
    if (leader)
      report_bad_row(err, row);
    if (want_grad)
      fill_row(span_gr, span->n, NAN, first, step);
    return NAN;
  }
  const real e = a->eps, eoc = e / (real)a->classes;
  real wt = weight1(a, ti);
  real loss = (1 - e) * wt * (lse - cap1(raw_t, a->cap)) + zl;
  if (e > 0)
    loss += eoc * (wsum * lse - st.swx);
  if (want_grad) {
    real coef = (1 - e) * wt + eoc * wsum + dz;
    pass_grad(span, span_gr, lse, inv_sum, kept, on_chip, s, coef, first,
              step);
    target_fix f = {ti, raw_t, coef, s, lse};
    *fix = f;
  }
  return loss;
#endif
}

/* The target's logit, read before pass 2 may overwrite it (in place); 0
 * for an ignored or bad target. */
inline real target_logit(const row_args *a, __global const tgt_t *t,
                         ulong row, long ignore) {
#if PROB_TARGETS
  return 0;
#else
  long ti = t[row];
  return ti != ignore && ti >= 0 && (ulong)ti < a->classes ? LOAD(a->x, ti)
                                                            : 0;
#endif
}

/* One online step, m' = max(m, v): s <- s e^(m - m') + e^(v - m'), with one
 * exp: whichever of m and v is smaller lies d = |v - m| below m', so one
 * term is e^-d and the other e^0 = 1, written (v - m') + 1 so that v = +inf
 * still gives inf - inf = NaN as the two-exp form does. NaN in v: v > m is
 * false and e^-|NaN| is NaN. */
#define ONLINE_STEP(T, m, s, v)                                               \
  do {                                                                        \
    T m2_ = fmax(m, v), e_ = exp(-fabs((v) - (m)));                           \
    s = (v) > (m) ? (s)*e_ + (((v)-m2_) + (T)(1)) : (s) + e_;                 \
    m = m2_;                                                                  \
  } while (0)

/* One pass for max and sum-exp together (online softmax): each lane keeps
 * its running max m and sum s relative to it (ONLINE_STEP). One exp per
 * element, as in the item kernel's pass 2, and one read of the row: the
 * choice for GPUs, where a second read of a long row would come from DRAM.
 * With `on_chip` (else NULL), the logits are also copied there (local
 * memory) for pass 3, each by the work-item that will read it. */
inline row_stats pass_online(const row_args *a, __local real *on_chip,
                             ulong first, ulong step) {
  const ulong full = a->n / VW * VW;
#if PROB_TARGETS
  const real eoc = a->eps / (real)a->classes;
#endif
  realv mv = (realv)(-REAL_MAX), sv = (realv)(0), swx = (realv)(0),
        sy = (realv)(0), syx = (realv)(0);
  for (ulong c = first * VW; c < full; c += step * VW) {
    realv raw = LOADV(a->x, c), v = capv(raw, a->cap);
    if (on_chip)
      VSTORE_(raw, c, on_chip);
    ONLINE_STEP(realv, mv, sv, v);
#if PROB_TARGETS
    realv wy = weights_v(a, c) * ((1 - a->eps) * LOADV(a->y, c) + eoc);
    sy += wy;
    syx += wy * v;
#else
    if (a->eps > 0)
      swx += weights_v(a, c) * v;
#endif
  }
  row_stats st = {HMAX(mv), 0, HSUM(swx), HSUM(sy), HSUM(syx)};
#if VW == 1
  st.sumexp = sv * exp(mv - st.max);
#else
  for (int k = 0; k < VW; k++)
    st.sumexp += ((real *)&sv)[k] * exp(((real *)&mv)[k] - st.max);
#endif
  for (ulong c = full + first; c < a->n; c += step) {
    real raw = LOAD(a->x, c), v = cap1(raw, a->cap);
    if (on_chip)
      on_chip[c] = raw;
    ONLINE_STEP(real, st.max, st.sumexp, v);
#if PROB_TARGETS
    real wy = weight1(a, c) * ((1 - a->eps) * LOAD(a->y, c) + eoc);
    st.sy += wy;
    st.syx += wy * v;
#else
    if (a->eps > 0)
      st.swx += weight1(a, c) * v;
#endif
  }
  return st;
}

/* Statistics of a span, its work-items interleaved (online, one read),
 * combined over the work-group; the logits copied to `on_chip` unless
 * NULL. */
inline row_stats span_stats(const row_args *a, __local real *scratch,
                            __local real *on_chip) {
  const uint lid = get_local_id(0), size = get_local_size(0);
  row_stats st = pass_online(a, on_chip, lid, size);
  real m = group_max(st.max, scratch);
  st.sumexp = group_sum(st.sumexp * exp(st.max - m), scratch);
  st.max = m;
#if PROB_TARGETS
  st.sy = group_sum(st.sy, scratch);
  st.syx = group_sum(st.syx, scratch);
#else
  if (a->eps > 0)
    st.swx = group_sum(st.swx, scratch);
#endif
  return st;
}

/* Item variant: work-item i takes rows [i run, (i + 1) run), one after the
 * other, in three passes each (max, sum-exp, gradient). Where pass 1 finds
 * only the max (no smoothing, probability targets or softcap), pass 2 of
 * one row also takes the max of the next, which then skips pass 1.
 * exps (16-bit storage, when use_exps) has a row of C for each work-item,
 * where pass 2 keeps its exps for pass 3. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_ce_item)
__kernel void ce_item(CE_ARGS, ulong run, __global real *exps, int use_exps) {
  __local real scratch[WG_SIZE];
  const ulong first = get_global_id(0) * run;
  const ulong end = first < rows ? min(first + run, rows) : first;
#if PROB_TARGETS || SOFTCAP
  const int max_only = 0;
#else
  const int max_only = !(eps > 0);
#endif
  real total = 0, next_max = 0;
  int have_max = 0;
  for (ulong row = first; row < end; row++) {
    row_args a = {x + x_off + row * ld, y + y_off + row * classes, w + w_off,
                  classes, classes, has_w, eps, cap};
    __global in_t *gr = grad + grad_off + row * ld;
#if KEEP_IN_GRAD
    __global real *kept = want_grad && KEEP_OK ? gr : 0;
#else
    __global real *kept =
        want_grad && KEEP_OK && use_exps ? exps + get_global_id(0) * classes
                                         : 0;
#endif
    const real raw_t = target_logit(&a, t + t_off, row, ignore);
    row_stats st = {next_max, 0, 0, 0, 0};
    if (!have_max)
      st = pass_max(&a);
    __global const in_t *next = max_only && row + 1 < end ? a.x + ld : 0;
    st.sumexp = pass_sumexp(&a, st.max, kept, next, &next_max,
                            KEEP_IN_GRAD || !kept ? 0 : gr);
    have_max = next != 0;
    real s = want_grad ? row_scale(g + g_off, row, g_mode, reduction, stats,
                                   norm)
                       : 0;
    real wsum = has_w ? stats[1] : (real)classes;
    target_fix fix;
    real row_loss =
        finish_row(&a, &a, st, row, t + t_off, gr, raw_t, want_grad, kept, 0,
                   s, z, wsum, ignore, err, 0, 1, 1, &fix);
    write_target_fix(&a, gr, fix);
    if (loss_mode == 1)
      loss[loss_off + row] = row_loss;
    total += row_loss;
  }
  if (loss_mode == 2) {
    total = group_sum(total, scratch);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif

/* Group variant: one work-group per row. Where the row fits (cache_row),
 * row_cache (local memory, C reals) holds its logits from the statistics
 * pass to the gradient pass, which then reads nothing from global memory
 * but the gradient it writes. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_ce_group)
__kernel void ce_group(CE_ARGS, __local real *row_cache, int cache_row) {
  __local real scratch[WG_SIZE];
  __local real *on_chip = cache_row ? row_cache : 0;
  const uint lid = get_local_id(0), size = get_local_size(0);
  for (ulong row = get_group_id(0); row < rows; row += get_num_groups(0)) {
    row_args a = {x + x_off + row * ld, y + y_off + row * classes, w + w_off,
                  classes, classes, has_w, eps, cap};
    __global in_t *gr = grad + grad_off + row * ld;
    const real raw_t = target_logit(&a, t + t_off, row, ignore);
    row_stats st = span_stats(&a, scratch, on_chip);
    real s = want_grad ? row_scale(g + g_off, row, g_mode, reduction, stats,
                                   norm)
                       : 0;
    real wsum = has_w ? stats[1] : (real)classes;
    target_fix fix;
    real row_loss =
        finish_row(&a, &a, st, row, t + t_off, gr, raw_t, want_grad, 0,
                   on_chip, s, z, wsum, ignore, err, lid, size, lid == 0, &fix);
    /* The target's entry was written with the rest of the row by some
     * work-item; the leader rewrites it once all are done. */
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (lid == 0) {
      write_target_fix(&a, gr, fix);
      if (loss_mode == 1)
        loss[loss_off + row] = row_loss;
      else if (loss_mode == 2)
        partials[row] = row_loss;
    }
  }
}
#endif

/* Split variant, for a few very long rows: each row is cut into `segs`
 * segments of seg_len elements (a multiple of VW), one work-group each.
 * ce_split_stats writes every segment's statistics to seg[]; ce_split_grad
 * merges a row's segments in a fixed order, then each work-group writes
 * the gradient of its own segment. Segment 0 owns the row's loss. */
#define SEG_STATS 5

inline row_args segment(__global const in_t *x, __global const in_t *y,
                        __global const real *w, ulong classes, int has_w,
                        real eps, real cap, ulong begin, ulong seg_len) {
  ulong n = min(seg_len, classes - begin);
  row_args a = {x + begin, y + begin, w + begin, classes, n, has_w, eps, cap};
  return a;
}

#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_ce_split_stats)
__kernel void ce_split_stats(CE_ARGS, __global real *seg, ulong segs,
                             ulong seg_len) {
  __local real scratch[WG_SIZE];
  for (ulong id = get_group_id(0); id < rows * segs; id += get_num_groups(0)) {
    const ulong row = id / segs, k = id % segs;
    row_args a = segment(x + x_off + row * ld, y + y_off + row * classes,
                         w + w_off, classes, has_w, eps, cap, k * seg_len,
                         seg_len);
    row_stats st = span_stats(&a, scratch, 0);
    if (get_local_id(0) == 0) {
      __global real *o = seg + id * SEG_STATS;
      o[0] = st.max;
      o[1] = st.sumexp;
      o[2] = st.swx;
      o[3] = st.sy;
      o[4] = st.syx;
    }
  }
}
#endif

#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_ce_split_grad)
__kernel void ce_split_grad(CE_ARGS, __global real *seg, ulong segs,
                            ulong seg_len) {
  const uint lid = get_local_id(0), size = get_local_size(0);
  for (ulong id = get_group_id(0); id < rows * segs; id += get_num_groups(0)) {
    const ulong row = id / segs, k = id % segs;
    /* Merge the row's segments: lse = m + log sum_k s_k exp(m_k - m). */
    __global const real *in = seg + row * segs * SEG_STATS;
    row_stats st = {-REAL_MAX, 0, 0, 0, 0};
    for (ulong j = 0; j < segs; j++)
      st.max = fmax(st.max, in[j * SEG_STATS]);
    for (ulong j = 0; j < segs; j++) {
      __global const real *o = in + j * SEG_STATS;
      st.sumexp += o[1] * exp(o[0] - st.max);
      st.swx += o[2];
      st.sy += o[3];
      st.syx += o[4];
    }
    row_args a = {x + x_off + row * ld, y + y_off + row * classes, w + w_off,
                  classes, classes, has_w, eps, cap};
    row_args span = segment(a.x, a.y, a.w, classes, has_w, eps, cap,
                            k * seg_len, seg_len);
    __global in_t *gr = grad + grad_off + row * ld;
    real s = want_grad ? row_scale(g + g_off, row, g_mode, reduction, stats,
                                   norm)
                       : 0;
    real wsum = has_w ? stats[1] : (real)classes;
    target_fix fix;
    real row_loss = finish_row(
        &a, &span, st, row, t + t_off, gr + k * seg_len,
        target_logit(&a, t + t_off, row, ignore), want_grad, 0, 0, s, z, wsum,
        ignore, err, lid, size, lid == 0 && k == 0, &fix);
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (lid == 0) {
      if (fix.t >= (long)(k * seg_len) && fix.t < (long)(k * seg_len + span.n))
        write_target_fix(&a, gr, fix);
      if (k == 0 && loss_mode == 1)
        loss[loss_off + row] = row_loss;
      else if (k == 0 && loss_mode == 2)
        partials[row] = row_loss;
    }
  }
}
#endif
