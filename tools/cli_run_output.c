/* cli_run_output.c - the steps that `clloss run`, its vocabulary-parallel
 * form (cli_vocab_parallel.c) and linear_cross_entropy (cli_linear.c)
 * share: the device or the CPU reference, the outputs written, the summary
 * line (cli_run.h). Apart from cli_run.c, so that those files and cli_run.c,
 * which calls them, do not call each other. */
#include <stdio.h>

#include "cli.h"
#include "cli_run.h"
#include "npy.h"

int cli_run_write_outputs(const run_args *a, const cli_problem *p,
                          const void *loss, const void *grad) {
  char msg[512];
  npy_staged ls = {0}, gs = {0};
  ls.fd = gs.fd = -1;
  const npy_array *x = p->input;
  if (a->loss_out &&
      npy_stage(a->loss_out, p->loss_type, p->loss_ndim, p->loss_shape, loss,
                &ls, msg, sizeof msg) != NPY_OK)
    return cli_error("run", CLI_DATA_ERROR, "%s", msg);
  if (a->grad_out && npy_stage(a->grad_out, x->dtype, x->ndim, x->shape, grad,
                               &gs, msg, sizeof msg) != NPY_OK) {
    npy_discard(&ls);
    return cli_error("run", CLI_DATA_ERROR, "%s", msg);
  }
  npy_staged all[2] = {ls, gs};
  if (npy_commit_all(all, 2, msg, sizeof msg) != NPY_OK)
    return cli_error("run", CLI_DATA_ERROR, "%s", msg);
  return CLI_OK;
}

void cli_run_summary(const run_args *a, const cli_problem *p, const void *loss,
                     const char *where, double ms) {
  const char *outs[2] = {a->loss_out, a->grad_out};
  FILE *to = cli_summary_stream(outs, 2);
  if (!to)
    return;
  char opts[256], value[96];
  double sum = 0.0;
  for (size_t i = 0; i < p->loss_count; i++)
    sum += cli_load(loss, p->loss_type, i);
  if (p->opt.reduction == CLLOSS_REDUCTION_NONE)
    snprintf(value, sizeof value, "loss[%zu] sum %.9g", p->loss_count, sum);
  else
    snprintf(value, sizeof value, "loss %.9g", sum);
  cli_describe_options(p, opts, sizeof opts);
  /* One call, so its time includes copies and any first-use program
   * build; `clloss bench` is the tool for timings. */
  fprintf(to, "%s(%s, %s): %s on %s in %.3f ms\n", p->loss->name, opts,
          clloss_dtype_name(p->input->dtype), value, where, ms);
}

int cli_run_open(const run_args *a, clloss_context **ctx, char *where,
                 size_t len) {
  size_t index = 0;
  *ctx = NULL;
  if (a->cpu) {
    snprintf(where, len, "the CPU reference");
    return CLI_OK;
  }
  int rc = cli_open_device("run", a->device, ctx, &index);
  if (rc == CLI_OK)
    snprintf(where, len, "device %zu (%s)", index,
             clloss_context_device_info(*ctx)->name);
  return rc;
}
