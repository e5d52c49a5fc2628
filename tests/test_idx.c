/* test_idx.c - the Fashion-MNIST example's IDX reader: plain and gzip'd files
 * written to a temporary directory, each kind of bad file with its own error
 * code, and the installed data set when it is there. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"

#ifndef CLLOSS_HAVE_MNIST_CORE
static void test_idx_not_built(void) {
  tu_skip("fashion_mnist_core is not built (CLBlast or zlib missing)");
}
int test_idx_register(void) {
  TU_SUITE("idx", NULL, NULL, TU_TEST(test_idx_not_built));
}
#else
#include <dirent.h>
#include <unistd.h>
#include <zlib.h>

#include "fashion_mnist/idx.h"

static char g_dir[64];
static char g_err[1024];

static int suite_init(void) {
  strcpy(g_dir, "/tmp/clloss-idx-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int suite_clean(void) {
  DIR *d = opendir(g_dir);
  if (d) {
    char p[512];
    for (struct dirent *e; (e = readdir(d));)
      if (e->d_name[0] != '.') {
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
      }
    closedir(d);
  }
  return rmdir(g_dir);
}

static const char *path(const char *name) {
  static char p[128];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  return p;
}

/* An IDX file of unsigned bytes: header for `dims`, then `len` bytes of
 * data (i mod 251), gzip'd when `gz`. */
static void write_idx(const char *name, int gz, unsigned char type, int ndims,
                      const uint32_t *dims, size_t len) {
  unsigned char buf[4096];
  size_t n = 0;
  buf[n++] = 0;
  buf[n++] = 0;
  buf[n++] = type;
  buf[n++] = (unsigned char)ndims;
  for (int d = 0; d < ndims; d++) {
    buf[n++] = (unsigned char)(dims[d] >> 24);
    buf[n++] = (unsigned char)(dims[d] >> 16);
    buf[n++] = (unsigned char)(dims[d] >> 8);
    buf[n++] = (unsigned char)dims[d];
  }
  for (size_t i = 0; i < len && n < sizeof buf; i++)
    buf[n++] = (unsigned char)(i % 251);
  if (gz) {
    gzFile f = gzopen(path(name), "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(gzwrite(f, buf, (unsigned)n), (int)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path(name), "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(buf, 1, n, f), n);
    fclose(f);
  }
}

static void write_raw(const char *name, const void *data, size_t n) {
  FILE *f = fopen(path(name), "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* Expects `status` and an error sentence containing `needle`. */
static void expect(int got, int status, const char *needle) {
  CU_ASSERT_EQUAL(got, status);
  if (got != status)
    printf("\n  got %s, expected %s: %s", fm_idx_status_name(got),
           fm_idx_status_name(status), g_err);
  if (!strstr(g_err, needle)) {
    printf("\n  error '%s' lacks '%s'", g_err, needle);
    CU_FAIL("error message");
  }
}

static void check_contents(const fm_idx *x, uint32_t d0, size_t item) {
  CU_ASSERT_EQUAL(x->ndims, 3);
  CU_ASSERT_EQUAL(x->dims[0], d0);
  CU_ASSERT_EQUAL(x->dims[1], 3);
  CU_ASSERT_EQUAL(x->dims[2], 4);
  CU_ASSERT_EQUAL(x->size, d0 * item);
  for (size_t i = 0; i < x->size; i++)
    if (x->data[i] != i % 251) {
      CU_FAIL("data byte differs");
      break;
    }
}

static void test_idx_plain_and_gzip(void) {
  static const uint32_t dims[3] = {5, 3, 4};
  write_idx("a", 0, 0x08, 3, dims, 60);
  write_idx("a.gz", 1, 0x08, 3, dims, 60);
  for (int gz = 0; gz < 2; gz++) {
    fm_idx x;
    CU_ASSERT_EQUAL(
        fm_idx_read(path(gz ? "a.gz" : "a"), 0, &x, g_err, sizeof g_err),
        FM_IDX_OK);
    check_contents(&x, 5, 12);
    fm_idx_free(&x);
    /* max_items reads a prefix and does not look past it. */
    CU_ASSERT_EQUAL(
        fm_idx_read(path(gz ? "a.gz" : "a"), 2, &x, g_err, sizeof g_err),
        FM_IDX_OK);
    check_contents(&x, 2, 12);
    fm_idx_free(&x);
    /* A max_items beyond the count reads everything. */
    CU_ASSERT_EQUAL(
        fm_idx_read(path(gz ? "a.gz" : "a"), 99, &x, g_err, sizeof g_err),
        FM_IDX_OK);
    check_contents(&x, 5, 12);
    fm_idx_free(&x);
  }
}

static void test_idx_missing_file(void) {
  fm_idx x;
  expect(fm_idx_read(path("nothing-here"), 0, &x, g_err, sizeof g_err),
         FM_IDX_ERR_OPEN, "No such file or directory");
  CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "nothing-here"));
  CU_ASSERT_PTR_NULL(x.data);
}

static void test_idx_bad_magic(void) {
  static const unsigned char png[] = {0x89, 'P', 'N', 'G', 0, 0, 0, 1};
  write_raw("b", png, sizeof png);
  fm_idx x;
  expect(fm_idx_read(path("b"), 0, &x, g_err, sizeof g_err), FM_IDX_ERR_MAGIC,
         "bad magic number");
  /* Zero dimensions is not a valid header either. */
  static const unsigned char zero_dims[] = {0, 0, 8, 0};
  write_raw("c", zero_dims, sizeof zero_dims);
  expect(fm_idx_read(path("c"), 0, &x, g_err, sizeof g_err), FM_IDX_ERR_MAGIC,
         "not an IDX file");
  /* An empty file. */
  write_raw("d", "", 0);
  expect(fm_idx_read(path("d"), 0, &x, g_err, sizeof g_err), FM_IDX_ERR_MAGIC,
         "bad magic number");
}

static void test_idx_unsupported_type(void) {
  static const uint32_t dims[1] = {4};
  write_idx("e", 0, 0x0D, 1, dims, 16); /* float32 elements */
  fm_idx x;
  expect(fm_idx_read(path("e"), 0, &x, g_err, sizeof g_err), FM_IDX_ERR_TYPE,
         "element type 0x0D");
}

static void test_idx_truncated(void) {
  static const uint32_t dims[3] = {2, 3, 4};
  fm_idx x;
  write_idx("f", 0, 0x08, 3, dims, 20);
  expect(fm_idx_read(path("f"), 0, &x, g_err, sizeof g_err),
         FM_IDX_ERR_TRUNCATED, "truncated: 20 of 24 data bytes");
  CU_ASSERT_PTR_NULL(x.data);
  write_idx("b.gz", 1, 0x08, 3, dims, 23);
  expect(fm_idx_read(path("b.gz"), 0, &x, g_err, sizeof g_err),
         FM_IDX_ERR_TRUNCATED, "truncated: 23 of 24 data bytes");
  /* A gzip stream cut in the middle. */
  static const uint32_t big[3] = {250, 4, 4};
  write_idx("j.gz", 1, 0x08, 3, big, 4000);
  FILE *f = fopen(path("j.gz"), "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  unsigned char gz[8192];
  size_t n = fread(gz, 1, sizeof gz, f);
  fclose(f);
  write_raw("k.gz", gz, n * 2 / 3);
  expect(fm_idx_read(path("k.gz"), 0, &x, g_err, sizeof g_err),
         FM_IDX_ERR_TRUNCATED, "truncated");
  /* The header itself cut short: 3 dimensions announced, 1 given. */
  static const unsigned char head[] = {0, 0, 8, 3, 0, 0, 0, 2};
  write_raw("g", head, sizeof head);
  expect(fm_idx_read(path("g"), 0, &x, g_err, sizeof g_err),
         FM_IDX_ERR_TRUNCATED, "truncated header");
}

static void test_idx_trailing_bytes(void) {
  static const uint32_t dims[3] = {2, 3, 4};
  write_idx("h", 0, 0x08, 3, dims, 25);
  fm_idx x;
  expect(fm_idx_read(path("h"), 0, &x, g_err, sizeof g_err),
         FM_IDX_ERR_TRAILING, "after the 24 bytes");
}

static void test_idx_corrupt_gzip(void) {
  /* A gzip header followed by bytes that are not a deflate stream. */
  static const unsigned char bad[] = {
      0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  write_raw("i", bad, sizeof bad);
  fm_idx x;
  expect(fm_idx_read(path("i"), 0, &x, g_err, sizeof g_err), FM_IDX_ERR_READ,
         "read error");
}

/* A split in g_dir: 3 images of 2 x 2 and `labels` labels. */
static void write_split(const char *split, uint32_t labels, int gz_labels) {
  char name[64];
  static const uint32_t img_dims[3] = {3, 2, 2};
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
  write_idx(name, 0, 0x08, 3, img_dims, 12);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", split,
           gz_labels ? ".gz" : "");
  write_idx(name, gz_labels, 0x08, 1, &labels, labels);
}

static void test_idx_dataset_checks(void) {
  fm_dataset ds;
  /* Labels i mod 251 = 0, 1, 2: a valid split, .gz and plain mixed. */
  write_split("train", 3, 1);
  CU_ASSERT_EQUAL(fm_dataset_load(g_dir, "train", 0, &ds, g_err, sizeof g_err),
                  FM_IDX_OK);
  CU_ASSERT_EQUAL(ds.count, 3);
  CU_ASSERT_EQUAL(ds.rows, 2);
  CU_ASSERT_EQUAL(ds.cols, 2);
  CU_ASSERT_EQUAL(ds.labels[2], 2);
  CU_ASSERT_EQUAL(ds.images[11], 11);
  fm_dataset_free(&ds);
  CU_ASSERT_EQUAL(fm_dataset_load(g_dir, "train", 2, &ds, g_err, sizeof g_err),
                  FM_IDX_OK);
  CU_ASSERT_EQUAL(ds.count, 2);
  fm_dataset_free(&ds);

  /* Counts that differ. */
  write_split("t10k", 2, 1);
  expect(fm_dataset_load(g_dir, "t10k", 0, &ds, g_err, sizeof g_err),
         FM_IDX_ERR_DIMS, "3 images but 2 labels");
  CU_ASSERT_PTR_NULL(ds.images);
  /* Labels of rank 3: swap the images in as labels. */
  static const uint32_t dims[3] = {3, 2, 2};
  write_idx("t10k-labels-idx1-ubyte.gz", 1, 0x08, 3, dims, 12);
  expect(fm_dataset_load(g_dir, "t10k", 0, &ds, g_err, sizeof g_err),
         FM_IDX_ERR_DIMS, "labels 3 (want 1)");
  /* A label out of range: 12 labels, i mod 251 reaches 11. */
  static const uint32_t twelve = 12;
  static const uint32_t img12[3] = {12, 1, 1};
  write_idx("t10k-images-idx3-ubyte.gz", 1, 0x08, 3, img12, 12);
  write_idx("t10k-labels-idx1-ubyte.gz", 1, 0x08, 1, &twelve, 12);
  expect(fm_dataset_load(g_dir, "t10k", 0, &ds, g_err, sizeof g_err),
         FM_IDX_ERR_LABEL, "label 10 of item 10 is not in [0, 10)");
  /* A missing split names the file and the package. */
  expect(fm_dataset_load(g_dir, "nosuch", 0, &ds, g_err, sizeof g_err),
         FM_IDX_ERR_OPEN, "nosuch-images-idx3-ubyte.gz");
  CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "dataset-fashion-mnist"));
}

/* The installed data set, when dataset-fashion-mnist is there. */
static void test_idx_installed_dataset(void) {
  fm_dataset ds;
  int s =
      fm_dataset_load(FM_DEFAULT_DATA_DIR, "t10k", 0, &ds, g_err, sizeof g_err);
  if (s == FM_IDX_ERR_OPEN) {
    tu_skip("%s", g_err);
    return;
  }
  CU_ASSERT_EQUAL_FATAL(s, FM_IDX_OK);
  CU_ASSERT_EQUAL(ds.count, 10000);
  CU_ASSERT_EQUAL(ds.rows, 28);
  CU_ASSERT_EQUAL(ds.cols, 28);
  size_t per_class[FM_CLASSES] = {0};
  for (size_t i = 0; i < ds.count; i++)
    per_class[ds.labels[i]]++;
  for (int c = 0; c < FM_CLASSES; c++)
    CU_ASSERT_EQUAL(per_class[c], 1000); /* the test split is balanced */
  fm_dataset_free(&ds);
  s = fm_dataset_load(FM_DEFAULT_DATA_DIR, "train", 100, &ds, g_err,
                      sizeof g_err);
  CU_ASSERT_EQUAL(s, FM_IDX_OK);
  CU_ASSERT_EQUAL(ds.count, 100);
  fm_dataset_free(&ds);
}

int test_idx_register(void) {
  TU_SUITE("idx", suite_init, suite_clean, TU_TEST(test_idx_plain_and_gzip),
           TU_TEST(test_idx_missing_file), TU_TEST(test_idx_bad_magic),
           TU_TEST(test_idx_unsupported_type), TU_TEST(test_idx_truncated),
           TU_TEST(test_idx_trailing_bytes), TU_TEST(test_idx_corrupt_gzip),
           TU_TEST(test_idx_dataset_checks),
           TU_TEST(test_idx_installed_dataset));
}
#endif
