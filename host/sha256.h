/* sha256.h - SHA-256 (FIPS 180-4), for the names and checksums of the files
 * in the cache folder. */
#ifndef CLLOSS_SHA256_H
#define CLLOSS_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define CLLOSS__SHA256_SIZE 32

typedef struct clloss__sha256 {
  uint32_t h[8];
  uint64_t length; /* bytes hashed so far */
  unsigned char block[64];
  size_t used; /* bytes waiting in block */
} clloss__sha256;

void clloss__sha256_init(clloss__sha256 *s);
void clloss__sha256_update(clloss__sha256 *s, const void *data, size_t n);
void clloss__sha256_final(clloss__sha256 *s,
                          unsigned char out[CLLOSS__SHA256_SIZE]);
/* The digest of one buffer. */
void clloss__sha256_of(const void *data, size_t n,
                       unsigned char out[CLLOSS__SHA256_SIZE]);
/* The first `bytes` of a digest as lower-case hex into out (2 * bytes + 1
 * characters). */
void clloss__hex(const unsigned char *digest, size_t bytes, char *out);

#endif
