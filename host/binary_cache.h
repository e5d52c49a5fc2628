/* binary_cache.h - compiled program binaries cached on disk. */
#ifndef CLLOSS_BINARY_CACHE_H
#define CLLOSS_BINARY_CACHE_H
#include <stdint.h>

#include "internal.h"

/* A hash of the device, its platform and driver, and clloss's version. */
uint64_t clloss__device_key(const clloss_context *ctx);
/* The path of `name` in the cache folder (created when missing); 0 when
 * the cache is disabled or has no folder. */
int clloss__cache_file(const char *name, char *out, size_t cap);
/* A hash of everything a binary depends on. */
uint64_t clloss__cache_key(const clloss_context *ctx, const char *options,
                           const char *const *texts, int count);
/* A built program from the cache, or NULL (missing, stale, rejected). */
cl_program clloss__cache_load(clloss_context *ctx, uint64_t key,
                              const char *options);
/* Saves a built program's binary; failures are ignored. */
void clloss__cache_store(clloss_context *ctx, uint64_t key, cl_program program);

#endif
