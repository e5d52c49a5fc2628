/* testutil.h - shared helpers of the CUnit suites: seeded random data,
 * tolerant comparison, canaries, and one clloss_context per device. */
#ifndef CLLOSS_TESTUTIL_H
#define CLLOSS_TESTUTIL_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

#include "clloss.h"

/* Registers a suite with its tests: TU_SUITE("name", init, clean, tests...). */
typedef struct tu_test {
  const char *name;
  CU_TestFunc fn;
} tu_test;
int tu_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                 const tu_test *tests, size_t count);
#define TU_SUITE(name, init, clean, ...)                                       \
  do {                                                                         \
    static const tu_test tests_[] = {__VA_ARGS__};                             \
    return tu_add_suite(name, init, clean, tests_,                             \
                        sizeof tests_ / sizeof tests_[0]);                     \
  } while (0)
#define TU_TEST(fn)                                                            \
  { #fn, fn }

/* Deterministic random numbers (splitmix64); the seed is printed once. */
typedef struct tu_rng {
  uint64_t state;
} tu_rng;
uint64_t tu_seed(void); /* CLLOSS_TEST_SEED or a fixed default */
tu_rng tu_rng_make(uint64_t salt);
uint64_t tu_next(tu_rng *r);
float tu_uniform(tu_rng *r, float lo, float hi);
void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi);

/* Compare got[i] (float or double per `got_type`) with expect[i] (double):
 * |got - expect| <= atol + rtol |expect|; NaN matches NaN, Inf matches the
 * same Inf. Prints the first mismatches; returns the number of mismatches. */
size_t tu_compare(const char *what, const void *got, clloss_dtype got_type,
                  const double *expect, size_t n, double atol, double rtol);
/* Same, with float32 expectations. */
size_t tu_compare_f(const char *what, const float *got, const float *expect,
                    size_t n, double atol, double rtol);

/* Canaries: TU_CANARY elements after an output, filled with a pattern. */
#define TU_CANARY 64
void tu_canary_fill(void *after_end, size_t elem_size);
int tu_canary_intact(const void *after_end, size_t elem_size);

/* Devices: every OpenCL device (CLLOSS_TEST_DEVICE filters by index or name
 * substring). tu_context(i) is created once per run and released at exit. */
size_t tu_device_count(void);
clloss_context *tu_context(size_t i);
/* Skips: tu_skip marks the running test as skipped, with a printed reason
 * (a skipped test is never counted as passed); tu_skip_part notes a part of
 * the test that did not run here (float64 on a device without fp64), the
 * rest of the test still counting. Both are summed up at the end of the run,
 * per reason. */
void tu_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tu_skip_part(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Skips the calling test when there is no device. */
#define TU_REQUIRE_DEVICE()                                                    \
  do {                                                                         \
    if (tu_device_count() == 0) {                                              \
      tu_skip("no OpenCL device");                                             \
      return;                                                                  \
    }                                                                          \
  } while (0)
/* Whether ctx's device runs storage type `type` (float64 needs fp64); when
 * not, that part of the calling test is noted as skipped. */
int tu_runs_type(clloss_context *ctx, clloss_dtype type);
/* The run's skips: tests skipped whole (those of them that failed no
 * assertion), tests with a part skipped, and a line per distinct reason
 * printed to `out`. */
typedef struct tu_skip_counts {
  unsigned whole, parts;
} tu_skip_counts;
tu_skip_counts tu_skip_summary(FILE *out);

/* Device buffer helpers on a context's cl_context. */
cl_mem tu_buffer(clloss_context *ctx, size_t bytes, const void *init);
void tu_read(clloss_context *ctx, cl_mem mem, size_t offset_bytes, size_t bytes,
             void *out);

/* Environment variables changed by a suite: tu_env_save returns a copy of
 * the current value (NULL if unset), tu_env_restore puts it back and frees
 * the copy. */
char *tu_env_save(const char *name);
void tu_env_restore(const char *name, char *saved);
/* Counts the entries of a folder (not . and ..), removing them when
 * `remove_them`. */
int tu_dir_entries(const char *dir, int remove_them);

/* Reads a file into buf, NUL-terminated (truncated to cap - 1 bytes; empty
 * when the file cannot be read). */
void tu_slurp(const char *file, char *buf, size_t cap);
/* Runs main_fn(argc, argv) in this process with stdout and stderr sent to
 * the files out_file and err_file (created or truncated), then reads them
 * into out and err. Returns main_fn's result, or -1 if a file cannot be
 * opened. */
int tu_run_captured(int (*main_fn)(int, char **), int argc, char **argv,
                    const char *out_file, char *out, size_t out_cap,
                    const char *err_file, char *err, size_t err_cap);

void tu_print_banner(void);
void tu_release_all(void);

#endif
