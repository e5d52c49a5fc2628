/* binary_cache.h - the cache folder: compiled program binaries and the
 * variant choices, on disk. */
#ifndef CLLOSS_BINARY_CACHE_H
#define CLLOSS_BINARY_CACHE_H
#include <stdint.h>

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
/* The path of `name` in the cache folder (created 0700 when missing); 0
 * when the cache is disabled or has no folder. */
int clloss__cache_file(const char *name, char *out, size_t cap);
/* Replaces `name` in the cache folder by `n` bytes: a new file made with
 * mkstemp in that folder, written, then renamed over the name (never
 * following a link). Returns 1 on success; failures leave the old file. */
int clloss__cache_write(const char *name, const void *data, size_t n);
/* The program of `key` from the cache, built, or NULL when it is missing
 * or fails any check (format, size, key, checksum, the driver's own). A
 * file that fails a check is removed. */
cl_program clloss__cache_load(clloss_context *ctx,
                              const unsigned char key[CLLOSS__SHA256_SIZE],
                              const char *options);
/* Removes the file of `key` (a binary that the driver accepted but that
 * turned out wrong, e.g. without an expected kernel). */
void clloss__cache_remove(const unsigned char key[CLLOSS__SHA256_SIZE]);
/* Saves a built program's binary under `key`; failures are ignored. */
void clloss__cache_store(const unsigned char key[CLLOSS__SHA256_SIZE],
                         cl_program program);

#endif
