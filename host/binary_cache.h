/* binary_cache.h - the cache folder: compiled program binaries and the
 * variant choices, on disk. */
#ifndef CLLOSS_BINARY_CACHE_H
#define CLLOSS_BINARY_CACHE_H
#include <stdint.h>
#include <stdio.h>

#include "internal.h"
#include "sha256.h"

/* A digest of the device, its platform and driver, and clloss's version. */
void clloss__device_digest(const clloss_device_info *info,
                           unsigned char out[CLLOSS__SHA256_SIZE]);
/* A digest of everything a binary depends on: the device's, the build
 * options and every source text. */
void clloss__cache_key(const clloss_context *ctx, const char *options,
                       const char *const *texts, int count,
                       unsigned char out[CLLOSS__SHA256_SIZE]);
/* `name` in the cache folder, open for reading, when the folder and the
 * file pass the trust rule (binary_cache.c: owned by the effective user,
 * writable by no one else, a regular file reached without a link); NULL
 * when the cache is off, the file is missing, or anything is refused.
 * Never blocks (a FIFO is refused, not read). */
FILE *clloss__cache_open(const char *name);
/* Replaces `name` in the cache folder by `n` bytes: a new 0600 file made
 * with O_EXCL in that folder, written, then renamed over the name (never
 * following a link). Returns 1 on success; failures, and a folder that the
 * trust rule refuses, leave the old file. */
int clloss__cache_write(const char *name, const void *data, size_t n);
/* The program of `key` from the cache, built, or NULL when it is missing
 * or fails any check (the trust rule, format, size, key, checksum, the
 * driver's own). A file that fails a check is removed (never in a refused
 * folder). */
/* How many cached binaries this process has handed to a driver (for the
 * tests: a file that fails a check must never be). */
unsigned clloss__cache_binaries_given(void);
cl_program clloss__cache_load(clloss_context *ctx,
                              const unsigned char key[CLLOSS__SHA256_SIZE],
                              const char *options);
/* Removes the file of `key` (a binary that the driver accepted but that
 * turned out wrong, e.g. without an expected kernel). */
void clloss__cache_remove(const unsigned char key[CLLOSS__SHA256_SIZE]);
/* Saves a built program's binary under `key` when ctx caches binaries;
 * failures are ignored. */
void clloss__cache_store(const clloss_context *ctx,
                         const unsigned char key[CLLOSS__SHA256_SIZE],
                         cl_program program);
/* 1 when clloss's own binaries pay back on the device's driver (measured:
 * all but PoCL with its own cache on; binary_cache.c). */
int clloss__binaries_pay(const clloss_device_info *info);
/* 1 when ctx reads and writes program binaries: CLLOSS_CACHE on, or unset
 * where they pay back (clloss__binaries_pay). */
int clloss__cache_binaries(const clloss_context *ctx);

#endif
