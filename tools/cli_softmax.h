/* cli_softmax.h - `clloss run softmax`, called by cli_run.c once the
 * command line is parsed. */
#ifndef CLLOSS_CLI_SOFTMAX_H
#define CLLOSS_CLI_SOFTMAX_H

/* Writes the softmax of the rows of the .npy file `input` (over its last
 * axis) to `out`, of input's shape and dtype; on the device `device`
 * (NULL: the default) or, with `cpu`, the CPU reference; a summary line
 * unless `quiet`. Returns the tool's exit code. */
int cli_run_softmax(const char *input, const char *out, const char *device,
                    int cpu, int quiet);

#endif
