/* thread_start.c - a helper program for the threads suite: THREADS threads
 * (default 4) released together call clloss_context_create_default as the
 * process's first OpenCL calls, then one small mse_loss each. Exit status:
 * the number of threads that failed (each printed). */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>

#include "clloss.h"

enum { MAX_THREADS = 16 };

#if defined(__SANITIZE_ADDRESS__)
/* LLVM, inside PoCL, gives the first thread that compiles (here one of
 * ours, not main) an alternate signal stack of its own, which
 * AddressSanitizer then fails to unmap as if it were its own when that
 * thread exits. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "use_sigaltstack=0";
}
#endif

static pthread_mutex_t g_lock;
static pthread_cond_t g_go;
static int g_waiting, g_threads;

typedef struct job {
  clloss_status status;
  float loss;
} job;

static void *run(void *arg) {
  job *j = arg;
  pthread_mutex_lock(&g_lock);
  g_waiting++;
  pthread_cond_broadcast(&g_go);
  while (g_waiting < g_threads)
    pthread_cond_wait(&g_go, &g_lock);
  pthread_mutex_unlock(&g_lock);
  clloss_context *ctx = NULL;
  j->status = clloss_context_create_default(NULL, &ctx);
  if (j->status == CLLOSS_SUCCESS) {
    const float x[3] = {1, 2, 3}, y[3] = {1, 1, 1};
    j->status = clloss_mse_loss_host(ctx, 3, CLLOSS_REDUCTION_SUM, x, y,
                                     &j->loss, NULL);
  }
  clloss_context_release(ctx);
  return 0;
}

int main(int argc, char **argv) {
  g_threads = argc > 1 ? atoi(argv[1]) : 4;
  if (g_threads < 1 || g_threads > MAX_THREADS)
    return 100;
  pthread_mutex_init(&g_lock, NULL);
  pthread_cond_init(&g_go, NULL);
  job jobs[MAX_THREADS] = {{0}};
  pthread_t th[MAX_THREADS];
  for (int i = 0; i < g_threads; i++)
    if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0)
      return 101;
  int failed = 0;
  for (int i = 0; i < g_threads; i++) {
    pthread_join(th[i], NULL);
    if (jobs[i].status != CLLOSS_SUCCESS || jobs[i].loss != 5.0f) {
      printf("thread %d: %s, loss %g\n", i, clloss_status_name(jobs[i].status),
             (double)jobs[i].loss);
      failed++;
    }
  }
  pthread_cond_destroy(&g_go);
  pthread_mutex_destroy(&g_lock);
  return failed;
}
