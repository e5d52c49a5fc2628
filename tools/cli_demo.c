/* cli_demo.c - `clloss demo`: cross_entropy, mse_loss and l1_loss on random
 * data on the default device and on the CPU reference, side by side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_data.h"
#include "cli_run.h"

static const char *const demo_help =
    "usage: clloss demo [--device I]\n"
    "\n"
    "Computes cross_entropy ([256, 1000] logits), mse_loss and l1_loss\n"
    "([256, 1000]) with reduction mean on random data, on the device and\n"
    "on the CPU reference, and prints both losses, the largest gradient\n"
    "difference and the time of each (device: the second, warm call;\n"
    "both include copies between host and device).\n";

typedef struct demo_row {
  double dev_loss, ref_loss, grad_diff, dev_ms, ref_ms;
} demo_row;

/* One loss through its `run` entry: the reference, then the device twice
 * (the first call pools buffers), each timed. */
static int demo_one(const char *name, clloss_context *ctx, demo_row *row) {
  cli_job j;
  memset(&j, 0, sizeof j);
  j.cmd = cli_find_command(name);
  j.a.opt = cli_default_options();
  j.a.out[OUT_LOSS] = j.a.out[OUT_GRAD] = "-"; /* computed, not written */
  cli_rng rng = cli_rng_make(20261126u, (uint64_t)strlen(name));
  if (!cli_generate(&j, CLLOSS_FLOAT32, 256, 1000, 0, &rng)) {
    cli_job_free(&j);
    return cli_error("demo", CLI_DATA_ERROR, "out of memory");
  }
  cli_capture(1);
  int rc = j.cmd->check(&j);
  if (rc == CLI_OK)
    rc = cli_job_alloc(&j);
  char msg[400];
  snprintf(msg, sizeof msg, "%s", cli_captured());
  cli_capture(0);
  void *ref = NULL;
  float rl = 0.0f;
  clloss_status s = CLLOSS_OUT_OF_HOST_MEMORY;
  if (rc != CLI_OK) {
    cli_job_free(&j);
    return cli_error("demo", rc, "%s", msg);
  }
  double t0 = cli_now_ms();
  s = j.cmd->reference(&j);
  row->ref_ms = cli_now_ms() - t0;
  rl = *(float *)j.out[OUT_LOSS].data;
  ref = j.out[OUT_GRAD].data;
  j.out[OUT_GRAD].data = NULL;
  j.ctx = ctx;
  if (s == CLLOSS_SUCCESS && cli_job_alloc(&j) == CLI_OK) {
    s = j.cmd->run(&j); /* warm-up: pools buffers */
    t0 = cli_now_ms();
    if (s == CLLOSS_SUCCESS)
      s = j.cmd->run(&j);
    row->dev_ms = cli_now_ms() - t0;
  }
  if (s == CLLOSS_SUCCESS) {
    row->dev_loss = *(float *)j.out[OUT_LOSS].data;
    row->ref_loss = rl;
    row->grad_diff = cli_max_abs_error(j.out[OUT_GRAD].data, ref,
                                       CLLOSS_FLOAT32, j.out[OUT_GRAD].count);
  }
  free(ref);
  j.ctx = NULL;
  cli_job_free(&j);
  if (s != CLLOSS_SUCCESS)
    return cli_error("demo", CLI_DATA_ERROR, "%s failed: %s (%s)", name,
                     clloss_status_name(s), clloss_context_error_detail(ctx));
  return CLI_OK;
}

int cli_demo(int argc, char **argv) {
  const char *device = NULL;
  for (int i = 1; i < argc;) {
    const char *v;
    if (cli_is_help(argv[i])) {
      fputs(demo_help, stdout);
      return CLI_OK;
    } else if (cli_option(argc, argv, &i, "--device", &v)) {
      if (!v || !*v)
        return cli_error("demo", CLI_USAGE, "--device needs a value");
      device = v;
    } else {
      return cli_error("demo", CLI_USAGE,
                       "unknown argument '%s' (see clloss demo --help)",
                       argv[i]);
    }
  }
  clloss_context *ctx;
  size_t index;
  int rc = cli_open_device("demo", device, &ctx, &index);
  if (rc != CLI_OK)
    return rc;
  printf("device %zu: %s\n", index, clloss_context_device_info(ctx)->name);
  printf("%-14s %14s %14s %12s %10s %10s\n", "loss", "device loss", "reference",
         "max |dgrad|", "device ms", "ref ms");
  static const char *const names[] = {"cross_entropy", "mse_loss", "l1_loss"};
  for (size_t i = 0; i < 3 && rc == CLI_OK; i++) {
    demo_row row;
    rc = demo_one(names[i], ctx, &row);
    if (rc == CLI_OK)
      printf("%-14s %14.7g %14.7g %12.3g %10.3f %10.3f\n", names[i],
             row.dev_loss, row.ref_loss, row.grad_diff, row.dev_ms, row.ref_ms);
  }
  clloss_context_release(ctx);
  return rc;
}
