/* binary_cache.c - compiled program binaries on disk, so that a second
 * process on the same device starts without recompiling.
 *
 * Where: $CLLOSS_CACHE_DIR, else $XDG_CACHE_HOME/clloss, else
 * $HOME/.cache/clloss. CLLOSS_CACHE=off (or 0) disables it. One file per
 * program, named by a 64-bit hash of everything the binary depends on:
 * device and platform names, driver version, clloss version, build options
 * and the full source. A file that is unreadable, truncated, from another
 * key, or that the driver rejects is ignored (and rebuilt from source); a
 * cache that cannot be written is silently skipped. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binary_cache.h"

static const char magic[8] = {'C', 'L', 'L', 'O', 'S', 'S', 'B', '1'};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s) {
  return fnv1a(h, s, strlen(s) + 1); /* the NUL separates fields */
}

uint64_t clloss__device_key(const clloss_context *ctx) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv1a_str(h, CLLOSS_VERSION_STRING);
  h = fnv1a_str(h, ctx->info.name);
  h = fnv1a_str(h, ctx->info.vendor);
  h = fnv1a_str(h, ctx->info.platform_name);
  h = fnv1a_str(h, ctx->info.driver_version);
  return h;
}

uint64_t clloss__cache_key(const clloss_context *ctx, const char *options,
                           const char *const *texts, int count) {
  uint64_t h = clloss__device_key(ctx);
  h = fnv1a_str(h, options);
  for (int i = 0; i < count; i++)
    h = fnv1a_str(h, texts[i]);
  return h;
}

static int enabled(void) {
  const char *v = getenv("CLLOSS_CACHE");
  return !(v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
}

/* The cache directory, created when missing; 0 if there is none. */
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
  /* mkdir -p */
  for (char *p = out + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    mkdir(out, 0755);
    *p = '/';
  }
  mkdir(out, 0755);
  struct stat st;
  return stat(out, &st) == 0 && S_ISDIR(st.st_mode);
}

int clloss__cache_file(const char *name, char *out, size_t cap) {
  char dir[1024];
  if (!enabled() || !cache_dir(dir, sizeof dir))
    return 0;
  int n = snprintf(out, cap, "%s/%s", dir, name);
  return n > 0 && (size_t)n < cap;
}

static int cache_path(uint64_t key, char *out, size_t cap) {
  char name[32];
  snprintf(name, sizeof name, "%016llx.bin", (unsigned long long)key);
  return clloss__cache_file(name, out, cap);
}

cl_program clloss__cache_load(clloss_context *ctx, uint64_t key,
                              const char *options) {
  char path[1100];
  if (!cache_path(key, path, sizeof path))
    return NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char head[8];
  uint64_t file_key = 0, size = 0;
  unsigned char *bin = NULL;
  int ok = fread(head, 1, 8, f) == 8 && memcmp(head, magic, 8) == 0 &&
           fread(&file_key, sizeof file_key, 1, f) == 1 && file_key == key &&
           fread(&size, sizeof size, 1, f) == 1 && size > 0 &&
           size < ((uint64_t)1 << 31) && (bin = malloc((size_t)size)) &&
           fread(bin, 1, (size_t)size, f) == size;
  fclose(f);
  cl_program program = NULL;
  if (ok) {
    size_t len = (size_t)size;
    const unsigned char *bins[1] = {bin};
    cl_int status, err;
    program = clCreateProgramWithBinary(ctx->cl, 1, &ctx->device, &len, bins,
                                        &status, &err);
    if (program && (status != CL_SUCCESS || err != CL_SUCCESS ||
                    clBuildProgram(program, 1, &ctx->device, options, NULL,
                                   NULL) != CL_SUCCESS)) {
      clReleaseProgram(program);
      program = NULL;
    }
  }
  free(bin);
  return program;
}

void clloss__cache_store(clloss_context *ctx, uint64_t key,
                         cl_program program) {
  char path[1100], tmp[1200];
  if (!cache_path(key, path, sizeof path))
    return;
  size_t size = 0;
  if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size,
                       NULL) != CL_SUCCESS ||
      size == 0)
    return;
  unsigned char *bin = malloc(size);
  if (!bin)
    return;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) ==
      CL_SUCCESS) {
    /* Write a private temporary, then rename: readers never see half a
     * file, and concurrent writers of the same key are harmless. */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    uint64_t size64 = size;
    int ok = f && fwrite(magic, 1, 8, f) == 8 &&
             fwrite(&key, sizeof key, 1, f) == 1 &&
             fwrite(&size64, sizeof size64, 1, f) == 1 &&
             fwrite(bin, 1, size, f) == size;
    if (f && fclose(f) != 0)
      ok = 0;
    if (!ok || rename(tmp, path) != 0)
      remove(tmp);
  }
  free(bin);
  (void)ctx;
}
