/* reduce.cl - the second stage of every scalar loss (one work-group sums the
 * per-group partials) and the pass over class-index targets that checks them
 * and sums their weights. */

/* The loops of the two one-group kernels below take REDUCE_UNROLL of a
 * work-item's elements (i, i + L, ... for L work-items) per iteration, in
 * the order one element per iteration would: the same sums to the bit,
 * and a loop of 1/REDUCE_UNROLL the iterations. Mesa's llvmpipe ends a
 * work-item's loops after 65535 iterations in all and Rusticl gives these
 * kernels groups of 32: one element per iteration stopped at 2.1 million
 * rows and gave a wrong mean (host/launch.c bounds what is left). */
#define REDUCE_UNROLL 16

/* out[out_off] = sum_i partials[i], divided (mode 1) by fdiv when it is
 * > 0, else by idiv, or (mode 2) by stats[0], the weight sum of the target
 * pass. One work-group. */
__kernel void finish_sum(__global const real *partials,
                         __global const real *stats, __global real *out,
                         const finish_params P) {
  __local real red[WG_SIZE];
  const finish_params p = P;
  const ulong size = get_local_size(0);
  real acc = 0;
  for (ulong i = get_local_id(0); i < p.count; i += REDUCE_UNROLL * size)
#pragma unroll
    for (int k = 0; k < REDUCE_UNROLL; k++)
      if (i + k * size < p.count)
        acc += partials[i + k * size];
  real total = group_sum(acc, red);
  if (get_local_id(0) == 0) {
    if (p.mode == CLLOSS_DIVIDE_GIVEN)
      total /= p.fdiv > 0 ? (real)p.fdiv : (real)p.idiv;
    else if (p.mode == CLLOSS_DIVIDE_STATS)
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
  const ulong size = get_local_size(0);
  real d = 0;
  for (ulong i0 = get_local_id(0); i0 < p.rows; i0 += REDUCE_UNROLL * size)
#pragma unroll
    for (int k = 0; k < REDUCE_UNROLL; k++) {
      const ulong i = i0 + k * size;
      if (i >= p.rows)
        break;
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
