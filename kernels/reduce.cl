/* reduce.cl - the second stage of every scalar loss (one work-group sums the
 * per-group partials) and the pass over class-index targets that checks them
 * and sums their weights. */

/* out[out_off] = sum_i partials[i], divided by `divisor` (mode 1) or by
 * stats[0] (mode 2, the weight sum of the target pass). One work-group. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_finish_sum)
__kernel void finish_sum(__global const real *partials, ulong count,
                         __global const real *stats, int mode, real divisor,
                         __global real *out, ulong out_off) {
  __local real scratch[WG_SIZE];
  real acc = 0;
  for (ulong i = get_local_id(0); i < count; i += get_local_size(0))
    acc += partials[i];
  real total = group_sum(acc, scratch);
  if (get_local_id(0) == 0) {
    if (mode == 1)
      total /= divisor;
    else if (mode == 2)
      total /= stats[0];
    out[out_off] = total;
  }
}
#endif

/* One work-group: stats[0] = D = sum of w[t_i] over rows whose target is not
 * ignore_index, stats[1] = W = sum_c w_c; a target outside [0, C) that is not
 * ignore_index is reported in the error word and adds nothing. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_class_targets)
__kernel void class_targets(__global const tgt_t *t, ulong t_off, ulong n,
                            ulong classes, long ignore, __global const real *w,
                            ulong w_off, int has_w, __global real *stats,
                            __global volatile uint *err) {
  __local real scratch[WG_SIZE];
  const uint lid = get_local_id(0), step = get_local_size(0);
  t += t_off;
  w += w_off;
  real d = 0, wsum = 0;
  for (ulong i = lid; i < n; i += step) {
    long ti = t[i];
    if (ti == ignore)
      continue;
    if (ti < 0 || (ulong)ti >= classes) {
      report_bad_row(err, i);
      continue;
    }
    d += has_w ? w[ti] : (real)1;
  }
  if (has_w)
    for (ulong c = lid; c < classes; c += step)
      wsum += w[c];
  d = group_sum(d, scratch);
  wsum = group_sum(wsum, scratch);
  if (lid == 0) {
    stats[0] = d;
    stats[1] = has_w ? wsum : (real)classes;
  }
}
#endif
