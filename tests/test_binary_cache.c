/* test_binary_cache.c - the on-disk cache of compiled programs: written on
 * the first build, used by the next context, stale or corrupt files
 * ignored, and CLLOSS_CACHE=off honoured. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testutil.h"

static char g_dir[256];
static char *g_saved_dir, *g_saved_switch;

static int init(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/clloss-cache-test-XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  g_saved_dir = tu_env_save("CLLOSS_CACHE_DIR");
  g_saved_switch = tu_env_save("CLLOSS_CACHE");
  setenv("CLLOSS_CACHE_DIR", g_dir, 1);
  unsetenv("CLLOSS_CACHE");
  return 0;
}

static int clean(void) {
  tu_dir_entries(g_dir, 1);
  rmdir(g_dir);
  tu_env_restore("CLLOSS_CACHE_DIR", g_saved_dir);
  tu_env_restore("CLLOSS_CACHE", g_saved_switch);
  g_saved_dir = g_saved_switch = NULL;
  return 0;
}

/* A fresh context (not the shared one: its programs are already built)
 * computes one small mse_loss; returns the status. */
static clloss_status one_call(float *loss_out) {
  clloss_context *ctx = NULL;
  clloss_status s = clloss_context_create_default("0", &ctx);
  if (s != CLLOSS_SUCCESS)
    return s;
  const float x[5] = {1, 2, 3, 4, 5}, y[5] = {1, 1, 1, 1, 1};
  s = clloss_mse_loss_host(ctx, 5, CLLOSS_REDUCTION_SUM, x, y, loss_out, NULL);
  clloss_context_release(ctx);
  return s;
}

static void test_cache_written_then_used(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  float a = 0, b = 0;
  CU_ASSERT_EQUAL(one_call(&a), CLLOSS_SUCCESS);
  CU_ASSERT_TRUE(tu_dir_entries(g_dir, 0) >= 1);
  CU_ASSERT_EQUAL(one_call(&b), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(a, 30.0f); /* 0 + 1 + 4 + 9 + 16 */
  CU_ASSERT_EQUAL(b, 30.0f);
}

static void test_cache_corrupt_file_rebuilt(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  float a = 0;
  CU_ASSERT_EQUAL(one_call(&a), CLLOSS_SUCCESS);
  /* Truncate every cached binary to a few garbage bytes. */
  DIR *d = opendir(g_dir);
  struct dirent *e;
  int damaged = 0;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
    FILE *f = fopen(path, "wb");
    if (f) {
      fputs("CLLOSSB1garbage", f);
      fclose(f);
      damaged++;
    }
  }
  if (d)
    closedir(d);
  CU_ASSERT_TRUE(damaged >= 1);
  a = 0;
  CU_ASSERT_EQUAL(one_call(&a), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(a, 30.0f);
}

static void test_cache_off(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  setenv("CLLOSS_CACHE", "off", 1);
  float a = 0;
  CU_ASSERT_EQUAL(one_call(&a), CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(tu_dir_entries(g_dir, 0), 0);
  unsetenv("CLLOSS_CACHE");
}

int test_binary_cache_register(void) {
  TU_SUITE("binary_cache", init, clean, TU_TEST(test_cache_written_then_used),
           TU_TEST(test_cache_corrupt_file_rebuilt), TU_TEST(test_cache_off));
}
