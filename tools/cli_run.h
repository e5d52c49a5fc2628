/* cli_run.h - `clloss run`'s commands: one table (cli_run.c) whose entries
 * each load, check, compute and describe one kind of problem, run by one
 * driver with one parser and one output writer (cli_run_output.c). The
 * entries live in cli_problem.c (the losses), cli_linear.c and
 * cli_softmax.c; their --vocab-parallel forms in cli_mpi.c. selftest and
 * demo run the same entries on generated data. */
#ifndef CLLOSS_CLI_RUN_H
#define CLLOSS_CLI_RUN_H

#include "cli.h"
#include "cli_loss.h"

/* The input files, in the order they are read. */
enum { IN_X, IN_LW, IN_LB, IN_T, IN_W, IN_PW, IN_COUNT };
/* The outputs: the loss (softmax: --out), the gradient of the input, of
 * the linear weight and of its bias; OUT_P is --out on the command line. */
enum { OUT_LOSS, OUT_GRAD, OUT_GW, OUT_GB, OUT_COUNT, OUT_P = OUT_COUNT };

typedef struct run_args {
  const char *name;               /* LOSS */
  const char *in[IN_COUNT];       /* --input, --linear-weight, ... */
  const char *out[OUT_COUNT + 1]; /* --loss-out, ..., --out */
  const char *device;
  int cpu, quiet, vocab_parallel;
  cli_options opt;
  size_t chunk_rows, vocab_block; /* 0: not given */
} run_args;

/* If argv[*i] is one of run's options: *matched = 1, its value in *a, *i
 * past it. CLI_OK, or the usage error of `clloss run`. */
int cli_run_option(int argc, char **argv, int *i, run_args *a, int *matched);

/* One output: where it goes (NULL: not written), its type and shape, and
 * its values. */
typedef struct cli_output {
  const char *path;
  clloss_dtype type;
  int ndim;
  size_t shape[NPY_MAX_DIMS], count;
  void *data;
} cli_output;

struct cli_command;

/* One run of a command: its arguments, arrays, checked descriptor and
 * outputs, and where it runs. */
typedef struct cli_job {
  const struct cli_command *cmd;
  run_args a;
  npy_array in[IN_COUNT];
  unsigned have;             /* 1 << IN_*: the arrays given */
  void *weight, *pos_weight; /* converted to the loss type, or NULL */
  clloss_linear_cross_entropy_desc lin; /* .ce: cross_entropy's too */
  clloss_nll_loss_desc nll;
  clloss_pointwise_desc pw;
  clloss_softmax_desc sm;
  int one_row;
  cli_output out[OUT_COUNT];
  clloss_context *ctx; /* NULL: the CPU reference */
  size_t index;        /* ctx's device */
  char where[320];     /* "device 0 (name)", "the CPU reference" */
  /* --vocab-parallel: this process's block of the classes and the
   * shard's buffers (freed with the job). */
  clloss_shard shard;
  void *part[3];
} cli_job;

/* One command of `clloss run`. Each step returns CLI_OK or an exit code
 * after printing the reason (cli_error, with "run"). */
typedef struct cli_command {
  const cli_loss_info *loss; /* the name, the options that apply */
  unsigned args;             /* CLI_ARGS_* */
  /* Reads the .npy inputs given into j->in. */
  int (*load)(cli_job *j);
  /* Shapes, dtypes and targets into j's descriptor and the outputs'
   * shapes and types (paths too). */
  int (*check)(cli_job *j);
  clloss_status (*run)(cli_job *j);       /* on j->ctx */
  clloss_status (*reference)(cli_job *j); /* the CPU reference */
  /* The summary line up to " on WHERE in T ms". */
  void (*describe)(const cli_job *j, char *buf, size_t len);
  /* --vocab-parallel (cli_mpi.c), or NULL. */
  const struct cli_shard *shard;
} cli_command;

enum {
  CLI_ARGS_LINEAR = 1, /* --linear-*, --chunk-rows, ... and their outputs */
  CLI_ARGS_OUT = 2     /* --input and --out alone (softmax) */
};

/* --vocab-parallel form of a command: `load` (NULL: the command's) reads
 * this process's part; `prepare`, after the check, the shard and its
 * device; `run` computes, gathers to process 0 and returns the agreed exit
 * code (cli_vp_agree). */
typedef struct cli_shard {
  int (*load)(cli_job *j);
  int (*prepare)(cli_job *j);
  int (*run)(cli_job *j);
} cli_shard;

/* The command named `name`, or NULL. */
const cli_command *cli_find_command(const char *name);

/* The entries' steps: the losses (cli_problem.c), linear_cross_entropy
 * (cli_linear.c), softmax (cli_softmax.c); their shards (cli_mpi.c). */
extern const cli_loss_info cli_losses[8];
int cli_check_loss(cli_job *j);
/* Class indices for j's input: shape [N], or () for one row, each in
 * [0, classes) or the ignore index (PyTorch raises). */
int cli_check_indices(const cli_job *j, size_t rows, size_t classes);
clloss_status cli_run_loss(cli_job *j);
clloss_status cli_reference_loss(cli_job *j);
void cli_describe_loss(const cli_job *j, char *buf, size_t len);
int cli_check_linear(cli_job *j);
clloss_status cli_run_linear(cli_job *j);
clloss_status cli_reference_linear(cli_job *j);
void cli_describe_linear(const cli_job *j, char *buf, size_t len);
int cli_check_softmax(cli_job *j);
clloss_status cli_run_softmax(cli_job *j);
clloss_status cli_reference_softmax(cli_job *j);
void cli_describe_softmax(const cli_job *j, char *buf, size_t len);
extern const cli_shard cli_ce_shard, cli_linear_shard;

/* ---- shared steps (cli_run_output.c) ---- */

/* Reads the arrays of j->a.in that are given. */
int cli_job_load(cli_job *j);
/* The device (j->ctx) or, with --cpu, none, and j->where. */
int cli_job_open(cli_job *j);
/* Memory for the loss and for each output with a path. */
int cli_job_alloc(cli_job *j);
/* All outputs with a path together, or none. */
int cli_job_write(const cli_job *j);
/* The summary line, off the data (cli_summary_stream). */
void cli_job_summary(const cli_job *j, double ms);
/* "NAME on WHERE failed: ..." for status s; returns CLI_DATA_ERROR. */
int cli_job_failed(const cli_job *j, clloss_status s);
void cli_job_free(cli_job *j);

#endif
