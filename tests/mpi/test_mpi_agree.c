/* test_mpi_agree.c - issue 21's multi-process items: processes that
 * disagree or fail get the same error everywhere instead of corrupting the
 * heap, waiting forever, aborting or computing a wrong loss. Each check
 * here hung, aborted or passed silently before the agreement: under
 * tests/mpi/run.sh's timeout a hang is a failure.
 *   1. different chunk rows per process (and automatic chunks that differ
 *      with the workspace limit): the smallest chunk, the right loss;
 *   2. one process failing (NULL context, NULL descriptor, bad target,
 *      rows past SIZE_MAX; a missing file or no device in the CLI): every
 *      process returns;
 *   3. grad_input / --grad-out on one process only: an error everywhere,
 *      nothing written;
 *   4. different rows or dtypes: CLLOSS_INVALID_ARGUMENT everywhere;
 *   5. different (valid) targets: CLLOSS_INVALID_ARGUMENT everywhere. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mpi_check.h"
#include "npy.h"

enum { AN = 9, AH = 6, AV = 29 };

/* A deterministic problem: X [AN, AH], W [AV, AH], class indices. */
typedef struct agree_problem {
  float x[AN * AH], w[AV * AH];
  int64_t t[AN];
} agree_problem;

static void make_problem(agree_problem *p) {
  unsigned s = 12345;
  for (size_t i = 0; i < AN * AH; i++)
    p->x[i] =
        (float)((s = s * 1103515245u + 12345u) >> 16 & 1023) / 512.0f - 1.0f;
  for (size_t i = 0; i < AV * AH; i++)
    p->w[i] =
        (float)((s = s * 1103515245u + 12345u) >> 16 & 1023) / 512.0f - 1.0f;
  for (size_t i = 0; i < AN; i++)
    p->t[i] = (int64_t)((i * 7 + 3) % AV);
}

static clloss_linear_cross_entropy_desc lin_desc(size_t chunk) {
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.hidden = AH;
  d.ce.rows = AN;
  d.ce.classes = AV;
  d.chunk_rows = chunk;
  return d;
}

/* The linear call on this process's even shard. */
static clloss_status lin_call(clloss_context *ctx, mc_state *st,
                              const clloss_linear_cross_entropy_desc *d,
                              const agree_problem *p, const int64_t *t,
                              float *loss, float *dx) {
  const clloss_shard sh = clloss_mpi_even_shard(AV, st->rank, st->size);
  return clloss_mpi_linear_cross_entropy_host(
      ctx, MPI_COMM_WORLD, d, &sh, p->x, p->w + sh.class_offset * AH, NULL, t,
      NULL, NULL, loss, dx, NULL, NULL);
}

static int detail_has(clloss_context *ctx, const char *what) {
  return strstr(clloss_context_error_detail(ctx), what) != NULL;
}

/* 1: each process its own chunk (2, 3, 4 rows), and automatic chunks
 * that differ with workspace_limit: all-reduces of different sizes
 * corrupted the heap; now the smallest chunk everywhere, the loss of the
 * single-device call. */
static void test_chunks(mc_state *st, clloss_context *ctx,
                        const agree_problem *p) {
  clloss_linear_cross_entropy_desc d = lin_desc(0);
  float want = 0, loss = 0;
  MC_CHECK(st,
           clloss_linear_cross_entropy_host(ctx, &d, p->x, p->w, NULL, p->t,
                                            NULL, NULL, &want, NULL, NULL,
                                            NULL) == CLLOSS_SUCCESS,
           "agree: single-device linear call: %s",
           clloss_context_error_detail(ctx));
  d.chunk_rows = 2 + (size_t)st->rank;
  clloss_status s = lin_call(ctx, st, &d, p, p->t, &loss, NULL);
  MC_CHECK(st, s == CLLOSS_SUCCESS,
           "agree: chunk rows %zu on process %d: %s (%s)", d.chunk_rows,
           st->rank, clloss_status_name(s), clloss_context_error_detail(ctx));
  mc_check_loss(st, "agree: different chunk rows", CLLOSS_FLOAT32, &loss, &want,
                1);
  mc_check_same_everywhere(st, "agree: different chunk rows", &loss,
                           sizeof loss);
  /* Automatic chunks that differ: the smallest workspace_limit that
   * holds a chunk of one row, and about one row more on each later
   * process. */
  d = lin_desc(0);
  size_t rows = 0;
  for (d.workspace_limit = 256;
       clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1, NULL,
                                                  &rows) != CLLOSS_SUCCESS;
       d.workspace_limit += 32)
    ;
  d.workspace_limit += (size_t)st->rank * 300;
  clloss_linear_cross_entropy_workspace_size(ctx, &d, 1, 1, 1, NULL, &rows);
  int lo = (int)rows, hi = (int)rows;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MC_CHECK(st, lo == 1 && hi > 1,
           "agree: automatic chunks from %d to %d rows, want 1 to more", lo,
           hi);
  loss = 0;
  s = lin_call(ctx, st, &d, p, p->t, &loss, NULL);
  MC_CHECK(st, s == CLLOSS_SUCCESS, "agree: automatic chunks: %s (%s)",
           clloss_status_name(s), clloss_context_error_detail(ctx));
  mc_check_loss(st, "agree: automatic chunks", CLLOSS_FLOAT32, &loss, &want, 1);
}

/* The status every process got: `bad` on the process that failed (or
 * disagreed), `others` elsewhere; the loss untouched. */
static void expect(mc_state *st, const char *what, clloss_status s, int is_bad,
                   clloss_status bad, clloss_status others, float loss) {
  const clloss_status want = is_bad ? bad : others;
  MC_CHECK(st, s == want, "agree: %s: got %s, want %s", what,
           clloss_status_name(s), clloss_status_name(want));
  MC_CHECK(st, loss == 12345.0f, "agree: %s: the loss was written", what);
}

/* 2: one process fails before the collectives: with no context or no
 * descriptor it returned at once and left the others waiting; a bad
 * target on one process only. */
static void test_one_fails(mc_state *st, clloss_context *ctx,
                           const agree_problem *p) {
  const int last = st->rank == st->size - 1;
  const clloss_linear_cross_entropy_desc d = lin_desc(3);
  float loss = 12345.0f;
  clloss_status s = lin_call(last ? NULL : ctx, st, &d, p, p->t, &loss, NULL);
  expect(st, "linear, no context on the last process", s, last,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_COLLECTIVE_FAILURE, loss);
  MC_CHECK(st, last || detail_has(ctx, "ctx is NULL"),
           "agree: the others are told why: %s",
           clloss_context_error_detail(ctx));
  const clloss_shard sh = clloss_mpi_even_shard(AV, st->rank, st->size);
  s = clloss_mpi_linear_cross_entropy_host(
      ctx, MPI_COMM_WORLD, last ? NULL : &d, &sh, p->x,
      p->w + sh.class_offset * AH, NULL, p->t, NULL, NULL, &loss, NULL, NULL,
      NULL);
  expect(st, "linear, no descriptor on the last process", s, last,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_COLLECTIVE_FAILURE, loss);
  int64_t bad[AN];
  memcpy(bad, p->t, sizeof bad);
  if (last)
    bad[2] = AV;
  s = lin_call(ctx, st, &d, p, bad, &loss, NULL);
  expect(st, "linear, a bad target on the last process", s, last,
         CLLOSS_INVALID_TARGET, CLLOSS_COLLECTIVE_FAILURE, loss);
  MC_CHECK(st, last || detail_has(ctx, "CLLOSS_INVALID_TARGET"),
           "agree: the others are told the status: %s",
           clloss_context_error_detail(ctx));
  /* cross_entropy: no context on process 0. */
  clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  ce.rows = AN;
  ce.classes = AV;
  float *x = calloc(AN * AV, sizeof *x);
  s = clloss_mpi_cross_entropy_host(st->rank ? ctx : NULL, MPI_COMM_WORLD, &ce,
                                    &sh, x, p->t, NULL, NULL, &loss, NULL);
  expect(st, "cross_entropy, no context on process 0", s, st->rank == 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_COLLECTIVE_FAILURE, loss);
  /* Rows whose records pass SIZE_MAX on the last process: it returned
   * before the all-reduce. */
  clloss_cross_entropy_desc huge = ce;
  huge.rows = last ? SIZE_MAX / 4 : AN;
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &huge, &sh, x, p->t,
                                    NULL, NULL, &loss, NULL);
  expect(st, "cross_entropy, 2^62 rows on the last process", s, last,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_COLLECTIVE_FAILURE, loss);
  free(x);
}

/* 3 and 4: arguments that differ between processes. */
static void test_disagree(mc_state *st, clloss_context *ctx,
                          const agree_problem *p) {
  const int last = st->rank == st->size - 1;
  float loss = 12345.0f, *dx = calloc(AN * AH, sizeof *dx);
  /* grad_input on process 0 only: rank 0 waited in the d_hidden sum. */
  clloss_linear_cross_entropy_desc d = lin_desc(4);
  clloss_status s =
      lin_call(ctx, st, &d, p, p->t, &loss, st->rank == 0 ? dx : NULL);
  expect(st, "linear, grad_input on process 0 only", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  MC_CHECK(st, detail_has(ctx, "outputs given"),
           "agree: grad_input on one process: %s",
           clloss_context_error_detail(ctx));
  /* Different rows: MPI_ERR_TRUNCATE before. */
  d = lin_desc(4);
  d.ce.rows = last ? AN - 1 : AN;
  s = lin_call(ctx, st, &d, p, p->t, &loss, NULL);
  expect(st, "linear, fewer rows on the last process", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  MC_CHECK(st, detail_has(ctx, "disagree on rows"), "agree: rows: %s",
           clloss_context_error_detail(ctx));
  /* Different options. */
  d = lin_desc(4);
  d.ce.label_smoothing = last ? 0.1f : 0.0f;
  s = lin_call(ctx, st, &d, p, p->t, &loss, NULL);
  expect(st, "linear, label smoothing on the last process", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  /* cross_entropy: different rows, then different dtypes (float32 and
   * float64 records: 'Data unpack would read past end of buffer'). */
  const clloss_shard sh = clloss_mpi_even_shard(AV, st->rank, st->size);
  clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  ce.rows = last ? AN - 2 : AN;
  ce.classes = AV;
  double *x = calloc(AN * AV, sizeof *x);
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &ce, &sh, x, p->t,
                                    NULL, NULL, &loss, NULL);
  expect(st, "cross_entropy, fewer rows on the last process", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  ce.rows = AN;
  ce.input_type = last ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &ce, &sh, x, p->t,
                                    NULL, NULL, &loss, NULL);
  expect(st, "cross_entropy, float64 on the last process", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  MC_CHECK(st, detail_has(ctx, "input_type"), "agree: dtypes: %s",
           clloss_context_error_detail(ctx));
  /* One call of cross_entropy against one of linear_cross_entropy. */
  d = lin_desc(4);
  ce.input_type = CLLOSS_FLOAT32;
  s = last ? lin_call(ctx, st, &d, p, p->t, &loss, NULL)
           : clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &ce, &sh, x,
                                           p->t, NULL, NULL, &loss, NULL);
  expect(st, "cross_entropy against linear_cross_entropy", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  free(x);
  free(dx);
}

/* 5: valid targets that differ: exit 0 with a wrong loss before. */
static void test_targets(mc_state *st, clloss_context *ctx,
                         const agree_problem *p) {
  int64_t t[AN];
  memcpy(t, p->t, sizeof t);
  if (st->rank == st->size - 1)
    t[5] = (t[5] + 1) % AV;
  float loss = 12345.0f;
  const clloss_linear_cross_entropy_desc d = lin_desc(0);
  clloss_status s = lin_call(ctx, st, &d, p, t, &loss, NULL);
  expect(st, "linear, other targets on the last process", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  MC_CHECK(st, detail_has(ctx, "targets"), "agree: targets: %s",
           clloss_context_error_detail(ctx));
  const clloss_shard sh = clloss_mpi_even_shard(AV, st->rank, st->size);
  clloss_cross_entropy_desc ce = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  ce.rows = AN;
  ce.classes = AV;
  float *x = calloc(AN * AV, sizeof *x);
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &ce, &sh, x, t, NULL,
                                    NULL, &loss, NULL);
  expect(st, "cross_entropy, other targets on the last process", s, 0,
         CLLOSS_INVALID_ARGUMENT, CLLOSS_INVALID_ARGUMENT, loss);
  /* And the same targets work again. */
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &ce, &sh, x, p->t,
                                    NULL, NULL, &loss, NULL);
  MC_CHECK(st, s == CLLOSS_SUCCESS && loss != 12345.0f,
           "agree: after the disagreements: %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  free(x);
}

/* ---- the CLI ---- */

/* Process 0 writes the problem's files into a new folder; all learn its
 * name. */
static int write_files(const agree_problem *p, char *dir, size_t len) {
  static float logits[AN * AV];
  for (size_t i = 0; i < AN * AV; i++)
    logits[i] = (float)((i * 37) % 11) / 4.0f;
  const mc_file in[4] = {{"x", CLLOSS_FLOAT32, 2, {AN, AH}, p->x},
                         {"w", CLLOSS_FLOAT32, 2, {AV, AH}, p->w},
                         {"t", CLLOSS_INT64, 1, {AN, 0}, p->t},
                         {"logits", CLLOSS_FLOAT32, 2, {AN, AV}, logits}};
  return mc_write_files("mpi-agree", in, 4, dir, len);
}

static int exists(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return access(path, F_OK) == 0;
}

/* `clloss run LOSS --vocab-parallel --quiet` with `input` (a file of
 * dir), the target t.npy, the loss into loss.npy, and on the processes
 * where grad is set, --grad-out grad.npy; linear_cross_entropy with
 * --linear-weight w.npy and --chunk-rows chunk. */
static const char *device_arg; /* --device, when set */

static int run_cli(const char *dir, const char *loss_name, const char *input,
                   int grad, const char *chunk) {
  char x[512], t[512], w[512], l[512], g[512];
  snprintf(x, sizeof x, "%s/%s", dir, input);
  snprintf(t, sizeof t, "%s/t.npy", dir);
  snprintf(w, sizeof w, "%s/w.npy", dir);
  snprintf(l, sizeof l, "%s/loss.npy", dir);
  snprintf(g, sizeof g, "%s/grad.npy", dir);
  char *argv[20] = {
      "clloss",          "run", (char *)loss_name, "--input", x,
      "--target",        t,     "--loss-out",      l,         "--quiet",
      "--vocab-parallel"};
  int argc = 11;
  if (grad) {
    argv[argc++] = "--grad-out";
    argv[argc++] = g;
  }
  if (chunk) {
    argv[argc++] = "--linear-weight";
    argv[argc++] = w;
    argv[argc++] = "--chunk-rows";
    argv[argc++] = (char *)chunk;
  }
  if (device_arg) {
    argv[argc++] = "--device";
    argv[argc++] = (char *)device_arg;
  }
  argv[argc] = NULL;
  return clloss_cli_main(argc, argv);
}

static void remove_outputs(mc_state *st, const char *dir) {
  MPI_Barrier(MPI_COMM_WORLD);
  if (st->rank == 0) {
    char path[512];
    snprintf(path, sizeof path, "%s/loss.npy", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/grad.npy", dir);
    unlink(path);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

/* The same exit status on every process. */
static void expect_exit(mc_state *st, const char *what, int rc, int want) {
  int lo = rc, hi = rc;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MC_CHECK(st, lo == hi && rc == want,
           "agree cli: %s: exit %d on process %d (from %d to %d), want %d "
           "everywhere",
           what, rc, st->rank, lo, hi, want);
}

static void test_cli(mc_state *st, const agree_problem *p) {
  char dir[64] = "";
  if (!write_files(p, dir, sizeof dir)) {
    MC_CHECK(st, 0, "agree cli: writing the inputs into %s", dir);
    return;
  }
  const int last = st->rank == st->size - 1;
  /* 1: --chunk-rows 2 on one process, 4 on the others. */
  int rc = run_cli(dir, "linear_cross_entropy", "x.npy", 1, last ? "2" : "4");
  expect_exit(st, "linear, different --chunk-rows", rc, 0);
  remove_outputs(st, dir);
  /* 2: a missing file on the last process. */
  rc = run_cli(dir, "linear_cross_entropy", last ? "missing.npy" : "x.npy", 0,
               "4");
  expect_exit(st, "linear, a missing file on the last process", rc, 1);
  MC_CHECK(st, st->rank || !exists(dir, "loss.npy"),
           "agree cli: linear, a missing file: loss.npy written");
  remove_outputs(st, dir);
  rc = run_cli(dir, "cross_entropy", last ? "missing.npy" : "logits.npy", 0,
               NULL);
  expect_exit(st, "cross_entropy, a missing file on the last process", rc, 1);
  remove_outputs(st, dir);
  /* No device on the last process. */
  device_arg = last ? "no such device" : NULL;
  rc = run_cli(dir, "linear_cross_entropy", "x.npy", 0, "4");
  expect_exit(st, "linear, no device on the last process", rc, 1);
  rc = run_cli(dir, "cross_entropy", "logits.npy", 0, NULL);
  expect_exit(st, "cross_entropy, no device on the last process", rc, 1);
  device_arg = NULL;
  remove_outputs(st, dir);
  /* 3: --grad-out on process 0 only. */
  rc = run_cli(dir, "cross_entropy", "logits.npy", st->rank == 0, NULL);
  expect_exit(st, "cross_entropy, --grad-out on process 0 only", rc, 2);
  MC_CHECK(st, st->rank || !exists(dir, "grad.npy"),
           "agree cli: cross_entropy, --grad-out on one process: written");
  remove_outputs(st, dir);
  rc = run_cli(dir, "linear_cross_entropy", "x.npy", st->rank == 0, "4");
  expect_exit(st, "linear, --grad-out on process 0 only", rc, 2);
  MC_CHECK(st, st->rank || !exists(dir, "grad.npy"),
           "agree cli: linear, --grad-out on one process: dx written");
  remove_outputs(st, dir);
  /* 4: other rows on the last process (the logits as its input). */
  rc = run_cli(dir, "linear_cross_entropy", last ? "logits.npy" : "x.npy", 0,
               "4");
  expect_exit(st, "linear, another input shape on the last process", rc, 1);
  remove_outputs(st, dir);
  if (st->rank == 0) {
    const char *names[] = {"x", "w", "t", "logits"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
      unlink(path);
    }
    rmdir(dir);
  }
}

/* MC_AGREE=chunks|fails|disagree|targets|cli: that part alone (to see
 * each item hang or abort without the agreement). */
static int wanted_part(const char *name) {
  const char *only = getenv("MC_AGREE");
  return !only || !*only || strcmp(only, name) == 0;
}

void mc_test_agree(mc_state *st, clloss_context *ctx) {
  agree_problem p;
  make_problem(&p);
  if (wanted_part("chunks"))
    test_chunks(st, ctx, &p);
  if (wanted_part("fails"))
    test_one_fails(st, ctx, &p);
  if (wanted_part("disagree"))
    test_disagree(st, ctx, &p);
  if (wanted_part("targets"))
    test_targets(st, ctx, &p);
  if (wanted_part("cli"))
    test_cli(st, &p);
}
