/* cli_run.h - the parsed command line of `clloss run`, shared by cli_run.c
 * and the linear_cross_entropy runner (cli_linear.c). */
#ifndef CLLOSS_CLI_RUN_H
#define CLLOSS_CLI_RUN_H
#include "cli_loss.h"

typedef struct run_args {
  const char *loss_name;
  const char *input, *target, *weight, *pos_weight;
  const char *loss_out, *grad_out;
  const char *device;
  int cpu, quiet;
  cli_options opt;
  /* linear_cross_entropy only */
  const char *linear_weight, *linear_bias;
  const char *grad_weight_out, *grad_bias_out;
  size_t chunk_rows, vocab_block; /* 0: not given */
} run_args;

/* The device (a new context in *ctx) or, with --cpu, none (*ctx NULL), and
 * a phrase naming it in `where`; prints the reason on failure. */
int cli_run_open(const run_args *a, clloss_context **ctx, char *where,
                 size_t len);

/* `clloss run linear_cross_entropy ...` with parsed arguments. */
int cli_run_linear(const run_args *a);

#endif
