/* test_mpi_linear.c - vocabulary-parallel linear_cross_entropy
 * (clloss_mpi_linear_cross_entropy) against the single-device
 * clloss_linear_cross_entropy on the whole W, for every option, several
 * chunks of rows, even, reversed and empty shards: the loss within 1e-6
 * relative and the same bits on every process; d_hidden, this process's
 * rows of dW and entries of db within a few ulps of the largest value of
 * their row (the shards add their parts in another order than one GEMM
 * over V; elementwise ulps are no measure where terms cancel). MC_STATS=1
 * prints the largest errors seen. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mpi_check.h"
#include "npy.h"
#include "reference.h" /* element loads and stores (header only) */

enum { LN = 37, LH = 24, LV = 53 };

typedef struct lin_case {
  const char *name;
  clloss_dtype dtype;
  int prob, weights, ignore, int32, bias;
  float eps, z, cap, norm, scale;
  clloss_reduction reduction;
  int accumulate; /* all three accumulate flags */
  size_t chunk;   /* chunk_rows */
  size_t block;   /* vocab_block */
  int no_dx;      /* grad_input not asked for */
} lin_case;

static const lin_case lcases[] = {
    {"plain mean", CLLOSS_FLOAT32, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1,
     CLLOSS_REDUCTION_MEAN, 0, 16, 0, 0},
    {"weights ignore smoothing sum int32", CLLOSS_FLOAT32, 0, 1, 1, 1, 1, 0.1f,
     0, 0, 0, 1, CLLOSS_REDUCTION_SUM, 0, 16, 0, 0},
    {"weights ignore mean, auto chunks", CLLOSS_FLOAT32, 0, 1, 1, 0, 0, 0, 0, 0,
     0, 1, CLLOSS_REDUCTION_MEAN, 0, 0, 0, 0},
    {"z_loss softcap none scale", CLLOSS_FLOAT32, 0, 0, 1, 0, 1, 0.05f, 1e-3f,
     3.0f, 0, 0.25f, CLLOSS_REDUCTION_NONE, 0, 10, 0, 0},
    {"normalizer", CLLOSS_FLOAT32, 0, 1, 0, 0, 1, 0.2f, 0, 0, 11.0f, 1,
     CLLOSS_REDUCTION_MEAN, 0, 16, 0, 0},
    {"probabilities", CLLOSS_FLOAT32, 1, 1, 0, 0, 1, 0.1f, 1e-3f, 0, 0, 1,
     CLLOSS_REDUCTION_MEAN, 0, 16, 0, 0},
    {"accumulate", CLLOSS_FLOAT32, 0, 1, 1, 0, 1, 0.1f, 0, 0, 0, 0.5f,
     CLLOSS_REDUCTION_SUM, 1, 16, 0, 0},
    {"vocabulary blocks of 7", CLLOSS_FLOAT32, 0, 1, 1, 0, 1, 0.1f, 1e-3f, 0, 0,
     1, CLLOSS_REDUCTION_MEAN, 0, 16, 7, 0},
    {"loss and weight gradients only", CLLOSS_FLOAT32, 0, 0, 1, 0, 1, 0, 0, 0,
     0, 1, CLLOSS_REDUCTION_MEAN, 0, 16, 0, 1},
    {"float64 weights smoothing mean", CLLOSS_FLOAT64, 0, 1, 1, 0, 1, 0.1f,
     1e-4f, 0, 0, 1, CLLOSS_REDUCTION_MEAN, 0, 16, 0, 0},
    {"float64 probabilities none", CLLOSS_FLOAT64, 1, 0, 0, 0, 0, 0, 0, 2.0f, 0,
     1, CLLOSS_REDUCTION_NONE, 0, 16, 0, 0},
    {"float16 weights smoothing mean", CLLOSS_FLOAT16, 0, 1, 1, 0, 1, 0.1f, 0,
     0, 0, 1, CLLOSS_REDUCTION_MEAN, 0, 16, 0, 0},
    {"bfloat16 z_loss sum accumulate", CLLOSS_BFLOAT16, 0, 0, 1, 0, 1, 0, 1e-3f,
     0, 0, 1, CLLOSS_REDUCTION_SUM, 1, 16, 0, 0},
};

typedef enum { EVEN, REVERSED, ONE_EMPTY } lsplit;
static const char *const lsplit_names[] = {"even", "reversed", "one empty"};

static clloss_shard lshard(lsplit k, int rank, int size) {
  if (k == REVERSED)
    return clloss_mpi_even_shard(LV, size - 1 - rank, size);
  if (k == ONE_EMPTY) {
    if (rank == 1)
      return (clloss_shard){0, 0};
    return clloss_mpi_even_shard(LV, rank ? rank - 1 : 0, size - 1);
  }
  return clloss_mpi_even_shard(LV, rank, size);
}

static unsigned long long lcg = 1;
static double urand(void) { /* [0, 1) */
  lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(lcg >> 11) / 9007199254740992.0;
}

/* n values uniform in [lo, hi) of type t. */
static void *fill(clloss_dtype t, size_t n, double lo, double hi) {
  void *p = malloc(n * clloss_dtype_size(t) + 8);
  for (size_t i = 0; i < n; i++)
    clloss__ref_store(p, t, i, lo + (hi - lo) * urand());
  return p;
}

/* The unit in the last place of v's magnitude in type t. */
static double ulp_of(clloss_dtype t, double v) {
  const int bits = t == CLLOSS_FLOAT64    ? 52
                   : t == CLLOSS_FLOAT16  ? 10
                   : t == CLLOSS_BFLOAT16 ? 7
                                          : 23;
  int e;
  frexp(v == 0 ? 1e-30 : fabs(v), &e);
  return ldexp(1.0, e - 1 - bits);
}

/* d_hidden, dW, db (ulps) and the loss (relative) over all cases. */
static double worst_ulps[4];

/* rows x cols of got against want (rows ld_w apart from column c0):
 * errors in ulps of the largest |want| of each row. */
static double row_ulps(clloss_dtype t, const void *got, const void *want,
                       size_t rows, size_t cols, size_t ld_w, size_t c0) {
  double worst = 0;
  for (size_t i = 0; i < rows; i++) {
    double big = 0;
    for (size_t j = 0; j < cols; j++)
      big = fmax(big, fabs(clloss__ref_load(want, t, i * ld_w + c0 + j)));
    const double u = ulp_of(t, big);
    for (size_t j = 0; j < cols; j++) {
      const double e = fabs(clloss__ref_load(got, t, i * cols + j) -
                            clloss__ref_load(want, t, i * ld_w + c0 + j)) /
                       u;
      worst = isnan(e) ? INFINITY : fmax(worst, e);
    }
  }
  return worst;
}

static void run_lin(mc_state *st, clloss_context *ctx, const lin_case *k,
                    lsplit split, unsigned long long seed) {
  char what[200];
  snprintf(what, sizeof what, "linear %s, %s split", k->name,
           lsplit_names[split]);
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.hidden = LH;
  d.chunk_rows = k->chunk;
  d.vocab_block = k->block;
  d.accumulate_grad_linear_weight = d.accumulate_grad_bias = k->accumulate;
  d.ce.rows = LN;
  d.ce.classes = LV;
  d.ce.input_type = k->dtype;
  d.ce.target_type = k->prob    ? k->dtype
                     : k->int32 ? CLLOSS_INT32
                                : CLLOSS_INT64;
  d.ce.reduction = k->reduction;
  d.ce.label_smoothing = k->eps;
  d.ce.z_loss = k->z;
  d.ce.softcap = k->cap;
  d.ce.normalizer = k->norm;
  d.ce.grad_scale = k->scale;
  d.ce.accumulate = k->accumulate;
  const clloss_dtype t = k->dtype, lt = clloss_loss_dtype(t);
  const size_t es = clloss_dtype_size(t), ls = clloss_dtype_size(lt);
  lcg = seed;
  void *x = fill(t, LN * LH, -1, 1), *w = fill(t, LV * LH, -0.5, 0.5);
  void *b = fill(t, LV, -0.5, 0.5), *cw = fill(lt, LV, 0.2, 2);
  void *g = fill(lt, LN, 0.5, 1.5);
  void *dx0 = fill(t, LN * LH, -1, 1), *dw0 = fill(t, LV * LH, -1, 1);
  void *db0 = fill(t, LV, -1, 1);
  void *target;
  if (k->prob) {
    target = fill(t, LN * LV, 0, 1);
    for (size_t i = 0; i < LN; i++) { /* rows summing to about 1 */
      double s = 0;
      for (size_t j = 0; j < LV; j++)
        s += clloss__ref_load(target, t, i * LV + j);
      for (size_t j = 0; j < LV; j++)
        clloss__ref_store(target, t, i * LV + j,
                          clloss__ref_load(target, t, i * LV + j) / s);
    }
  } else {
    target = malloc(LN * 8);
    for (size_t i = 0; i < LN; i++) {
      const long long v =
          k->ignore && i % 5 == 2 ? -100 : (long long)(urand() * LV);
      if (k->int32)
        ((int32_t *)target)[i] = (int32_t)v;
      else
        ((int64_t *)target)[i] = v;
    }
  }
  const size_t lc = k->reduction == CLLOSS_REDUCTION_NONE ? LN : 1;
  /* The whole problem on this device. */
  unsigned char *want_loss = calloc(lc, 8), *want_dx = malloc(LN * LH * es);
  unsigned char *want_dw = malloc(LV * LH * es), *want_db = malloc(LV * es);
  memcpy(want_dx, dx0, LN * LH * es);
  memcpy(want_dw, dw0, LV * LH * es);
  memcpy(want_db, db0, LV * es);
  clloss_status s = clloss_linear_cross_entropy_host(
      ctx, &d, x, w, k->bias ? b : NULL, target, k->weights ? cw : NULL, g,
      want_loss, k->no_dx ? NULL : want_dx, want_dw, want_db);
  MC_CHECK(st, s == CLLOSS_SUCCESS, "%s: single-device call: %s", what,
           clloss_context_error_detail(ctx));
  /* This process's shard. */
  const clloss_shard sh = lshard(split, st->rank, st->size);
  const size_t c0 = sh.class_offset, cb = sh.classes;
  unsigned char *tp = NULL;
  if (k->prob) {
    tp = malloc(LN * cb * es + 1);
    for (size_t i = 0; i < LN; i++)
      memcpy(tp + i * cb * es, (unsigned char *)target + (i * LV + c0) * es,
             cb * es);
  }
  unsigned char *loss = calloc(lc, 8), *dx = malloc(LN * LH * es);
  unsigned char *dw = malloc(cb * LH * es + 1), *db = malloc(cb * es + 1);
  memcpy(dx, dx0, LN * LH * es);
  memcpy(dw, (unsigned char *)dw0 + c0 * LH * es, cb * LH * es);
  memcpy(db, (unsigned char *)db0 + c0 * es, cb * es);
  s = clloss_mpi_linear_cross_entropy_host(
      ctx, MPI_COMM_WORLD, &d, &sh, x, (unsigned char *)w + c0 * LH * es,
      k->bias ? (unsigned char *)b + c0 * es : NULL, k->prob ? tp : target,
      k->weights ? (unsigned char *)cw + c0 * ls : NULL, g, loss,
      k->no_dx ? NULL : dx, dw, db);
  MC_CHECK(st, s == CLLOSS_SUCCESS, "%s: %s: %s", what, clloss_status_name(s),
           clloss_context_error_detail(ctx));
  if (s == CLLOSS_SUCCESS) {
    mc_check_loss(st, what, t, loss, want_loss, lc);
    for (size_t i = 0; i < lc; i++) {
      const double got = clloss__ref_load(loss, lt, i),
                   want = clloss__ref_load(want_loss, lt, i);
      if (want != 0)
        worst_ulps[3] = fmax(worst_ulps[3], fabs(got - want) / fabs(want));
    }
    mc_check_same_everywhere(st, what, loss, lc * ls);
    /* ulps of the storage type; 16-bit d_hidden is summed from parts
     * rounded to it (clloss_mpi.h), so more there. */
    const int sixteen = es == 2;
    const double lim[3] = {sixteen ? 2.0 * st->size : 16, 8, 8};
    const double errs[3] = {
        k->no_dx ? 0 : row_ulps(t, dx, want_dx, LN, LH, LH, 0),
        row_ulps(t, dw, want_dw + c0 * LH * es, cb, LH, LH, 0),
        row_ulps(t, db, want_db, 1, cb, LV, c0)};
    static const char *const names[3] = {"d_hidden", "dW", "db"};
    for (int i = 0; i < 3; i++) {
      worst_ulps[i] = fmax(worst_ulps[i], errs[i]);
      MC_CHECK(st, errs[i] <= lim[i],
               "%s: %s off by %.2f ulps of its row's "
               "largest value (limit %.0f)",
               what, names[i], errs[i], lim[i]);
    }
    if (getenv("MC_STATS"))
      printf("[%d] %s: d_hidden %.2f, dW %.2f, db %.2f ulps\n", st->rank, what,
             errs[0], errs[1], errs[2]);
  }
  free(x), free(w), free(b), free(cw), free(g), free(dx0), free(dw0);
  free(db0), free(target), free(tp), free(want_loss), free(want_dx);
  free(want_dw), free(want_db), free(loss), free(dx), free(dw), free(db);
}

/* Failures reach every process; the next call works. */
static void lin_failures(mc_state *st, clloss_context *ctx) {
  clloss_linear_cross_entropy_desc d = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  d.hidden = LH;
  d.chunk_rows = 16;
  d.ce.rows = LN;
  d.ce.classes = LV;
  lcg = 99;
  float *x = fill(CLLOSS_FLOAT32, LN * LH, -1, 1);
  float *w = fill(CLLOSS_FLOAT32, LV * LH, -1, 1);
  int64_t target[LN];
  for (size_t i = 0; i < LN; i++)
    target[i] = (int64_t)(i % LV);
  const clloss_shard sh = lshard(EVEN, st->rank, st->size);
  float loss = 12345.0f;
  const float *wr = w + sh.class_offset * LH;
  /* The last process passes no weight rows: its own status, the others
   * CLLOSS_COLLECTIVE_FAILURE. */
  const int last = st->rank == st->size - 1;
  clloss_status s = clloss_mpi_linear_cross_entropy_host(
      ctx, MPI_COMM_WORLD, &d, &sh, x, last ? NULL : wr, NULL, target, NULL,
      NULL, &loss, NULL, NULL, NULL);
  MC_CHECK(st,
           last ? s != CLLOSS_SUCCESS && s != CLLOSS_COLLECTIVE_FAILURE
                : s == CLLOSS_COLLECTIVE_FAILURE,
           "linear, one bad process: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  MC_CHECK(st, loss == 12345.0f, "linear, one bad process: loss written");
  /* Shards that leave a class out. */
  const clloss_shard less = clloss_mpi_even_shard(LV - 1, st->rank, st->size);
  s = clloss_mpi_linear_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &less, x,
                                           wr, NULL, target, NULL, NULL, &loss,
                                           NULL, NULL, NULL);
  MC_CHECK(st, s == CLLOSS_INVALID_ARGUMENT,
           "linear, shards of 52 of 53 classes: got %s (%s)",
           clloss_status_name(s), clloss_context_error_detail(ctx));
  /* A bad target. */
  target[3] = LV;
  s = clloss_mpi_linear_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &sh, x, wr,
                                           NULL, target, NULL, NULL, &loss,
                                           NULL, NULL, NULL);
  MC_CHECK(st, s == CLLOSS_INVALID_TARGET && loss == 12345.0f,
           "linear, a bad target: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  target[3] = 0;
  s = clloss_mpi_linear_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &sh, x, wr,
                                           NULL, target, NULL, NULL, &loss,
                                           NULL, NULL, NULL);
  MC_CHECK(st, s == CLLOSS_SUCCESS && loss != 12345.0f,
           "linear, after the failures: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  free(x);
  free(w);
}

/* `clloss run linear_cross_entropy` on the files in dir, its outputs
 * named by tag. */
static int run_lin_cli(const char *dir, const char *tag, int vp) {
  char f[9][512];
  const char *names[9] = {"x", "w", "b", "t", "cw", "loss", "dx", "dw", "db"};
  for (int i = 0; i < 9; i++)
    snprintf(f[i], sizeof f[i], "%s/%s%s%s.npy", dir, names[i],
             i > 4 ? "-" : "", i > 4 ? tag : "");
  char *argv[] = {"clloss",
                  "run",
                  "linear_cross_entropy",
                  "--input",
                  f[0],
                  "--linear-weight",
                  f[1],
                  "--linear-bias",
                  f[2],
                  "--target",
                  f[3],
                  "--weight",
                  f[4],
                  "--label-smoothing",
                  "0.1",
                  "--z-loss",
                  "0.001",
                  "--chunk-rows",
                  "8",
                  "--loss-out",
                  f[5],
                  "--grad-out",
                  f[6],
                  "--grad-weight-out",
                  f[7],
                  "--grad-bias-out",
                  f[8],
                  "--quiet",
                  vp ? "--vocab-parallel" : NULL,
                  NULL};
  int argc = 0;
  while (argv[argc])
    argc++;
  return clloss_cli_main(argc, argv);
}

static void lin_cli(mc_state *st) {
  enum { CN = 19, CH = 8, CV = 29 };
  lcg = 4242;
  float *x = fill(CLLOSS_FLOAT32, CN * CH, -1, 1);
  float *w = fill(CLLOSS_FLOAT32, CV * CH, -1, 1);
  float *b = fill(CLLOSS_FLOAT32, CV, -1, 1);
  float *cw = fill(CLLOSS_FLOAT32, CV, 0.5, 1.5);
  int64_t t[CN];
  for (size_t i = 0; i < CN; i++)
    t[i] = i % 7 == 3 ? -100 : (int64_t)(urand() * CV);
  char dir[64] = "";
  const mc_file in[5] = {{"x", CLLOSS_FLOAT32, 2, {CN, CH}, x},
                         {"w", CLLOSS_FLOAT32, 2, {CV, CH}, w},
                         {"b", CLLOSS_FLOAT32, 1, {CV, 0}, b},
                         {"t", CLLOSS_INT64, 1, {CN, 0}, t},
                         {"cw", CLLOSS_FLOAT32, 1, {CV, 0}, cw}};
  const int ok = mc_write_files("mpi-lin", in, 5, dir, sizeof dir);
  MC_CHECK(st, ok, "linear cli: writing the inputs into %s", dir);
  if (ok) {
    const int rc = run_lin_cli(dir, "vp", 1);
    MC_CHECK(st, rc == 0, "linear cli: run --vocab-parallel exited with %d",
             rc);
  }
  if (ok && st->rank == 0) {
    MC_CHECK(st, run_lin_cli(dir, "one", 0) == 0,
             "linear cli: the single-device run");
    const char *outs[4] = {"loss", "dx", "dw", "db"};
    const size_t rows[4] = {1, CN, CV, 1}, cols[4] = {1, CH, CH, CV};
    for (int i = 0; i < 4; i++) {
      char p1[512], p2[512];
      snprintf(p1, sizeof p1, "%s/%s-one.npy", dir, outs[i]);
      snprintf(p2, sizeof p2, "%s/%s-vp.npy", dir, outs[i]);
      npy_array one, vp;
      memset(&one, 0, sizeof one);
      memset(&vp, 0, sizeof vp);
      const int read = npy_read(p1, &one, NULL, 0) == NPY_OK &&
                       npy_read(p2, &vp, NULL, 0) == NPY_OK &&
                       one.count == vp.count && one.count == rows[i] * cols[i];
      MC_CHECK(st, read, "linear cli: the %s outputs of both runs", outs[i]);
      if (read && i == 0)
        mc_check_loss(st, "linear cli", CLLOSS_FLOAT32, vp.data, one.data, 1);
      else if (read) {
        const double e = row_ulps(CLLOSS_FLOAT32, vp.data, one.data, rows[i],
                                  cols[i], cols[i], 0);
        MC_CHECK(st, e <= 16, "linear cli: %s off by %.2f ulps", outs[i], e);
      }
      npy_free(&one);
      npy_free(&vp);
      unlink(p1);
      unlink(p2);
    }
    const char *ins[5] = {"x", "w", "b", "t", "cw"};
    for (int i = 0; i < 5; i++) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s.npy", dir, ins[i]);
      unlink(path);
    }
    rmdir(dir);
  }
  free(x), free(w), free(b), free(cw);
}

void mc_test_linear(mc_state *st, clloss_context *ctx) {
  for (size_t c = 0; c < sizeof lcases / sizeof *lcases; c++)
    for (int split = EVEN; split <= (st->size > 1 ? ONE_EMPTY : EVEN); split++)
      run_lin(st, ctx, &lcases[c], (lsplit)split, 1000 + 10 * c + split);
  lin_failures(st, ctx);
  lin_cli(st);
  MPI_Allreduce(MPI_IN_PLACE, worst_ulps, 4, MPI_DOUBLE, MPI_MAX,
                MPI_COMM_WORLD);
  if (st->rank == 0)
    printf("mpi tests: linear_cross_entropy, worst errors over the cases: "
           "loss %.2g relative; in ulps of each row's largest value: "
           "d_hidden %.2f, dW %.2f, db %.2f\n",
           worst_ulps[3], worst_ulps[0], worst_ulps[1], worst_ulps[2]);
}
