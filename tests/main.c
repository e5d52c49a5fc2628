#define _POSIX_C_SOURCE 200809L /* setenv */
/* main.c - the CUnit runner: registers every suite, exits with the number of
 * failures. Usage: clloss_tests [suite]: a whole name (test_context, as
 * CTest runs them) selects that suite alone, anything else every suite
 * whose name contains it. With CLLOSS_TEST_SUMMARY set, the run's counts
 * are appended to that file as one line, "suite passed failed skipped
 * parts-skipped", and a line per reason of a skip, for ./run's summary per
 * device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "support/testutil.h"

#define SUITE(name) int name##_register(void);
#include "suites.inc"
#undef SUITE

static int selected(const char *suite, const char *only) {
  if (!only)
    return 1;
  return strncmp(only, "test_", 5) == 0 ? strcmp(suite, only) == 0
                                        : strstr(suite, only) != NULL;
}

static void write_summary(const char *only, unsigned passed, unsigned failed,
                          tu_skip_counts skips) {
  const char *path = getenv("CLLOSS_TEST_SUMMARY");
  FILE *f = path && *path ? fopen(path, "a") : NULL;
  if (!f)
    return;
  fprintf(f, "%s %u %u %u %u\n", only ? only : "all", passed, failed,
          skips.whole, skips.parts);
  tu_skip_summary(f);
  fclose(f);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 1;
#define SUITE(name)                                                            \
  if (selected(#name, only)) {                                                 \
    if (name##_register() != 0) {                                              \
      fprintf(stderr, "failed to register %s\n", #name);                       \
      CU_cleanup_registry();                                                   \
      return 1;                                                                \
    }                                                                          \
  }
#include "suites.inc"
#undef SUITE
  tu_print_banner();
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failures = CU_get_number_of_failures();
  unsigned run = CU_get_number_of_tests_run();
  unsigned failed_tests = CU_get_number_of_tests_failed();
  printf("\n");
  tu_skip_counts skips = tu_skip_summary(stdout);
  const unsigned passed = run - failed_tests - skips.whole;
  write_summary(only, passed, failed_tests, skips);
  CU_cleanup_registry();
  /* The shared contexts now hold every program configuration the suites
   * built (some hundreds). Releasing a context writes the binaries it built
   * to the cache, and a driver may compile every kernel again to produce
   * one (PoCL: seconds each); the cache folder is this run's own (./run),
   * so skip that. The binary cache suite tests the writes. */
  setenv("CLLOSS_CACHE", "off", 1);
  tu_release_all();
  printf("%u passed, %u failed, %u skipped (%u more passed with a part "
         "skipped)\n",
         passed, failed_tests, skips.whole, skips.parts);
  /* A device asked for by name that is not there is a failed run, not a
   * run of skipped device suites. */
  const char *want = getenv("CLLOSS_TEST_DEVICE");
  if (want && *want && tu_device_count() == 0)
    return 1;
  return (int)(failures > 255 ? 255 : failures);
}
