/* main.c - the `clloss` executable: everything lives in clloss_cli_core so
 * that the tests can run the same code in-process. */
#include "cli.h"

int main(int argc, char **argv) {
  return clloss_cli_main(argc, argv);
}
