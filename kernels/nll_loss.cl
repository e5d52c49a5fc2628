/* nll_loss.cl - negative log-likelihood on log-probabilities x[N, C]:
 *   loss_i = -w[t_i] x_{i,t_i} for rows whose target is not ignore_index
 *   dx_ij  = -s_i w[t_i] [j = t_i]   (the rest of the row is zero)
 * nll_item: one work-item per row (CPUs); nll_group: one work-group per row,
 * its work-items zero the row together (GPUs). Both take ROWS_ARGS
 * (common.cl). */

#define NLL_ARGS ROWS_ARGS

inline real nll_scale(__global const real *g, ulong row, int g_mode,
                      int reduction, __global const real *stats) {
  if (reduction == 2)
    return upstream(g, row, g_mode);
  real s = upstream(g, 0, g_mode);
  return reduction == 0 ? s / stats[0] : s;
}

/* Row `row`: returns its loss; when want_grad, the work-items first..step
 * fill the row with zeros (NaN for a bad target). The caller writes the
 * target's entry afterwards (nll_target_entry), after a barrier in the
 * group kernel: no barrier sits in the item kernel's divergent code. */
inline real nll_row(__global const in_t *xr, __global in_t *gr, long ti,
                    ulong row, __global const real *w, int has_w, real s,
                    ulong classes, int want_grad, long ignore,
                    __global volatile uint *err, ulong first, ulong step,
                    int leader) {
  int bad = ti != ignore && (ti < 0 || (ulong)ti >= classes);
  if (bad && leader)
    report_bad_row(err, row);
  real x_t = (ti == ignore || bad) ? 0 : LOAD(xr, ti);
  if (want_grad)
    fill_row(gr, classes, bad ? NAN : 0, first, step);
  if (bad)
    return NAN;
  return ti == ignore ? 0 : -(has_w ? w[ti] : (real)1) * x_t;
}

inline void nll_target_entry(__global in_t *gr, long ti, ulong classes,
                             __global const real *w, int has_w, real s,
                             long ignore) {
  if (ti != ignore && ti >= 0 && (ulong)ti < classes)
    STORE(-s * (has_w ? w[ti] : (real)1), gr, ti);
}

#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_nll_item)
__kernel void nll_item(NLL_ARGS) {
  __local real scratch[WG_SIZE];
  const ulong row = get_global_id(0);
  real row_loss = 0;
  if (row < rows) {
    real s = want_grad ? nll_scale(g + g_off, row, g_mode, reduction, stats)
                       : 0;
    __global in_t *gr = grad + grad_off + row * ld;
    const long ti = t[t_off + row];
    row_loss = nll_row(x + x_off + row * ld, gr, ti, row, w + w_off, has_w, s,
                       classes, want_grad, ignore, err, 0, 1, 1);
    if (want_grad)
      nll_target_entry(gr, ti, classes, w + w_off, has_w, s, ignore);
    if (loss_mode == 1)
      loss[loss_off + row] = row_loss;
  }
  if (loss_mode == 2) {
    real total = group_sum(row_loss, scratch);
    if (get_local_id(0) == 0)
      partials[get_group_id(0)] = total;
  }
}
#endif

#if !defined(CLLOSS_ONLY_KERNELS) || defined(CLLOSS_KERNEL_nll_group)
__kernel void nll_group(NLL_ARGS) {
  const uint lid = get_local_id(0), size = get_local_size(0);
  for (ulong row = get_group_id(0); row < rows; row += get_num_groups(0)) {
    real s = want_grad ? nll_scale(g + g_off, row, g_mode, reduction, stats)
                       : 0;
    __global in_t *gr = grad + grad_off + row * ld;
    const long ti = t[t_off + row];
    real row_loss = nll_row(x + x_off + row * ld, gr, ti, row, w + w_off,
                            has_w, s, classes, want_grad, ignore, err, lid,
                            size, lid == 0);
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (lid == 0) {
      if (want_grad)
        nll_target_entry(gr, ti, classes, w + w_off, has_w, s, ignore);
      if (loss_mode == 1)
        loss[loss_off + row] = row_loss;
      else if (loss_mode == 2)
        partials[row] = row_loss;
    }
  }
}
#endif
