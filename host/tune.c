/* tune.c - which kernel variant a call runs: the heuristic, or a measured
 * choice that beat it clearly, per device, family and shape class.
 *
 * Shape classes: cross_entropy and nll_loss rows are "tiny" (fewer than
 * 32 x VW elements), "short" (fewer than 4 x VW x L elements, L the
 * work-group size: a work-group per row would leave most of its
 * work-items idle), "long", or for cross_entropy "few
 * long" (fewer rows than twice the compute units, C >= 8192: the split
 * variant); element-wise losses have one class. The heuristic, which every
 * choice starts from: few long rows split; tiny and short rows item on CPU
 * devices, lanes elsewhere; others item on CPU devices and group elsewhere.
 *
 * Measurement is lazy: a class is measured from its MEASURE_AT-th call in
 * the process on (earlier calls run the heuristic), so that creating a
 * context or calling once measures nothing, by a call that finds the
 * context's previous call complete (the timed runs, on a queue of their
 * own, must not wait for work of the caller's) and both variants' programs
 * built. Building a program is part of a measurement's cost (PoCL: 1-3 s,
 * and as much again to compile its kernels at their first launch), and no
 * call waits for it: on a device that is not a CPU the first such call
 * starts a thread that builds them and runs each once on a context of its
 * own (clloss__prebuild), and a later call measures; on a CPU device
 * nothing is built to measure (see builds_to_measure), so a class is
 * measured once the calls have built both. The measurement times the
 * heuristic's variant against the alternative on a problem of the caller's
 * shape and input type, never larger (cut to 2^22 elements a run), a
 * warm-up each then up to ROUNDS interleaved rounds: at most 2 + 2 x ROUNDS
 * = 8 runs of the caller's size, and the alternative is dropped at its
 * first timed run over ABANDON times the heuristic's best. It keeps the
 * minimum of each; the alternative wins only if its minimum is below
 * CLEAR_WIN times the heuristic's. Choices live in one table per process,
 * under a lock and keyed by device (name, vendor, platform, driver, clloss
 * version), so that every context of the process on a device runs the
 * same variant for a class; a context that needs a class being measured
 * waits for the result (a few runs of its size).
 *
 * Choices are written to tune-<device>.txt in the cache folder, one line
 * per class: "family class variant heuristic_ms alternative_ms unix_time".
 * The next process reads them instead of measuring (a file that the
 * cache's trust rule refuses, binary_cache.c, is not read). A line older than
 * MAX_AGE_DAYS (or dated in the future, or malformed) is ignored, so its
 * class is measured again and the line rewritten: a choice made under
 * unusual load cannot stay forever.
 *
 * The CLLOSS_TUNE switch off (off, 0, no, false in any case), read when a
 * context is created: the heuristic alone, nothing measured, read or
 * written. A variant forced with
 * CLLOSS_VARIANT or clloss_context_set_variant is never measured. A failed
 * measurement leaves the heuristic for the rest of the process and writes
 * nothing. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binary_cache.h"
#include "internal.h"

enum { TINY_ROWS, SHORT_ROWS, LONG_ROWS, FEW_LONG_ROWS, ELEMENTS, CLASSES };
enum { MEASURE_AT = 3, ROUNDS = 3, MAX_AGE_DAYS = 14 };
/* At most 2 + 2 x ROUNDS runs (a warm-up each, then the rounds), each of
 * the caller's shape or less. */
enum { MAX_RUNS = 2 + 2 * ROUNDS };
#define CLEAR_WIN 0.8
#define ABANDON 2.0 /* a run this many times the best so far: a loser */
#define BUDGET ((size_t)1 << 22) /* most elements of a measured run */

static const char *const family_names[CLLOSS__FAMILIES] = {
    "cross_entropy", "nll_loss", "pointwise"};
static const char *const class_names[CLASSES] = {
    "tiny_rows", "short_rows", "long_rows", "few_long_rows", "elements"};

enum { PENDING, MEASURING, DECIDED };
typedef struct entry {
  int state;
  unsigned calls;                /* picks while pending */
  const clloss_context *builder; /* builds the variants' programs, or NULL */
  clloss__variant choice;
  double ms[2];   /* minimum of the heuristic's and the alternative's */
  long long when; /* unix time of the measurement; 0: not written */
} entry;

/* One device's choices; never freed, so that contexts may keep a pointer. */
typedef struct device_table {
  unsigned char digest[CLLOSS__SHA256_SIZE];
  int loaded; /* the file was read */
  entry e[CLLOSS__FAMILIES][CLASSES];
  struct device_table *next;
} device_table;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t decided = PTHREAD_COND_INITIALIZER;
static device_table *tables;
static size_t measured_elements; /* under lock: every run's rows x classes */

/* ---------------------------------------------------------------------------
 * Classes and the heuristic.
 */

/* Split pays off when there are too few rows to fill the device and each
 * is long: every compute unit should get a few segments. */
static int few_long_rows(const clloss_context *ctx, size_t rows,
                         size_t classes) {
  size_t cu = ctx->info.compute_units;
  return rows > 0 && rows < 2 * cu && classes >= 8192;
}

static int shape_class(const clloss_context *ctx, int family, size_t rows,
                       size_t classes, clloss_dtype type) {
  if (family == CLLOSS__FAMILY_POINTWISE)
    return ELEMENTS;
  if (family == CLLOSS__FAMILY_CROSS_ENTROPY &&
      few_long_rows(ctx, rows, classes))
    return FEW_LONG_ROWS;
  /* A work-group per row leaves most of its work-items idle when the row
   * holds fewer than a few vectors per work-item (C = 10, say). L is the
   * device's work-group size as clloss uses it (a kernel may allow less). */
  size_t vw = (size_t)clloss__vector_width(ctx, type);
  size_t local = clloss__group_local_size(ctx, ctx->wg_size);
  /* Tiny rows (C < 32 x VW: C = 10 or 100) and short rows measure apart:
   * on an H200 a work-item per row ties with lanes at C = 100 and is 2.8
   * times slower at C = 1000, so one class would let the first shape
   * measured decide for the other. */
  if (classes < 32 * vw)
    return TINY_ROWS;
  return classes < 4 * vw * local ? SHORT_ROWS : LONG_ROWS;
}

static clloss__variant device_default(const clloss_context *ctx) {
  return (ctx->info.type & CL_DEVICE_TYPE_CPU) ? CLLOSS__ITEM : CLLOSS__GROUP;
}

/* Short rows: one per work-item on CPUs, lanes (several work-items per
 * row, several rows per group) elsewhere. */
static clloss__variant heuristic(const clloss_context *ctx, int cls) {
  if (cls == FEW_LONG_ROWS)
    return CLLOSS__SPLIT;
  if (cls == SHORT_ROWS || cls == TINY_ROWS)
    return device_default(ctx) == CLLOSS__ITEM ? CLLOSS__ITEM : CLLOSS__LANES;
  return device_default(ctx);
}

static clloss__variant alternative(const clloss_context *ctx, int cls) {
  if (cls == FEW_LONG_ROWS)
    return device_default(ctx);
  if (cls == SHORT_ROWS || cls == TINY_ROWS)
    return device_default(ctx) == CLLOSS__ITEM ? CLLOSS__GROUP : CLLOSS__ITEM;
  return heuristic(ctx, cls) == CLLOSS__ITEM ? CLLOSS__GROUP : CLLOSS__ITEM;
}

/* ---------------------------------------------------------------------------
 * Measurement: the caller's input type, class-index targets (int64) or
 * mse_loss, mean, loss and gradient, on the context's own queue. The runs
 * go through the function that the family's launcher hands to
 * clloss__pick_variant (clloss__tune_run), never through an entry point.
 */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

typedef clloss__tune_problem problem;

/* The caller's shape, never larger: rows cut so that a run holds at most
 * BUDGET elements (long rows keep twice the compute units, few long rows
 * all theirs and at least 8192 classes, to stay in their class). */
static void size_problem(const clloss_context *ctx, problem *p, int cls,
                         size_t rows, size_t classes) {
  const size_t cu = ctx->info.compute_units;
  p->rows = rows;
  p->classes = classes;
  if (cls == ELEMENTS) {
    p->rows = rows < BUDGET ? rows : BUDGET;
  } else if (cls == FEW_LONG_ROWS) {
    size_t most = BUDGET / rows < 8192 ? 8192 : BUDGET / rows;
    p->classes = classes < most ? classes : most;
  } else {
    size_t least = rows < 2 * cu ? rows : 2 * cu;
    size_t most = BUDGET / classes < least ? least : BUDGET / classes;
    p->rows = rows < most ? rows : most;
  }
}

static void release_problem(problem *p) {
  if (p->queue) {
    clFinish(p->queue);
    clReleaseCommandQueue(p->queue);
  }
  cl_mem all[] = {p->x, p->y, p->t, p->loss, p->grad};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i])
      clReleaseMemObject(all[i]);
}

/* 0.5 in each storage type, as a fill pattern. */
static size_t half_pattern(clloss_dtype type, unsigned char out[8]) {
  const float f = 0.5f;
  const double d = 0.5;
  const uint16_t h = 0x3800, b = 0x3f00; /* float16, bfloat16 */
  const void *src = type == CLLOSS_FLOAT16    ? (const void *)&h
                    : type == CLLOSS_BFLOAT16 ? (const void *)&b
                    : type == CLLOSS_FLOAT64  ? (const void *)&d
                                              : (const void *)&f;
  size_t size = clloss_dtype_size(type);
  memcpy(out, src, size);
  return size;
}

static int make_problem(clloss_context *ctx, problem *p) {
  const size_t n = p->rows * p->classes;
  unsigned char half[8];
  const size_t in = half_pattern(p->type, half);
  const size_t real = clloss_dtype_size(clloss_loss_dtype(p->type));
  const cl_long zero = 0;
  cl_int err;
  cl_mem *mems[] = {&p->x, &p->y, &p->grad, &p->t, &p->loss};
  const size_t bytes[] = {n * in, n * in, n * in, p->rows * sizeof(cl_long),
                          real};
  for (int i = 0; i < 5; i++)
    if (!(*mems[i] =
              clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes[i], NULL, &err)))
      return 0;
  return clEnqueueFillBuffer(p->queue, p->x, half, in, 0, bytes[0], 0, NULL,
                             NULL) == CL_SUCCESS &&
         clEnqueueFillBuffer(p->queue, p->y, half, in, 0, bytes[1], 0, NULL,
                             NULL) == CL_SUCCESS &&
         clEnqueueFillBuffer(p->queue, p->t, &zero, sizeof zero, 0, bytes[3], 0,
                             NULL, NULL) == CL_SUCCESS &&
         clFinish(p->queue) == CL_SUCCESS;
}

/* The programs that runs of p with variants v[0] and v[1] take. */
static void problem_keys(const clloss_context *ctx, const problem *p,
                         const clloss__variant v[2],
                         clloss__program_key keys[2]) {
  for (int k = 0; k < 2; k++) {
    if (p->family == CLLOSS__FAMILY_POINTWISE) {
      clloss_pointwise_desc d = CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
      d.input_type = p->type;
      keys[k] = clloss__pw_program_key(ctx, &d);
    } else if (p->family == CLLOSS__FAMILY_NLL_LOSS) {
      clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
      d.input_type = p->type;
      keys[k] = clloss__nll_program_key(ctx, &d);
    } else {
      clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
      d.input_type = p->type;
      keys[k] = clloss__ce_program_key(ctx, &d);
    }
    keys[k].variant = v[k];
  }
}

/* One run of variant v (forced on ctx for it) through the launcher's `run`,
 * from enqueue to clFinish; negative on failure. */
static double time_run(clloss_context *ctx, clloss__tune_run run,
                       const problem *p, clloss__variant v) {
  const clloss__variant forced = ctx->variant;
  ctx->variant = v;
  double t0 = now_ms();
  clloss_status s = run(ctx, p);
  ctx->variant = forced;
  if (s != CLLOSS_SUCCESS || clFinish(p->queue) != CL_SUCCESS)
    return -1;
  double dt = now_ms() - t0;
  pthread_mutex_lock(&lock);
  measured_elements += p->rows * p->classes;
  pthread_mutex_unlock(&lock);
  return dt;
}

/* Times v[0] against v[1], whose programs are built: a warm-up each, then
 * up to ROUNDS rounds in alternating order; ms[] gets each minimum. The
 * alternative is dropped at its first timed run over ABANDON times the
 * heuristic's best (it cannot win). Returns 0 on any failure. The
 * caller's state of ctx is kept. */
static int measure(clloss_context *ctx, clloss__tune_run run, problem *p,
                   const clloss__variant v[2], double ms[2]) {
  char detail[sizeof ctx->detail];
  memcpy(detail, ctx->detail, sizeof detail);
  const char *last = ctx->last_variant;
  char *log = ctx->build_log;
  ctx->measuring = 1;
  ctx->build_log = NULL;
  /* A queue of its own: the caller may have work waiting on the context's
   * queue, which the timed runs must neither wait for nor time. */
  cl_int err;
  p->queue = clCreateCommandQueue(ctx->cl, ctx->device, 0, &err);
  int ok = p->queue && make_problem(ctx, p);
  for (int k = 0; ok && k < 2; k++)
    ok = time_run(ctx, run, p, v[k]) >= 0;
  ms[0] = ms[1] = -1;
  int lost = 0;
  for (int r = 0; ok && !lost && r < ROUNDS; r++)
    for (int i = 0; ok && !lost && i < 2; i++) {
      int k = (r & 1) ? 1 - i : i;
      double dt = time_run(ctx, run, p, v[k]);
      ok = dt >= 0;
      if (ok && (ms[k] < 0 || dt < ms[k]))
        ms[k] = dt;
      lost = ok && k == 1 && ms[0] > 0 && dt > ABANDON * ms[0];
    }
  release_problem(p);
  ctx->measuring = 0;
  ctx->last_variant = last;
  memcpy(ctx->detail, detail, sizeof detail);
  free(ctx->build_log); /* a build that failed here is not the caller's */
  ctx->build_log = log;
  return ok;
}

/* A background job's runs (clloss__prebuild: a thread and a context of its
 * own): variant v[k] once where run[k], which builds its program and
 * compiles its kernels for the problem's work-group sizes. */
typedef struct warm_arg {
  problem p;
  clloss__tune_run run_fn;
  clloss__variant v[2];
  int run[2];
} warm_arg;

static int warm_up(clloss_context *helper, const void *arg) {
  warm_arg a;
  memcpy(&a, arg, sizeof a);
  cl_int err;
  a.p.queue = clCreateCommandQueue(helper->cl, helper->device, 0, &err);
  int ok = a.p.queue && make_problem(helper, &a.p);
  for (int k = 0; ok && k < 2; k++)
    ok = !a.run[k] || time_run(helper, a.run_fn, &a.p, a.v[k]) >= 0;
  release_problem(&a.p);
  return ok;
}

size_t clloss__tune_measured_elements(void) {
  pthread_mutex_lock(&lock);
  size_t n = measured_elements;
  pthread_mutex_unlock(&lock);
  return n;
}

/* ---------------------------------------------------------------------------
 * The file.
 */

static int tune_file_name(const device_table *t, char *name, size_t cap) {
  char hex[33];
  clloss__hex(t->digest, 16, hex);
  return snprintf(name, cap, "tune-%s.txt", hex) < (int)cap;
}

static int index_of(const char *const *names, int count, const char *name) {
  for (int i = 0; i < count; i++)
    if (strcmp(names[i], name) == 0)
      return i;
  return -1;
}

static clloss__variant variant_of(const char *name) {
  static const char *const names[] = {"item", "group", "split", "lanes"};
  int i = index_of(names, 4, name);
  return i < 0 ? CLLOSS__AUTO : (clloss__variant)(i + 1);
}

/* Reads the file's fresh, well-formed lines into out[][] (state DECIDED);
 * other entries are left as they are. */
static void read_file(const device_table *t,
                      entry out[CLLOSS__FAMILIES][CLASSES]) {
  char name[64];
  FILE *f =
      tune_file_name(t, name, sizeof name) ? clloss__cache_open(name) : NULL;
  if (!f)
    return;
  const long long now = (long long)time(NULL);
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char fam[32], cls[32], var[32];
    double a, b;
    long long when;
    if (sscanf(line, "%31s %31s %31s %lf %lf %lld", fam, cls, var, &a, &b,
               &when) != 6)
      continue;
    int fi = index_of(family_names, CLLOSS__FAMILIES, fam);
    int ci = index_of(class_names, CLASSES, cls);
    clloss__variant v = variant_of(var);
    if (fi < 0 || ci < 0 || v == CLLOSS__AUTO ||
        (v == CLLOSS__SPLIT && fi != CLLOSS__FAMILY_CROSS_ENTROPY) ||
        (v == CLLOSS__LANES && fi == CLLOSS__FAMILY_POINTWISE) ||
        when > now + 86400 || when < now - MAX_AGE_DAYS * 86400LL)
      continue;
    entry *e = &out[fi][ci];
    e->state = DECIDED;
    e->choice = v;
    e->ms[0] = a;
    e->ms[1] = b;
    e->when = when;
  }
  fclose(f);
}

/* Writes the table's measured choices, keeping the file's lines for classes
 * that this process has not measured (another process may have). */
static void write_file(const device_table *t) {
  entry all[CLLOSS__FAMILIES][CLASSES];
  memset(all, 0, sizeof all);
  read_file(t, all);
  char text[CLLOSS__FAMILIES * CLASSES * 128];
  size_t n = 0;
  for (int f = 0; f < CLLOSS__FAMILIES; f++)
    for (int c = 0; c < CLASSES; c++) {
      const entry *e = t->e[f][c].when ? &t->e[f][c] : &all[f][c];
      if (e->state != DECIDED || !e->when)
        continue;
      int w = snprintf(text + n, sizeof text - n, "%s %s %s %.4f %.4f %lld\n",
                       family_names[f], class_names[c],
                       clloss__variant_name(e->choice), e->ms[0], e->ms[1],
                       e->when);
      if (w > 0 && (size_t)w < sizeof text - n)
        n += (size_t)w;
    }
  char name[64];
  if (tune_file_name(t, name, sizeof name))
    clloss__cache_write(name, text, n);
}

/* ---------------------------------------------------------------------------
 * The table.
 */

static int previous_call_done(const clloss_context *ctx) {
  cl_int state = CL_COMPLETE;
  return !ctx->last_call ||
         (clGetEventInfo(ctx->last_call, CL_EVENT_COMMAND_EXECUTION_STATUS,
                         sizeof state, &state, NULL) == CL_SUCCESS &&
          state == CL_COMPLETE);
}

/* ctx's device table, created (and its file read) on first use; called
 * with the lock held. NULL when out of memory. */
static device_table *table_of(const clloss_context *ctx) {
  unsigned char digest[CLLOSS__SHA256_SIZE];
  clloss__device_digest(&ctx->info, digest);
  device_table *t = tables;
  while (t && memcmp(t->digest, digest, sizeof digest) != 0)
    t = t->next;
  if (!t) {
    if (!(t = calloc(1, sizeof *t)))
      return NULL;
    memcpy(t->digest, digest, sizeof digest);
    t->next = tables;
    tables = t;
  }
  if (!t->loaded) {
    t->loaded = 1;
    read_file(t, t->e);
  }
  return t;
}

/* Whether a measurement may build the programs it needs (on a thread of
 * its own). Not on CPU devices: the compiler takes the cores the caller's
 * kernels run on, and PoCL compiles a kernel for its work-group size at its
 * first launch holding a lock that every launch of the process takes (the
 * caller's calls stalled 0.2-1.4 s each while a 512 x 10 group variant
 * compiled in the background). There a class is measured once both
 * variants' programs are built by the calls themselves. */
static int builds_to_measure(const clloss_context *ctx) {
  return !(ctx->info.type & CL_DEVICE_TYPE_CPU) || ctx->build_to_measure;
}

/* Whether ctx builds the programs of a class's measurement; called with
 * the lock held. */
static int building(const clloss_context *ctx) {
  for (device_table *t = tables; t; t = t->next)
    for (int f = 0; f < CLLOSS__FAMILIES; f++)
      for (int c = 0; c < CLASSES; c++)
        if (t->e[f][c].builder == ctx && t->e[f][c].state == PENDING)
          return 1;
  return 0;
}

static void tune_release(clloss_context *ctx, void *unused);

clloss__variant clloss__pick_variant(clloss_context *ctx, int family,
                                     size_t rows, size_t classes,
                                     clloss_dtype in_type,
                                     clloss__tune_run run) {
  /* Forced: a family without that variant's kernels runs group. */
  if (ctx->variant != CLLOSS__AUTO)
    return (ctx->variant == CLLOSS__SPLIT &&
            family != CLLOSS__FAMILY_CROSS_ENTROPY) ||
                   (ctx->variant == CLLOSS__LANES &&
                    family == CLLOSS__FAMILY_POINTWISE)
               ? CLLOSS__GROUP
               : ctx->variant;
  const int cls = shape_class(ctx, family, rows, classes, in_type);
  const clloss__variant h = heuristic(ctx, cls);
  if (!ctx->tune)
    return h;
  pthread_mutex_lock(&lock);
  device_table *t = table_of(ctx);
  entry *e = t ? &t->e[family][cls] : NULL;
  while (e && e->state == MEASURING)
    pthread_cond_wait(&decided, &lock);
  /* Measured from the MEASURE_AT-th call on, by a call that finds the
   * context's previous call complete (the timed runs share its scratch and
   * would wait for it, and it may wait for the caller's events) and both
   * variants' programs built: a context's first such call starts building
   * them on a thread of its own (one context per class), and runs the
   * heuristic meanwhile. An empty call measures nothing. */
  problem p = {.family = family, .type = in_type};
  const clloss__variant v[2] = {h, alternative(ctx, cls)};
  clloss__program_key keys[2];
  int ready = 0; /* 1: measure; -1: the build failed, so does the measure */
  if (e && e->state == PENDING && rows > 0 && classes > 0 &&
      ++e->calls >= MEASURE_AT && (!e->builder || e->builder == ctx) &&
      previous_call_done(ctx)) {
    size_problem(ctx, &p, cls, rows, classes);
    problem_keys(ctx, &p, v, keys);
    ready = clloss__programs_ready(ctx, keys, 2);
    if (ready < 0 && !e->builder) {
      /* Not built, and nobody builds them: this context starts, unless it
       * builds another class's programs now, or its device is a CPU. */
      ready = 0;
      if (builds_to_measure(ctx) && !building(ctx) &&
          clloss__context_on_release(ctx, tune_release, NULL) ==
              CLLOSS_SUCCESS) {
        warm_arg a = {.p = p, .run_fn = run, .v = {v[0], v[1]}};
        for (int k = 0; k < 2; k++)
          a.run[k] = clloss__programs_ready(ctx, &keys[k], 1) < 0;
        e->builder = ctx;
        ready = clloss__prebuild(ctx, keys, 2, warm_up, &a, sizeof a) ==
                        CLLOSS_SUCCESS
                    ? clloss__programs_ready(ctx, keys, 2)
                    : -1;
      }
    }
  }
  if (!e || e->state == DECIDED || ready == 0) {
    clloss__variant chosen = e && e->state == DECIDED ? e->choice : h;
    pthread_mutex_unlock(&lock);
    return chosen;
  }
  e->state = MEASURING;
  pthread_mutex_unlock(&lock);

  double ms[2];
  int ok = ready > 0 && measure(ctx, run, &p, v, ms);

  pthread_mutex_lock(&lock);
  e->state = DECIDED;
  e->builder = NULL;
  e->choice = ok && ms[1] < CLEAR_WIN * ms[0] ? v[1] : h;
  e->ms[0] = ok ? ms[0] : 0;
  e->ms[1] = ok ? ms[1] : 0;
  e->when = ok ? (long long)time(NULL) : 0;
  if (ok)
    write_file(t);
  clloss__variant chosen = e->choice;
  pthread_cond_broadcast(&decided);
  pthread_mutex_unlock(&lock);
  return chosen;
}

/* A context going away (its release hook, registered when it becomes a
 * class's builder): the classes whose programs it was building are free
 * for another context to build. */
static void tune_release(clloss_context *ctx, void *unused) {
  (void)unused;
  pthread_mutex_lock(&lock);
  for (device_table *t = tables; t; t = t->next)
    for (int f = 0; f < CLLOSS__FAMILIES; f++)
      for (int c = 0; c < CLASSES; c++)
        if (t->e[f][c].builder == ctx)
          t->e[f][c].builder = NULL;
  pthread_mutex_unlock(&lock);
}

void clloss__tune_forget(void) {
  pthread_mutex_lock(&lock);
  for (device_table *t = tables; t; t = t->next) {
    memset(t->e, 0, sizeof t->e);
    t->loaded = 0;
  }
  pthread_mutex_unlock(&lock);
}
