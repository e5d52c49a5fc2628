/* reduce.cl - the second stage of every scalar loss (one work-group sums the
 * per-group partials) and the pass over class-index targets that checks them
 * and sums their weights. */

/* out[out_off] = sum_i partials[i], divided (mode 1) by fdiv when it is
 * > 0, else by idiv, or (mode 2) by stats[0], the weight sum of the target
 * pass. One work-group. */
__kernel void finish_sum(__global const real *partials,
                         __global const real *stats, __global real *out,
                         const finish_params P) {
  __local real red[WG_SIZE];
  const finish_params p = P;
  real acc = 0;
  for (ulong i = get_local_id(0); i < p.count; i += get_local_size(0))
    acc += partials[i];
  real total = group_sum(acc, red);
  if (get_local_id(0) == 0) {
    if (p.mode == 1)
      total /= p.fdiv > 0 ? (real)p.fdiv : (real)p.idiv;
    else if (p.mode == 2)
      total /= stats[0];
    out[p.out_off] = total;
  }
}

/* One work-group, before a row loss's kernels: stats[0] = the sum of
 * w[t_i] over rows whose target is not ignore_index (the mean's divisor);
 * a target outside [0, C) that is not ignore_index is reported in the
 * error word and adds nothing. */
__kernel void class_targets(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  const rows_params p = P;
  real d = 0;
  for (ulong i = get_local_id(0); i < p.rows; i += get_local_size(0)) {
    long ti = t[p.t_off + i];
    if (ti == p.ignore)
      continue;
    if (ti < 0 || (ulong)ti >= p.classes) {
      report_bad_row(err, i);
      continue;
    }
    d += p.has_w ? w[p.w_off + ti] : (real)1;
  }
  d = group_sum(d, red);
  if (get_local_id(0) == 0)
    stats[0] = d;
}
