/* cli_demo.c - `clloss demo`: cross_entropy, mse_loss and l1_loss on random
 * data on the default device and on the CPU reference, side by side. */
#include <stdio.h>
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

int cli_demo(int argc, char **argv) {
  cli_test_args a = {NULL, NULL, 0, 0};
  int rc = cli_test_parse("demo", demo_help, 0, argc, argv, &a);
  if (rc != CLI_OK)
    return rc < 0 ? CLI_OK : rc;
  clloss_context *ctx;
  size_t index;
  rc = cli_open_device("demo", a.device, &ctx, &index);
  if (rc != CLI_OK)
    return rc;
  static const char *const names[] = {"cross_entropy", "mse_loss", "l1_loss"};
  printf("device %zu: %s\n", index, clloss_context_device_info(ctx)->name);
  printf("%-14s %14s %14s %12s %10s %10s\n", "loss", "device loss", "reference",
         "max |dgrad|", "device ms", "ref ms");
  for (size_t i = 0; i < 3 && rc == CLI_OK; i++) {
    const cli_case c = {names[i], CLLOSS_FLOAT32, 256, 1000, 0, ""};
    cli_trial t;
    /* The device twice: the first call pools buffers. */
    const int stage =
        cli_trial_run(&t, &c, 20261126u, strlen(names[i]), ctx, 2);
    const cli_output *g = &t.j.out[OUT_GRAD];
    if (stage == CLI_TRIAL_OK)
      printf("%-14s %14.7g %14.7g %12.3g %10.3f %10.3f\n", names[i],
             *(float *)t.j.out[OUT_LOSS].data, *(float *)t.ref[0],
             cli_max_error(g->data, t.ref[1], CLLOSS_FLOAT32, g->count, 0),
             t.dev_ms, t.ref_ms);
    else if (stage == CLI_TRIAL_MEMORY)
      rc = cli_error("demo", CLI_DATA_ERROR, "out of memory");
    else if (stage == CLI_TRIAL_CHECK)
      rc = cli_error("demo", t.rc, "%s", t.msg);
    else
      rc = cli_error("demo", CLI_DATA_ERROR, "%s failed: %s (%s)", names[i],
                     clloss_status_name(t.s), clloss_context_error_detail(ctx));
    cli_trial_free(&t);
  }
  clloss_context_release(ctx);
  return rc;
}
