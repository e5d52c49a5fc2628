/* cli_loss.h - one loss problem of the command-line tool: the loss by its
 * PyTorch name, its options, the input arrays, and the checks that turn
 * them into a clloss descriptor; then running it on a device or on the CPU
 * reference. Shared by `run`, `selftest` and `demo`. */
#ifndef CLLOSS_CLI_LOSS_H
#define CLLOSS_CLI_LOSS_H
#include <stddef.h>
#include <stdint.h>

#include "clloss.h"
#include "npy.h"

typedef enum cli_family {
  CLI_CROSS_ENTROPY,
  CLI_NLL_LOSS,
  CLI_POINTWISE
} cli_family;

/* Options, one bit each, to reject those that do not apply to a loss. */
enum {
  CLI_OPT_REDUCTION = 1u << 0,
  CLI_OPT_IGNORE_INDEX = 1u << 1,
  CLI_OPT_LABEL_SMOOTHING = 1u << 2,
  CLI_OPT_WEIGHT = 1u << 3,
  CLI_OPT_POS_WEIGHT = 1u << 4,
  CLI_OPT_DELTA = 1u << 5,
  CLI_OPT_BETA = 1u << 6,
  CLI_OPT_LOG_TARGET = 1u << 7,
  CLI_OPT_Z_LOSS = 1u << 8,
  CLI_OPT_SOFTCAP = 1u << 9,
  CLI_OPT_GRAD_SCALE = 1u << 10
};

typedef struct cli_loss_info {
  const char *name; /* PyTorch's torch.nn.functional name */
  cli_family family;
  clloss_pointwise_loss pointwise; /* for CLI_POINTWISE */
  unsigned options;                /* CLI_OPT_* that apply */
} cli_loss_info;

/* NULL when `name` is not a loss. */
const cli_loss_info *cli_find_loss(const char *name);
/* All losses, in the order of the help text; *count receives the number. */
const cli_loss_info *cli_losses(size_t *count);
/* "--reduction" for CLI_OPT_REDUCTION, ... */
const char *cli_option_name(unsigned opt);

typedef struct cli_options {
  unsigned given; /* CLI_OPT_* given on the command line */
  clloss_reduction reduction;
  int64_t ignore_index;
  float label_smoothing, delta, beta, z_loss, softcap;
  float grad_scale; /* multiplies the gradient (1) */
  int log_target;
} cli_options;

/* PyTorch's defaults. */
cli_options cli_default_options(void);

/* Checks that every option given applies to `loss` and is in range;
 * CLI_OK or CLI_USAGE with a sentence in msg. */
int cli_check_options(const cli_loss_info *loss, const cli_options *o,
                      char *msg, size_t msglen);

/* A checked problem. Arrays are borrowed; the converted weights are owned
 * (cli_problem_free). */
typedef struct cli_problem {
  const cli_loss_info *loss;
  cli_options opt;
  const npy_array *input, *target;
  void *weight, *pos_weight; /* in the loss type, or NULL */
  clloss_cross_entropy_desc ce;
  clloss_nll_loss_desc nll;
  clloss_pointwise_desc pw;
  clloss_dtype loss_type; /* float32, or float64 for float64 input */
  int loss_ndim;          /* shape of the loss output */
  size_t loss_shape[NPY_MAX_DIMS];
  size_t loss_count;
} cli_problem;

/* Checks options (CLI_USAGE) and arrays (CLI_DATA_ERROR: shapes, dtypes,
 * targets) and fills *p; on failure writes one sentence to msg. Weight and
 * pos_weight may be NULL. */
int cli_problem_init(cli_problem *p, const cli_loss_info *loss,
                     const cli_options *opt, const npy_array *input,
                     const npy_array *target, const npy_array *weight,
                     const npy_array *pos_weight, char *msg, size_t msglen);
void cli_problem_free(cli_problem *p);

/* Runs the problem on ctx, or on the CPU reference when ctx is NULL, with an
 * upstream gradient of 1. `loss` holds loss_count values of loss_type and
 * `grad` input->count values of the input's type; either may be NULL, not
 * both. */
clloss_status cli_problem_run(const cli_problem *p, clloss_context *ctx,
                              void *loss, void *grad);

/* Copies a float array into the loss type (float32 or float64), which is
 * what the library takes for weights whatever the input's storage; *out
 * is malloc'd. CLI_OK or CLI_DATA_ERROR with a sentence naming `what`. */
int cli_convert_weight(const char *what, const npy_array *w, clloss_dtype to,
                       void **out, char *msg, size_t msglen);
/* Class indices must lie in [0, C) or equal ignore_index (PyTorch raises):
 * CLI_OK or CLI_DATA_ERROR naming the first bad one. */
int cli_check_targets(const npy_array *t, size_t classes, int64_t ignore,
                      char *msg, size_t msglen);

/* "reduction=mean weight ignore_index=3": the options as given. */
void cli_describe_options(const cli_problem *p, char *buf, size_t len);

/* Reads element i of a float array of type t as double. */
double cli_load(const void *data, clloss_dtype t, size_t i);

#endif
