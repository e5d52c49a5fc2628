/* test_cli_linear_cross_entropy.c - `clloss run linear_cross_entropy` on the
 * fixtures of tests/data/linear (inputs and PyTorch's float64 results,
 * written by tests/data/linear_cross_entropy.py make), on the CPU reference
 * and on every device, and its usage errors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testutil.h"

#ifdef CLLOSS_HAVE_CLI_CORE
#include "cli.h"
#include "npy.h"

#ifndef CLLOSS_TEST_DATA_DIR
#define CLLOSS_TEST_DATA_DIR "tests/data"
#endif
#define LINEAR_DIR CLLOSS_TEST_DATA_DIR "/linear"

static char dir[64];
static char out_text[1 << 14], err_text[1 << 14];

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/clloss-lce-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static const char *const outputs[4] = {"loss", "dx", "dw", "db"};

static void out_path(char *buf, size_t len, const char *what) {
  snprintf(buf, len, "%s/%s.npy", dir, what);
}

static void remove_outputs(void) {
  char p[128];
  for (int k = 0; k < 4; k++) {
    out_path(p, sizeof p, outputs[k]);
    unlink(p);
  }
}

static int teardown(void) {
  char p[128];
  remove_outputs();
  snprintf(p, sizeof p, "%s/.stdout", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/.stderr", dir);
  unlink(p);
  rmdir(dir);
  return 0;
}

/* An argument list built up word by word (copies kept). */
typedef struct args {
  int argc;
  char *argv[48];
  char buf[48][320];
} args;

static void add(args *a, const char *word) {
  if (a->argc >= 47)
    return;
  snprintf(a->buf[a->argc], sizeof a->buf[a->argc], "%s", word);
  a->argv[a->argc] = a->buf[a->argc];
  a->argv[++a->argc] = NULL;
}

/* Adds the words of a space-separated string. */
static void add_words(args *a, const char *words) {
  char copy[1200];
  snprintf(copy, sizeof copy, "%s", words);
  for (char *t = strtok(copy, " \n"); t; t = strtok(NULL, " \n"))
    add(a, t);
}

static int run(args *a) {
  char o[128], e[128];
  snprintf(o, sizeof o, "%s/.stdout", dir);
  snprintf(e, sizeof e, "%s/.stderr", dir);
  return tu_run_captured(clloss_cli_main, a->argc, a->argv, o, out_text,
                         sizeof out_text, e, err_text, sizeof err_text);
}

static int fixture(const char *name, const char *what, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s.%s.npy", LINEAR_DIR, name, what);
  return access(buf, R_OK) == 0;
}

/* `run linear_cross_entropy` on case `name` with its options. */
static void case_args(args *a, const char *name, const char *opts,
                      const char *where) {
  char p[320];
  static const char *const in[][2] = {{"x", "--input"},
                                      {"w", "--linear-weight"},
                                      {"b", "--linear-bias"},
                                      {"t", "--target"},
                                      {"weight", "--weight"}};
  memset(a, 0, sizeof *a);
  add_words(a, "clloss run linear_cross_entropy --quiet");
  for (size_t k = 0; k < 5; k++)
    if (fixture(name, in[k][0], p, sizeof p)) {
      add(a, in[k][1]);
      add(a, p);
    }
  static const char *const flags[4] = {"--loss-out", "--grad-out",
                                       "--grad-weight-out", "--grad-bias-out"};
  for (int k = 0; k < 4; k++) {
    if (k == 3 && !fixture(name, "b", p, sizeof p))
      continue;
    add(a, flags[k]);
    out_path(p, sizeof p, outputs[k]);
    add(a, p);
  }
  add_words(a, opts);
  add_words(a, where);
}

/* Each output against PyTorch's, relative to its largest magnitude. */
static size_t compare_case(const char *name, const char *where) {
  size_t bad = 0;
  for (int k = 0; k < 4; k++) {
    char p[320], q[128], msg[256], what[160];
    if (!fixture(name, outputs[k], p, sizeof p))
      continue;
    out_path(q, sizeof q, outputs[k]);
    npy_array want, got;
    memset(&got, 0, sizeof got);
    CU_ASSERT_EQUAL_FATAL(npy_read(p, &want, msg, sizeof msg), NPY_OK);
    if (npy_read(q, &got, msg, sizeof msg) != NPY_OK ||
        got.count != want.count) {
      printf("\n  %s on %s: %s missing or of the wrong size", name, where,
             outputs[k]);
      bad++;
    } else {
      double *g = malloc((got.count ? got.count : 1) * sizeof *g);
      double scale = 1e-30;
      for (size_t i = 0; i < got.count; i++) {
        g[i] = got.dtype == CLLOSS_FLOAT16
                   ? clloss_half_to_float(((uint16_t *)got.data)[i])
               : got.dtype == CLLOSS_FLOAT64 ? ((double *)got.data)[i]
                                             : ((float *)got.data)[i];
        scale = fmax(scale, fabs(((double *)want.data)[i]));
      }
      double tol = got.dtype == CLLOSS_FLOAT16 ? 2e-3 : 2e-5;
      snprintf(what, sizeof what, "%s on %s: %s", name, where, outputs[k]);
      bad += tu_compare(what, g, CLLOSS_FLOAT64, want.data, got.count,
                        tol * scale, 0.0);
      free(g);
    }
    npy_free(&want);
    npy_free(&got);
  }
  return bad;
}

/* Every case of cases.txt on the CPU reference and on each device. */
static void test_fixtures_against_pytorch(void) {
  FILE *f = fopen(LINEAR_DIR "/cases.txt", "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char line[512];
  int cases = 0;
  while (fgets(line, sizeof line, f)) {
    char *bar = strchr(line, '|');
    if (line[0] == '#' || !bar)
      continue;
    *bar = '\0';
    char name[64];
    if (sscanf(line, "%63s", name) != 1)
      continue;
    cases++;
    for (size_t dev = 0; dev <= tu_device_count(); dev++) {
      char where[32];
      if (dev == 0)
        snprintf(where, sizeof where, "--cpu");
      else
        snprintf(where, sizeof where, "--device %zu", dev - 1);
      args a;
      case_args(&a, name, bar + 1, where);
      remove_outputs();
      int rc = run(&a);
#ifndef CLLOSS_TEST_HAVE_CLBLAST
      /* Without CLBlast a device run fails with the reason; the CPU
       * reference still runs every case. */
      if (dev > 0) {
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "CLBlast"));
        tu_skip_part("linear_cross_entropy on a device: built without "
                     "CLBlast");
        continue;
      }
#endif
      if (rc != 0)
        printf("\n  %s %s: exit %d: %s", name, where, rc, err_text);
      CU_ASSERT_EQUAL(rc, 0);
      CU_ASSERT_EQUAL(compare_case(name, where), 0);
    }
  }
  fclose(f);
  CU_ASSERT(cases >= 8);
  remove_outputs();
}

/* Usage errors (exit 2) and bad data (exit 1) leave no output behind. */
static void expect(const char *name, const char *extra, int code,
                   const char *needle) {
  args a;
  case_args(&a, name, extra, "--cpu");
  remove_outputs();
  int rc = run(&a);
  if (rc != code || !strstr(err_text, needle))
    printf("\n  %s: exit %d (want %d), stderr: %s", extra, rc, code, err_text);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, needle));
  char p[128];
  for (int k = 0; k < 4; k++) {
    out_path(p, sizeof p, outputs[k]);
    CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
  }
}

static void test_usage_and_data_errors(void) {
  char wrong[320], w[320];
  fixture("mean_smooth_weight", "w", wrong, sizeof wrong);
  fixture("mean_bias", "w", w, sizeof w);
  char opt[1100];
  snprintf(opt, sizeof opt, "--linear-weight %s", wrong);
  /* The last --linear-weight wins: W of another case has another H. */
  expect("mean_bias", opt, 1, "does not fit input");
  expect("mean_bias", "--pos-weight x.npy", 2, "pos-weight");
  expect("mean_bias", "--delta 2", 2, "does not apply to linear_cross_entropy");
  expect("mean_bias", "--chunk-rows many", 2, "not a count");
  expect("half_none", "--weight /nonexistent.npy", 1, "nonexistent");
  /* dW over W itself (issue 21: replaced, exit 0). */
  snprintf(opt, sizeof opt, "--grad-weight-out %s", w);
  expect("mean_bias", opt, 2, "may not replace an input");
  /* cross_entropy does not take the linear layer's options, and
   * linear_cross_entropy needs its weight. */
  static const char *const lines[2][2] = {{"cross_entropy", "--vocab-block 4"},
                                          {"linear_cross_entropy", ""}};
  static const char *const needles[2] = {"linear_cross_entropy only",
                                         "--linear-weight"};
  for (int k = 0; k < 2; k++) {
    args a;
    memset(&a, 0, sizeof a);
    snprintf(opt, sizeof opt,
             "clloss run %s --input %s --target %s --loss-out %s/loss.npy %s",
             lines[k][0], w, w, dir, lines[k][1]);
    add_words(&a, opt);
    CU_ASSERT_EQUAL(run(&a), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, needles[k]));
  }
  remove_outputs();
}

/* One output that cannot be written (/dev/full) fails the run before any
 * existing file is replaced: the old loss.npy stays, no other output
 * appears, no temporary file is left. */
static void test_failed_output_keeps_old_files(void) {
  args a;
  case_args(&a, "mean_bias", "--grad-weight-out /dev/full", "--cpu");
  remove_outputs();
  char p[128], text[16];
  out_path(p, sizeof p, "loss");
  FILE *f = fopen(p, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("keep", f);
  fclose(f);
  CU_ASSERT_EQUAL(run(&a), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "/dev/full"));
  tu_slurp(p, text, sizeof text);
  CU_ASSERT_STRING_EQUAL(text, "keep");
  out_path(p, sizeof p, "dx");
  CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
  /* The folder holds loss.npy and the captured streams, nothing else. */
  CU_ASSERT_EQUAL(tu_dir_entries(dir, 0), 3);
  remove_outputs();
}

#if defined(CLLOSS_CLI_HAVE_BENCH) && defined(CLLOSS_TEST_HAVE_CLBLAST)
/* A number field of a JSON line, or NaN when missing or null. */
static double json_field(const char *json, const char *name) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":", name);
  const char *p = strstr(json, key);
  if (!p || strncmp(p + strlen(key), "null", 4) == 0)
    return NAN;
  return strtod(p + strlen(key), NULL);
}
#endif

/* `clloss bench linear_cross_entropy` on a tiny shape: the JSON line, the
 * fused and unfused losses agreeing, the workspace smaller than the
 * logits; and its usage errors. */
static void test_bench(void) {
#if defined(CLLOSS_CLI_HAVE_BENCH) && defined(CLLOSS_TEST_HAVE_CLBLAST)
  if (tu_device_count() == 0) {
    tu_skip("no OpenCL device");
    return;
  }
  static const char *const cases[2] = {"--chunk-rows 7", "--vocab-block 30"};
  for (int k = 0; k < 2; k++) {
    args a;
    memset(&a, 0, sizeof a);
    char line[256];
    snprintf(line, sizeof line,
             "clloss bench linear_cross_entropy --rows 40 --hidden 8 "
             "--classes 100 --repeat 2 --warmup 0 %s --device 0",
             cases[k]);
    add_words(&a, line);
    CU_ASSERT_EQUAL_FATAL(run(&a), 0);
    const char *json = strrchr(out_text, '{');
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    double fused = json_field(json, "loss_value");
    double unfused = json_field(json, "unfused_loss_value");
    CU_ASSERT(json_field(json, "median_ms") > 0);
    CU_ASSERT(json_field(json, "unfused_ms") > 0);
    CU_ASSERT(json_field(json, "peak_bytes") > 0);
    CU_ASSERT(json_field(json, "peak_bytes") <
              json_field(json, "unfused_peak_bytes"));
    CU_ASSERT(json_field(json, "unfused_logits_bytes") == 40 * 100 * 4);
    CU_ASSERT(fabs(fused - unfused) <= 1e-5 * fabs(unfused));
    CU_ASSERT(strstr(json, k ? "\"vocab_blocks\"" : "\"row_chunks\"") != NULL);
  }
  /* With a bias the unfused path (which has none) is not run. */
  args a;
  memset(&a, 0, sizeof a);
  add_words(&a, "clloss bench linear_cross_entropy --rows 40 --hidden 8 "
                "--classes 100 --repeat 1 --warmup 0 --bias --json-only");
  CU_ASSERT_EQUAL(run(&a), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "\"unfused_ms\":null"));
  memset(&a, 0, sizeof a);
  add_words(&a, "clloss bench linear_cross_entropy --rows 0");
  CU_ASSERT_EQUAL(run(&a), 2);
  memset(&a, 0, sizeof a);
  add_words(&a, "clloss bench linear_cross_entropy --numel 5");
  CU_ASSERT_EQUAL(run(&a), 2);
#else
  tu_skip("clloss bench or CLBlast is not built");
#endif
}

int test_cli_linear_cross_entropy_register(void) {
  TU_SUITE("cli_linear_cross_entropy", setup, teardown,
           TU_TEST(test_fixtures_against_pytorch),
           TU_TEST(test_usage_and_data_errors),
           TU_TEST(test_failed_output_keeps_old_files), TU_TEST(test_bench));
}

#else

static void test_cli_not_built(void) {
  tu_skip("the clloss tool is not built");
}

int test_cli_linear_cross_entropy_register(void) {
  TU_SUITE("cli_linear_cross_entropy", NULL, NULL, TU_TEST(test_cli_not_built));
}
#endif
