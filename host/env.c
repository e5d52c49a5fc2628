/* env.c - the environment variables that clloss reads: one reader for its
 * switches (CLLOSS_TUNE, CLLOSS_CACHE), and the check of every variable
 * that context creation runs, so that a misspelt value is an error that
 * names it rather than a setting silently ignored. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "context.h"

int clloss__env_switch(const char *name, int fallback) {
  static const char *const on[] = {"on", "1", "yes", "true"};
  static const char *const off[] = {"off", "0", "no", "false"};
  const char *v = getenv(name);
  if (!v || !*v)
    return fallback;
  for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
    if (strcasecmp(v, on[i]) == 0)
      return 1;
    if (strcasecmp(v, off[i]) == 0)
      return 0;
  }
  return -1;
}

clloss_status clloss__check_environment(char detail[CLLOSS_DETAIL_SIZE]) {
  static const char *const switches[] = {"CLLOSS_TUNE", "CLLOSS_CACHE"};
  for (size_t i = 0; i < sizeof switches / sizeof *switches; i++)
    if (clloss__env_switch(switches[i], 1) < 0) {
      snprintf(detail, CLLOSS_DETAIL_SIZE,
               "%s=%s is not a switch (on, 1, yes, true or off, 0, no, "
               "false, in any case)",
               switches[i], getenv(switches[i]));
      return CLLOSS_INVALID_ARGUMENT;
    }
  /* Kernel sources are read from it when a program is first built; a
   * folder that is not there fails now, where the variable can be named,
   * rather than as a build failure of some later call. */
  const char *dir = getenv("CLLOSS_KERNEL_DIR");
  if (dir && *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      snprintf(detail, CLLOSS_DETAIL_SIZE,
               "CLLOSS_KERNEL_DIR=%s: %s (it names the folder of the kernel "
               "sources)",
               dir, strerror(errno));
      return CLLOSS_INVALID_ARGUMENT;
    }
    close(fd);
  }
  return CLLOSS_SUCCESS;
}
