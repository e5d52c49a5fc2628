/* test_threads.c - each promise of clloss.h's "Threads" paragraph, run with
 * real threads (and under ThreadSanitizer by `./run tsan`): first OpenCL
 * calls of a process from several threads at once, one context per thread,
 * one context shared under the caller's lock, contexts created and released
 * concurrently, device listing, and the CPU reference. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <pthread.h>

#include "support/testutil.h"

extern char **environ;

enum { THREADS = 4, CALLS = 6 };

/* Threads released together: each waits until all have arrived. */
typedef struct gate {
  pthread_mutex_t m;
  pthread_cond_t c;
  int arrived, count;
} gate;

static void gate_init(gate *g, int count) {
  pthread_mutex_init(&g->m, NULL);
  pthread_cond_init(&g->c, NULL);
  g->arrived = 0;
  g->count = count;
}

static void gate_pass(gate *g) {
  pthread_mutex_lock(&g->m);
  g->arrived++;
  pthread_cond_broadcast(&g->c);
  while (g->arrived < g->count)
    pthread_cond_wait(&g->c, &g->m);
  pthread_mutex_unlock(&g->m);
}

static void gate_destroy(gate *g) {
  pthread_cond_destroy(&g->c);
  pthread_mutex_destroy(&g->m);
}

/* Runs fn(arg[i]) in THREADS threads released together. */
static void run_threads(void *(*fn)(void *), void *args, size_t arg_size,
                        gate *g) {
  pthread_t th[THREADS];
  gate_init(g, THREADS);
  for (int i = 0; i < THREADS; i++)
    CU_ASSERT_EQUAL_FATAL(
        pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size),
        0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  gate_destroy(g);
}

/* The process's first OpenCL calls, from several threads at once: only a
 * fresh process has them, so a helper program runs them (thread_start.c),
 * several times, with 4 and 8 threads. */
static void test_threads_first_calls(void) {
  TU_REQUIRE_DEVICE();
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/clloss_thread_start",
           CLLOSS_BINARY_DIR);
  const char *counts[] = {"4", "8", "4", "8", "4"};
  for (int run = 0; run < 5; run++) {
    char *argv[] = {path, (char *)counts[run], NULL};
    pid_t pid;
    int status = -1;
    CU_ASSERT_EQUAL_FATAL(posix_spawn(&pid, path, NULL, NULL, argv, environ),
                          0);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      printf("\n  run %d (%s threads): %s %d\n", run, counts[run],
             WIFEXITED(status) ? "exit status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
}

/* The rows losses of one thread: cross_entropy and nll_loss on its own
 * data, checked against the reference. */
enum { N = 37, C = 129 };
typedef struct worker {
  gate *g;
  clloss_context *shared; /* NULL: a context of its own */
  pthread_mutex_t *lock;  /* the caller's lock around a shared context */
  int seed;
  int bad; /* results that differ from the reference, or failures */
} worker;

static void make_data(int seed, float *x, int64_t *t) {
  tu_rng r = tu_rng_make(1000u + (uint64_t)seed);
  tu_fill_uniform(&r, x, (size_t)N * C, -4, 4);
  for (int i = 0; i < N; i++)
    t[i] = (int64_t)(tu_next(&r) % C);
}

static int one_call(clloss_context *ctx, int k, const float *x,
                    const int64_t *t, float *grad) {
  float loss = 0, want = 0;
  if (k % 2 == 0) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = N, d.classes = C;
    if (clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, &loss, grad) !=
        CLLOSS_SUCCESS)
      return 1;
    clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &want, NULL);
  } else {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    d.rows = N, d.classes = C;
    if (clloss_nll_loss_host(ctx, &d, x, t, NULL, NULL, &loss, grad) !=
        CLLOSS_SUCCESS)
      return 1;
    clloss_reference_nll_loss(&d, x, t, NULL, NULL, &want, NULL);
  }
  /* The detail belongs to the context: read under the same lock. */
  return fabsf(loss - want) > 1e-5f * (1 + fabsf(want)) ||
         clloss_context_error_detail(ctx)[0] != '\0';
}

static void *work(void *arg) {
  worker *w = arg;
  static float xs[THREADS][N * C], grads[THREADS][N * C];
  int64_t t[N];
  float *x = xs[w->seed], *grad = grads[w->seed];
  make_data(w->seed, x, t);
  gate_pass(w->g);
  clloss_context *ctx = w->shared;
  if (!ctx && clloss_context_create_default("0", &ctx) != CLLOSS_SUCCESS) {
    w->bad++;
    return 0;
  }
  for (int k = 0; k < CALLS; k++) {
    if (w->lock)
      pthread_mutex_lock(w->lock);
    w->bad += one_call(ctx, k + w->seed, x, t, grad);
    if (w->lock)
      pthread_mutex_unlock(w->lock);
  }
  if (!w->shared)
    clloss_context_release(ctx);
  return 0;
}

static void test_threads_context_each(void) {
  TU_REQUIRE_DEVICE();
  gate g;
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++)
    w[i] = (worker){.g = &g, .seed = i};
  run_threads(work, w, sizeof *w, &g);
  for (int i = 0; i < THREADS; i++)
    CU_ASSERT_EQUAL(w[i].bad, 0);
}

static void test_threads_shared_context_locked(void) {
  TU_REQUIRE_DEVICE();
  clloss_context *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(clloss_context_create_default("0", &ctx),
                        CLLOSS_SUCCESS);
  pthread_mutex_t lock;
  pthread_mutex_init(&lock, NULL);
  gate g;
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++)
    w[i] = (worker){.g = &g, .shared = ctx, .lock = &lock, .seed = i};
  run_threads(work, w, sizeof *w, &g);
  for (int i = 0; i < THREADS; i++)
    CU_ASSERT_EQUAL(w[i].bad, 0);
  pthread_mutex_destroy(&lock);
  clloss_context_release(ctx);
}

/* Contexts created and released, devices listed and chosen, in every
 * thread at once; some contexts on a cl_context that another thread's
 * context shares. */
typedef struct churner {
  gate *g;
  cl_context shared;
  int bad;
} churner;

static void *churn(void *arg) {
  churner *c = arg;
  gate_pass(c->g);
  for (int k = 0; k < 4; k++) {
    size_t count = 0;
    clloss_device_info info;
    if (clloss_device_list(NULL, 0, &count) != CLLOSS_SUCCESS || !count ||
        clloss_device_select("0", &info, NULL) != CLLOSS_SUCCESS)
      c->bad++;
    clloss_context *ctx = NULL;
    clloss_status s = k % 2
                          ? clloss_context_create(c->shared, info.device, &ctx)
                          : clloss_context_create_default("0", &ctx);
    if (s != CLLOSS_SUCCESS) {
      c->bad++;
      continue;
    }
    const float x[4] = {1, 2, 3, 4}, y[4] = {0, 0, 0, 0};
    float l = 0;
    if (clloss_l1_loss_host(ctx, 4, CLLOSS_REDUCTION_SUM, x, y, &l, NULL) !=
            CLLOSS_SUCCESS ||
        l != 10.0f)
      c->bad++;
    clloss_context_release(ctx);
  }
  return 0;
}

static void test_threads_create_release(void) {
  TU_REQUIRE_DEVICE();
  clloss_device_info info;
  CU_ASSERT_EQUAL_FATAL(clloss_device_select("0", &info, NULL), CLLOSS_SUCCESS);
  cl_int err;
  cl_context cl = clCreateContext(NULL, 1, &info.device, NULL, NULL, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
  gate g;
  churner c[THREADS];
  for (int i = 0; i < THREADS; i++)
    c[i] = (churner){.g = &g, .shared = cl};
  run_threads(churn, c, sizeof *c, &g);
  for (int i = 0; i < THREADS; i++)
    CU_ASSERT_EQUAL(c[i].bad, 0);
  clReleaseContext(cl);
}

/* The CPU reference and the functions without a context: reentrant. */
typedef struct referee {
  gate *g;
  int seed, bad;
} referee;

static void *reference(void *arg) {
  referee *r = arg;
  static float xs[THREADS][N * C], grads[THREADS][N * C];
  float *x = xs[r->seed], *grad = grads[r->seed];
  int64_t t[N];
  make_data(r->seed, x, t);
  gate_pass(r->g);
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N, d.classes = C;
  float first = 0;
  for (int k = 0; k < CALLS; k++) {
    float loss = 0;
    if (clloss_reference_cross_entropy(&d, x, t, NULL, NULL, &loss, grad) !=
        CLLOSS_SUCCESS)
      r->bad++;
    if (k == 0)
      first = loss;
    r->bad += loss != first;
    r->bad += strcmp(clloss_status_name(CLLOSS_INVALID_TARGET),
                     "CLLOSS_INVALID_TARGET") != 0;
  }
  return 0;
}

static void test_threads_reference(void) {
  gate g;
  referee r[THREADS];
  for (int i = 0; i < THREADS; i++)
    r[i] = (referee){.g = &g, .seed = i};
  run_threads(reference, r, sizeof *r, &g);
  for (int i = 0; i < THREADS; i++)
    CU_ASSERT_EQUAL(r[i].bad, 0);
}

int test_threads_register(void) {
  TU_SUITE("threads", NULL, NULL, TU_TEST(test_threads_first_calls),
           TU_TEST(test_threads_context_each),
           TU_TEST(test_threads_shared_context_locked),
           TU_TEST(test_threads_create_release),
           TU_TEST(test_threads_reference));
}
