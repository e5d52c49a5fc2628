/* test_cli.c - the `clloss` tool end to end: each subcommand run in-process
 * through clloss_cli_main (stdout and stderr captured), its .npy outputs
 * compared with the CPU reference, and every bad input checked for its exit
 * code, its one line on stderr, and the absence of any output file. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/testutil.h"

#ifdef CLLOSS_HAVE_CLI_CORE
#include "cli.h"
#include "npy.h"

/* ---- temporary directory and fixtures ---- */

static char dir[64];

static const char *path(const char *name) {
  static char buf[4][400];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static int exists(const char *name) {
  return access(path(name), F_OK) == 0;
}

/* Files other than the fixtures: outputs and leftover temporaries. */
static size_t stray_files(void) {
  static const char *const fixtures[] = {
      "x.npy",     "t.npy",     "tbad.npy",    "w.npy",    "y.npy",  "bw.npy",
      "row.npy",   "t0.npy",    "ti32.npy",    "p.npy",    "h.npy",  "hy.npy",
      "text.npy",  "trunc.npy", "promise.npy", "huge.npy", "u4.npy", "y3.npy",
      "empty.npy", "x1.npy",    "keep.npy"};
  size_t n = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    int known = e->d_name[0] == '.';
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++)
      known |= strcmp(e->d_name, fixtures[i]) == 0;
    n += !known;
  }
  if (d)
    closedir(d);
  return n;
}

static void remove_outputs(void) {
  static const char *const outs[] = {"l.npy", "g.npy", "l2.npy", "g2.npy"};
  for (size_t i = 0; i < 4; i++)
    unlink(path(outs[i]));
}

static int put(const char *name, clloss_dtype t, int ndim, const size_t *shape,
               const void *data) {
  return npy_write(path(name), t, ndim, shape, data, NULL, 0) == NPY_OK ? 0
                                                                        : -1;
}

static int put_bytes(const char *name, const void *b, size_t n) {
  FILE *f = fopen(path(name), "wb");
  if (!f)
    return -1;
  size_t w = fwrite(b, 1, n, f);
  fclose(f);
  return w == n ? 0 : -1;
}

/* A raw file with a v1.0 header dictionary and n bytes of data. */
static int put_header(const char *name, const char *dict, size_t n) {
  unsigned char b[512] = {0};
  size_t dl = strlen(dict), pad = 64 - (10 + dl + 1) % 64;
  size_t hl = dl + pad + 1;
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)hl;
  b[9] = (unsigned char)(hl >> 8);
  memcpy(b + 10, dict, dl);
  memset(b + 10 + dl, ' ', pad);
  b[10 + hl - 1] = '\n';
  return put_bytes(name, b, 10 + hl + n);
}

static float X[4 * 5], Y[4 * 5], W[5], BW[5], ROW[7], P[4 * 5], X3[24], Y3[24];
static int64_t T[4] = {1, 0, 4, -100}, TBAD[4] = {1, 0, 5, 2}, T0 = 3;
static int32_t TI32[4] = {2, 2, 0, 1};
static uint16_t H[6], HY[6];

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/clloss-cli-XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  tu_rng r = tu_rng_make(77);
  tu_fill_uniform(&r, X, 20, -3, 3);
  tu_fill_uniform(&r, Y, 20, -3, 3);
  tu_fill_uniform(&r, W, 5, 0.5f, 2);
  tu_fill_uniform(&r, BW, 5, 0.5f, 2);
  tu_fill_uniform(&r, ROW, 7, -2, 2);
  tu_fill_uniform(&r, X3, 24, -2, 2);
  tu_fill_uniform(&r, Y3, 24, -2, 2);
  for (int i = 0; i < 4; i++) { /* probability rows */
    float s = 0;
    for (int c = 0; c < 5; c++)
      s += P[i * 5 + c] = tu_uniform(&r, 0.1f, 1);
    for (int c = 0; c < 5; c++)
      P[i * 5 + c] /= s;
  }
  for (int i = 0; i < 6; i++) {
    H[i] = clloss_float_to_half(tu_uniform(&r, -2, 2));
    HY[i] = clloss_float_to_half(tu_uniform(&r, -2, 2));
  }
  size_t s45[2] = {4, 5}, s4 = 4, s5 = 5, s7 = 7, s234[3] = {2, 3, 4},
         s23[2] = {2, 3}, s0 = 0;
  static const char text[] = "not,a,numpy,file\n";
  int bad = put("x.npy", CLLOSS_FLOAT32, 2, s45, X) ||
            put("y.npy", CLLOSS_FLOAT32, 2, s45, Y) ||
            put("t.npy", CLLOSS_INT64, 1, &s4, T) ||
            put("tbad.npy", CLLOSS_INT64, 1, &s4, TBAD) ||
            put("ti32.npy", CLLOSS_INT32, 1, &s4, TI32) ||
            put("w.npy", CLLOSS_FLOAT32, 1, &s5, W) ||
            put("bw.npy", CLLOSS_FLOAT32, 1, &s5, BW) ||
            put("p.npy", CLLOSS_FLOAT32, 2, s45, P) ||
            put("row.npy", CLLOSS_FLOAT32, 1, &s7, ROW) ||
            put("t0.npy", CLLOSS_INT64, 0, NULL, &T0) ||
            put("x1.npy", CLLOSS_FLOAT32, 3, s234, X3) ||
            put("y3.npy", CLLOSS_FLOAT32, 3, s234, Y3) ||
            put("h.npy", CLLOSS_FLOAT16, 2, s23, H) ||
            put("hy.npy", CLLOSS_FLOAT16, 2, s23, HY) ||
            put("empty.npy", CLLOSS_FLOAT32, 1, &s0, X) ||
            put_bytes("text.npy", text, sizeof text - 1) ||
            put_header("promise.npy",
                       "{'descr': '<f4', 'fortran_order': False, "
                       "'shape': (4, 5000), }",
                       80) ||
            put_header("huge.npy",
                       "{'descr': '<f4', 'fortran_order': False, "
                       "'shape': (4294967296, 4294967296, 64), }",
                       0) ||
            put_header("u4.npy",
                       "{'descr': '<u4', 'fortran_order': False, "
                       "'shape': (4, 5), }",
                       80) ||
            put_bytes("keep.npy", "keep", 4);
  if (bad)
    return -1;
  /* trunc.npy: x.npy less its last 3 bytes. */
  void *buf;
  size_t len;
  if (npy_encode(CLLOSS_FLOAT32, 2, s45, X, &buf, &len, NULL, 0) != NPY_OK)
    return -1;
  bad = put_bytes("trunc.npy", buf, len - 3);
  free(buf);
  return bad;
}

static int teardown(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      unlink(path(e->d_name)); /* the fixtures, .stdout and .stderr */
  if (d)
    closedir(d);
  rmdir(dir);
  return 0;
}

/* ---- running the tool in-process ---- */

static char out_text[1 << 16], err_text[1 << 14];

/* Runs `clloss ARGS` with ARGS split at spaces; "@name" is a path in the
 * temporary directory. Returns the exit code. */
static int cli(const char *args) {
  static char paths[16][400];
  char copy[1024], *argv[64];
  int argc = 0, np = 0;
  argv[argc++] = (char *)"clloss";
  snprintf(copy, sizeof copy, "%s", args);
  for (char *tok = strtok(copy, " "); tok && argc < 63;
       tok = strtok(NULL, " ")) {
    if (tok[0] == '@' && np < 16) {
      snprintf(paths[np], sizeof paths[np], "%s", path(tok + 1));
      tok = paths[np++];
    }
    argv[argc++] = tok;
  }
  argv[argc] = NULL;
  char out_file[128], err_file[128];
  snprintf(out_file, sizeof out_file, "%s/.stdout", dir);
  snprintf(err_file, sizeof err_file, "%s/.stderr", dir);
  return tu_run_captured(clloss_cli_main, argc, argv, out_file, out_text,
                         sizeof out_text, err_file, err_text, sizeof err_text);
}

/* The error contract: exit code, one line on stderr naming the tool, no
 * output file left behind. */
static void expect_error(const char *args, int code, const char *needle) {
  remove_outputs();
  int rc = cli(args);
  if (rc != code || !strstr(err_text, needle))
    printf("\n  `clloss %s`: exit %d (want %d), stderr: %s", args, rc, code,
           err_text);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, needle));
  CU_ASSERT_EQUAL(strncmp(err_text, "clloss", 6), 0);
  const char *nl = strchr(err_text, '\n');
  CU_ASSERT(nl != NULL && nl[1] == '\0'); /* exactly one line */
  CU_ASSERT_EQUAL(stray_files(), 0);
}

static int read_out(const char *name, npy_array *a) {
  return npy_read(path(name), a, NULL, 0) == NPY_OK;
}

/* ---- help, version, dispatch ---- */

static void test_version_and_help(void) {
  CU_ASSERT_EQUAL(cli("--version"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, CLLOSS_VERSION_STRING));
  CU_ASSERT_EQUAL(cli("--help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "selftest"));
  static const char *const cmds[] = {"devices", "run", "selftest", "demo"};
  for (size_t i = 0; i < 4; i++) {
    char args[64];
    snprintf(args, sizeof args, "%s --help", cmds[i]);
    CU_ASSERT_EQUAL(cli(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "usage: clloss"));
    CU_ASSERT_EQUAL(err_text[0], '\0');
  }
  CU_ASSERT_EQUAL(cli("help run"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "--label-smoothing"));
  CU_ASSERT_EQUAL(cli(""), 2);
}

static void test_unknown_command(void) {
  expect_error("frobnicate", 2, "unknown command 'frobnicate'");
  expect_error("devices --bogus", 2, "--bogus");
}

static void test_devices(void) {
  CU_ASSERT_EQUAL(cli("devices"), 0);
  const char *want = tu_device_count() ? "[0]" : "No OpenCL device";
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, want));
}

/* ---- usage errors: exit 2 ---- */

static void test_run_usage_errors(void) {
  expect_error("run huber --input @x.npy --target @y.npy --loss-out @l.npy", 2,
               "unknown loss 'huber'");
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out "
               "@l.npy --frob",
               2, "unknown option '--frob'");
  expect_error("run mse_loss --input @x.npy --target @y.npy", 2, "no output");
  expect_error("run mse_loss --target @y.npy --loss-out @l.npy", 2,
               "--input and --target");
  expect_error("run mse_loss --input @x.npy --target @y.npy --delta 2 "
               "--loss-out @l.npy",
               2, "--delta does not apply to mse_loss");
  expect_error("run mse_loss --input @x.npy --target @y.npy --reduction "
               "batchmean --loss-out @l.npy",
               2, "batchmean");
  expect_error("run mse_loss --input @x.npy --target @y.npy --reduction "
               "avg --loss-out @l.npy",
               2, "unknown reduction 'avg'");
  expect_error("run cross_entropy --input @x.npy --target @t.npy "
               "--label-smoothing 1.5 --loss-out @l.npy",
               2, "[0, 1]");
  expect_error("run cross_entropy --input @x.npy --target @t.npy "
               "--ignore-index x --loss-out @l.npy",
               2, "not an integer");
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out "
               "@l.npy --grad-out @l.npy",
               2, "same file");
  expect_error("run mse_loss --input @x.npy --target @y.npy --cpu --device 0 "
               "--loss-out @l.npy",
               2, "exclude");
  expect_error("run cross_entropy --input @x.npy --target @t.npy --cpu "
               "--vocab-parallel --loss-out @l.npy",
               2, "--cpu and --vocab-parallel exclude");
#ifndef CLLOSS_CLI_HAVE_MPI
  /* Built without MPI: the flag says so (with MPI: tests/mpi). */
  expect_error("run cross_entropy --input @x.npy --target @t.npy "
               "--vocab-parallel --loss-out @l.npy",
               2, "built without MPI");
  expect_error("bench cross_entropy --vocab-parallel", 2, "built without MPI");
#endif
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out", 2,
               "--loss-out needs a value");
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out "
               "--cpu",
               2, "--loss-out needs a value");
}

/* ---- data errors: exit 1 ---- */

static void test_run_bad_files(void) {
  const char *tail = "--target @y.npy --loss-out @l.npy --grad-out @g.npy "
                     "--cpu";
  char args[512];
#define BAD_(file, needle)                                                     \
  snprintf(args, sizeof args, "run mse_loss --input @%s %s", file, tail);      \
  expect_error(args, 1, needle)
  BAD_("missing.npy", "No such file");
  BAD_("text.npy", "not a .npy file");
  BAD_("trunc.npy", "promises");
  BAD_("promise.npy", "promises 80000 bytes");
  BAD_("huge.npy", "overflows");
  BAD_("u4.npy", "'<u4' is not supported");
#undef BAD_
}

static void test_run_bad_data(void) {
  expect_error("run mse_loss --input @x.npy --target @t.npy --loss-out "
               "@l.npy --cpu",
               1, "does not match input (4, 5)");
  expect_error("run cross_entropy --input @x.npy --target @tbad.npy "
               "--loss-out @l.npy --grad-out @g.npy --cpu",
               1, "target[2] = 5 is outside [0, 5)");
  expect_error("run cross_entropy --input @x1.npy --target @t.npy --loss-out "
               "@l.npy --cpu",
               1, "[N, C] or [C]");
  expect_error("run cross_entropy --input @x.npy --target @x.npy --weight "
               "@row.npy --loss-out @l.npy --cpu",
               1, "one per class");
  expect_error("run nll_loss --input @x.npy --target @p.npy --loss-out "
               "@l.npy --cpu",
               1, "class indices");
  expect_error("run mse_loss --input @t.npy --target @t.npy --loss-out "
               "@l.npy --cpu",
               1, "not a float");
  expect_error("run mse_loss --input @h.npy --target @x.npy --loss-out "
               "@l.npy --cpu",
               1, "does not match");
  expect_error("run binary_cross_entropy_with_logits --input @x.npy "
               "--target @y.npy --weight @row.npy --loss-out @l.npy --cpu",
               1, "last dimension");
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out "
               "@no-such-dir/l.npy --cpu",
               1, "cannot create");
}

/* A failed run leaves an existing output file as it was. */
static void test_failed_run_keeps_old_output(void) {
  remove_outputs();
  CU_ASSERT_EQUAL(cli("run cross_entropy --input @x.npy --target @tbad.npy "
                      "--loss-out @keep.npy --cpu"),
                  1);
  char buf[16];
  tu_slurp(path("keep.npy"), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "keep");
  CU_ASSERT_EQUAL(stray_files(), 0);
}

/* A failed output replaces no existing file: the loss is complete in its
 * temporary file, but /dev/full fails, so keep.npy stays as it was
 * (issue 21: it was replaced before the gradient failed). */
static void test_failed_output_keeps_other_files(void) {
  remove_outputs();
  CU_ASSERT_EQUAL(cli("run cross_entropy --input @x.npy --target @t.npy "
                      "--loss-out @keep.npy --grad-out /dev/full --cpu"),
                  1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "/dev/full"));
  char buf[16];
  tu_slurp(path("keep.npy"), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "keep");
  CU_ASSERT_EQUAL(stray_files(), 0);
}

/* An output that is an input, by any name (another spelling, a link, a
 * hard link), is refused before anything is read or written. */
static void test_run_output_is_input(void) {
  static const char *const cases[][2] = {
      {"run cross_entropy --input @x.npy --target @t.npy --cpu --grad-out "
       "@x.npy",
       "--grad-out"},
      {"run cross_entropy --input @x.npy --target @t.npy --cpu --loss-out "
       "@./t.npy",
       "--target"},
      {"run cross_entropy --input @x.npy --target @t.npy --weight @w.npy "
       "--cpu --loss-out @l.npy --grad-out @w.npy",
       "--weight"},
      {"run cross_entropy --input @x.npy --target @t.npy --cpu --loss-out "
       "@xlink.npy",
       "--input"},
      {"run cross_entropy --input @x.npy --target @t.npy --cpu --loss-out "
       "@xhard.npy",
       "--input"},
      {"run softmax --input @x.npy --cpu --out @xlink.npy", "--out"}};
  CU_ASSERT_EQUAL_FATAL(symlink("x.npy", path("xlink.npy")), 0);
  CU_ASSERT_EQUAL_FATAL(link(path("x.npy"), path("xhard.npy")), 0);
  npy_array before, after;
  CU_ASSERT_TRUE_FATAL(read_out("x.npy", &before));
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    remove_outputs();
    int rc = cli(cases[i][0]);
    if (rc != 2)
      printf("\n  `clloss %s`: exit %d, stderr: %s", cases[i][0], rc, err_text);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "may not replace an input"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, cases[i][1]));
  }
  CU_ASSERT_TRUE_FATAL(read_out("x.npy", &after));
  CU_ASSERT_EQUAL(memcmp(before.data, after.data, sizeof X), 0);
  npy_free(&before);
  npy_free(&after);
  unlink(path("xlink.npy"));
  unlink(path("xhard.npy"));
  CU_ASSERT_EQUAL(stray_files(), 0);
}

/* ---- where outputs go ---- */

/* A FIFO (like a device) is written in place, not replaced by a regular
 * file: a reader sees the .npy, and the FIFO is still there. */
static void test_run_output_fifo(void) {
  remove_outputs();
  unlink(path("out.fifo"));
  CU_ASSERT_EQUAL_FATAL(mkfifo(path("out.fifo"), 0600), 0);
  int fd = open(path("out.fifo"), O_RDONLY | O_NONBLOCK);
  CU_ASSERT_TRUE_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(cli("run mse_loss --input @y.npy --target @y.npy "
                      "--loss-out @out.fifo --cpu --quiet"),
                  0);
  char head[16] = "";
  CU_ASSERT_EQUAL(read(fd, head, 6), 6);
  CU_ASSERT_EQUAL(memcmp(head, "\x93NUMPY", 6), 0);
  close(fd);
  struct stat st;
  CU_ASSERT_EQUAL(lstat(path("out.fifo"), &st), 0);
  CU_ASSERT_TRUE(S_ISFIFO(st.st_mode));
  unlink(path("out.fifo"));
  CU_ASSERT_EQUAL(stray_files(), 0);
}

/* A link is followed: its target gets the output, the link stays a link;
 * a link to nothing is refused. */
static void test_run_output_symlink(void) {
  remove_outputs();
  CU_ASSERT_EQUAL(put_bytes("target.npy", "old", 3), 0);
  CU_ASSERT_EQUAL(symlink("target.npy", path("link.npy")), 0);
  CU_ASSERT_EQUAL(cli("run mse_loss --input @y.npy --target @y.npy "
                      "--loss-out @link.npy --cpu --quiet"),
                  0);
  struct stat st;
  CU_ASSERT_EQUAL(lstat(path("link.npy"), &st), 0);
  CU_ASSERT_TRUE(S_ISLNK(st.st_mode));
  npy_array l;
  CU_ASSERT_TRUE(read_out("target.npy", &l));
  npy_free(&l);
  unlink(path("link.npy"));
  unlink(path("target.npy"));
  CU_ASSERT_EQUAL(symlink("missing.npy", path("dangling.npy")), 0);
  CU_ASSERT_EQUAL(cli("run mse_loss --input @y.npy --target @y.npy "
                      "--loss-out @dangling.npy --cpu --quiet"),
                  1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "symbolic link to nothing"));
  CU_ASSERT_FALSE(exists("missing.npy"));
  unlink(path("dangling.npy"));
  CU_ASSERT_EQUAL(stray_files(), 0);
}

/* The bytes of a file (at most cap); their count. */
static size_t file_bytes(const char *file, unsigned char *buf, size_t cap) {
  FILE *f = fopen(file, "rb");
  size_t n = f ? fread(buf, 1, cap, f) : 0;
  if (f)
    fclose(f);
  return n;
}

/* /dev/stdout and /dev/stderr are written through the process's own
 * streams (wherever they lead), and the summary line moves to the other
 * stream, off the data. */
static void test_run_output_stdout(void) {
  static unsigned char bytes[4096];
  char captured[128];
  npy_array a;
  remove_outputs();
  CU_ASSERT_EQUAL_FATAL(cli("run mse_loss --input @x.npy --target @y.npy "
                            "--cpu --loss-out /dev/stdout --grad-out @g.npy"),
                        0);
  snprintf(captured, sizeof captured, "%s/.stdout", dir);
  size_t n = file_bytes(captured, bytes, sizeof bytes);
  CU_ASSERT_EQUAL(npy_parse(bytes, n, &a, NULL, 0), NPY_OK);
  CU_ASSERT_EQUAL(a.ndim, 0);
  npy_free(&a);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "mse_loss(")); /* the summary */
  CU_ASSERT_TRUE(exists("g.npy"));
  remove_outputs();
  CU_ASSERT_EQUAL_FATAL(cli("run mse_loss --input @x.npy --target @y.npy "
                            "--cpu --grad-out /dev/stderr"),
                        0);
  snprintf(captured, sizeof captured, "%s/.stderr", dir);
  n = file_bytes(captured, bytes, sizeof bytes);
  CU_ASSERT_EQUAL(npy_parse(bytes, n, &a, NULL, 0), NPY_OK);
  CU_ASSERT_EQUAL(a.count, 20);
  npy_free(&a);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "mse_loss("));
  CU_ASSERT_EQUAL(stray_files(), 0);
}

/* The installed tool into a pipe (issue 21: "a symbolic link to
 * nothing"): what comes out of the pipe is the .npy file alone. */
static void test_run_output_pipe(void) {
  char exe[512], cmd[2048], piped[128];
  snprintf(exe, sizeof exe, "%s/tools/clloss", CLLOSS_BINARY_DIR);
  if (access(exe, X_OK) != 0) {
    tu_skip("tools/clloss is not built");
    return;
  }
  snprintf(piped, sizeof piped, "%s/piped.out", dir);
  snprintf(cmd, sizeof cmd,
           "%s run mse_loss --input %s --target %s --cpu --reduction none "
           "--loss-out /dev/stdout 2>/dev/null | cat > %s",
           exe, path("x.npy"), path("y.npy"), piped);
  int st = system(cmd);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  static unsigned char bytes[4096];
  size_t n = file_bytes(piped, bytes, sizeof bytes);
  npy_array a;
  CU_ASSERT_EQUAL(npy_parse(bytes, n, &a, NULL, 0), NPY_OK);
  CU_ASSERT_EQUAL(a.count, 20);
  npy_free(&a);
  unlink(piped);
}

/* Two outputs naming one file, however spelt, are refused before anything
 * runs. */
static void test_run_same_output_twice(void) {
  static const char *const base = "run mse_loss --input @x.npy --target "
                                  "@y.npy --cpu ";
  char args[256];
  snprintf(args, sizeof args, "%s--loss-out @l.npy --grad-out @./l.npy", base);
  expect_error(args, 2, "are the same file");
  snprintf(args, sizeof args, "%s--loss-out @l.npy --grad-out @../%s/l.npy",
           base, strrchr(dir, '/') + 1);
  expect_error(args, 2, "are the same file");
  /* Existing: the same inode under another name. */
  CU_ASSERT_EQUAL(put_bytes("keep2.npy", "keep", 4), 0);
  CU_ASSERT_EQUAL(link(path("keep2.npy"), path("hard.npy")), 0);
  snprintf(args, sizeof args, "%s--loss-out @keep2.npy --grad-out @hard.npy",
           base);
  remove_outputs();
  CU_ASSERT_EQUAL(cli(args), 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "are the same file"));
  char buf[16];
  tu_slurp(path("keep2.npy"), buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "keep");
  unlink(path("hard.npy"));
  unlink(path("keep2.npy"));
  /* Different files are fine. */
  remove_outputs();
  snprintf(args, sizeof args, "%s--loss-out @l.npy --grad-out @./g.npy", base);
  CU_ASSERT_EQUAL(cli(args), 0);
  CU_ASSERT_TRUE(exists("l.npy") && exists("g.npy"));
  remove_outputs();
}

/* ---- results against the reference ---- */

static void test_run_cross_entropy_cpu(void) {
  remove_outputs();
  CU_ASSERT_EQUAL_FATAL(
      cli("run cross_entropy --input @x.npy --target @t.npy --weight @w.npy "
          "--label-smoothing 0.1 --reduction none --loss-out @l.npy "
          "--grad-out @g.npy --cpu"),
      0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "CPU reference"));
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = 4;
  d.classes = 5;
  d.reduction = CLLOSS_REDUCTION_NONE;
  d.label_smoothing = 0.1f;
  float loss[4], grad[20];
  CU_ASSERT_EQUAL_FATAL(
      clloss_reference_cross_entropy(&d, X, T, W, NULL, loss, grad),
      CLLOSS_SUCCESS);
  npy_array l, g;
  CU_ASSERT_FATAL(read_out("l.npy", &l) && read_out("g.npy", &g));
  CU_ASSERT_EQUAL(l.dtype, CLLOSS_FLOAT32);
  CU_ASSERT_EQUAL(l.ndim, 1);
  CU_ASSERT_EQUAL(l.shape[0], 4);
  CU_ASSERT_EQUAL(g.ndim, 2);
  CU_ASSERT_EQUAL(memcmp(l.data, loss, sizeof loss), 0);
  CU_ASSERT_EQUAL(memcmp(g.data, grad, sizeof grad), 0);
  npy_free(&l);
  npy_free(&g);
}

static void test_run_variants_cpu(void) {
  npy_array l, g;
  /* A single [C] row with a 0-d target: none gives a 0-d loss (PyTorch). */
  remove_outputs();
  CU_ASSERT_EQUAL(cli("run cross_entropy --input @row.npy --target @t0.npy "
                      "--reduction none --loss-out @l.npy --grad-out @g.npy "
                      "--cpu --quiet"),
                  0);
  CU_ASSERT_EQUAL(out_text[0], '\0'); /* --quiet */
  CU_ASSERT_FATAL(read_out("l.npy", &l) && read_out("g.npy", &g));
  CU_ASSERT_EQUAL(l.ndim, 0);
  CU_ASSERT_EQUAL(g.ndim, 1);
  CU_ASSERT_EQUAL(g.shape[0], 7);
  npy_free(&l);
  npy_free(&g);
  /* float16 input: float16 gradient, float32 loss. */
  remove_outputs();
  CU_ASSERT_EQUAL(cli("run mse_loss --input @h.npy --target @hy.npy "
                      "--loss-out @l.npy --grad-out @g.npy --cpu"),
                  0);
  CU_ASSERT_FATAL(read_out("l.npy", &l) && read_out("g.npy", &g));
  CU_ASSERT_EQUAL(l.dtype, CLLOSS_FLOAT32);
  CU_ASSERT_EQUAL(l.ndim, 0);
  CU_ASSERT_EQUAL(g.dtype, CLLOSS_FLOAT16);
  double want = 0;
  for (int i = 0; i < 6; i++) {
    double d = clloss_half_to_float(H[i]) - clloss_half_to_float(HY[i]);
    want += d * d / 6;
  }
  CU_ASSERT_DOUBLE_EQUAL(((float *)l.data)[0], want, 1e-5);
  npy_free(&l);
  npy_free(&g);
  /* int32 targets, probability targets, underscores in option names. */
  remove_outputs();
  CU_ASSERT_EQUAL(cli("run nll_loss --input @x.npy --target @ti32.npy "
                      "--ignore_index=0 --reduction=sum --loss-out @l.npy "
                      "--cpu"),
                  0);
  CU_ASSERT_FATAL(read_out("l.npy", &l));
  CU_ASSERT_DOUBLE_EQUAL(((float *)l.data)[0], -(X[2] + X[7] + X[16]), 1e-5);
  npy_free(&l);
  remove_outputs();
  CU_ASSERT_EQUAL(cli("run cross_entropy --input @x.npy --target @p.npy "
                      "--grad-out @g.npy --cpu"),
                  0);
  CU_ASSERT(!exists("l.npy"));
  CU_ASSERT(exists("g.npy"));
  /* An empty input is not an error of the tool. */
  remove_outputs();
  int rc = cli("run mse_loss --input @empty.npy --target @empty.npy "
               "--reduction sum --loss-out @l.npy --cpu");
  CU_ASSERT(rc == 0 || rc == 1);
  CU_ASSERT_EQUAL(stray_files(), rc == 0 ? 1 : 0);
  remove_outputs();
}

/* Runs ARGS on the default device and with --cpu and compares the files. */
static void compare_device(const char *args, size_t loss_n, size_t grad_n) {
  char dev[512], cpu[512];
  snprintf(dev, sizeof dev, "%s --loss-out @l.npy --grad-out @g.npy", args);
  snprintf(cpu, sizeof cpu, "%s --loss-out @l2.npy --grad-out @g2.npy --cpu",
           args);
  remove_outputs();
  int rc = cli(dev);
  if (rc)
    printf("\n  `clloss %s`: %s", dev, err_text);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "on device"));
  CU_ASSERT_EQUAL_FATAL(cli(cpu), 0);
  npy_array l, g, l2, g2;
  CU_ASSERT_FATAL(read_out("l.npy", &l) && read_out("g.npy", &g) &&
                  read_out("l2.npy", &l2) && read_out("g2.npy", &g2));
  CU_ASSERT_EQUAL(l.count, loss_n);
  CU_ASSERT_EQUAL(g.count, grad_n);
  CU_ASSERT_EQUAL(l.ndim, l2.ndim);
  CU_ASSERT_EQUAL(tu_compare_f("loss", l.data, l2.data, loss_n, 1e-6, 1e-4), 0);
  CU_ASSERT_EQUAL(tu_compare_f("grad", g.data, g2.data, grad_n, 1e-6, 1e-4), 0);
  npy_free(&l);
  npy_free(&g);
  npy_free(&l2);
  npy_free(&g2);
  remove_outputs();
}

static void test_run_device_vs_reference(void) {
  TU_REQUIRE_DEVICE();
  compare_device("run cross_entropy --input @x.npy --target @t.npy", 1, 20);
  compare_device("run cross_entropy --input @x.npy --target @t.npy --weight "
                 "@w.npy --z-loss 0.01 --softcap 2 --reduction none",
                 4, 20);
  compare_device("run mse_loss --input @x1.npy --target @y3.npy --reduction "
                 "none",
                 24, 24);
  compare_device("run binary_cross_entropy_with_logits --input @x.npy "
                 "--target @p.npy --weight @bw.npy --pos-weight @w.npy "
                 "--reduction sum",
                 1, 20);
  compare_device("run kl_div --input @x.npy --target @p.npy --reduction "
                 "batchmean",
                 1, 20);
  compare_device("run smooth_l1_loss --input @x.npy --target @y.npy --beta "
                 "0.5",
                 1, 20);
}

/* --grad-scale multiplies the gradient (by 0.25: exactly) and leaves the
 * loss as it is, with every reduction, on the reference and the device. */
static void test_run_grad_scale(void) {
  static const char *const runs[] = {
      "run cross_entropy --input @x.npy --target @t.npy --reduction none",
      "run nll_loss --input @x.npy --target @t.npy",
      "run mse_loss --input @x.npy --target @y.npy --reduction sum"};
  for (int dev = 0; dev < 1 + (tu_device_count() > 0); dev++)
    for (int k = 0; k < 3; k++) {
      char a[512], b[512];
      const char *where = dev ? "" : " --cpu";
      snprintf(a, sizeof a, "%s --loss-out @l.npy --grad-out @g.npy%s", runs[k],
               where);
      snprintf(b, sizeof b,
               "%s --grad-scale 0.25 --loss-out @l2.npy --grad-out "
               "@g2.npy%s",
               runs[k], where);
      remove_outputs();
      CU_ASSERT_EQUAL_FATAL(cli(a), 0);
      CU_ASSERT_EQUAL_FATAL(cli(b), 0);
      CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "grad_scale=0.25"));
      npy_array l, g, l2, g2;
      CU_ASSERT_FATAL(read_out("l.npy", &l) && read_out("g.npy", &g) &&
                      read_out("l2.npy", &l2) && read_out("g2.npy", &g2));
      CU_ASSERT_EQUAL(memcmp(l.data, l2.data, l.count * 4), 0);
      for (size_t i = 0; i < g.count; i++)
        CU_ASSERT_EQUAL(((float *)g2.data)[i], 0.25f * ((float *)g.data)[i]);
      npy_free(&l);
      npy_free(&g);
      npy_free(&l2);
      npy_free(&g2);
    }
  remove_outputs();
  expect_error("run cross_entropy --input @x.npy --target @t.npy "
               "--grad-scale inf --loss-out @l.npy",
               2, "not a number");
}

/* run softmax: the rows of X (its last axis) in X's shape and dtype, as
 * the reference gives them (--cpu: bit for bit); bad uses. */
static void test_run_softmax(void) {
  static const struct {
    const char *input;
    size_t rows, classes;
    clloss_dtype type;
    const void *x;
  } cases[] = {{"x.npy", 4, 5, CLLOSS_FLOAT32, X},
               {"x1.npy", 6, 4, CLLOSS_FLOAT32, X3},
               {"h.npy", 2, 3, CLLOSS_FLOAT16, H}};
  for (int dev = 0; dev < 1 + (tu_device_count() > 0); dev++)
    for (int k = 0; k < 3; k++) {
      char args[256];
      snprintf(args, sizeof args, "run softmax --input @%s --out @g.npy%s",
               cases[k].input, dev ? "" : " --cpu");
      remove_outputs();
      CU_ASSERT_EQUAL_FATAL(cli(args), 0);
      CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "softmax("));
      clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
      d.rows = cases[k].rows, d.classes = cases[k].classes;
      d.input_type = cases[k].type;
      float want[24];
      CU_ASSERT_EQUAL(clloss_reference_softmax(&d, cases[k].x, want),
                      CLLOSS_SUCCESS);
      npy_array p, x;
      CU_ASSERT_FATAL(read_out("g.npy", &p) && read_out(cases[k].input, &x));
      CU_ASSERT_EQUAL(p.dtype, cases[k].type);
      CU_ASSERT_EQUAL(p.ndim, x.ndim);
      CU_ASSERT_EQUAL(memcmp(p.shape, x.shape, sizeof p.shape), 0);
      const size_t n = d.rows * d.classes;
      if (dev == 0)
        CU_ASSERT_EQUAL(memcmp(p.data, want, n * npy_dtype_size(p.dtype)), 0);
      for (size_t i = 0; dev && d.input_type == CLLOSS_FLOAT32 && i < n; i++)
        CU_ASSERT_DOUBLE_EQUAL(((float *)p.data)[i], want[i], 2e-6 * want[i]);
      npy_free(&p);
      npy_free(&x);
    }
  remove_outputs();
  expect_error("run softmax --input @x.npy --cpu", 2, "--input and --out");
  expect_error("run softmax --input @x.npy --target @t.npy --out @g.npy", 2,
               "softmax takes --input, --out");
  expect_error("run softmax --input @x.npy --reduction none --out @g.npy", 2,
               "softmax takes");
  expect_error("run cross_entropy --input @x.npy --target @t.npy --out @g.npy",
               2, "--out is softmax's");
  expect_error("run softmax --input @t.npy --out @g.npy --cpu", 1,
               "not a float");
  expect_error("run softmax --input @empty.npy --out @g.npy --cpu", 1,
               "at least one class");
}

static void test_run_bad_device(void) {
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out "
               "@l.npy --device 99",
               1, tu_device_count() ? "matches no device" : "no OpenCL");
  if (!tu_device_count())
    return;
  /* A variable whose value clloss does not take is named (issue 21). */
  char *saved = tu_env_save("CLLOSS_TUNE");
  setenv("CLLOSS_TUNE", "maybe", 1);
  expect_error("run mse_loss --input @x.npy --target @y.npy --loss-out "
               "@l.npy",
               1, "CLLOSS_TUNE=maybe");
  tu_env_restore("CLLOSS_TUNE", saved);
}

/* ---- selftest and demo ---- */

static void test_selftest(void) {
  if (tu_device_count() == 0) {
    CU_ASSERT_EQUAL(cli("selftest"), 1);
    tu_skip("no OpenCL device");
    return;
  }
  static const char *const losses[] = {"cross_entropy", "mse_loss",
                                       "binary_cross_entropy_with_logits",
                                       "kl_div"};
  for (size_t i = 0; i < 4; i++) {
    char args[128];
    snprintf(args, sizeof args, "selftest --loss %s", losses[i]);
    int rc = cli(args);
    if (rc)
      printf("\n%s", out_text);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, " 0 failed"));
  }
  expect_error("selftest --all --device 0", 2, "exclude");
  expect_error("selftest --loss nope", 2, "unknown loss");
}

static void test_demo(void) {
  TU_REQUIRE_DEVICE();
  int rc = cli("demo");
  if (rc)
    printf("\n%s%s", out_text, err_text);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "cross_entropy"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "l1_loss"));
}

/* The installed executable: exit codes travel through main(). */
static void test_binary(void) {
  char exe[512], cmd[1024];
  snprintf(exe, sizeof exe, "%s/tools/clloss", CLLOSS_BINARY_DIR);
  if (access(exe, X_OK) != 0) {
    tu_skip("tools/clloss is not built");
    return;
  }
  snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", exe);
  int st = system(cmd);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  snprintf(cmd, sizeof cmd, "%s run nope >/dev/null 2>&1", exe);
  st = system(cmd);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  snprintf(cmd, sizeof cmd,
           "%s run mse_loss --input %s --target %s --loss-out %s --cpu "
           ">/dev/null 2>&1",
           exe, path("text.npy"), path("y.npy"), path("l.npy"));
  st = system(cmd);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  CU_ASSERT_EQUAL(stray_files(), 0);
}

int test_cli_register(void) {
  TU_SUITE("cli", setup, teardown, TU_TEST(test_version_and_help),
           TU_TEST(test_unknown_command), TU_TEST(test_devices),
           TU_TEST(test_run_usage_errors), TU_TEST(test_run_bad_files),
           TU_TEST(test_run_bad_data),
           TU_TEST(test_failed_run_keeps_old_output),
           TU_TEST(test_failed_output_keeps_other_files),
           TU_TEST(test_run_output_is_input), TU_TEST(test_run_output_fifo),
           TU_TEST(test_run_output_symlink), TU_TEST(test_run_output_stdout),
           TU_TEST(test_run_output_pipe), TU_TEST(test_run_same_output_twice),
           TU_TEST(test_run_cross_entropy_cpu), TU_TEST(test_run_variants_cpu),
           TU_TEST(test_run_device_vs_reference), TU_TEST(test_run_grad_scale),
           TU_TEST(test_run_softmax), TU_TEST(test_run_bad_device),
           TU_TEST(test_selftest), TU_TEST(test_demo), TU_TEST(test_binary));
}

#else /* the tool is not built (CLLOSS_BUILD_TOOLS=OFF) */

static void test_cli_not_built(void) {
  tu_skip("the clloss tool is not built");
}

int test_cli_register(void) {
  TU_SUITE("cli", NULL, NULL, TU_TEST(test_cli_not_built));
}
#endif
