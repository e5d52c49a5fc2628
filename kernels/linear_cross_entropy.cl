/* linear_cross_entropy.cl - the small kernels around linear_cross_entropy's
 * GEMMs (CLBlast's): the bias added to a block of logits, its column sums
 * (the bias gradient), conversions between the storage type and float32,
 * and the gradient scale. Built with common.cl and reduce.cl, whose
 * class_targets gives the mean's weight sum and finish_sum the loss. in_t is the
 * storage type of X, W, b and their gradients; real is float32 (float64
 * for float64 storage), the type of the logits and of every workspace.
 */

/* z[i, j] += b[j] for the rows x cols block z (ldz apart): one work-item
 * per element, rows of neighbouring work-items next to each other. */
__kernel void lce_add_bias(__global real *z, ulong z_off, ulong rows,
                           ulong cols, ulong ldz, __global const in_t *b,
                           ulong b_off) {
  const ulong n = rows * cols;
  for (ulong e = get_global_id(0); e < n; e += get_global_size(0)) {
    const ulong i = e / cols, j = e % cols;
    z[z_off + i * ldz + j] += LOAD(b, b_off + j);
  }
}

/* acc[j] = (accumulate ? acc[j] : 0) + sum_i z[i, j] over the rows of the
 * block, in row order: one work-item per column, so that neighbouring
 * work-items read neighbouring addresses and each sum has one fixed order.
 * acc is real (the float32 accumulator of 16-bit storage) or in_t. */
__kernel void lce_column_sum(__global const real *z, ulong z_off, ulong rows,
                             ulong cols, ulong ldz, __global real *acc,
                             ulong acc_off, int accumulate) {
  for (ulong j = get_global_id(0); j < cols; j += get_global_size(0)) {
    real s = accumulate ? acc[acc_off + j] : (real)0;
    for (ulong i = 0; i < rows; i++)
      s += z[z_off + i * ldz + j];
    acc[acc_off + j] = s;
  }
}

/* n elements between the storage type and real (16-bit storage): r[i] =
 * st[i] (to_real) or st[i] = r[i] rounded to nearest even. */
__kernel void lce_convert(__global in_t *st, ulong st_off, __global real *r,
                          ulong r_off, ulong n, int to_real) {
  for (ulong e = get_global_id(0); e < n; e += get_global_size(0)) {
    if (to_real)
      r[r_off + e] = LOAD(st, st_off + e);
    else
      STORE(r[r_off + e], st, st_off + e);
  }
}

/* One work-item: out[0] = g / divisor, the gradient scale of every row for
 * sum and mean; g is grad_output[0] (or 1 when has_g is 0) and the divisor
 * 1 (mode 0), `divisor` (mode 1) or stats[0], the weight sum D of
 * class_targets (mode 2). D = 0 gives inf, which, as in cross_entropy,
 * makes the gradient of zero-weight rows NaN. */
__kernel void lce_scale(__global const real *g, ulong g_off, int has_g,
                        __global const real *stats, int mode, real divisor,
                        __global real *out, ulong out_off) {
  real s = has_g ? g[g_off] : (real)1;
  if (mode == 1)
    s /= divisor;
  else if (mode == 2)
    s /= stats[0];
  out[out_off] = s;
}
