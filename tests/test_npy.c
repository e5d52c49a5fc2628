/* test_npy.c - the tool's .npy reader and writer (tools/npy.h): round trips
 * of every dtype and shape, NumPy's exact header layout, and each malformed
 * file the reader must refuse with its own status. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/testutil.h"

#ifdef CLLOSS_HAVE_CLI_CORE
#include "npy.h"

/* ---- helpers ---- */

/* A file with the given version, header dictionary (padded as NumPy does)
 * and data; *len receives its size. */
static unsigned char *make_npy(int major, int minor, const char *dict,
                               const void *data, size_t bytes, size_t *len) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t pad = 64 - (pre + dl + 1) % 64, hl = dl + pad + 1;
  unsigned char *b = malloc(pre + hl + bytes + 1);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major;
  b[7] = (unsigned char)minor;
  for (size_t i = 0; i < pre - 8; i++)
    b[8 + i] = (unsigned char)(hl >> (8 * i));
  memcpy(b + pre, dict, dl);
  memset(b + pre + dl, ' ', pad);
  b[pre + hl - 1] = '\n';
  if (bytes)
    memcpy(b + pre + hl, data, bytes);
  *len = pre + hl + bytes;
  return b;
}

/* Parses a file made from dict and `bytes` zero bytes of data. */
static npy_status parse_dict(int major, const char *dict, size_t bytes,
                             npy_array *out, char *msg, size_t msglen) {
  unsigned char zeros[64] = {0};
  size_t len;
  unsigned char *b = make_npy(major, 0, dict, zeros, bytes, &len);
  npy_status s = npy_parse(b, len, out, msg, msglen);
  free(b);
  return s;
}

static npy_status parse_f4(const char *shape, size_t bytes) {
  char dict[256], msg[256];
  npy_array a;
  snprintf(dict, sizeof dict,
           "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
  npy_status s = parse_dict(1, dict, bytes, &a, msg, sizeof msg);
  npy_free(&a);
  return s;
}

static char tmpdir[64];

static int make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/clloss-npy-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  if (d) {
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
      }
    closedir(d);
  }
  rmdir(tmpdir);
  return 0;
}

static size_t files_in_tmpdir(void) {
  size_t n = 0;
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  while (d && (e = readdir(d)))
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (d)
    closedir(d);
  return n;
}

static void tmp_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fwrite(b, 1, n, f), n);
  fclose(f);
}

static const clloss_dtype all_dtypes[] = {
    CLLOSS_FLOAT32, CLLOSS_FLOAT16, CLLOSS_FLOAT64, CLLOSS_INT32, CLLOSS_INT64};
static const size_t shapes[4][3] = {{0}, {1}, {3, 4}, {2, 3, 4}};
static const int ndims[4] = {0, 1, 2, 3};

/* ---- round trips ---- */

static void test_round_trip_memory(void) {
  for (size_t d = 0; d < 5; d++)
    for (size_t s = 0; s < 4; s++) {
      size_t count = 1;
      for (int i = 0; i < ndims[s]; i++)
        count *= shapes[s][i];
      size_t bytes = count * npy_dtype_size(all_dtypes[d]);
      unsigned char data[24 * 8];
      for (size_t i = 0; i < bytes; i++)
        data[i] = (unsigned char)(i * 7 + d);
      void *buf;
      size_t len;
      char msg[256];
      CU_ASSERT_EQUAL_FATAL(npy_encode(all_dtypes[d], ndims[s], shapes[s], data,
                                       &buf, &len, msg, sizeof msg),
                            NPY_OK);
      CU_ASSERT_EQUAL((len - bytes) % 64, 0); /* data 64-byte aligned */
      npy_array a;
      CU_ASSERT_EQUAL_FATAL(npy_parse(buf, len, &a, msg, sizeof msg), NPY_OK);
      CU_ASSERT_EQUAL(a.dtype, all_dtypes[d]);
      CU_ASSERT_EQUAL(a.ndim, ndims[s]);
      CU_ASSERT_EQUAL(a.count, count);
      for (int i = 0; i < ndims[s]; i++)
        CU_ASSERT_EQUAL(a.shape[i], shapes[s][i]);
      CU_ASSERT_EQUAL(memcmp(a.data, data, bytes), 0);
      npy_free(&a);
      free(buf);
    }
}

static void test_round_trip_file(void) {
  char path[256], msg[256];
  tmp_path(path, sizeof path, "rt.npy");
  for (size_t d = 0; d < 5; d++)
    for (size_t s = 0; s < 4; s++) {
      unsigned char data[24 * 8];
      for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i ^ (d * 31 + s));
      CU_ASSERT_EQUAL_FATAL(npy_write(path, all_dtypes[d], ndims[s], shapes[s],
                                      data, msg, sizeof msg),
                            NPY_OK);
      npy_array a;
      CU_ASSERT_EQUAL_FATAL(npy_read(path, &a, msg, sizeof msg), NPY_OK);
      CU_ASSERT_EQUAL(a.dtype, all_dtypes[d]);
      CU_ASSERT_EQUAL(a.ndim, ndims[s]);
      CU_ASSERT_EQUAL(memcmp(a.data, data, a.count * npy_dtype_size(a.dtype)),
                      0);
      npy_free(&a);
    }
  CU_ASSERT_EQUAL(files_in_tmpdir(), 1); /* no temporary left behind */
  unlink(path);
}

/* The exact bytes NumPy 1.x/2.x writes for np.save(f, np.zeros((3, 4),
 * np.float32)): dictionary, spaces to a 64-byte boundary, newline. */
static void test_header_matches_numpy(void) {
  static const char want[] =
      "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
      "'shape': (3, 4), }";
  float zeros[12] = {0};
  size_t shape[2] = {3, 4}, len;
  void *buf;
  CU_ASSERT_EQUAL_FATAL(
      npy_encode(CLLOSS_FLOAT32, 2, shape, zeros, &buf, &len, NULL, 0), NPY_OK);
  CU_ASSERT_EQUAL(len, 128 + sizeof zeros);
  CU_ASSERT_EQUAL(memcmp(buf, want, sizeof want - 1), 0);
  const char *b = buf;
  CU_ASSERT_EQUAL(b[127], '\n');
  CU_ASSERT_EQUAL(b[126], ' ');
  free(buf);
}

static void test_format_shape(void) {
  char buf[64];
  size_t s[3] = {2, 3, 4};
  npy_format_shape(0, s, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "()");
  npy_format_shape(1, s, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "(2,)");
  npy_format_shape(3, s, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "(2, 3, 4)");
}

/* ---- versions and header spellings ---- */

static void test_versions_2_and_3(void) {
  float v[2] = {1.5f, -2.0f};
  for (int major = 2; major <= 3; major++) {
    size_t len;
    unsigned char *b = make_npy(
        major, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        v, sizeof v, &len);
    npy_array a;
    CU_ASSERT_EQUAL(npy_parse(b, len, &a, NULL, 0), NPY_OK);
    CU_ASSERT_EQUAL(a.count, 2);
    CU_ASSERT_EQUAL(((float *)a.data)[1], -2.0f);
    npy_free(&a);
    free(b);
  }
}

static void test_unknown_versions(void) {
  static const int v[][2] = {{0, 0}, {4, 0}, {1, 1}, {255, 0}};
  for (size_t i = 0; i < 4; i++) {
    size_t len;
    unsigned char *b =
        make_npy(v[i][0], v[i][1],
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                 "\0\0\0\0", 4, &len);
    npy_array a;
    CU_ASSERT_EQUAL(npy_parse(b, len, &a, NULL, 0), NPY_ERR_VERSION);
    free(b);
  }
}

static void test_header_spellings(void) {
  npy_array a;
  char msg[256];
  /* Other key order, double quotes, no spaces, Python 2 longs, no trailing
   * comma: all valid Python literals that NumPy accepts. */
  CU_ASSERT_EQUAL(parse_dict(1,
                             "{\"shape\":(2,3L),\"fortran_order\":False,"
                             "\"descr\":\"<i4\"}",
                             24, &a, msg, sizeof msg),
                  NPY_OK);
  CU_ASSERT_EQUAL(a.dtype, CLLOSS_INT32);
  CU_ASSERT_EQUAL(a.count, 6);
  npy_free(&a);
  CU_ASSERT_EQUAL(parse_f4("(2, 1,)", 8), NPY_OK);
}

/* ---- malformed files ---- */

static void test_not_npy(void) {
  static const char text[] = "x,y\n1,2\n3,4\n";
  npy_array a;
  char msg[256];
  CU_ASSERT_EQUAL(npy_parse(text, sizeof text - 1, &a, msg, sizeof msg),
                  NPY_ERR_MAGIC);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not a .npy"));
  CU_ASSERT_PTR_NULL(a.data);
  CU_ASSERT_EQUAL(npy_parse("PK\3\4", 4, &a, NULL, 0), NPY_ERR_MAGIC);
}

static void test_truncated_preamble(void) {
  npy_array a;
  CU_ASSERT_EQUAL(npy_parse("", 0, &a, NULL, 0), NPY_ERR_TRUNCATED);
  CU_ASSERT_EQUAL(npy_parse("\x93NUM", 4, &a, NULL, 0), NPY_ERR_TRUNCATED);
  CU_ASSERT_EQUAL(npy_parse("\x93NUMPY\x01", 7, &a, NULL, 0),
                  NPY_ERR_TRUNCATED);
  CU_ASSERT_EQUAL(npy_parse("\x93NUMPY\x01\x00\x10", 9, &a, NULL, 0),
                  NPY_ERR_TRUNCATED);
  CU_ASSERT_EQUAL(npy_parse("\x93NUMPY\x02\x00\x10\x00\x00", 11, &a, NULL, 0),
                  NPY_ERR_TRUNCATED);
}

static void test_truncated_header(void) {
  size_t len;
  unsigned char *b = make_npy(
      1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
      "\0\0\0\0\0\0\0\0\0\0\0\0", 12, &len);
  npy_array a;
  for (size_t cut = 10; cut < 64; cut += 9)
    CU_ASSERT_EQUAL(npy_parse(b, cut, &a, NULL, 0), NPY_ERR_TRUNCATED);
  free(b);
}

static void test_truncated_data(void) {
  size_t len;
  float v[3] = {1, 2, 3};
  unsigned char *b = make_npy(
      1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v,
      sizeof v, &len);
  npy_array a;
  char msg[256];
  CU_ASSERT_EQUAL(npy_parse(b, len - 1, &a, msg, sizeof msg),
                  NPY_ERR_SHORT_DATA);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "promises 12 bytes"));
  CU_ASSERT_EQUAL(npy_parse(b, len - sizeof v, &a, NULL, 0),
                  NPY_ERR_SHORT_DATA);
  free(b);
}

static void test_header_promises_more(void) {
  CU_ASSERT_EQUAL(parse_f4("(1000000,)", 16), NPY_ERR_SHORT_DATA);
  CU_ASSERT_EQUAL(parse_f4("(4, 4)", 60), NPY_ERR_SHORT_DATA);
}

static void test_extra_data(void) {
  CU_ASSERT_EQUAL(parse_f4("(3,)", 13), NPY_ERR_EXTRA_DATA);
  CU_ASSERT_EQUAL(parse_f4("()", 8), NPY_ERR_EXTRA_DATA);
}

static void test_overflowing_shape(void) {
  /* Element count, byte size, and a single dimension beyond size_t. */
  CU_ASSERT_EQUAL(parse_f4("(4294967296, 4294967296, 16)", 0),
                  NPY_ERR_OVERFLOW);
  CU_ASSERT_EQUAL(parse_f4("(4611686018427387904,)", 0), NPY_ERR_OVERFLOW);
  CU_ASSERT_EQUAL(parse_f4("(99999999999999999999999999,)", 0),
                  NPY_ERR_OVERFLOW);
  /* A zero dimension makes the count 0 whatever the others are. */
  CU_ASSERT_EQUAL(parse_f4("(0, 18446744073709551615)", 0), NPY_OK);
  /* ... and the writer agrees (found by the fuzzer's round trip). */
  size_t shape[2] = {0, SIZE_MAX}, len;
  void *buf;
  CU_ASSERT_EQUAL_FATAL(
      npy_encode(CLLOSS_FLOAT32, 2, shape, NULL, &buf, &len, NULL, 0), NPY_OK);
  free(buf);
  shape[0] = 3;
  CU_ASSERT_EQUAL(
      npy_encode(CLLOSS_FLOAT32, 2, shape, NULL, &buf, &len, NULL, 0),
      NPY_ERR_OVERFLOW);
}

static void test_unsupported_dtypes(void) {
  static const char *const bad[] = {"<u4", "<c8",  "|b1", "<U3",
                                    "|u1", "<f16", "|f4", "<M8[ns]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char dict[128], msg[256];
    npy_array a;
    snprintf(dict, sizeof dict,
             "{'descr': '%s', 'fortran_order': False, 'shape': (), }", bad[i]);
    CU_ASSERT_EQUAL(parse_dict(1, dict, 4, &a, msg, sizeof msg), NPY_ERR_DTYPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, bad[i]));
  }
  npy_array a;
  CU_ASSERT_EQUAL(parse_dict(1,
                             "{'descr': [('a', '<f4')], 'fortran_order': "
                             "False, 'shape': (), }",
                             4, &a, NULL, 0),
                  NPY_ERR_DTYPE);
}

static void test_big_endian(void) {
  npy_array a;
  char msg[256];
  CU_ASSERT_EQUAL(
      parse_dict(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (), }",
                 4, &a, msg, sizeof msg),
      NPY_ERR_ENDIAN);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "big-endian"));
  CU_ASSERT_EQUAL(
      parse_dict(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (), }",
                 8, &a, NULL, 0),
      NPY_ERR_ENDIAN);
}

static void test_fortran_order(void) {
  npy_array a;
  CU_ASSERT_EQUAL(parse_dict(1,
                             "{'descr': '<f4', 'fortran_order': True, "
                             "'shape': (2, 2), }",
                             16, &a, NULL, 0),
                  NPY_ERR_FORTRAN);
}

static void test_malformed_headers(void) {
  static const char *const bad[] = {
      "",
      "[1, 2]",
      "{'descr': '<f4', 'shape': (), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}",
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
      "'shape': ()}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': [3], }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3,,), }",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (), } x",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (), }",
      "{'descr': '<f\\4', 'fortran_order': False, 'shape': (), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (), ",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    npy_array a;
    char msg[256] = "";
    npy_status s = parse_dict(1, bad[i], 4, &a, msg, sizeof msg);
    if (s != NPY_ERR_HEADER)
      printf("\n  header %zu: status %d (%s)", i, (int)s, msg);
    CU_ASSERT_EQUAL(s, NPY_ERR_HEADER);
    CU_ASSERT_NOT_EQUAL(msg[0], '\0');
  }
}

static void test_too_many_dimensions(void) {
  char shape[512] = "(";
  for (int i = 0; i < NPY_MAX_DIMS + 1; i++)
    strcat(shape, "1, ");
  strcat(shape, ")");
  CU_ASSERT_EQUAL(parse_f4(shape, 4), NPY_ERR_HEADER);
}

/* ---- files ---- */

/* A file whose header promises 4 doubles and holds 1. */
static void write_short_file(const char *path) {
  size_t len;
  unsigned char *b = make_npy(
      1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
      "01234567", 8, &len);
  write_bytes(path, b, len);
  free(b);
}

static void test_read_errors(void) {
  char path[256], msg[512];
  npy_array a;
  tmp_path(path, sizeof path, "missing.npy");
  CU_ASSERT_EQUAL(npy_read(path, &a, msg, sizeof msg), NPY_ERR_IO);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "missing.npy"));
  CU_ASSERT_EQUAL(npy_read(tmpdir, &a, msg, sizeof msg), NPY_ERR_IO);
  tmp_path(path, sizeof path, "short.npy");
  write_short_file(path);
  CU_ASSERT_EQUAL(npy_read(path, &a, msg, sizeof msg), NPY_ERR_SHORT_DATA);
  CU_ASSERT_EQUAL(strncmp(msg, path, strlen(path)), 0);
  CU_ASSERT_PTR_NULL(a.data);
  unlink(path);
}

/* The header alone, and a slice of the last dimension read from the file
 * without the rest: the CLI's --vocab-parallel reads its processes' columns
 * so. */
static void test_read_columns(void) {
  char path[256], msg[512];
  tmp_path(path, sizeof path, "cols.npy");
  float v[3 * 5];
  for (int i = 0; i < 15; i++)
    v[i] = (float)i;
  size_t shape[2] = {3, 5};
  CU_ASSERT_EQUAL_FATAL(
      npy_write(path, CLLOSS_FLOAT32, 2, shape, v, msg, sizeof msg), NPY_OK);
  npy_array a;
  CU_ASSERT_EQUAL_FATAL(npy_read_header(path, &a, msg, sizeof msg), NPY_OK);
  CU_ASSERT_EQUAL(a.ndim, 2);
  CU_ASSERT_EQUAL(a.shape[1], 5);
  CU_ASSERT_EQUAL(a.count, 15);
  CU_ASSERT_PTR_NULL(a.data);
  static const size_t slices[][2] = {{1, 3}, {0, 5}, {4, 1}, {5, 0}};
  for (int k = 0; k < 4; k++) {
    const size_t c0 = slices[k][0], cb = slices[k][1];
    CU_ASSERT_EQUAL_FATAL(npy_read_columns(path, c0, cb, &a, msg, sizeof msg),
                          NPY_OK);
    CU_ASSERT_EQUAL(a.ndim, 2);
    CU_ASSERT_EQUAL(a.shape[0], 3);
    CU_ASSERT_EQUAL(a.shape[1], cb);
    CU_ASSERT_EQUAL(a.count, 3 * cb);
    for (size_t i = 0; i < 3; i++)
      for (size_t j = 0; j < cb; j++)
        CU_ASSERT_EQUAL(((float *)a.data)[i * cb + j], v[i * 5 + c0 + j]);
    npy_free(&a);
  }
  CU_ASSERT_EQUAL(npy_read_columns(path, 4, 2, &a, msg, sizeof msg),
                  NPY_ERR_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "[4, 6)"));
  /* A 1-D file is one row; the header checks of npy_read apply. */
  CU_ASSERT_EQUAL_FATAL(
      npy_write(path, CLLOSS_FLOAT32, 1, shape + 1, v, msg, sizeof msg),
      NPY_OK);
  CU_ASSERT_EQUAL_FATAL(npy_read_columns(path, 2, 2, &a, msg, sizeof msg),
                        NPY_OK);
  CU_ASSERT_EQUAL(a.shape[0], 2);
  CU_ASSERT_EQUAL(((float *)a.data)[1], 3.0f);
  npy_free(&a);
  write_short_file(path);
  CU_ASSERT_EQUAL(npy_read_header(path, &a, msg, sizeof msg),
                  NPY_ERR_SHORT_DATA);
  CU_ASSERT_EQUAL(npy_read_columns(path, 0, 1, &a, msg, sizeof msg),
                  NPY_ERR_SHORT_DATA);
  write_bytes(path, "\x93NUMPY\x01\x00\xff\xff", 10);
  CU_ASSERT_EQUAL(npy_read_header(path, &a, msg, sizeof msg),
                  NPY_ERR_TRUNCATED);
  tmp_path(path, sizeof path, "missing.npy");
  CU_ASSERT_EQUAL(npy_read_header(path, &a, msg, sizeof msg), NPY_ERR_IO);
  tmp_path(path, sizeof path, "cols.npy");
  unlink(path);
}

static void test_write_is_atomic(void) {
  char path[256], msg[512];
  tmp_path(path, sizeof path, "out.npy");
  write_bytes(path, "old", 3);
  float v[2] = {1, 2};
  size_t shape[1] = {2};
  npy_staged st;
  CU_ASSERT_EQUAL_FATAL(
      npy_stage(path, CLLOSS_FLOAT32, 1, shape, v, &st, msg, sizeof msg),
      NPY_OK);
  CU_ASSERT_EQUAL(files_in_tmpdir(), 2); /* old file + staged temporary */
  npy_array a;
  CU_ASSERT_EQUAL(npy_read(path, &a, NULL, 0), NPY_ERR_MAGIC); /* still old */
  npy_discard(&st);
  CU_ASSERT_EQUAL(files_in_tmpdir(), 1);
  CU_ASSERT_EQUAL(npy_write(path, CLLOSS_FLOAT32, 1, shape, v, msg, sizeof msg),
                  NPY_OK);
  CU_ASSERT_EQUAL(npy_read(path, &a, NULL, 0), NPY_OK);
  npy_free(&a);
  CU_ASSERT_EQUAL(files_in_tmpdir(), 1);
  struct stat sb;
  CU_ASSERT_EQUAL(stat(path, &sb), 0);
  CU_ASSERT((sb.st_mode & 0444) != 0); /* not mkstemp's 0600 only */
  unlink(path);
}

static void test_write_errors(void) {
  char path[256], msg[512];
  float v = 1.0f;
  tmp_path(path, sizeof path, "no-such-dir/out.npy");
  CU_ASSERT_EQUAL(npy_write(path, CLLOSS_FLOAT32, 0, NULL, &v, msg, sizeof msg),
                  NPY_ERR_IO);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no-such-dir"));
  tmp_path(path, sizeof path, "bf16.npy");
  CU_ASSERT_EQUAL(
      npy_write(path, CLLOSS_BFLOAT16, 0, NULL, &v, msg, sizeof msg),
      NPY_ERR_ARGUMENT);
  CU_ASSERT_EQUAL(files_in_tmpdir(), 0);
}

/* Paths that mean one of the process's own descriptors, through their
 * links' text (/dev/stdout -> /proc/self/fd/1), and paths that do not. */
static void test_output_fd(void) {
  CU_ASSERT_EQUAL(npy_output_fd("/dev/stdout"), 1);
  CU_ASSERT_EQUAL(npy_output_fd("/dev/stderr"), 2);
  CU_ASSERT_EQUAL(npy_output_fd("/dev/fd/7"), 7);
  CU_ASSERT_EQUAL(npy_output_fd("/proc/self/fd/12"), 12);
  CU_ASSERT_EQUAL(npy_output_fd("/proc/self/fd/1x"), -1);
  CU_ASSERT_EQUAL(npy_output_fd("/dev/fd/"), -1);
  CU_ASSERT_EQUAL(npy_output_fd("/dev/null"), -1);
  CU_ASSERT_EQUAL(npy_output_fd("out.npy"), -1);
}

int test_npy_register(void) {
  TU_SUITE("npy", make_tmpdir, remove_tmpdir, TU_TEST(test_round_trip_memory),
           TU_TEST(test_round_trip_file), TU_TEST(test_header_matches_numpy),
           TU_TEST(test_format_shape), TU_TEST(test_versions_2_and_3),
           TU_TEST(test_unknown_versions), TU_TEST(test_header_spellings),
           TU_TEST(test_not_npy), TU_TEST(test_truncated_preamble),
           TU_TEST(test_truncated_header), TU_TEST(test_truncated_data),
           TU_TEST(test_header_promises_more), TU_TEST(test_extra_data),
           TU_TEST(test_overflowing_shape), TU_TEST(test_unsupported_dtypes),
           TU_TEST(test_big_endian), TU_TEST(test_fortran_order),
           TU_TEST(test_malformed_headers), TU_TEST(test_too_many_dimensions),
           TU_TEST(test_read_errors), TU_TEST(test_read_columns),
           TU_TEST(test_write_is_atomic), TU_TEST(test_write_errors),
           TU_TEST(test_output_fd));
}

#else /* the tool, and with it tools/npy.c, is not built */

static void test_npy_not_built(void) {
  tu_skip("CLLOSS_BUILD_TOOLS is off");
}

int test_npy_register(void) {
  TU_SUITE("npy", NULL, NULL, TU_TEST(test_npy_not_built));
}
#endif
