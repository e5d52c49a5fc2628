/* binary_cache.c - compiled program binaries on disk, so that a second
 * process on the same device starts without recompiling.
 *
 * Where: $CLLOSS_CACHE_DIR, else $XDG_CACHE_HOME/clloss, else
 * $HOME/.cache/clloss; folders that clloss creates are 0700. The CLLOSS_CACHE
 * switch (off, 0, no, false, any case) disables it. One file per program, named
 * by the SHA-256 of everything the binary depends on (device, platform, driver
 * and clloss version, build options, the full source):
 *
 *   "CLLOSSB2" | key (32 bytes) | payload size (8, little-endian)
 *   | SHA-256 of the payload (32) | payload (the driver's binary)
 *
 * A file is handed to the driver only when its size, key and checksum all
 * match; one that fails a check, or that the driver rejects, is removed and
 * the program is built from source (and written again when the context is
 * released). New files are written to a mkstemp file in the folder and
 * renamed into place: readers never see half a file, concurrent writers of
 * one key are harmless, and no predictable path is ever opened for
 * writing. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binary_cache.h"

static const char magic[8] = {'C', 'L', 'L', 'O', 'S', 'S', 'B', '2'};
enum { HEAD = 8 + CLLOSS__SHA256_SIZE + 8 + CLLOSS__SHA256_SIZE };
/* Larger payloads are not binaries of ours. */
#define MAX_PAYLOAD ((uint64_t)1 << 30)

/* Each field with its terminating NUL, so that fields cannot run into one
 * another. */
static void add_str(clloss__sha256 *s, const char *text) {
  clloss__sha256_update(s, text, strlen(text) + 1);
}

static void add_device(clloss__sha256 *s, const clloss_device_info *info) {
  add_str(s, "clloss " CLLOSS_VERSION_STRING);
  add_str(s, info->name);
  add_str(s, info->vendor);
  add_str(s, info->platform_name);
  add_str(s, info->driver_version);
}

void clloss__device_digest(const clloss_device_info *info,
                           unsigned char out[CLLOSS__SHA256_SIZE]) {
  clloss__sha256 s;
  clloss__sha256_init(&s);
  add_device(&s, info);
  clloss__sha256_final(&s, out);
}

void clloss__cache_key(const clloss_context *ctx, const char *options,
                       const char *const *texts, int count,
                       unsigned char out[CLLOSS__SHA256_SIZE]) {
  clloss__sha256 s;
  clloss__sha256_init(&s);
  add_device(&s, &ctx->info);
  add_str(&s, options);
  for (int i = 0; i < count; i++)
    add_str(&s, texts[i]);
  clloss__sha256_final(&s, out);
}

static int enabled(void) {
  return clloss__env_switch("CLLOSS_CACHE", 1) == 1;
}

/* The cache folder, created (0700, like mkdir -p) when missing; 0 if there
 * is none. */
static int cache_dir(char *out, size_t cap) {
  const char *dir = getenv("CLLOSS_CACHE_DIR");
  int n;
  if (dir && *dir)
    n = snprintf(out, cap, "%s", dir);
  else if ((dir = getenv("XDG_CACHE_HOME")) && *dir)
    n = snprintf(out, cap, "%s/clloss", dir);
  else if ((dir = getenv("HOME")) && *dir)
    n = snprintf(out, cap, "%s/.cache/clloss", dir);
  else
    return 0;
  if (n <= 0 || (size_t)n >= cap)
    return 0;
  struct stat st;
  if (stat(out, &st) == 0)
    return S_ISDIR(st.st_mode);
  for (char *p = out + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    mkdir(out, 0700); /* existing folders keep their mode */
    *p = '/';
  }
  mkdir(out, 0700);
  return stat(out, &st) == 0 && S_ISDIR(st.st_mode);
}

int clloss__cache_file(const char *name, char *out, size_t cap) {
  char dir[1024];
  if (!enabled() || !cache_dir(dir, sizeof dir))
    return 0;
  int n = snprintf(out, cap, "%s/%s", dir, name);
  return n > 0 && (size_t)n < cap;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return 0;
    p += w;
    n -= (size_t)w;
  }
  return 1;
}

/* Writes parts[0..count) to a new mkstemp file beside `path`, then renames
 * it to `path`. rename() replaces a link at `path` itself, never its
 * target. */
static int write_atomic(const char *path, const void *const *parts,
                        const size_t *sizes, int count) {
  char tmp[1200];
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
  int n = snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", (int)dir_len, path,
                   path + dir_len);
  if (n <= 0 || (size_t)n >= sizeof tmp)
    return 0;
  int fd = mkstemp(tmp); /* O_CREAT | O_EXCL, mode 0600 */
  if (fd < 0)
    return 0;
  int ok = 1;
  for (int i = 0; ok && i < count; i++)
    ok = write_all(fd, parts[i], sizes[i]);
  if (close(fd) != 0)
    ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return 0;
  }
  return 1;
}

int clloss__cache_write(const char *name, const void *data, size_t n) {
  char path[1100];
  if (!clloss__cache_file(name, path, sizeof path))
    return 0;
  const void *parts[1] = {data};
  return write_atomic(path, parts, &n, 1);
}

static int cache_path(const unsigned char key[CLLOSS__SHA256_SIZE], char *out,
                      size_t cap) {
  char name[48];
  clloss__hex(key, 16, name); /* 128 bits name the file; all 256 are kept */
  memcpy(name + 32, ".bin", 5);
  return clloss__cache_file(name, out, cap);
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* The verified payload of the file at `path`: malloc'd, *size bytes; NULL
 * when anything does not match. */
static unsigned char *read_payload(const char *path,
                                   const unsigned char key[CLLOSS__SHA256_SIZE],
                                   size_t *size) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  unsigned char head[HEAD], digest[CLLOSS__SHA256_SIZE];
  unsigned char *bin = NULL;
  struct stat st;
  ssize_t got = read(fd, head, HEAD);
  uint64_t n = got == HEAD ? get_le64(head + 8 + CLLOSS__SHA256_SIZE) : 0;
  int ok = got == HEAD && memcmp(head, magic, 8) == 0 &&
           memcmp(head + 8, key, CLLOSS__SHA256_SIZE) == 0 && n > 0 &&
           n <= MAX_PAYLOAD && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           (uint64_t)st.st_size == HEAD + n && (bin = malloc((size_t)n));
  for (size_t done = 0; ok && done < n;) {
    ssize_t r = read(fd, bin + done, (size_t)n - done);
    if (r < 0 && errno == EINTR)
      continue;
    ok = r > 0;
    done += ok ? (size_t)r : 0;
  }
  close(fd);
  if (ok) {
    clloss__sha256_of(bin, (size_t)n, digest);
    ok = memcmp(digest, head + HEAD - CLLOSS__SHA256_SIZE,
                CLLOSS__SHA256_SIZE) == 0;
  }
  if (!ok) {
    free(bin);
    return NULL;
  }
  *size = (size_t)n;
  return bin;
}

cl_program clloss__cache_load(clloss_context *ctx,
                              const unsigned char key[CLLOSS__SHA256_SIZE],
                              const char *options) {
  char path[1100];
  if (!cache_path(key, path, sizeof path))
    return NULL;
  struct stat st;
  if (stat(path, &st) != 0)
    return NULL; /* nothing cached: not an error */
  size_t len = 0;
  unsigned char *bin = read_payload(path, key, &len);
  cl_program program = NULL;
  if (bin) {
    const unsigned char *bins[1] = {bin};
    cl_int status = CL_SUCCESS, err;
    program = clCreateProgramWithBinary(ctx->cl, 1, &ctx->device, &len, bins,
                                        &status, &err);
    if (program && (status != CL_SUCCESS || err != CL_SUCCESS ||
                    clBuildProgram(program, 1, &ctx->device, options, NULL,
                                   NULL) != CL_SUCCESS)) {
      clReleaseProgram(program);
      program = NULL;
    }
    free(bin);
  }
  if (!program)
    unlink(path); /* damaged, foreign or rejected: rebuilt from source */
  return program;
}

void clloss__cache_remove(const unsigned char key[CLLOSS__SHA256_SIZE]) {
  char path[1100];
  if (cache_path(key, path, sizeof path))
    unlink(path);
}

void clloss__cache_store(const unsigned char key[CLLOSS__SHA256_SIZE],
                         cl_program program) {
  char path[1100];
  if (!cache_path(key, path, sizeof path))
    return;
  /* Getting a binary may cost seconds (PoCL compiles it): not for a folder
   * that cannot take it. */
  char *slash = strrchr(path, '/');
  *slash = '\0';
  int writable = access(path, W_OK | X_OK) == 0;
  *slash = '/';
  size_t size = 0;
  if (!writable ||
      clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size,
                       NULL) != CL_SUCCESS ||
      size == 0 || size > MAX_PAYLOAD)
    return;
  unsigned char *bin = malloc(size);
  if (!bin)
    return;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) ==
      CL_SUCCESS) {
    unsigned char head[HEAD];
    memcpy(head, magic, 8);
    memcpy(head + 8, key, CLLOSS__SHA256_SIZE);
    put_le64(head + 8 + CLLOSS__SHA256_SIZE, size);
    clloss__sha256_of(bin, size, head + HEAD - CLLOSS__SHA256_SIZE);
    const void *parts[2] = {head, bin};
    const size_t sizes[2] = {HEAD, size};
    write_atomic(path, parts, sizes, 2);
  }
  free(bin);
}
