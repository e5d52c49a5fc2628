/* test_tune.c - the per-device variant choice by measurement: measured and
 * written to the cache folder on the first context, read back by the next,
 * followed by "auto" calls, re-measured when the file is damaged, and off
 * with CLLOSS_TUNE=off. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h" /* white box: set the measured choice */
#include "support/testutil.h"

static char g_dir[256];
static char *g_saved_dir, *g_saved_tune;

/* The tune-*.txt file of the cache folder into path; 0 if there is none. */
static int find_tune_file(char *path, size_t cap) {
  DIR *d = opendir(g_dir);
  struct dirent *e;
  int found = 0;
  while (d && (e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "tune-", 5) == 0 && !found) {
      snprintf(path, cap, "%s/%s", g_dir, e->d_name);
      found = 1;
    }
  if (d)
    closedir(d);
  return found;
}

static int init(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/clloss-tune-test-XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  g_saved_dir = tu_env_save("CLLOSS_CACHE_DIR");
  g_saved_tune = tu_env_save("CLLOSS_TUNE");
  setenv("CLLOSS_CACHE_DIR", g_dir, 1);
  unsetenv("CLLOSS_TUNE");
  return 0;
}

static int clean(void) {
  tu_dir_entries(g_dir, 1);
  rmdir(g_dir);
  tu_env_restore("CLLOSS_CACHE_DIR", g_saved_dir);
  tu_env_restore("CLLOSS_TUNE", g_saved_tune);
  g_saved_dir = g_saved_tune = NULL;
  return 0;
}

/* The variant a fresh context's "auto" cross_entropy and mse_loss run. */
static void auto_variants(char *rows, char *pointwise) {
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
  const float x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0};
  const int64_t t[2] = {0, 2};
  float loss;
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 2;
  d.classes = 3;
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL),
      CLLOSS_SUCCESS);
  snprintf(rows, 16, "%s", clloss_context_last_variant(ctx));
  CU_ASSERT_EQUAL(
      clloss_mse_loss_host(ctx, 6, CLLOSS_REDUCTION_MEAN, x, y, &loss, NULL),
      CLLOSS_SUCCESS);
  snprintf(pointwise, 16, "%s", clloss_context_last_variant(ctx));
  clloss_context_release(ctx);
}

static void read_file_choices(const char *path, char *rows, char *pw) {
  FILE *f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char fam[32], var[16];
  double a, b;
  rows[0] = pw[0] = '\0';
  while (fscanf(f, "%31s %15s %lf %lf", fam, var, &a, &b) == 4) {
    CU_ASSERT_TRUE(a > 0 && b > 0);
    if (strcmp(fam, "rows") == 0)
      snprintf(rows, 16, "%s", var);
    else if (strcmp(fam, "pointwise") == 0)
      snprintf(pw, 16, "%s", var);
  }
  fclose(f);
}

static void test_tune_measured_then_read(void) {
  TU_REQUIRE_DEVICE();
  if (getenv("CLLOSS_VARIANT")) {
    printf("\n  SKIPPED %s: CLLOSS_VARIANT is set", __func__);
    return;
  }
  tu_dir_entries(g_dir, 1);
  char rows[16], pw[16], frows[16], fpw[16], path[600];
  auto_variants(rows, pw);
  CU_ASSERT_TRUE_FATAL(find_tune_file(path, sizeof path));
  read_file_choices(path, frows, fpw);
  CU_ASSERT_TRUE(strcmp(frows, "item") == 0 || strcmp(frows, "group") == 0);
  CU_ASSERT_TRUE(strcmp(fpw, "item") == 0 || strcmp(fpw, "group") == 0);
  /* With two rows of three classes the split variant is never chosen, so
   * "auto" runs exactly what was measured. */
  CU_ASSERT_STRING_EQUAL(rows, frows);
  CU_ASSERT_STRING_EQUAL(pw, fpw);
  /* A second context reads the file: same choice, file untouched. */
  FILE *f = fopen(path, "a");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("# read, not rewritten\n", f);
  fclose(f);
  char rows2[16], pw2[16];
  auto_variants(rows2, pw2);
  CU_ASSERT_STRING_EQUAL(rows2, frows);
  CU_ASSERT_STRING_EQUAL(pw2, fpw);
  f = fopen(path, "r");
  char buf[512] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "# read, not rewritten"));
}

static void test_tune_damaged_file_measured_again(void) {
  TU_REQUIRE_DEVICE();
  if (getenv("CLLOSS_VARIANT"))
    return;
  tu_dir_entries(g_dir, 1);
  char rows[16], pw[16], path[600];
  auto_variants(rows, pw);
  CU_ASSERT_TRUE_FATAL(find_tune_file(path, sizeof path));
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("rows sideways 1 2\n", f);
  fclose(f);
  auto_variants(rows, pw);
  char frows[16], fpw[16];
  read_file_choices(path, frows, fpw);
  CU_ASSERT_TRUE(strcmp(frows, "item") == 0 || strcmp(frows, "group") == 0);
  CU_ASSERT_TRUE(strcmp(fpw, "item") == 0 || strcmp(fpw, "group") == 0);
}

static void test_tune_off(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  setenv("CLLOSS_TUNE", "off", 1);
  char rows[16], pw[16], path[600];
  auto_variants(rows, pw);
  CU_ASSERT_FALSE(find_tune_file(path, sizeof path));
  unsetenv("CLLOSS_TUNE");
}

/* Where groups are the measured choice, short rows (fewer than a few
 * vectors per work-item of a group) still go one per work-item. */
static void test_tune_short_rows_item(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
  ctx->tuned[CLLOSS__FAMILY_ROWS] = CLLOSS__GROUP;
  enum { N = 64, LONG = 32768 };
  float *x = calloc((size_t)N * LONG, sizeof *x), loss = 0;
  int64_t t[N] = {0};
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N;
  d.classes = 10;
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx), "item");
  d.classes = LONG;
  CU_ASSERT_EQUAL(
      clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL),
      CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(clloss_context_last_variant(ctx), "group");
  free(x);
  clloss_context_release(ctx);
}

int test_tune_register(void) {
  TU_SUITE("tune", init, clean, TU_TEST(test_tune_measured_then_read),
           TU_TEST(test_tune_damaged_file_measured_again),
           TU_TEST(test_tune_off), TU_TEST(test_tune_short_rows_item));
}
