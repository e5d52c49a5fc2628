/* cli_run.h - `clloss run`'s arguments and output steps (cli_run_output.c),
 * shared with its vocabulary-parallel form (cli_vocab_parallel.c) and the
 * linear_cross_entropy runner (cli_linear.c). */
#ifndef CLLOSS_CLI_RUN_H
#define CLLOSS_CLI_RUN_H

#include "cli_loss.h"

typedef struct run_args {
  const char *loss_name;
  const char *input, *target, *weight, *pos_weight;
  const char *loss_out, *grad_out;
  const char *out; /* softmax's output */
  const char *device;
  int cpu, quiet, vocab_parallel;
  cli_options opt;
  /* linear_cross_entropy only */
  const char *linear_weight, *linear_bias;
  const char *grad_weight_out, *grad_bias_out;
  size_t chunk_rows, vocab_block; /* 0: not given */
} run_args;

/* Writes both outputs that `a` asks for, or neither: the loss in p's loss
 * type and shape, the gradient in the input's dtype and shape. */
int cli_run_write_outputs(const run_args *a, const cli_problem *p,
                          const void *loss, const void *grad);

/* The summary line: loss, options, where it ran, the call's time; on
 * stdout, or off the data when an output is written there
 * (cli_summary_stream). */
void cli_run_summary(const run_args *a, const cli_problem *p, const void *loss,
                     const char *where, double ms);

/* `clloss run LOSS --vocab-parallel ...` under mpirun (tools/
 * cli_vocab_parallel.c); without MPI a clear error. */
int cli_run_vocab_parallel(const run_args *a, const cli_loss_info *loss);

/* The device (a new context in *ctx) or, with --cpu, none (*ctx NULL), and
 * a phrase naming it in `where`; prints the reason on failure. */
int cli_run_open(const run_args *a, clloss_context **ctx, char *where,
                 size_t len);

/* `clloss run linear_cross_entropy ...` with parsed arguments; with
 * --vocab-parallel between cli_mpi_begin and cli_mpi_end. */
int cli_run_linear(const run_args *a);

/* linear_cross_entropy with --vocab-parallel (tools/
 * cli_linear_vocab_parallel.c): the call on this process's rows of W;
 * *writer: this process writes the outputs (process 0). */

typedef struct cli_linear_call {
  clloss_context *ctx;
  const clloss_linear_cross_entropy_desc *desc;
  const void *x, *w, *b, *target, *cw; /* the whole problem's */
  void *loss, *dx, *dw, *db;           /* the whole outputs, or NULL */
} cli_linear_call;
clloss_status cli_linear_vocab_parallel(const cli_linear_call *c, int *writer);

#endif
