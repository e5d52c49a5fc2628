/* cli.h - the clloss command-line tool's internal interface: subcommands,
 * exit codes, and the helpers they share. Only include/clloss.h is used
 * from the library: the tool is the API's first real user. */
#ifndef CLLOSS_CLI_H
#define CLLOSS_CLI_H
#include <stddef.h>
#include <stdio.h>

#include "clloss.h"

/* Exit codes of every subcommand. */
enum {
  CLI_OK = 0,
  CLI_DATA_ERROR = 1, /* bad data, failed computation, I/O, no device */
  CLI_USAGE = 2       /* malformed command line */
};

/* The whole tool: `clloss CMD ...`; argv[0] is the program name. Never
 * calls exit(), so tests can run it in-process. */
int clloss_cli_main(int argc, char **argv);

/* Subcommands: argv[0] is the subcommand's name. */
int cli_devices(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_selftest(int argc, char **argv);
int cli_demo(int argc, char **argv);
#ifdef CLLOSS_CLI_HAVE_BENCH
int cli_bench(int argc, char **argv); /* bench/bench.c */
#endif

/* One line "clloss CMD: message" on stderr; returns `code`. */
int cli_error(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* cli_capture(1): cli_error keeps its first message (without the
 * "clloss CMD: " prefix) for cli_captured() instead of printing it, so
 * that the processes of a --vocab-parallel run can agree on one line;
 * cli_capture(0) prints again. Either clears the message. */
void cli_capture(int on);
const char *cli_captured(void);

/* `--vocab-parallel` given to a clloss built without the MPI layer: the
 * usage error of subcommand `cmd`, which says how to get it. */
int cli_no_mpi(const char *cmd);

/* A usage error of subcommand `cmd`: one line "clloss CMD: message (see
 * clloss CMD --help)" on stderr; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* 1 if arg is "-h" or "--help". */
int cli_is_help(const char *arg);

/* Option parsing: "--name value" and "--name=value"; underscores in the
 * name are accepted as dashes (--ignore_index). If argv[*i] is the option
 * `name`, stores its value (or NULL for a missing value; a next argument
 * that starts with "--" is not taken as one) in *value, advances *i past
 * it and returns 1. */
int cli_option(int argc, char **argv, int *i, const char *name,
               const char **value);
/* A flag without value: returns 1 if argv[i] is `name`. */
int cli_flag(const char *arg, const char *name);

/* Numbers: the whole string must parse and be finite; 0 on failure. */
int cli_parse_double(const char *s, double *out);
int cli_parse_int64(const char *s, long long *out);
int cli_parse_size(const char *s, size_t *out);
/* --reduction's value v (none, mean, sum, batchmean) into *out, or a usage
 * error of subcommand `cmd`. */
int cli_parse_reduction(const char *cmd, const char *v, clloss_reduction *out);

/* 1 if paths a and b name the same file, where one output would overwrite
 * the other: the same device and inode when both exist (a character
 * device such as /dev/null excepted), else the same path once their
 * folders are resolved (./a.npy and a.npy). */
int cli_same_file(const char *a, const char *b);

/* Where a summary line goes so that it stays off the data: stdout, or
 * stderr when one of outputs[0..n) (NULL entries: not given) is written to
 * stdout (/dev/stdout, /dev/fd/1), or NULL when both are outputs. */
FILE *cli_summary_stream(const char *const *outputs, size_t n);

/* Monotonic wall clock in milliseconds. */
double cli_now_ms(void);

/* Prints a byte count as "15.6 GiB". */
void cli_format_bytes(unsigned long long bytes, char *buf, size_t len);

/* Device choice shared by run, selftest and demo: `selector` NULL means the
 * default (CLLOSS_DEVICE, then the first GPU, then the first device). On
 * success *ctx is a new context and *index the device's index. On failure
 * prints the reason for `cmd` and returns CLI_DATA_ERROR. */
int cli_open_device(const char *cmd, const char *selector, clloss_context **ctx,
                    size_t *index);

/* Lists every device: *infos is malloc'd (free it), *count its length; 0
 * devices is not an error. Returns the clloss status. */
clloss_status cli_list_devices(clloss_device_info **infos, size_t *count);

#endif
