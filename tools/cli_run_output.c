/* cli_run_output.c - the steps that every command of `clloss run` shares,
 * whatever its entry (cli_run.h): reading the inputs, the device or the
 * CPU reference, the outputs' memory, the one writer of the outputs, the
 * summary line and the message of a failed call. Apart from cli_run.c, so
 * that cli_mpi.c, which the driver calls, can use them too. */
#include <stdio.h>
#include <stdlib.h>

#include "cli_run.h"

int cli_job_load(cli_job *j) {
  char msg[512];
  for (int k = 0; k < IN_COUNT; k++) {
    if (!j->a.in[k])
      continue;
    if (npy_read(j->a.in[k], &j->in[k], msg, sizeof msg) != NPY_OK)
      return cli_error("run", CLI_DATA_ERROR, "%s", msg);
    j->have |= 1u << k;
  }
  return CLI_OK;
}

int cli_job_open(cli_job *j) {
  if (j->a.cpu) {
    snprintf(j->where, sizeof j->where, "the CPU reference");
    return CLI_OK;
  }
  int rc = cli_open_device("run", j->a.device, &j->ctx, &j->index);
  if (rc == CLI_OK)
    snprintf(j->where, sizeof j->where, "device %zu (%s)", j->index,
             clloss_context_device_info(j->ctx)->name);
  return rc;
}

int cli_job_alloc(cli_job *j) {
  for (int k = 0; k < OUT_COUNT; k++) {
    cli_output *o = &j->out[k];
    /* The loss is always computed: the summary line shows it. */
    if (k > 0 && !o->path)
      continue;
    size_t bytes = o->count * clloss_dtype_size(o->type);
    if (!(o->data = calloc(1, bytes ? bytes : 1)))
      return cli_error("run", CLI_DATA_ERROR, "out of memory");
  }
  return CLI_OK;
}

/* All outputs appear together or none does. */
int cli_job_write(const cli_job *j) {
  npy_staged st[OUT_COUNT];
  char msg[512];
  int k;
  for (k = 0; k < OUT_COUNT; k++) {
    st[k] = (npy_staged){0};
    st[k].fd = -1;
  }
  for (k = 0; k < OUT_COUNT; k++) {
    const cli_output *o = &j->out[k];
    if (o->path && npy_stage(o->path, o->type, o->ndim, o->shape, o->data,
                             &st[k], msg, sizeof msg) != NPY_OK) {
      while (k--)
        npy_discard(&st[k]);
      return cli_error("run", CLI_DATA_ERROR, "%s", msg);
    }
  }
  if (npy_commit_all(st, OUT_COUNT, msg, sizeof msg) != NPY_OK)
    return cli_error("run", CLI_DATA_ERROR, "%s", msg);
  return CLI_OK;
}

void cli_job_summary(const cli_job *j, double ms) {
  const char *paths[OUT_COUNT];
  for (int k = 0; k < OUT_COUNT; k++)
    paths[k] = j->out[k].path;
  FILE *to = cli_summary_stream(paths, OUT_COUNT);
  char what[1024];
  if (!to)
    return;
  j->cmd->describe(j, what, sizeof what);
  /* One call, so its time includes copies and any first-use program
   * build; `clloss bench` is the tool for timings. */
  fprintf(to, "%s on %s in %.3f ms\n", what, j->where, ms);
}

int cli_job_failed(const cli_job *j, clloss_status s) {
  const char *detail = j->ctx ? clloss_context_error_detail(j->ctx) : "";
  int rc = cli_error("run", CLI_DATA_ERROR, "%s on %s failed: %s (%s)%s%s",
                     j->cmd->loss->name, j->where, clloss_status_string(s),
                     clloss_status_name(s), *detail ? ": " : "", detail);
  /* A kernel that does not build is a bug to report: show its log. */
  if (s == CLLOSS_BUILD_FAILURE && j->ctx)
    fprintf(stderr, "build log:\n%s\n", clloss_context_build_log(j->ctx));
  return rc;
}

void cli_job_free(cli_job *j) {
  for (int k = 0; k < IN_COUNT; k++)
    npy_free(&j->in[k]);
  for (int k = 0; k < OUT_COUNT; k++)
    free(j->out[k].data);
  for (int k = 0; k < 3; k++)
    free(j->part[k]);
  free(j->weight);
  free(j->pos_weight);
  clloss_context_release(j->ctx);
}
