/* test_binary_cache.c - the cache folder: binaries written (0600) when a
 * context is released and used by the next, every damaged, foreign or
 * rejected file rebuilt and rewritten (never a crash), temporary files that
 * no planted link can redirect, a folder created 0700, the trust rule (a
 * FIFO, a link, a file or folder others can write or another user owns is
 * a miss, never read and never a hang), CLLOSS_CACHE=off honoured, and
 * SHA-256 itself against FIPS 180-4's examples. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binary_cache.h" /* white box: binaries handed over */
#include "sha256.h"
#include "support/testutil.h"

static char g_dir[256];
static char *g_saved_dir, *g_saved_switch;

static int init(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/clloss-cache-test-XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  g_saved_dir = tu_env_save("CLLOSS_CACHE_DIR");
  g_saved_switch = tu_env_save("CLLOSS_CACHE");
  setenv("CLLOSS_CACHE_DIR", g_dir, 1);
  /* Binaries on whatever the driver (unset: off where the driver caches
   * itself; test_cache_default_by_driver). */
  setenv("CLLOSS_CACHE", "on", 1);
  return 0;
}

static int clean(void) {
  tu_dir_entries(g_dir, 1);
  rmdir(g_dir);
  tu_env_restore("CLLOSS_CACHE_DIR", g_saved_dir);
  tu_env_restore("CLLOSS_CACHE", g_saved_switch);
  g_saved_dir = g_saved_switch = NULL;
  return 0;
}

/* A fresh context (not the shared one: its programs are already built)
 * computes one small loss and is released (which writes its new binaries);
 * returns the status. 0: mse_loss (30 expected), 1: cross_entropy with
 * int32 targets, 2: nll_loss with int32 targets. */
static clloss_status one_call(int which, float *loss_out) {
  clloss_context *ctx = NULL;
  clloss_status s = clloss_context_create_default("0", &ctx);
  if (s != CLLOSS_SUCCESS)
    return s;
  const float x[5] = {1, 2, 3, 4, 5}, y[5] = {1, 1, 1, 1, 1};
  const int32_t t[1] = {4};
  s = clloss_context_set_variant(ctx, "item");
  if (which == 0) {
    s = clloss_mse_loss_host(ctx, 5, CLLOSS_REDUCTION_SUM, x, y, loss_out,
                             NULL);
  } else if (which == 1) {
    clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
    d.rows = 1, d.classes = 5, d.target_type = CLLOSS_INT32;
    s = clloss_cross_entropy_host(ctx, &d, x, t, NULL, NULL, loss_out, NULL);
  } else {
    clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
    d.rows = 1, d.classes = 5, d.target_type = CLLOSS_INT32;
    s = clloss_nll_loss_host(ctx, &d, x, t, NULL, NULL, loss_out, NULL);
  }
  /* Whatever the cache held, a success leaves no failure behind. */
  if (s == CLLOSS_SUCCESS)
    CU_ASSERT_STRING_EQUAL(clloss_context_error_detail(ctx), "");
  clloss_context_release(ctx);
  return s;
}

/* The expected losses of one_call. */
static double expected(int which) {
  if (which == 0)
    return 30.0; /* 0 + 1 + 4 + 9 + 16 */
  if (which == 1)
    return log(exp(1) + exp(2) + exp(3) + exp(4) + exp(5)) - 5.0;
  return -5.0;
}

static void check_call(int which) {
  float loss = -1;
  CU_ASSERT_EQUAL(one_call(which, &loss), CLLOSS_SUCCESS);
  CU_ASSERT_DOUBLE_EQUAL(loss, expected(which), 1e-5);
}

/* The names of the .bin files in the folder (at most `cap`). */
static int bin_files(char names[][256], int cap) {
  DIR *d = opendir(g_dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0 && n < cap)
      snprintf(names[n++], 256, "%s", e->d_name);
  }
  if (d)
    closedir(d);
  return n;
}

/* Whole files. */
static unsigned char *read_all(const char *name, size_t *size) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "rb");
  unsigned char *buf = NULL;
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
      fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (f)
    fclose(f);
  *size = buf ? (size_t)n : 0;
  return buf;
}

static void write_all(const char *name, const unsigned char *buf, size_t size) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fwrite(buf, 1, size, f), size);
  fclose(f);
}

/* The file's layout (binary_cache.c): magic, key, size, SHA-256, payload.
 * 1 when the file is whole and its checksum matches. */
enum { KEY_AT = 8, SIZE_AT = 40, SUM_AT = 48, HEAD = 80 };
static int well_formed(const unsigned char *b, size_t n) {
  unsigned char sum[CLLOSS__SHA256_SIZE];
  if (n <= HEAD || memcmp(b, "CLLOSSB2", 8) != 0)
    return 0;
  clloss__sha256_of(b + HEAD, n - HEAD, sum);
  return memcmp(sum, b + SUM_AT, sizeof sum) == 0;
}

static void test_cache_written_then_used(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  check_call(0);
  char names[8][256];
  CU_ASSERT_EQUAL(bin_files(names, 8), 1);
  size_t n;
  unsigned char *b = read_all(names[0], &n);
  CU_ASSERT_TRUE(b && well_formed(b, n));
  free(b);
  struct stat st;
  char path[600];
  snprintf(path, sizeof path, "%s/%s", g_dir, names[0]);
  CU_ASSERT_EQUAL(stat(path, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
  time_t written = st.st_mtime;
  check_call(0);
  /* Read, not written again: the second context did not build it. */
  CU_ASSERT_EQUAL(stat(path, &st), 0);
  CU_ASSERT_EQUAL(st.st_mtime, written);
}

/* One flipped bit in every binary (the b[112] ^= 0x40): each call
 * still gets its result, and each file is written again, whole. */
static void test_cache_flipped_bit_rebuilt(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  for (int w = 0; w < 3; w++)
    check_call(w);
  char names[8][256];
  int count = bin_files(names, 8);
  CU_ASSERT_EQUAL_FATAL(count, 3);
  for (int i = 0; i < count; i++) {
    size_t n;
    unsigned char *b = read_all(names[i], &n);
    CU_ASSERT_TRUE_FATAL(b && n > 112);
    b[112] ^= 0x40;
    write_all(names[i], b, n);
    free(b);
  }
  for (int w = 0; w < 3; w++)
    check_call(w);
  CU_ASSERT_EQUAL(bin_files(names, 8), 3);
  for (int i = 0; i < count; i++) {
    size_t n;
    unsigned char *b = read_all(names[i], &n);
    CU_ASSERT_TRUE(b && well_formed(b, n));
    free(b);
  }
}

/* check_call(which) after `damage` was done to its binary: the call gets
 * its result, the damaged file is never handed to the driver (a driver
 * may abort on a binary it did not produce: Rusticl panics with 'unknown
 * version'), and a whole file is written in its place. */
static void check_not_given(int which) {
  unsigned before = clloss__cache_binaries_given();
  check_call(which);
  CU_ASSERT_EQUAL(clloss__cache_binaries_given(), before);
  char names[8][256];
  CU_ASSERT_EQUAL_FATAL(bin_files(names, 8), 1);
  size_t n;
  unsigned char *b = read_all(names[0], &n);
  CU_ASSERT_TRUE(b && well_formed(b, n) && b[HEAD] != 0x5a);
  free(b);
}

/* Damaged files: truncated, a payload that no longer matches its
 * checksum (garbage, or cut short), another key. None reaches the driver;
 * a whole, matching file does (the counter is white-box). */
static void test_cache_garbage_rebuilt(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  check_call(0);
  char names[8][256];
  CU_ASSERT_EQUAL_FATAL(bin_files(names, 8), 1);
  write_all(names[0], (const unsigned char *)"CLLOSSB2garbage", 15);
  check_not_given(0);
  size_t n;
  unsigned char *good = read_all(names[0], &n), *b = malloc(n);
  CU_ASSERT_TRUE_FATAL(good && b && well_formed(good, n));
  memcpy(b, good, n);
  memset(b + HEAD, 0x5a, n - HEAD); /* the checksum is the old one */
  write_all(names[0], b, n);
  check_not_given(0);
  write_all(names[0], good, n - 1); /* one byte short */
  check_not_given(0);
  memcpy(b, good, n);
  b[KEY_AT] ^= 1; /* another platform's, device's or driver's key */
  write_all(names[0], b, n);
  check_not_given(0);
  /* The file as written: handed over, once. */
  unsigned before = clloss__cache_binaries_given();
  write_all(names[0], good, n);
  check_call(0);
  CU_ASSERT_EQUAL(clloss__cache_binaries_given(), before + 1);
  free(good);
  free(b);
}

/* Another program's binary under this program's name: with the other key
 * in its header (a copied file), and with this key and a checksum that
 * matches (the driver accepts it, but the kernels are not there). */
static void test_cache_foreign_binary_rebuilt(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  check_call(1); /* cross_entropy */
  char ce[8][256], both[8][256], nll[256] = "";
  CU_ASSERT_EQUAL_FATAL(bin_files(ce, 8), 1);
  check_call(2); /* nll_loss */
  CU_ASSERT_EQUAL_FATAL(bin_files(both, 8), 2);
  snprintf(nll, sizeof nll, "%s",
           strcmp(both[0], ce[0]) == 0 ? both[1] : both[0]);
  size_t nn, nc;
  unsigned char *bn = read_all(nll, &nn), *bc = read_all(ce[0], &nc);
  CU_ASSERT_TRUE_FATAL(bn && bc);
  write_all(ce[0], bn, nn); /* copied whole */
  check_call(1);
  free(bc);
  bc = read_all(ce[0], &nc);
  CU_ASSERT_TRUE_FATAL(bc && well_formed(bc, nc));
  memcpy(bn + KEY_AT, bc + KEY_AT, CLLOSS__SHA256_SIZE); /* this key */
  write_all(ce[0], bn, nn);
  check_call(1);
  free(bc);
  bc = read_all(ce[0], &nc);
  CU_ASSERT_TRUE(bc && well_formed(bc, nc));
  CU_ASSERT_TRUE(bc && (nc != nn || memcmp(bc + HEAD, bn + HEAD, nc - HEAD)));
  free(bn);
  free(bc);
  check_call(1);
}

/* A link planted where the old code put its temporary files
 * (<file>.<pid>.tmp) is never written through. */
static void test_cache_planted_link(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  check_call(0);
  char names[8][256];
  CU_ASSERT_EQUAL_FATAL(bin_files(names, 8), 1);
  char victim[] = "/tmp/clloss-victim-XXXXXX";
  int fd = mkstemp(victim);
  CU_ASSERT_TRUE_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(write(fd, "victim", 6), 6);
  close(fd);
  char bin[600], link[700];
  snprintf(bin, sizeof bin, "%s/%s", g_dir, names[0]);
  unlink(bin);
  snprintf(link, sizeof link, "%s.%ld.tmp", bin, (long)getpid());
  CU_ASSERT_EQUAL(symlink(victim, link), 0);
  /* And where this code puts them (.<file>.<pid>.<serial>.tmp): O_EXCL
   * and O_NOFOLLOW skip them. */
  char now[8][700];
  for (int i = 0; i < 8; i++) {
    snprintf(now[i], sizeof now[i], "%s/.%s.%ld.%d.tmp", g_dir, names[0],
             (long)getpid(), i);
    CU_ASSERT_EQUAL(symlink(victim, now[i]), 0);
  }
  check_call(0);
  for (int i = 0; i < 8; i++)
    unlink(now[i]);
  char text[64];
  tu_slurp(victim, text, sizeof text);
  CU_ASSERT_STRING_EQUAL(text, "victim");
  struct stat st;
  CU_ASSERT_EQUAL(lstat(bin, &st), 0);
  CU_ASSERT_TRUE(S_ISREG(st.st_mode));
  CU_ASSERT_EQUAL(lstat(link, &st), 0);
  CU_ASSERT_TRUE(S_ISLNK(st.st_mode));
  unlink(link);
  unlink(victim);
}

static void test_cache_folder_private(void) {
  TU_REQUIRE_DEVICE();
  char top[300], dir[400];
  snprintf(top, sizeof top, "%s/new", g_dir);
  snprintf(dir, sizeof dir, "%s/new/clloss", g_dir);
  setenv("CLLOSS_CACHE_DIR", dir, 1);
  check_call(0);
  struct stat st;
  CU_ASSERT_EQUAL(stat(top, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
  CU_ASSERT_EQUAL(stat(dir, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
  CU_ASSERT_TRUE(tu_dir_entries(dir, 1) >= 1);
  rmdir(dir);
  rmdir(top);
  setenv("CLLOSS_CACHE_DIR", g_dir, 1);
}

/* ---- the trust rule ---- */

static void path_of(const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", g_dir, name);
}

/* One cached binary: its name in names[0] and its path in `path`. */
static void one_binary(char names[][256], char *path, size_t cap) {
  tu_dir_entries(g_dir, 1);
  check_call(0);
  CU_ASSERT_EQUAL_FATAL(bin_files(names, 8), 1);
  path_of(names[0], path, cap);
}

/* Notes what is at `path` now, and holds it with a second link so that
 * its inode number cannot be given to the file that replaces it. */
static void hold(const char *path, struct stat *before) {
  char held[600];
  path_of("held", held, sizeof held);
  CU_ASSERT_EQUAL(lstat(path, before), 0);
  CU_ASSERT_EQUAL(link(path, held), 0);
}

/* The file at `path` is a regular file of this user, mode 0600, and not
 * the one held (a refused file was replaced, not read). */
static void check_rewritten(const char *path, const struct stat *before) {
  char held[600];
  path_of("held", held, sizeof held);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(lstat(path, &st), 0);
  CU_ASSERT_TRUE(S_ISREG(st.st_mode));
  CU_ASSERT_EQUAL(st.st_uid, geteuid());
  CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
  CU_ASSERT_TRUE(st.st_ino != before->st_ino || st.st_dev != before->st_dev);
  unlink(held);
  size_t n;
  unsigned char *b = read_all(strrchr(path, '/') + 1, &n);
  CU_ASSERT_TRUE(b && well_formed(b, n));
  free(b);
}

/* A FIFO where a binary should be: opening it for reading would wait for a
 * writer forever. The call goes on (alarm: a hang kills the test run
 * instead of stalling it) and the FIFO is replaced by a binary. */
static void test_cache_fifo_not_opened(void) {
  TU_REQUIRE_DEVICE();
  char names[8][256], path[600];
  one_binary(names, path, sizeof path);
  unlink(path);
  CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
  struct stat before;
  hold(path, &before);
  alarm(120);
  check_call(0);
  alarm(0);
  check_rewritten(path, &before);
}

/* A file that group or others may write (mode 0666) is refused: it is
 * not read, and the program built from source replaces it. */
static void test_cache_writable_file_refused(void) {
  TU_REQUIRE_DEVICE();
  char names[8][256], path[600];
  one_binary(names, path, sizeof path);
  CU_ASSERT_EQUAL(chmod(path, 0666), 0);
  struct stat before;
  hold(path, &before);
  check_call(0);
  check_rewritten(path, &before);
  CU_ASSERT_EQUAL(chmod(path, 0620), 0); /* group write alone, too */
  hold(path, &before);
  check_call(0);
  check_rewritten(path, &before);
}

/* A link in place of a binary is not followed, even to a good binary. */
static void test_cache_link_refused(void) {
  TU_REQUIRE_DEVICE();
  char names[8][256], path[600], aside[700];
  one_binary(names, path, sizeof path);
  snprintf(aside, sizeof aside, "%s/aside", g_dir);
  CU_ASSERT_EQUAL_FATAL(rename(path, aside), 0);
  CU_ASSERT_EQUAL_FATAL(symlink(aside, path), 0);
  struct stat before;
  hold(path, &before);
  check_call(0);
  check_rewritten(path, &before);
  unlink(aside);
}

/* A folder that others may write (0777) is a cache miss: nothing in it is
 * read (the binary stays as it was) and nothing is written to it; the
 * calls still succeed. */
static void test_cache_writable_folder_refused(void) {
  TU_REQUIRE_DEVICE();
  char names[8][256], path[600];
  one_binary(names, path, sizeof path);
  /* A damaged binary: were it read, it would be removed and rewritten. */
  size_t n;
  unsigned char *b = read_all(names[0], &n);
  CU_ASSERT_TRUE_FATAL(b && n > HEAD);
  b[n - 1] ^= 1;
  write_all(names[0], b, n);
  free(b);
  struct stat before, after;
  hold(path, &before);
  CU_ASSERT_EQUAL(chmod(g_dir, 0777), 0);
  check_call(0);
  check_call(1);
  CU_ASSERT_EQUAL(chmod(g_dir, 0700), 0);
  CU_ASSERT_EQUAL(lstat(path, &after), 0);
  CU_ASSERT_EQUAL(after.st_ino, before.st_ino);
  CU_ASSERT_EQUAL(after.st_mtime, before.st_mtime);
  CU_ASSERT_EQUAL(bin_files(names, 8), 1); /* cross_entropy's not written */
  /* Trusted again: the damaged file is found and replaced. */
  check_call(0);
  check_rewritten(path, &before);
}

/* Files and folders of another user: only root can make them, so the test
 * runs as root and is skipped (with a note) otherwise. */
static void test_cache_foreign_owner_refused(void) {
  TU_REQUIRE_DEVICE();
  if (geteuid() != 0) {
    tu_skip("needs root to chown files to another user");
    return;
  }
  const uid_t other = 4242;
  char names[8][256], path[600];
  one_binary(names, path, sizeof path);
  struct stat before;
  CU_ASSERT_EQUAL_FATAL(chown(path, other, (gid_t)-1), 0);
  hold(path, &before);
  check_call(0);
  check_rewritten(path, &before);
  /* The folder: nothing read from it, nothing written to it. */
  tu_dir_entries(g_dir, 1);
  CU_ASSERT_EQUAL_FATAL(chown(g_dir, other, (gid_t)-1), 0);
  check_call(0);
  CU_ASSERT_EQUAL(tu_dir_entries(g_dir, 0), 0);
  CU_ASSERT_EQUAL(chown(g_dir, geteuid(), (gid_t)-1), 0);
}

static void test_cache_off(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  static const char *const offs[] = {"off", "OFF", "0", "no", "False"};
  for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
    setenv("CLLOSS_CACHE", offs[i], 1);
    check_call(0);
    CU_ASSERT_EQUAL(tu_dir_entries(g_dir, 0), 0);
  }
  setenv("CLLOSS_CACHE", "on", 1);
}

/* CLLOSS_CACHE unset: binaries only where they pay back (not on PoCL with
 * its own cache: there clloss neither reads nor writes one, and releasing
 * a context compiles nothing more). */
static void test_cache_default_by_driver(void) {
  TU_REQUIRE_DEVICE();
  tu_dir_entries(g_dir, 1);
  check_call(0); /* on: one binary */
  char names[8][256];
  CU_ASSERT_EQUAL_FATAL(bin_files(names, 8), 1);
  unsetenv("CLLOSS_CACHE");
  const clloss_device_info *info = clloss_context_device_info(tu_context(0));
  const int pay = clloss__binaries_pay(info);
  unsigned before = clloss__cache_binaries_given();
  check_call(0);
  CU_ASSERT_EQUAL(clloss__cache_binaries_given(), before + (pay ? 1 : 0));
  tu_dir_entries(g_dir, 1);
  check_call(1);
  CU_ASSERT_EQUAL(bin_files(names, 8), pay ? 1 : 0);
  if (strstr(info->platform_name, "Portable Computing Language")) {
    CU_ASSERT_FALSE(pay);
    /* PoCL's own cache turned off: clloss's binaries pay again. */
    char *saved = tu_env_save("POCL_KERNEL_CACHE");
    setenv("POCL_KERNEL_CACHE", "0", 1);
    CU_ASSERT_TRUE(clloss__binaries_pay(info));
    tu_env_restore("POCL_KERNEL_CACHE", saved);
  }
  setenv("CLLOSS_CACHE", "on", 1);
}

static void hex_of(const char *text, size_t n, char *out) {
  unsigned char d[CLLOSS__SHA256_SIZE];
  clloss__sha256_of(text, n, d);
  clloss__hex(d, sizeof d, out);
}

/* FIPS 180-4's examples, the one-million-'a' message in uneven pieces, and
 * the padding boundaries (55, 56 and 64 bytes). */
static void test_sha256(void) {
  char hex[65];
  hex_of("abc", 3, hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hex_of("", 0, hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  hex_of(two, strlen(two), hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  static char a[1000000];
  memset(a, 'a', sizeof a);
  clloss__sha256 s;
  clloss__sha256_init(&s);
  for (size_t done = 0, step = 1; done < sizeof a; step = step * 3 + 1) {
    size_t take = sizeof a - done < step ? sizeof a - done : step;
    clloss__sha256_update(&s, a + done, take);
    done += take;
  }
  unsigned char d[CLLOSS__SHA256_SIZE];
  clloss__sha256_final(&s, d);
  clloss__hex(d, sizeof d, hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  hex_of(a, 55, hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  hex_of(a, 56, hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  hex_of(a, 64, hex);
  CU_ASSERT_STRING_EQUAL(
      hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

int test_binary_cache_register(void) {
  TU_SUITE("binary_cache", init, clean, TU_TEST(test_cache_written_then_used),
           TU_TEST(test_cache_flipped_bit_rebuilt),
           TU_TEST(test_cache_garbage_rebuilt),
           TU_TEST(test_cache_foreign_binary_rebuilt),
           TU_TEST(test_cache_planted_link), TU_TEST(test_cache_folder_private),
           TU_TEST(test_cache_fifo_not_opened),
           TU_TEST(test_cache_writable_file_refused),
           TU_TEST(test_cache_link_refused),
           TU_TEST(test_cache_writable_folder_refused),
           TU_TEST(test_cache_foreign_owner_refused), TU_TEST(test_cache_off),
           TU_TEST(test_cache_default_by_driver), TU_TEST(test_sha256));
}
