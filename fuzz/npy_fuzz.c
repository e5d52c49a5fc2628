/* npy_fuzz.c - libFuzzer target for the .npy reader: any byte string must
 * give a status, never a crash, a leak or an out-of-bounds read; and what
 * parses must survive a write and a second parse unchanged.
 * Build and run: see tools/CMakeLists.txt (CLLOSS_BUILD_FUZZ). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  npy_array a;
  char msg[256];
  if (npy_parse(data, size, &a, msg, sizeof msg) != NPY_OK)
    return 0;
  size_t bytes = a.count * npy_dtype_size(a.dtype);
  void *buf = NULL;
  size_t len = 0;
  if (npy_encode(a.dtype, a.ndim, a.shape, a.data, &buf, &len, msg,
                 sizeof msg) != NPY_OK)
    abort();
  npy_array b;
  if (npy_parse(buf, len, &b, msg, sizeof msg) != NPY_OK)
    abort();
  if (b.dtype != a.dtype || b.ndim != a.ndim || b.count != a.count ||
      memcmp(b.shape, a.shape, sizeof a.shape) != 0 ||
      (bytes && memcmp(a.data, b.data, bytes) != 0))
    abort();
  free(buf);
  npy_free(&a);
  npy_free(&b);
  return 0;
}
