/* cli_loss.h - the losses of the command-line tool by their PyTorch names,
 * and their options. Shared by `run`, `selftest`, `demo` and `bench`. */
#ifndef CLLOSS_CLI_LOSS_H
#define CLLOSS_CLI_LOSS_H
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
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
/* cross_entropy's options (linear_cross_entropy's too). */
#define CLI_CE_OPTS                                                            \
  (CLI_OPT_REDUCTION | CLI_OPT_IGNORE_INDEX | CLI_OPT_LABEL_SMOOTHING |        \
   CLI_OPT_WEIGHT | CLI_OPT_Z_LOSS | CLI_OPT_SOFTCAP | CLI_OPT_GRAD_SCALE)

typedef struct cli_loss_info {
  const char *name; /* PyTorch's torch.nn.functional name */
  cli_family family;
  clloss_pointwise_loss pointwise; /* for CLI_POINTWISE */
  unsigned options;                /* CLI_OPT_* that apply */
} cli_loss_info;

/* NULL when `name` is not a loss. */
const cli_loss_info *cli_find_loss(const char *name);

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

/* Checks that every option given applies to `loss` and is in range:
 * CLI_OK, or CLI_USAGE after a sentence (cli_error, as `run`'s, like the
 * checks below). */
int cli_check_options(const cli_loss_info *loss, const cli_options *o);

/* "reduction=mean weight ignore_index=3": the options as given. */
void cli_describe_options(const cli_options *o, char *buf, size_t len);

/* Copies a float array into the loss type (float32 or float64), which is
 * what the library takes for weights whatever the input's storage; *out
 * is malloc'd. CLI_OK or CLI_DATA_ERROR naming `what`. */
int cli_convert_weight(const char *what, const npy_array *w, clloss_dtype to,
                       void **out);
/* cross_entropy's options into its descriptor. */
void cli_ce_options(clloss_cross_entropy_desc *d, const cli_options *o);
int cli_is_float(clloss_dtype t);

/* Reads element i of an array of type t as double; stores v as element i
 * (rounded to the storage type). */
double cli_load(const void *data, clloss_dtype t, size_t i);
void cli_store(void *data, clloss_dtype t, size_t i, double v);
/* The sum of n values of type t. */
double cli_sum(const void *data, clloss_dtype t, size_t n);
/* a's shape as "(2, 3)" in buf. */
const char *cli_shape_text(const npy_array *a, char *buf, size_t len);

#endif
