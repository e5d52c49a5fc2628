/* nll_loss.cl - negative log-likelihood on log-probabilities x[N, C]:
 *   loss_i = -w[t_i] x_{i,t_i} for rows whose target is not ignore_index
 *   dx_ij  = -s_i w[t_i] [j = t_i]   (the rest of the row is zero)
 * nll_item: one work-item per row (CPUs); nll_group: one work-group per row,
 * its work-items zero the row together (GPUs, long rows); nll_lanes: a few
 * work-items per row (GPUs, short rows). All take ROWS_KERNEL_ARGS
 * (params.h).
 *
 * In place, the target's logit is read by the work-item that owns its
 * column (owns(), common.cl), which also writes its gradient entry and the
 * row's loss: no other work-item reads what it overwrites, and no barrier
 * is needed.
 */

FN real nll_scale(__global const real *g, __global const real *stats,
                  const rows_params *p, ulong row) {
  real s;
  if (p->reduction == CLLOSS_ROWS_NONE) {
    s = upstream(g + p->g_off, row, p->g_mode);
  } else {
    s = upstream(g + p->g_off, 0, p->g_mode);
    if (p->reduction == CLLOSS_ROWS_MEAN)
      s /= stats[0];
  }
  return s * (real)p->grad_scale;
}

/* Row `row` for the work-items first..step: the row's gradient (zeros,
 * NaN for a bad target; with accumulate, only the target's entry changes)
 * and its padding; returns 1 when this work-item is the one that writes
 * the row's loss, into *row_loss. */
FN int nll_row(__global const in_t *x, __global const tgt_t *t,
               __global const real *w, __global const real *g,
               __global const real *stats, __global in_t *grad,
               __global uint *err, const rows_params *p, ulong row,
               ulong first, ulong step, real *row_loss) {
  __global const in_t *xr = x + p->x_off + row * p->ld;
  __global in_t *gr = grad + p->grad_off + row * p->ld;
  const long ti = t[p->t_off + row];
  const int ignored = ti == p->ignore;
  const int bad = !ignored && (ti < 0 || (ulong)ti >= p->classes);
  const int mine = ignored || bad ? first == 0
                                  : owns((ulong)ti, p->classes, first, step);
  /* The owner reads x_t before any of this row's stores. */
  real x_t = mine && !ignored && !bad ? LOAD(xr, ti) : 0;
  real wt = !ignored && !bad && p->has_w ? w[p->w_off + ti] : (real)1;
  if (p->want_grad) {
    if (bad || !p->accumulate)
      fill_row(gr, p->classes, bad ? NAN : 0, first, step);
    if (mine && !ignored && !bad) {
      real d = -nll_scale(g, stats, p, row) * wt;
      STORE(ACCUM1(p->accumulate, d, gr, ti), gr, ti);
    }
    if (row < p->pad_rows && p->ld > p->classes)
      fill_row(gr + p->classes, p->ld - p->classes, 0, first, step);
  }
  if (bad && mine)
    report_bad_row(err, row);
  *row_loss = bad ? NAN : ignored ? 0 : -wt * x_t;
  return mine;
}

#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_ITEM)
__kernel void nll_item(ROWS_KERNEL_ARGS) {
  __local real red[WG_SIZE];
  const rows_params p = P;
  const ulong row = get_global_id(0);
  real row_loss = 0;
  if (row < p.rows) {
    nll_row(x, t, w, g, stats, grad, err, &p, row, 0, 1, &row_loss);
    if (p.loss_mode == CLLOSS_LOSSES_EACH)
      loss[p.loss_off + row] = row_loss;
  }
  if (p.loss_mode == CLLOSS_LOSSES_PARTIALS) {
    real total = group_sum(row_loss, red);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif

#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_GROUP)
__kernel void nll_group(ROWS_KERNEL_ARGS) {
  const rows_params p = P;
  const uint lid = get_local_id(0), size = get_local_size(0);
  for (ulong row = get_group_id(0); row < p.rows; row += get_num_groups(0)) {
    real row_loss;
    if (nll_row(x, t, w, g, stats, grad, err, &p, row, lid, size,
                &row_loss)) {
      put_row_loss(loss, partials, &p, row, row_loss);
    }
  }
}
#endif

/* Lanes variant (GPUs, short rows): P.lanes work-items per row, the
 * group's rows side by side, so that a row's zeros are written by
 * neighbouring work-items. No barrier: each row's owner of the target
 * column writes its loss. */
#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_VARIANT_LANES)
__kernel void nll_lanes(ROWS_KERNEL_ARGS) {
  const rows_params p = P;
  const ulong lanes = p.lanes;
  const ulong lane = get_global_id(0) % lanes;
  for (ulong row = get_global_id(0) / lanes; row < p.rows;
       row += get_global_size(0) / lanes) {
    real row_loss;
    if (nll_row(x, t, w, g, stats, grad, err, &p, row, lane, lanes,
                &row_loss)) {
      put_row_loss(loss, partials, &p, row, row_loss);
    }
  }
}
#endif
