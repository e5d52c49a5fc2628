/* cli_main.c - the `clloss` command dispatcher: subcommands, --help and
 * --version. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"devices", cli_devices, "list OpenCL platforms and devices"},
    {"run", cli_run, "compute one loss and its gradient from .npy files"},
    {"selftest", cli_selftest, "check every loss against the CPU reference"},
    {"demo", cli_demo, "three losses on a device and on the CPU, side by side"},
#ifdef CLLOSS_CLI_HAVE_BENCH
    {"bench", cli_bench, "time the losses on a device"},
#endif
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out) {
  fprintf(out, "usage: clloss COMMAND [options]\n"
               "       clloss COMMAND --help\n"
               "       clloss --version\n\n"
               "Loss functions and their gradients on OpenCL devices, with "
               "PyTorch semantics.\n\nCommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nEnvironment: CLLOSS_DEVICE picks the default device: an "
               "index from\n`clloss devices` or a name substring.\n"
               "Exit status: 0 ok, 1 bad data or a failed computation, 2 "
               "bad usage.\n");
}

int clloss_cli_main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (cli_is_help(cmd) || strcmp(cmd, "help") == 0) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      char *sub[] = {argv[2], (char *)"--help", NULL};
      for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[2], commands[i].name) == 0)
          return commands[i].fn(2, sub);
      return cli_error(NULL, CLI_USAGE, "unknown command '%s'", argv[2]);
    }
    print_help(stdout);
    return CLI_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("clloss %s (OpenCL %d.%d API)\n", CLLOSS_VERSION_STRING,
           CL_TARGET_OPENCL_VERSION / 100, CL_TARGET_OPENCL_VERSION / 10 % 10);
    return CLI_OK;
  }
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(cmd, commands[i].name) == 0)
      return commands[i].fn(argc - 1, argv + 1);
  return cli_error(NULL, CLI_USAGE, "unknown command '%s' (see clloss --help)",
                   cmd);
}
