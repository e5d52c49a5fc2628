/* test_tune.c - the variant choice per device, family and shape class:
 * nothing measured before a class's third call, measured once the
 * variants' programs are built (by a thread of the context's own, which the
 * tests wait for: clloss__prebuild_wait; on CPU devices only when the
 * calls built them, unless a test asks otherwise) and written to the cache
 * folder, read back by the next process (here: after the process table is
 * forgotten), expired lines measured again, one choice for every context of
 * the process, CLLOSS_TUNE=off the pure heuristic, and a measurement no
 * larger than a few of the caller's calls. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "binary_cache.h" /* white box: the tune file's name */
#include "internal.h"
#include "support/testutil.h"

static char g_dir[256];
static char *g_saved_dir, *g_saved_tune, *g_saved_variant;

static int init(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/clloss-tune-test-XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  g_saved_dir = tu_env_save("CLLOSS_CACHE_DIR");
  g_saved_tune = tu_env_save("CLLOSS_TUNE");
  g_saved_variant = tu_env_save("CLLOSS_VARIANT");
  setenv("CLLOSS_CACHE_DIR", g_dir, 1);
  unsetenv("CLLOSS_TUNE");
  unsetenv("CLLOSS_VARIANT"); /* "auto" is what this suite is about */
  return 0;
}

static int clean(void) {
  tu_dir_entries(g_dir, 1);
  rmdir(g_dir);
  tu_env_restore("CLLOSS_CACHE_DIR", g_saved_dir);
  tu_env_restore("CLLOSS_TUNE", g_saved_tune);
  tu_env_restore("CLLOSS_VARIANT", g_saved_variant);
  g_saved_dir = g_saved_tune = g_saved_variant = NULL;
  clloss__tune_forget(); /* choices made with this folder stay here */
  return 0;
}

/* A fresh start: no tune file, no choice in the process (the program
 * binaries stay: building them again would only cost time). */
static void fresh(void) {
  DIR *d = opendir(g_dir);
  struct dirent *e;
  char path[600];
  while (d && (e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "tune-", 5) == 0) {
      snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
      unlink(path);
    }
  if (d)
    closedir(d);
  clloss__tune_forget();
}

/* A fresh context on the device the suites test (CLLOSS_TEST_DEVICE), not
 * on whichever device the ICD loader happens to list first: with PoCL and
 * Rusticl both installed, "0" may be another device than the one under
 * test. No CUnit assertions: the racing threads call it too. */
static clloss_status create_on(cl_device_id device, clloss_context **out) {
  cl_int err;
  cl_context cl = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  if (err != CL_SUCCESS)
    return (clloss_status)err; /* an OpenCL error is its own status */
  clloss_status s = clloss_context_create(cl, device, out);
  clReleaseContext(cl); /* the clloss context holds its own reference */
  return s;
}

static cl_device_id test_device(void) {
  return clloss_context_device_info(tu_context(0))->device;
}

/* A context that builds the variants it measures, on CPU devices too (as
 * it does elsewhere): the tests see measurements on every device. */
static clloss_context *make_context(void) {
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL(create_on(test_device(), &ctx), CLLOSS_SUCCESS);
  if (ctx)
    ctx->build_to_measure = 1;
  return ctx;
}

/* The path of the device's tune file (which may not exist). */
static void tune_path(clloss_context *ctx, char *path, size_t cap) {
  unsigned char digest[CLLOSS__SHA256_SIZE];
  char hex[33];
  clloss__device_digest(clloss_context_device_info(ctx), digest);
  clloss__hex(digest, 16, hex);
  snprintf(path, cap, "%s/tune-%s.txt", g_dir, hex);
}

static int exists(const char *path) {
  return access(path, F_OK) == 0;
}

/* Rows enough never to be "few long rows" on this device. */
static size_t many_rows(clloss_context *ctx) {
  return 2 * (size_t)clloss_context_device_info(ctx)->compute_units + 1;
}

/* One cross_entropy host call of rows x classes (zeros); returns the
 * variant it ran ("" on failure). */
static const char *call_ce(clloss_context *ctx, size_t rows, size_t classes) {
  float *x = calloc(rows * classes, sizeof *x), loss = 0;
  int64_t *t = calloc(rows, sizeof *t);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows;
  d.classes = classes;
  clloss_status s =
      x && t ? clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL)
             : CLLOSS_OUT_OF_HOST_MEMORY;
  CU_ASSERT_EQUAL(s, CLLOSS_SUCCESS);
  free(x);
  free(t);
  return s == CLLOSS_SUCCESS ? clloss_context_last_variant(ctx) : "";
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

/* Plants "cross_entropy <cls> <variant>" dated `age` seconds ago. */
static void plant(clloss_context *ctx, const char *cls, const char *variant,
                  long long age) {
  char path[600], line[200];
  tune_path(ctx, path, sizeof path);
  snprintf(line, sizeof line, "cross_entropy %s %s 1.0 1.0 %lld\n", cls,
           variant, (long long)time(NULL) - age);
  write_text(path, line);
}

/* The variant of the file's cross_entropy line for class `cls` and its
 * date; "" when there is none. */
static void file_choice(clloss_context *ctx, const char *cls, char *variant,
                        long long *when) {
  char path[600], fam[32], c[32], v[16];
  double a, b;
  long long w;
  variant[0] = '\0';
  *when = 0;
  tune_path(ctx, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  while (fscanf(f, "%31s %31s %15s %lf %lf %lld", fam, c, v, &a, &b, &w) == 6)
    if (strcmp(fam, "cross_entropy") == 0 && strcmp(c, cls) == 0) {
      CU_ASSERT_TRUE(a > 0 && b > 0);
      snprintf(variant, 16, "%s", v);
      *when = w;
    }
  fclose(f);
}

/* The heuristic's variant for long rows on this device. */
static const char *long_default(clloss_context *ctx) {
  return (clloss_context_device_info(ctx)->type & CL_DEVICE_TYPE_CPU) ? "item"
                                                                      : "group";
}
/* The heuristic's variant for short rows: item on CPU devices, lanes
 * elsewhere. */
static const char *short_default(clloss_context *ctx) {
  return (clloss_context_device_info(ctx)->type & CL_DEVICE_TYPE_CPU) ? "item"
                                                                      : "lanes";
}
static const char *other(const char *v) {
  return strcmp(v, "item") == 0 ? "group" : "item";
}

/* Five long-row calls run `want`, and the tune file stays as it is. */
static void calls_leave_file(clloss_context *ctx, const char *want) {
  char path[600], before[512], after[512];
  tune_path(ctx, path, sizeof path);
  tu_slurp(path, before, sizeof before);
  for (int i = 0; i < 5; i++)
    CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768), want);
  tu_slurp(path, after, sizeof after);
  CU_ASSERT_STRING_EQUAL(before, after);
}

static void test_tune_nothing_at_creation(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  /* A context builds and measures nothing, and writes nothing. */
  CU_ASSERT_EQUAL(ctx->program_count, 0);
  CU_ASSERT_EQUAL(tu_dir_entries(g_dir, 0), 0);
  clloss_context_release(ctx);
  CU_ASSERT_EQUAL(tu_dir_entries(g_dir, 0), 0);
}

/* The class's third call starts building the variants' programs and runs
 * the heuristic; the first call after they are built measures. */
static void test_tune_measured_after_third_call(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  char path[600], v[16];
  long long when;
  tune_path(ctx, path, sizeof path);
  const size_t rows = many_rows(ctx);
  /* Short rows: the heuristic first. */
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, rows, 10), short_default(ctx));
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, rows, 10), short_default(ctx));
  CU_ASSERT_FALSE(exists(path));
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, rows, 10), short_default(ctx));
  clloss__prebuild_wait(ctx);
  CU_ASSERT_FALSE(exists(path));
  const char *third = call_ce(ctx, rows, 10);
  file_choice(ctx, "tiny_rows", v, &when);
  CU_ASSERT_TRUE(strcmp(v, "item") == 0 || strcmp(v, "group") == 0 ||
                 strcmp(v, "lanes") == 0);
  CU_ASSERT_STRING_EQUAL(third, v);
  CU_ASSERT_TRUE(when > (long long)time(NULL) - 600);
  /* Measuring built the alternative's program only to time it: it is not
   * written to the cache when the context is released. */
  clloss_context_release(ctx);
}

/* The measurement runs in the caller's input type: the third call of a
 * bfloat16 class builds the alternative's bfloat16 program and nothing
 * else (on a thread of its own), and a program built only to be timed is
 * not written to the cache folder when the context is released. */
static void test_tune_measures_in_callers_type(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  fresh();
  /* Binaries written whatever the driver (unset: not on PoCL). */
  char *saved_cache = tu_env_save("CLLOSS_CACHE");
  setenv("CLLOSS_CACHE", "on", 1);
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const size_t rows = many_rows(ctx), classes = 16;
  uint16_t *x = calloc(rows * classes, sizeof *x);
  int64_t *t = calloc(rows, sizeof *t);
  float loss;
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows, d.classes = classes, d.input_type = CLLOSS_BFLOAT16;
  for (int i = 0; i < 4; i++) {
    CU_ASSERT_EQUAL(
        clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL),
        CLLOSS_SUCCESS);
    if (i == 2)
      clloss__prebuild_wait(ctx);
  }
  const int switched =
      strcmp(clloss_context_last_variant(ctx), short_default(ctx)) != 0;
  CU_ASSERT_EQUAL(ctx->program_count, 2);
  for (size_t i = 0; i < ctx->program_count; i++)
    CU_ASSERT_EQUAL(ctx->programs[i].key.in_type, CLLOSS_BFLOAT16);
  clloss_context_release(ctx);
  tu_env_restore("CLLOSS_CACHE", saved_cache);
  DIR *dir = opendir(g_dir);
  struct dirent *e;
  int bins = 0;
  while (dir && (e = readdir(dir)) != NULL)
    bins += strstr(e->d_name, ".bin") != NULL;
  if (dir)
    closedir(dir);
  CU_ASSERT_EQUAL(bins, switched ? 2 : 1);
  free(x);
  free(t);
}

/* Measuring never waits for the caller's work: with the previous call
 * held behind a user event, the class's third call runs the heuristic and
 * returns; the next call, once that one is done, measures. A watchdog
 * opens the event after 10 s, so that a hang fails the test instead. */
typedef struct watchdog {
  cl_event gate;
  pthread_mutex_t m;
  pthread_cond_t c;
  int done, fired;
} watchdog;

static void *watch(void *arg) {
  watchdog *w = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&w->m);
  while (!w->done && pthread_cond_timedwait(&w->c, &w->m, &until) == 0)
    ;
  if (!w->done) {
    w->fired = 1;
    clSetUserEventStatus(w->gate, CL_COMPLETE);
  }
  pthread_mutex_unlock(&w->m);
  return NULL;
}

static void test_tune_never_waits_for_caller(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const size_t rows = many_rows(ctx), classes = 40;
  float *x = calloc(rows * classes, sizeof *x);
  int64_t *t = calloc(rows, sizeof *t);
  cl_mem bx = tu_buffer(ctx, rows * classes * sizeof *x, x);
  cl_mem bt = tu_buffer(ctx, rows * sizeof *t, t);
  cl_mem bl = tu_buffer(ctx, sizeof(float), NULL);
  cl_int err;
  watchdog w = {.gate =
                    clCreateUserEvent(clloss_context_cl_context(ctx), &err)};
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, watch, &w), 0);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows, d.classes = classes;
  cl_command_queue q = clloss_context_queue(ctx);
  const clloss_buffer none = CLLOSS_BUFFER_NONE;
  CU_ASSERT_EQUAL(call_ce(ctx, rows, classes)[0] != '\0', 1);
  CU_ASSERT_EQUAL(clloss_cross_entropy(
                      ctx, q, &d, CLLOSS_BUFFER(bx), CLLOSS_BUFFER(bt), none,
                      none, CLLOSS_BUFFER(bl), none, 1, &w.gate, NULL),
                  CLLOSS_SUCCESS);
  CU_ASSERT_EQUAL(clloss_cross_entropy(ctx, q, &d, CLLOSS_BUFFER(bx),
                                       CLLOSS_BUFFER(bt), none, none,
                                       CLLOSS_BUFFER(bl), none, 0, NULL, NULL),
                  CLLOSS_SUCCESS);
  char path[600];
  tune_path(ctx, path, sizeof path);
  CU_ASSERT_FALSE(exists(path)); /* not measured yet */
  pthread_mutex_lock(&w.m);
  w.done = 1;
  CU_ASSERT_FALSE(w.fired);
  if (!w.fired)
    clSetUserEventStatus(w.gate, CL_COMPLETE);
  pthread_cond_signal(&w.c);
  pthread_mutex_unlock(&w.m);
  pthread_join(th, NULL);
  clFinish(q);
  call_ce(ctx, rows, classes); /* starts building */
  clloss__prebuild_wait(ctx);
  call_ce(ctx, rows, classes);
  CU_ASSERT_TRUE(exists(path));
  clReleaseEvent(w.gate);
  clReleaseMemObject(bx);
  clReleaseMemObject(bt);
  clReleaseMemObject(bl);
  pthread_cond_destroy(&w.c);
  pthread_mutex_destroy(&w.m);
  free(x);
  free(t);
  clloss_context_release(ctx);
}

static void test_tune_file_read(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  /* A fresh line that contradicts the heuristic is taken from the first
   * call on, and never measured again (the file stays as it is). */
  const char *want = other(long_default(ctx));
  plant(ctx, "long_rows", want, 60);
  calls_leave_file(ctx, want);
  clloss_context_release(ctx);
}

static void test_tune_expired_line_measured_again(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const char *heur = long_default(ctx);
  plant(ctx, "long_rows", other(heur), 30LL * 86400);
  /* Too old: ignored, the heuristic runs, the class is measured. */
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768), heur);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768), heur);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768), heur);
  clloss__prebuild_wait(ctx);
  call_ce(ctx, many_rows(ctx), 32768);
  char v[16];
  long long when;
  file_choice(ctx, "long_rows", v, &when);
  CU_ASSERT_TRUE(when > (long long)time(NULL) - 600);
  clloss_context_release(ctx);
  /* A line dated in the future is ignored too. */
  fresh();
  ctx = make_context();
  plant(ctx, "long_rows", other(heur), -10LL * 86400);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768), heur);
  clloss_context_release(ctx);
}

static void test_tune_damaged_file(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  char path[600];
  tune_path(ctx, path, sizeof path);
  write_text(path, "cross_entropy long_rows sideways 1 2 3\n"
                   "nll_loss long_rows split 1 1 99999999999\n"
                   "\x01\x02 garbage\n");
  for (int i = 0; i < 3; i++)
    call_ce(ctx, many_rows(ctx), 32768);
  clloss__prebuild_wait(ctx);
  call_ce(ctx, many_rows(ctx), 32768);
  char v[16];
  long long when;
  file_choice(ctx, "long_rows", v, &when);
  CU_ASSERT_TRUE(strcmp(v, "item") == 0 || strcmp(v, "group") == 0);
  CU_ASSERT_TRUE(when > 0);
  clloss_context_release(ctx);
}

/* The tune file under the cache's trust rule: a FIFO in its place is
 * never opened for a blocking read (alarm: a hang kills the run instead of
 * stalling it), and a choice in a file that others may write is not
 * taken. */
static void test_tune_untrusted_file(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  char path[600];
  tune_path(ctx, path, sizeof path);
  CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
  alarm(120);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768),
                         long_default(ctx));
  alarm(0);
  unlink(path);
  clloss_context_release(ctx);
  fresh();
  ctx = make_context();
  plant(ctx, "long_rows", other(long_default(ctx)), 60);
  CU_ASSERT_EQUAL(chmod(path, 0666), 0);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768),
                         long_default(ctx));
  clloss_context_release(ctx);
  /* The same line in a file of the user's own: taken. */
  fresh();
  ctx = make_context();
  plant(ctx, "long_rows", other(long_default(ctx)), 60);
  CU_ASSERT_EQUAL(chmod(path, 0600), 0);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768),
                         other(long_default(ctx)));
  clloss_context_release(ctx);
}

static void test_tune_off(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  setenv("CLLOSS_TUNE", "off", 1);
  clloss_context *ctx = make_context();
  unsetenv("CLLOSS_TUNE");
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const char *heur = long_default(ctx);
  /* Off: the file is not read (the planted choice is not taken), nothing
   * is measured or written. */
  plant(ctx, "long_rows", other(heur), 60);
  calls_leave_file(ctx, heur);
  char path[600];
  tune_path(ctx, path, sizeof path);
  unlink(path);
  for (int i = 0; i < 5; i++)
    CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 10),
                           short_default(ctx));
  CU_ASSERT_FALSE(exists(path));
  clloss_context_release(ctx);
}

static void test_tune_one_choice_per_process(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *a = make_context(), *b = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  const char *want = other(long_default(a));
  plant(a, "long_rows", want, 60);
  CU_ASSERT_STRING_EQUAL(call_ce(a, many_rows(a), 32768), want);
  /* Another process wrote otherwise: this process keeps its choice, for
   * every context on the device. */
  plant(a, "long_rows", long_default(a), 60);
  CU_ASSERT_STRING_EQUAL(call_ce(b, many_rows(b), 32768), want);
  clloss_context *c = make_context();
  CU_ASSERT_STRING_EQUAL(call_ce(c, many_rows(c), 32768), want);
  clloss_context_release(a);
  clloss_context_release(b);
  clloss_context_release(c);
}

/* Short rows keep their own variant (item on CPU devices, lanes
 * elsewhere) wherever groups are the long rows' choice. */
static void test_tune_short_rows_item(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  plant(ctx, "long_rows", "group", 60);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 10), short_default(ctx));
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, many_rows(ctx), 32768), "group");
  clloss_context_release(ctx);
}

/* Few long rows: split, whatever the long rows' choice. */
static void test_tune_few_long_rows_split(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  plant(ctx, "long_rows", "group", 60);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, 1, 8192), "split");
  clloss_context_release(ctx);
}

typedef struct racer {
  pthread_cond_t *go;
  pthread_mutex_t *m;
  pthread_barrier_t *step;
  int *started;
  cl_device_id device; /* test_device(), from the main thread */
  char variant[5][16];
  clloss_status status;
} racer;

static void *race(void *arg) {
  racer *r = arg;
  pthread_mutex_lock(r->m);
  (*r->started)++;
  pthread_cond_broadcast(r->go);
  while (*r->started < 4)
    pthread_cond_wait(r->go, r->m);
  pthread_mutex_unlock(r->m);
  clloss_context *ctx = NULL;
  r->status = create_on(r->device, &ctx);
  /* Every thread passes every barrier, whatever fails. */
  if (ctx)
    ctx->build_to_measure = 1;
  const size_t rows =
      ctx ? 2 * clloss_context_device_info(ctx)->compute_units + 1 : 1;
  float *x = calloc(rows * 32768, sizeof *x), loss;
  int64_t *t = calloc(rows, sizeof *t);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = rows;
  d.classes = 32768;
  /* Three calls each (the class's third starts a build in one of the
   * contexts), then each waits for its build; one call each (the builder
   * measures), then one more: every context runs the choice. */
  for (int i = 0; i < 5; i++) {
    if (i >= 3) {
      if (ctx)
        clloss__prebuild_wait(ctx);
      pthread_barrier_wait(r->step);
    }
    if (ctx && r->status == CLLOSS_SUCCESS) {
      r->status =
          clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, NULL);
      snprintf(r->variant[i], 16, "%s", clloss_context_last_variant(ctx));
    }
  }
  free(x);
  free(t);
  clloss_context_release(ctx);
  return 0;
}

/* Four threads, a context each, one class measured at once: once measured,
 * every context runs the same variant, and the file has one line. */
static void test_tune_threads(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  pthread_mutex_t m;
  pthread_cond_t go;
  int started = 0;
  pthread_barrier_t step;
  pthread_mutex_init(&m, NULL);
  pthread_cond_init(&go, NULL);
  pthread_barrier_init(&step, NULL, 4);
  racer r[4];
  pthread_t th[4];
  for (int k = 0; k < 4; k++) {
    memset(&r[k], 0, sizeof r[k]);
    r[k].go = &go;
    r[k].m = &m;
    r[k].started = &started;
    r[k].device = test_device();
    r[k].step = &step;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[k], NULL, race, &r[k]), 0);
  }
  for (int k = 0; k < 4; k++)
    pthread_join(th[k], NULL);
  for (int k = 0; k < 4; k++) {
    CU_ASSERT_EQUAL(r[k].status, CLLOSS_SUCCESS);
    CU_ASSERT_STRING_EQUAL(r[k].variant[4], r[0].variant[4]);
  }
  clloss_context *ctx = make_context();
  char v[16];
  long long when;
  file_choice(ctx, "long_rows", v, &when);
  CU_ASSERT_STRING_EQUAL(v, r[0].variant[4]);
  clloss_context_release(ctx);
  pthread_barrier_destroy(&step);
  pthread_cond_destroy(&go);
  pthread_mutex_destroy(&m);
}

/* Issue 21's loop: softmax regression, 512 x 10, through the host call.
 * Its third call measured a scaled-up problem (2^22 elements: 17 s on
 * PoCL). Now the measurement runs the caller's shape, at most 2 warm-ups
 * and 6 timed runs in the call that measures and a run of each variant it
 * builds (on a thread of its own, with the program build): no more than
 * 10 x 512 x 10 elements in all. Every program after the first call's
 * came from that thread, so no call after the first waits for a compiler.
 * (Its wall times are a benchmark's: README, "Variants".) */
static void test_tune_loop_512x10(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const size_t rows = 512, classes = 10;
  const size_t before = clloss__tune_measured_elements();
  for (int step = 0; step < 10; step++) {
    CU_ASSERT_NOT_EQUAL(call_ce(ctx, rows, classes)[0], '\0');
    if (step == 2)
      clloss__prebuild_wait(ctx); /* what a longer loop would give it */
  }
  const size_t measured = clloss__tune_measured_elements() - before;
  CU_ASSERT_TRUE(measured > 0);
  CU_ASSERT_TRUE(measured <= 10 * rows * classes);
  char v[16];
  long long when;
  file_choice(ctx, "tiny_rows", v, &when);
  CU_ASSERT_TRUE(when > 0);
  CU_ASSERT_TRUE(ctx->program_count >= 1);
  for (size_t i = 1; i < ctx->program_count; i++)
    CU_ASSERT_TRUE(ctx->programs[i].background);
  clloss_context_release(ctx);
}

/* A long-row class is measured at the caller's size too (a run of 64 x
 * 32768 elements, not a scaled-up one), and few long rows (split) as well:
 * each measurement stays within 10 runs of the caller's elements. */
static void test_tune_measures_callers_size(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = make_context();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const size_t shapes[2][2] = {{many_rows(ctx), 32768}, {1, 8192}};
  for (int s = 0; s < 2; s++) {
    const size_t before = clloss__tune_measured_elements();
    for (int i = 0; i < 5; i++) {
      call_ce(ctx, shapes[s][0], shapes[s][1]);
      if (i == 2)
        clloss__prebuild_wait(ctx);
    }
    const size_t measured = clloss__tune_measured_elements() - before;
    CU_ASSERT_TRUE(measured > 0);
    CU_ASSERT_TRUE(measured <= 10 * shapes[s][0] * shapes[s][1]);
  }
  clloss_context_release(ctx);
}

/* On a CPU device a measurement builds nothing (the compiler would take
 * the cores of the caller's kernels, and PoCL's first launch of a kernel
 * stalls every launch of the process): the 512 x 10 loop runs the
 * heuristic's program alone, measuring nothing, until the calls have built
 * the alternative's program themselves (here: a forced call); the next
 * call measures. */
static void test_tune_cpu_builds_nothing(void) {
  TU_REQUIRE_DEVICE();
  fresh();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(create_on(test_device(), &ctx), CLLOSS_SUCCESS);
  if (!(clloss_context_device_info(ctx)->type & CL_DEVICE_TYPE_CPU)) {
    clloss_context_release(ctx);
    tu_skip("the device is not a CPU");
    return;
  }
  const size_t before = clloss__tune_measured_elements();
  for (int step = 0; step < 10; step++)
    CU_ASSERT_STRING_EQUAL(call_ce(ctx, 512, 10), "item");
  clloss__prebuild_wait(ctx); /* none started */
  CU_ASSERT_EQUAL(ctx->program_count, 1);
  CU_ASSERT_EQUAL(clloss__tune_measured_elements(), before);
  char path[600];
  tune_path(ctx, path, sizeof path);
  CU_ASSERT_FALSE(exists(path));
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "group"), CLLOSS_SUCCESS);
  CU_ASSERT_STRING_EQUAL(call_ce(ctx, 512, 10), "group");
  CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
  call_ce(ctx, 512, 10);
  CU_ASSERT_TRUE(exists(path));
  const size_t measured = clloss__tune_measured_elements() - before;
  CU_ASSERT_TRUE(measured > 0 && measured <= 10 * 512 * 10);
  clloss_context_release(ctx);
}

int test_tune_register(void) {
  TU_SUITE(
      "tune", init, clean, TU_TEST(test_tune_nothing_at_creation),
      TU_TEST(test_tune_measured_after_third_call),
      TU_TEST(test_tune_measures_in_callers_type),
      TU_TEST(test_tune_never_waits_for_caller), TU_TEST(test_tune_file_read),
      TU_TEST(test_tune_expired_line_measured_again),
      TU_TEST(test_tune_damaged_file), TU_TEST(test_tune_untrusted_file),
      TU_TEST(test_tune_off), TU_TEST(test_tune_one_choice_per_process),
      TU_TEST(test_tune_short_rows_item),
      TU_TEST(test_tune_few_long_rows_split), TU_TEST(test_tune_threads),
      TU_TEST(test_tune_loop_512x10), TU_TEST(test_tune_measures_callers_size),
      TU_TEST(test_tune_cpu_builds_nothing));
}
