/* cli_data.h - random test problems for `selftest` and `demo`: a seeded
 * generator, arrays of any storage type, and inputs shaped for each loss. */
#ifndef CLLOSS_CLI_DATA_H
#define CLLOSS_CLI_DATA_H
#include <stdint.h>

#include "cli_run.h"

/* What a generated problem holds besides input and target. */
enum {
  CLI_GEN_INT32 = 1u << 0,       /* int32 class indices (else int64) */
  CLI_GEN_PROBS = 1u << 1,       /* probability targets */
  CLI_GEN_IGNORE = 1u << 2,      /* every 7th target is the ignore index */
  CLI_GEN_WEIGHT = 1u << 3,      /* class weights / BCE last-dim weight */
  CLI_GEN_WEIGHT_FULL = 1u << 4, /* BCE weight of the input's shape */
  CLI_GEN_POS_WEIGHT = 1u << 5,  /* BCE pos_weight over the last dim */
  CLI_GEN_ONE_ROW = 1u << 6,     /* class losses: a 1-D [C] input */
  CLI_GEN_3D = 1u << 7           /* element-wise: shape [2, rows, cols] */
};

/* A loss on generated data: its storage type, rows x cols (cli_generate),
 * what the data holds (CLI_GEN_*) and the options as `run` takes them. */
typedef struct cli_case {
  const char *loss;
  clloss_dtype dtype;
  size_t rows, cols;
  unsigned gen;
  const char *options;
} cli_case;

/* A case run through its `run` entry: generated, checked, computed on the
 * CPU reference (its data from seed and salt; its loss and gradient kept in
 * ref[], malloc'd) and then `runs` times on a device into j.out; where it
 * stopped (CLI_TRIAL_*), the status s of the failed call or the check's reason
 * in msg, and the time of the reference and of the last device call. */
enum {
  CLI_TRIAL_OK,
  CLI_TRIAL_MEMORY,
  CLI_TRIAL_CHECK,
  CLI_TRIAL_NO_FP64,
  CLI_TRIAL_REFERENCE,
  CLI_TRIAL_DEVICE
};
typedef struct cli_trial {
  cli_job j;
  void *ref[2];
  int stage, rc;
  clloss_status s;
  double ref_ms, dev_ms;
  char msg[400];
} cli_trial;
int cli_trial_run(cli_trial *t, const cli_case *c, uint64_t seed, uint64_t salt,
                  clloss_context *ctx, int runs);
void cli_trial_free(cli_trial *t);

/* The largest |got - ref| or (relative) |got - ref| / max(|ref_i|, 0.01
 * max_j |ref_j|) over n values of type t: a relative error with a floor,
 * so that values near zero in a large gradient do not dominate. NaN
 * matches NaN and an infinity the same infinity; any other mismatch with
 * a NaN or infinity is INFINITY. */
double cli_max_error(const void *got, const void *ref, clloss_dtype t, size_t n,
                     int relative);

/* selftest's and demo's arguments (`cmd`): --device I and, when `full`
 * (selftest), --all, --loss NAME, --seed S. CLI_OK, CLI_USAGE, or -1
 * after printing `help`. */
typedef struct cli_test_args {
  const char *device, *only;
  int all;
  uint64_t seed;
} cli_test_args;
int cli_test_parse(const char *cmd, const char *help, int full, int argc,
                   char **argv, cli_test_args *a);

#endif
