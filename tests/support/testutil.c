/* testutil.c - shared helpers of the CUnit suites. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "testutil.h"

int tu_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                 const tu_test *tests, size_t count) {
  CU_pSuite suite = CU_add_suite(name, init, clean);
  if (!suite)
    return -1;
  for (size_t i = 0; i < count; i++)
    if (!CU_add_test(suite, tests[i].name, tests[i].fn))
      return -1;
  return 0;
}

uint64_t tu_seed(void) {
  const char *s = getenv("CLLOSS_TEST_SEED");
  return s && *s ? strtoull(s, NULL, 0) : 20261126u;
}

tu_rng tu_rng_make(uint64_t salt) {
  tu_rng r = {tu_seed() ^ (salt * 0x9e3779b97f4a7c15ull)};
  return r;
}

uint64_t tu_next(tu_rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

float tu_uniform(tu_rng *r, float lo, float hi) {
  double u = (double)(tu_next(r) >> 11) / 9007199254740992.0;
  return (float)(lo + (hi - lo) * u);
}

void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++)
    x[i] = tu_uniform(r, lo, hi);
}

static int close_enough(double g, double e, double atol, double rtol) {
  if (isnan(e) || isnan(g))
    return isnan(e) && isnan(g);
  if (isinf(e) || isinf(g))
    return g == e;
  return fabs(g - e) <= atol + rtol * fabs(e);
}

size_t tu_compare(const char *what, const void *got, clloss_dtype got_type,
                  const double *expect, size_t n, double atol, double rtol) {
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    double g = got_type == CLLOSS_FLOAT64 ? ((const double *)got)[i]
                                          : ((const float *)got)[i];
    if (close_enough(g, expect[i], atol, rtol))
      continue;
    if (bad < 5)
      printf("\n  %s[%zu]: got %.9g (%a), expected %.9g (%a)", what, i, g, g,
             expect[i], expect[i]);
    bad++;
  }
  if (bad)
    printf("\n  %s: %zu of %zu values differ (seed %llu)\n", what, bad, n,
           (unsigned long long)tu_seed());
  return bad;
}

size_t tu_compare_f(const char *what, const float *got, const float *expect,
                    size_t n, double atol, double rtol) {
  double *e = malloc((n ? n : 1) * sizeof *e);
  if (!e)
    return n ? n : 1;
  for (size_t i = 0; i < n; i++)
    e[i] = expect[i];
  size_t bad = tu_compare(what, got, CLLOSS_FLOAT32, e, n, atol, rtol);
  free(e);
  return bad;
}

static unsigned char canary_byte(size_t i) {
  return (unsigned char)(0xA5u ^ (i * 37u));
}

void tu_canary_fill(void *after_end, size_t elem_size) {
  unsigned char *p = after_end;
  for (size_t i = 0; i < TU_CANARY * elem_size; i++)
    p[i] = canary_byte(i);
}

int tu_canary_intact(const void *after_end, size_t elem_size) {
  const unsigned char *p = after_end;
  for (size_t i = 0; i < TU_CANARY * elem_size; i++)
    if (p[i] != canary_byte(i))
      return 0;
  return 1;
}

/* ---- devices ---- */
#define TU_MAX_DEVICES 16
static int g_listed;
static size_t g_count;
static clloss_device_info g_infos[TU_MAX_DEVICES];
static clloss_context *g_ctx[TU_MAX_DEVICES];

/* Whether `hay` contains `needle`, ignoring ASCII case (as the CLI's
 * --device does). */
static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return 1;
  return n == 0;
}

static int selected(const clloss_device_info *info, size_t index) {
  const char *want = getenv("CLLOSS_TEST_DEVICE");
  if (!want || !*want)
    return 1;
  char *end;
  unsigned long v = strtoul(want, &end, 10);
  if (*end == '\0')
    return v == index;
  return contains_nocase(info->name, want) ||
         contains_nocase(info->platform_name, want);
}

static void list_devices(void) {
  if (g_listed)
    return;
  g_listed = 1;
  clloss_device_info all[TU_MAX_DEVICES];
  size_t total = 0;
  if (clloss_device_list(all, TU_MAX_DEVICES, &total) != CLLOSS_SUCCESS)
    return;
  for (size_t i = 0; i < total && i < TU_MAX_DEVICES; i++)
    if (selected(&all[i], i))
      g_infos[g_count++] = all[i];
}

size_t tu_device_count(void) {
  list_devices();
  return g_count;
}

clloss_context *tu_context(size_t i) {
  list_devices();
  if (i >= g_count)
    return NULL;
  if (!g_ctx[i]) {
    cl_int err;
    cl_context cl =
        clCreateContext(NULL, 1, &g_infos[i].device, NULL, NULL, &err);
    if (!cl)
      return NULL;
    clloss_status s = clloss_context_create(cl, g_infos[i].device, &g_ctx[i]);
    clReleaseContext(cl); /* the clloss context retains it */
    if (s != CLLOSS_SUCCESS) {
      printf("\n  context on %s failed: %s\n", g_infos[i].name,
             clloss_status_name(s));
      g_ctx[i] = NULL;
    }
  }
  return g_ctx[i];
}

/* Every skip of the run, in order: the test (NULL outside one), whole or
 * a part, and why. */
enum { TU_MAX_SKIPS = 1024, TU_REASON = 160 };
static struct {
  CU_pTest test;
  int whole;
  char reason[TU_REASON];
} g_skips[TU_MAX_SKIPS];
static size_t g_nskips;

static void skip_record(int whole, const char *fmt, va_list ap) {
  char reason[TU_REASON];
  vsnprintf(reason, sizeof reason, fmt, ap);
  CU_pTest t = CU_get_current_test();
  printf("\n  SKIPPED%s %s: %s\n", whole ? "" : " part of",
         t ? t->pName : "(no test)", reason);
  if (g_nskips == TU_MAX_SKIPS)
    return;
  g_skips[g_nskips].test = t;
  g_skips[g_nskips].whole = whole;
  memcpy(g_skips[g_nskips].reason, reason, sizeof reason);
  g_nskips++;
}

void tu_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  skip_record(1, fmt, ap);
  va_end(ap);
}

void tu_skip_part(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  skip_record(0, fmt, ap);
  va_end(ap);
}

int tu_runs_type(clloss_context *ctx, clloss_dtype type) {
  const clloss_device_info *info = clloss_context_device_info(ctx);
  if (type != CLLOSS_FLOAT64 || info->has_fp64)
    return 1;
  tu_skip_part("float64 on %s: the device has no fp64", info->name);
  return 0;
}

static int test_failed(CU_pTest t) {
  for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext)
    if (f->pTest == t)
      return 1;
  return 0;
}

/* Whether skip i is the first of its test (whole ones first) and of its
 * reason, for counting each once. */
static int first_of_test(size_t i, int whole) {
  for (size_t j = 0; j < g_nskips; j++)
    if (j != i && g_skips[j].test == g_skips[i].test &&
        (g_skips[j].whole > whole || (g_skips[j].whole == whole && j < i)))
      return 0;
  return 1;
}

tu_skip_counts tu_skip_summary(FILE *out) {
  tu_skip_counts c = {0, 0};
  for (size_t i = 0; i < g_nskips; i++) {
    const int whole = g_skips[i].whole;
    if (!first_of_test(i, whole) || test_failed(g_skips[i].test))
      continue;
    if (whole)
      c.whole++;
    else
      c.parts++;
  }
  for (size_t i = 0; out && i < g_nskips; i++) {
    size_t same = 0, first = 1;
    for (size_t j = 0; j < g_nskips; j++)
      if (strcmp(g_skips[j].reason, g_skips[i].reason) == 0 &&
          g_skips[j].whole == g_skips[i].whole) {
        first = first && j >= i;
        same++;
      }
    if (first)
      fprintf(out, "skipped%s: %s (%zu time%s)\n",
              g_skips[i].whole ? "" : " parts", g_skips[i].reason, same,
              same == 1 ? "" : "s");
  }
  return c;
}

cl_mem tu_buffer(clloss_context *ctx, size_t bytes, const void *init) {
  cl_int err;
  cl_mem m =
      clCreateBuffer(clloss_context_cl_context(ctx),
                     CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                     bytes ? bytes : 1, (void *)init, &err);
  CU_ASSERT_PTR_NOT_NULL(m);
  return m;
}

void tu_read(clloss_context *ctx, cl_mem mem, size_t offset_bytes, size_t bytes,
             void *out) {
  cl_int err = clEnqueueReadBuffer(clloss_context_queue(ctx), mem, CL_TRUE,
                                   offset_bytes, bytes, out, 0, NULL, NULL);
  CU_ASSERT_EQUAL(err, CL_SUCCESS);
}

void tu_print_banner(void) {
  printf("clloss %s tests, seed %llu\n", CLLOSS_VERSION_STRING,
         (unsigned long long)tu_seed());
  size_t n = tu_device_count();
  const char *want = getenv("CLLOSS_TEST_DEVICE");
  if (n == 0 && want && *want)
    printf("CLLOSS_TEST_DEVICE=%s matches no device: device suites are "
           "skipped, and the run fails\n",
           want);
  else if (n == 0)
    printf("no OpenCL device: device suites are skipped\n");
  for (size_t i = 0; i < n; i++)
    printf("device %zu: %s (%s)\n", i, g_infos[i].name,
           g_infos[i].opencl_c_version);
}

void tu_release_all(void) {
  for (size_t i = 0; i < g_count; i++) {
    clloss_context_release(g_ctx[i]);
    g_ctx[i] = NULL;
  }
}

char *tu_env_save(const char *name) {
  const char *v = getenv(name);
  return v ? strdup(v) : NULL;
}

void tu_env_restore(const char *name, char *saved) {
  if (saved)
    setenv(name, saved, 1);
  else
    unsetenv(name);
  free(saved);
}

int tu_dir_entries(const char *dir, int remove_them) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    n++;
    if (remove_them) {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      remove(path);
    }
  }
  if (d)
    closedir(d);
  return n;
}

void tu_slurp(const char *file, char *buf, size_t cap) {
  FILE *f = fopen(file, "rb");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = '\0';
  if (f)
    fclose(f);
}

int tu_run_captured(int (*main_fn)(int, char **), int argc, char **argv,
                    const char *out_file, char *out, size_t out_cap,
                    const char *err_file, char *err, size_t err_cap) {
  int fo = open(out_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int fe = open(err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fo < 0 || fe < 0) {
    if (fo >= 0)
      close(fo);
    if (fe >= 0)
      close(fe);
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  dup2(fo, 1);
  dup2(fe, 2);
  int rc = main_fn(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  close(fo);
  close(fe);
  tu_slurp(out_file, out, out_cap);
  tu_slurp(err_file, err, err_cap);
  return rc;
}
