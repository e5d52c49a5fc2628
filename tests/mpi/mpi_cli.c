/* mpi_cli.c - the CLI's `run cross_entropy --vocab-parallel`, run in this
 * process on every process of the test, against the single-device run of
 * the same files (process 0). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mpi_check.h"
#include "npy.h"

enum { CN = 6, CV = 41 };

int mc_write_files(const char *tag, const mc_file *files, size_t n, char *dir,
                   size_t len) {
  int ok = 1, rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    snprintf(dir, len, "/tmp/clloss-%s-XXXXXX", tag);
    ok = mkdtemp(dir) != NULL;
    for (size_t i = 0; i < n && ok; i++) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s.npy", dir, files[i].name);
      ok = npy_write(path, files[i].type, files[i].ndim, files[i].shape,
                     files[i].data, NULL, 0) == NPY_OK;
    }
  }
  MPI_Bcast(dir, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return ok;
}

/* `clloss run cross_entropy` on the folder's files with the options
 * given, its outputs named by `tag`. */
static int run_cli(const char *dir, const char *tag, int vocab_parallel) {
  char x[512], t[512], w[512], l[512], g[512];
  snprintf(x, sizeof x, "%s/x.npy", dir);
  snprintf(t, sizeof t, "%s/t.npy", dir);
  snprintf(w, sizeof w, "%s/w.npy", dir);
  snprintf(l, sizeof l, "%s/loss-%s.npy", dir, tag);
  snprintf(g, sizeof g, "%s/grad-%s.npy", dir, tag);
  char *argv[] = {"clloss",
                  "run",
                  "cross_entropy",
                  "--input",
                  x,
                  "--target",
                  t,
                  "--weight",
                  w,
                  "--label-smoothing",
                  "0.1",
                  "--reduction",
                  "sum",
                  "--loss-out",
                  l,
                  "--grad-out",
                  g,
                  "--quiet",
                  vocab_parallel ? "--vocab-parallel" : NULL,
                  NULL};
  int argc = 0;
  while (argv[argc])
    argc++;
  return clloss_cli_main(argc, argv);
}

static int read_output(const char *dir, const char *what, const char *tag,
                       npy_array *out) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s-%s.npy", dir, what, tag);
  return npy_read(path, out, NULL, 0) == NPY_OK;
}

void mc_test_cli(mc_state *st, clloss_context *ctx) {
  (void)ctx;
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = CN;
  d.classes = CV;
  d.reduction = CLLOSS_REDUCTION_SUM;
  d.label_smoothing = 0.1f;
  mc_problem pb;
  mc_make(&pb, &d, 1, 0, 99);
  ((float *)pb.x)[3] = 0; /* a finite loss */
  ((float *)pb.g)[0] = 1; /* the CLI's upstream gradient */
  char dir[64] = "";
  const mc_file in[3] = {{"x", CLLOSS_FLOAT32, 2, {CN, CV}, pb.x},
                         {"t", CLLOSS_INT64, 1, {CN, 0}, pb.target},
                         {"w", CLLOSS_FLOAT32, 1, {CV, 0}, pb.w}};
  if (!mc_write_files("mpi-cli", in, 3, dir, sizeof dir)) {
    MC_CHECK(st, 0, "cli: writing the inputs into %s", dir);
    mc_free(&pb);
    return;
  }
  const int rc = run_cli(dir, "vp", 1);
  MC_CHECK(st, rc == 0, "cli: run --vocab-parallel exited with %d", rc);
  /* A loss the flag does not apply to: a usage error on every process. */
  char *nll[] = {
      "clloss",           "run",   "nll_loss",   "--input", "x.npy",
      "--target",         "t.npy", "--loss-out", "l.npy",   "--quiet",
      "--vocab-parallel", NULL};
  MC_CHECK(st, clloss_cli_main(11, nll) == CLI_USAGE,
           "cli: nll_loss --vocab-parallel is not a usage error");
  if (st->rank == 0) {
    MC_CHECK(st, run_cli(dir, "one", 0) == 0, "cli: the single-device run");
    npy_array l1, g1, lv, gv;
    const int ok = read_output(dir, "loss", "one", &l1) &&
                   read_output(dir, "grad", "one", &g1) &&
                   read_output(dir, "loss", "vp", &lv) &&
                   read_output(dir, "grad", "vp", &gv);
    MC_CHECK(st, ok && gv.count == CN * CV && gv.ndim == 2,
             "cli: the outputs of both runs");
    if (ok && gv.count == CN * CV) {
      const clloss_shard all = {0, CV};
      mc_check_loss(st, "cli", CLLOSS_FLOAT32, lv.data, l1.data, 1);
      mc_check_block(st, "cli", &d, &pb, &all, 0, gv.data, g1.data);
    }
    npy_free(&l1);
    npy_free(&g1);
    npy_free(&lv);
    npy_free(&gv);
    const char *names[] = {"x",        "t",       "w",      "loss-one",
                           "grad-one", "loss-vp", "grad-vp"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
      unlink(path);
    }
    rmdir(dir);
  }
  mc_free(&pb);
}
