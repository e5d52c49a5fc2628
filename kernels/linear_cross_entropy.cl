/* linear_cross_entropy.cl - the small kernels around linear_cross_entropy's
 * GEMMs (CLBlast's): the bias added to a block of logits, its column sums
 * (the bias gradient), conversions between the storage type and float32,
 * the mean's weight sum over all rows, the gradient scale, and the sum of
 * the chunks' losses. Built after params.h, common.cl and reduce.cl. in_t
 * is the storage type of X, W, b and their gradients; real is float32
 * (float64 for float64 storage), the type of the logits and workspace.
 *
 * Each kernel takes its buffers, then lce_params (kernels/params.h), the
 * struct of scalars the host fills. Offsets count elements of each
 * buffer's own type. */

FN real lce_divide(real v, const lce_params *p, __global const real *stats) {
  if (p->mode == CLLOSS_DIVIDE_GIVEN)
    return v / (p->fdiv > 0 ? (real)p->fdiv : (real)p->idiv);
  return p->mode == CLLOSS_DIVIDE_STATS ? v / stats[0] : v;
}

/* z[i, j] += b[j] for the rows x cols block z (lda apart): one work-item
 * per element, neighbouring work-items on neighbouring columns. */
__kernel void lce_add_bias(__global real *z, __global const in_t *b,
                           lce_params P) {
  const ulong n = P.rows * P.cols;
  for (ulong e = get_global_id(0); e < n; e += get_global_size(0)) {
    const ulong i = e / P.cols, j = e % P.cols;
    z[P.a_off + i * P.lda + j] += LOAD(b, P.b_off + j);
  }
}

/* acc[j] = (flag ? acc[j] : 0) + sum_i z[i, j] over the rows, in row
 * order: one work-item per column, so that neighbouring work-items read
 * neighbouring addresses and each sum has one fixed order. acc is real:
 * the float32 accumulator of 16-bit storage, or the storage itself. */
__kernel void lce_column_sum(__global const real *z, __global real *acc,
                             lce_params P) {
  for (ulong j = get_global_id(0); j < P.cols; j += get_global_size(0)) {
    real s = P.flag ? acc[P.b_off + j] : (real)0;
    for (ulong i = 0; i < P.rows; i++)
      s += z[P.a_off + i * P.lda + j];
    acc[P.b_off + j] = s;
  }
}

/* A rows x cols block between the storage type (st, lda apart) and real
 * (r, ldb apart): r = st (flag 1) or st = r rounded to nearest even (0).
 * With float32 or float64 storage it is a copy. */
__kernel void lce_convert(__global in_t *st, __global real *r, lce_params P) {
  const ulong n = P.rows * P.cols;
  for (ulong e = get_global_id(0); e < n; e += get_global_size(0)) {
    const ulong i = e / P.cols, j = e % P.cols;
    const ulong s = P.a_off + i * P.lda + j, d = P.b_off + i * P.ldb + j;
    if (P.flag)
      r[d] = LOAD(st, s);
    else
      STORE(r[d], st, s);
  }
}

/* One work-group: stats[0] = D = the sum of w[t_i] over the rows whose
 * target is not ignore_index (w = 1 without weights, flag 0), the mean's
 * divisor over all N rows; a target outside [0, cols) that is not
 * ignore_index is reported in err with its row and adds nothing. A shard
 * of the classes [lda, lda + ldb) (w its entries) sums over its targets
 * only; a whole call has lda 0, ldb cols. */
__kernel void lce_weight_sum(__global const tgt_t *t, __global const real *w,
                             __global real *stats, __global uint *err,
                             lce_params P) {
  __local real red[WG_SIZE];
  real d = 0;
  for (ulong i = get_local_id(0); i < P.rows; i += get_local_size(0)) {
    const long ti = t[P.a_off + i];
    if (ti == P.ignore)
      continue;
    if (ti < 0 || (ulong)ti >= P.cols) {
      report_bad_row(err, i);
      continue;
    }
    const ulong j = (ulong)ti - P.lda; /* in the shard [lda, lda + ldb) */
    if (j >= P.ldb)
      continue;
    d += P.flag ? w[P.b_off + j] : (real)1;
  }
  d = group_sum(d, red);
  if (get_local_id(0) == 0)
    stats[0] = d;
}

/* One work-item: out[b_off] = g / divisor, the gradient scale of every row
 * for sum and mean; g is g[a_off] (1 when flag is 0). D = 0 gives inf,
 * which, as in cross_entropy, makes the gradient of zero-weight rows NaN. */
__kernel void lce_scale(__global const real *g, __global const real *stats,
                        __global real *out, lce_params P) {
  if (get_global_id(0) == 0)
    out[P.b_off] = lce_divide(P.flag ? g[P.a_off] : (real)1, &P, stats);
}

/* One work-group: out[b_off] = the sum of the `rows` values in[a_off...],
 * divided as `mode` says. Deterministic: the order depends on the group
 * size only. */
__kernel void lce_sum(__global const real *in, __global const real *stats,
                      __global real *out, lce_params P) {
  __local real red[WG_SIZE];
  real acc = 0;
  for (ulong k = get_local_id(0); k < P.rows; k += get_local_size(0))
    acc += in[P.a_off + k];
  const real total = group_sum(acc, red);
  if (get_local_id(0) == 0)
    out[P.b_off] = lce_divide(total, &P, stats);
}
