/* binary_cache.c - compiled program binaries on disk, so that a second
 * process on the same device starts without recompiling, and the folder's
 * file handling that the tuning file shares.
 *
 * Where: $CLLOSS_CACHE_DIR, else $XDG_CACHE_HOME/clloss, else
 * $HOME/.cache/clloss; missing folders are created 0700. The CLLOSS_CACHE
 * switch (off, 0, no, false) disables it. One file per program, named by
 * the SHA-256 of everything the binary depends on (clloss version; device
 * name and vendor, platform name and version, device and OpenCL C version,
 * driver version; build options, the full source):
 *
 *   "CLLOSSB2" | key (32 bytes) | payload size (8, little-endian)
 *   | SHA-256 of the payload (32) | payload (the driver's binary)
 *
 * The checksum finds damage, not malice: anyone who can write a file can
 * write its checksum. What the driver runs must come from this user, so
 * the folder and every file are trusted only when they are owned by the
 * effective user and writable by nobody else (no group or other write
 * bit), files only when they are regular files. The folder is opened once
 * per operation and checked on its descriptor, and files are opened
 * relative to it (openat) with O_NOFOLLOW and O_NONBLOCK (a FIFO planted
 * there returns at once instead of blocking the process) and checked with
 * fstat before a byte is read. A folder that fails the rule is a cache
 * miss and is never written; a file that fails it, or fails a check of its
 * own (size, key, checksum, the driver's), is a miss and is removed, and
 * the program is built from source (and written again when the context is
 * released). New files are created 0600 with O_EXCL under a fresh name in
 * the folder, written and renamed into place: readers never see half a
 * file, concurrent writers of one key are harmless, and no existing path
 * is ever opened for writing. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
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

/* A string of the platform or the device, "" when it cannot be read. */
static void add_info(clloss__sha256 *s, const clloss_device_info *info,
                     int of_platform, cl_uint param) {
  char text[512] = "";
  cl_int err = of_platform ? clGetPlatformInfo(info->platform, param,
                                               sizeof text - 1, text, NULL)
                           : clGetDeviceInfo(info->device, param,
                                             sizeof text - 1, text, NULL);
  if (err != CL_SUCCESS)
    text[0] = '\0';
  add_str(s, text);
}

/* Everything a driver's binary is valid for: a driver is handed only
 * binaries that it produced itself on this platform, device and driver
 * version (Rusticl aborts the process on one it does not know). */
static void add_device(clloss__sha256 *s, const clloss_device_info *info) {
  add_str(s, "clloss " CLLOSS_VERSION_STRING);
  add_str(s, info->name);
  add_str(s, info->vendor);
  add_str(s, info->platform_name);
  add_info(s, info, 1, CL_PLATFORM_VERSION);
  add_info(s, info, 0, CL_DEVICE_VERSION);
  add_str(s, info->driver_version);
  add_str(s, info->opencl_c_version);
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

/* The CLLOSS_CACHE switch: 0 off, 1 on, 2 unset (binaries by driver). */
enum { SWITCH_UNSET = 2 };
static int cache_switch(void) {
  return clloss__env_switch("CLLOSS_CACHE", SWITCH_UNSET);
}

/* The folder (binaries and the tune file): unless the switch is off. */
static int enabled(void) {
  int v = cache_switch();
  return v == 1 || v == SWITCH_UNSET;
}

/* A variable that is set to a switch's "off". */
static int env_off(const char *name) {
  return clloss__env_switch(name, 1) == 0;
}

/* The measured rule (README, "Program and tuning cache"): clloss's own
 * binaries by default unless getting one costs more than about ten later
 * processes save. PoCL compiles every kernel again to hand out a binary
 * (2.2 s of CPU for cross_entropy's program on the 2-core EPYC) while its
 * own cache already spares the next process all but 25-90 ms: off, unless
 * POCL_KERNEL_CACHE=0 turns PoCL's cache off. Rusticl gives its binary for
 * 0.1-0.2 s and it spares 50-150 ms a process: on. */
int clloss__binaries_pay(const clloss_device_info *info) {
  if (strstr(info->platform_name, "Portable Computing Language"))
    return env_off("POCL_KERNEL_CACHE");
  return 1;
}

int clloss__cache_binaries(const clloss_context *ctx) {
  int v = cache_switch();
  return v == 1 || (v == SWITCH_UNSET && clloss__binaries_pay(&ctx->info));
}

/* The trust rule: owned by the effective user, writable by no one else. */
static int trusted(const struct stat *st) {
  return st->st_uid == geteuid() && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* The cache folder's path; 0 if there is none. */
static int dir_path(char *out, size_t cap) {
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
  return n > 0 && (size_t)n < cap;
}

static int open_folder(const char *path) {
  return open(path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
}

/* The cache folder, opened (created 0700, like mkdir -p, when missing)
 * and checked on its descriptor; -1 when the cache is off, has no folder,
 * or its folder is refused. A link to the folder is followed: the folder
 * it leads to is the one checked. */
static int open_dir(void) {
  char path[1024];
  if (!enabled() || !dir_path(path, sizeof path))
    return -1;
  int fd = open_folder(path);
  if (fd < 0 && errno == ENOENT) {
    for (char *p = path + 1; *p; p++) {
      if (*p != '/')
        continue;
      *p = '\0';
      mkdir(path, 0700); /* existing folders keep their mode */
      *p = '/';
    }
    mkdir(path, 0700);
    fd = open_folder(path);
  }
  struct stat st;
  if (fd >= 0 &&
      (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || !trusted(&st))) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* `name` in the folder `dir`, opened for reading when it is a regular file
 * that the rule trusts; -1 otherwise, with *refused set when something
 * that fails the rule is there (a link, a FIFO, another user's file). */
static int open_file(int dir, const char *name, int *refused) {
  *refused = 0;
  int fd = openat(dir, name,
                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    *refused = errno == ELOOP; /* a link */
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !trusted(&st)) {
    close(fd);
    *refused = 1;
    return -1;
  }
  return fd;
}

FILE *clloss__cache_open(const char *name) {
  int dir = open_dir();
  if (dir < 0)
    return NULL;
  int refused;
  int fd = open_file(dir, name, &refused);
  close(dir);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (fd >= 0 && !f)
    close(fd);
  return f;
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

/* Writes parts[0..count) to a new file in `dir` (O_EXCL, 0600, a name no
 * other writer uses: the process id and a counter, the next one when a
 * stale file holds it), then renames it to `name`. rename() replaces
 * whatever is at `name` (a link itself, never its target). */
static int write_atomic(int dir, const char *name, const void *const *parts,
                        const size_t *sizes, int count) {
  static atomic_uint serial;
  char tmp[160];
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 64; tries++) {
    int n = snprintf(tmp, sizeof tmp, ".%s.%ld.%u.tmp", name, (long)getpid(),
                     atomic_fetch_add(&serial, 1u));
    if (n <= 0 || (size_t)n >= sizeof tmp)
      return 0;
    fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0 && errno != EEXIST)
      return 0;
  }
  if (fd < 0)
    return 0;
  int ok = 1;
  for (int i = 0; ok && i < count; i++)
    ok = write_all(fd, parts[i], sizes[i]);
  if (close(fd) != 0)
    ok = 0;
  if (!ok || renameat(dir, tmp, dir, name) != 0) {
    unlinkat(dir, tmp, 0);
    return 0;
  }
  return 1;
}

int clloss__cache_write(const char *name, const void *data, size_t n) {
  int dir = open_dir();
  if (dir < 0)
    return 0;
  const void *parts[1] = {data};
  int ok = write_atomic(dir, name, parts, &n, 1);
  close(dir);
  return ok;
}

/* The file name of `key`: 128 bits of it in hex (all 256 are kept in
 * the file) and ".bin". */
static void bin_name(const unsigned char key[CLLOSS__SHA256_SIZE],
                     char name[40]) {
  clloss__hex(key, 16, name);
  memcpy(name + 32, ".bin", 5);
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

static int read_all(int fd, unsigned char *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t r = read(fd, p + done, n - done);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    done += (size_t)r;
  }
  return 1;
}

/* The verified payload of the open file `fd` (a trusted regular file):
 * malloc'd, *size bytes; NULL when anything does not match. Closes fd. */
static unsigned char *read_payload(int fd,
                                   const unsigned char key[CLLOSS__SHA256_SIZE],
                                   size_t *size) {
  unsigned char head[HEAD], digest[CLLOSS__SHA256_SIZE];
  unsigned char *bin = NULL;
  struct stat st;
  int ok = fstat(fd, &st) == 0 && st.st_size > HEAD &&
           read_all(fd, head, HEAD) && memcmp(head, magic, 8) == 0 &&
           memcmp(head + 8, key, CLLOSS__SHA256_SIZE) == 0;
  uint64_t n = ok ? get_le64(head + 8 + CLLOSS__SHA256_SIZE) : 0;
  ok = ok && n > 0 && n <= MAX_PAYLOAD && (uint64_t)st.st_size == HEAD + n &&
       (bin = malloc((size_t)n)) && read_all(fd, bin, (size_t)n);
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

/* Binaries handed to a driver (tests). */
static atomic_uint given;
unsigned clloss__cache_binaries_given(void) {
  return atomic_load(&given);
}

cl_program clloss__cache_load(clloss_context *ctx,
                              const unsigned char key[CLLOSS__SHA256_SIZE],
                              const char *options) {
  int dir = clloss__cache_binaries(ctx) ? open_dir() : -1;
  if (dir < 0)
    return NULL;
  char name[40];
  bin_name(key, name);
  int refused;
  int fd = open_file(dir, name, &refused);
  if (fd < 0) {
    if (refused)
      unlinkat(dir, name, 0); /* a link, FIFO or foreign file: rebuilt */
    close(dir);
    return NULL; /* nothing cached: not an error */
  }
  size_t len = 0;
  unsigned char *bin = read_payload(fd, key, &len);
  cl_program program = NULL;
  if (bin) {
    atomic_fetch_add(&given, 1u);
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
    unlinkat(dir, name, 0); /* damaged, foreign or rejected: rebuilt */
  close(dir);
  return program;
}

void clloss__cache_remove(const unsigned char key[CLLOSS__SHA256_SIZE]) {
  int dir = open_dir();
  if (dir < 0)
    return;
  char name[40];
  bin_name(key, name);
  unlinkat(dir, name, 0);
  close(dir);
}

/* The binary of a built program: malloc'd, *size bytes; NULL on failure
 * or when it is too large to be ours. */
static unsigned char *program_binary(cl_program program, size_t *size) {
  *size = 0;
  if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof *size, size,
                       NULL) != CL_SUCCESS ||
      *size == 0 || *size > MAX_PAYLOAD)
    return NULL;
  unsigned char *bin = malloc(*size);
  unsigned char *bins[1] = {bin};
  if (bin && clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof bins, bins,
                              NULL) != CL_SUCCESS) {
    free(bin);
    bin = NULL;
  }
  return bin;
}

void clloss__cache_store(const clloss_context *ctx,
                         const unsigned char key[CLLOSS__SHA256_SIZE],
                         cl_program program) {
  int dir = clloss__cache_binaries(ctx) ? open_dir() : -1;
  if (dir < 0)
    return;
  /* Getting a binary may cost seconds (PoCL compiles it): not for a folder
   * that cannot take it. */
  size_t size = 0;
  unsigned char *bin = faccessat(dir, ".", W_OK | X_OK, AT_EACCESS) == 0
                           ? program_binary(program, &size)
                           : NULL;
  if (bin) {
    unsigned char head[HEAD];
    memcpy(head, magic, 8);
    memcpy(head + 8, key, CLLOSS__SHA256_SIZE);
    put_le64(head + 8 + CLLOSS__SHA256_SIZE, size);
    clloss__sha256_of(bin, size, head + HEAD - CLLOSS__SHA256_SIZE);
    const void *parts[2] = {head, bin};
    const size_t sizes[2] = {HEAD, size};
    char name[40];
    bin_name(key, name);
    write_atomic(dir, name, parts, sizes, 2);
  }
  free(bin);
  close(dir);
}
