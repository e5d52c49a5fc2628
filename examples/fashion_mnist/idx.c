/* idx.c - IDX reader (through zlib, so plain and gzip'd files alike) and the
 * Fashion-MNIST split loader, with one error code per kind of bad file. */
#include "idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

const char *fm_idx_status_name(int status) {
  switch (status) {
  case FM_IDX_OK:
    return "FM_IDX_OK";
  case FM_IDX_ERR_OPEN:
    return "FM_IDX_ERR_OPEN";
  case FM_IDX_ERR_READ:
    return "FM_IDX_ERR_READ";
  case FM_IDX_ERR_MAGIC:
    return "FM_IDX_ERR_MAGIC";
  case FM_IDX_ERR_TYPE:
    return "FM_IDX_ERR_TYPE";
  case FM_IDX_ERR_TRUNCATED:
    return "FM_IDX_ERR_TRUNCATED";
  case FM_IDX_ERR_TRAILING:
    return "FM_IDX_ERR_TRAILING";
  case FM_IDX_ERR_DIMS:
    return "FM_IDX_ERR_DIMS";
  case FM_IDX_ERR_LABEL:
    return "FM_IDX_ERR_LABEL";
  case FM_IDX_ERR_MEMORY:
    return "FM_IDX_ERR_MEMORY";
  }
  return "FM_IDX_ERR_UNKNOWN";
}

static int fail(int status, char *err, size_t err_size, const char *fmt, ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return status;
}

/* Reads up to `len` bytes; returns the count read, or -1 on a stream error
 * (a gzip stream that merely ends early is a short read, not an error). */
static long long read_bytes(gzFile f, void *buf, size_t len, const char **msg) {
  size_t done = 0;
  while (done < len) {
    size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
    int n = gzread(f, (char *)buf + done, (unsigned)chunk);
    if (n < 0) {
      int code;
      *msg = gzerror(f, &code);
      return -1;
    }
    if (n == 0)
      break;
    done += (size_t)n;
  }
  if (done < len) {
    int code;
    const char *m = gzerror(f, &code);
    if (code != Z_OK && code != Z_BUF_ERROR) {
      *msg = m;
      return -1;
    }
  }
  return (long long)done;
}

int fm_idx_read(const char *path, size_t max_items, fm_idx *out, char *err,
                size_t err_size) {
  memset(out, 0, sizeof *out);
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return fail(FM_IDX_ERR_OPEN, err, err_size, "cannot open %s: %s", path,
                errno ? strerror(errno) : "out of memory");
  int status = FM_IDX_OK;
  const char *msg = "";
  unsigned char head[4 + 4 * 4];
  long long n = read_bytes(f, head, 4, &msg);
  if (n < 0) {
    status =
        fail(FM_IDX_ERR_READ, err, err_size, "%s: read error: %s", path, msg);
    goto done;
  }
  if (n < 4 || head[0] != 0 || head[1] != 0 || head[3] < 1 || head[3] > 4) {
    status = fail(FM_IDX_ERR_MAGIC, err, err_size,
                  "%s: not an IDX file (bad magic number)", path);
    goto done;
  }
  if (head[2] != 0x08) {
    status = fail(FM_IDX_ERR_TYPE, err, err_size,
                  "%s: element type 0x%02X is not unsigned byte (0x08)", path,
                  head[2]);
    goto done;
  }
  int ndims = head[3];
  n = read_bytes(f, head + 4, 4 * (size_t)ndims, &msg);
  if (n < 0) {
    status =
        fail(FM_IDX_ERR_READ, err, err_size, "%s: read error: %s", path, msg);
    goto done;
  }
  if (n < 4 * ndims) {
    status =
        fail(FM_IDX_ERR_TRUNCATED, err, err_size,
             "%s: truncated header (%d dimensions announced)", path, ndims);
    goto done;
  }
  out->ndims = ndims;
  size_t item = 1; /* bytes per item: the product of dims[1..] */
  for (int d = 0; d < ndims; d++) {
    const unsigned char *p = head + 4 + 4 * d;
    out->dims[d] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                   (uint32_t)p[2] << 8 | p[3];
    if (d > 0) {
      if (out->dims[d] && item > SIZE_MAX / out->dims[d]) {
        status = fail(FM_IDX_ERR_DIMS, err, err_size,
                      "%s: dimensions overflow size_t", path);
        goto done;
      }
      item *= out->dims[d];
    }
  }
  size_t items = out->dims[0];
  int partial = max_items > 0 && max_items < items;
  if (partial)
    items = max_items;
  if (item && items > SIZE_MAX / item) {
    status = fail(FM_IDX_ERR_DIMS, err, err_size,
                  "%s: dimensions overflow size_t", path);
    goto done;
  }
  out->size = items * item;
  out->data = malloc(out->size ? out->size : 1);
  if (!out->data) {
    status = fail(FM_IDX_ERR_MEMORY, err, err_size,
                  "%s: cannot allocate %zu bytes", path, out->size);
    goto done;
  }
  n = read_bytes(f, out->data, out->size, &msg);
  if (n < 0) {
    status =
        fail(FM_IDX_ERR_READ, err, err_size, "%s: read error: %s", path, msg);
    goto done;
  }
  if ((size_t)n < out->size) {
    status = fail(FM_IDX_ERR_TRUNCATED, err, err_size,
                  "%s: truncated: %zu of %zu data bytes", path, (size_t)n,
                  out->size);
    goto done;
  }
  out->dims[0] = (uint32_t)items;
  if (!partial) {
    unsigned char extra;
    n = read_bytes(f, &extra, 1, &msg);
    if (n != 0) {
      status = n < 0 ? fail(FM_IDX_ERR_READ, err, err_size,
                            "%s: read error: %s", path, msg)
                     : fail(FM_IDX_ERR_TRAILING, err, err_size,
                            "%s: data continue after the %zu bytes the "
                            "header announces",
                            path, out->size);
      goto done;
    }
  }
done:
  gzclose(f);
  if (status != FM_IDX_OK)
    fm_idx_free(out);
  return status;
}

void fm_idx_free(fm_idx *idx) {
  if (!idx)
    return;
  free(idx->data);
  memset(idx, 0, sizeof *idx);
}

/* Opens <dir>/<name>.gz, else <dir>/<name>; when neither opens, the error
 * names the .gz file and how to get it. */
static int read_named(const char *dir, const char *name, size_t limit,
                      fm_idx *out, char *err, size_t err_size) {
  char path[4096], first[4200];
  snprintf(path, sizeof path, "%s/%s.gz", dir, name);
  int s = fm_idx_read(path, limit, out, first, sizeof first);
  if (s == FM_IDX_ERR_OPEN) {
    snprintf(path, sizeof path, "%s/%s", dir, name);
    s = fm_idx_read(path, limit, out, err, err_size);
    if (s == FM_IDX_ERR_OPEN)
      return fail(s, err, err_size,
                  "%s (install Debian's dataset-fashion-mnist or pass "
                  "--data DIR)",
                  first);
    return s;
  }
  if (s != FM_IDX_OK)
    fail(s, err, err_size, "%s", first);
  return s;
}

int fm_dataset_load(const char *dir, const char *split, size_t limit,
                    fm_dataset *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  char name[256];
  fm_idx images, labels;
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
  int s = read_named(dir, name, limit, &images, err, err_size);
  if (s != FM_IDX_OK)
    return s;
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
  s = read_named(dir, name, limit, &labels, err, err_size);
  if (s != FM_IDX_OK) {
    fm_idx_free(&images);
    return s;
  }
  if (images.ndims != 3 || labels.ndims != 1) {
    s = fail(FM_IDX_ERR_DIMS, err, err_size,
             "%s/%s: images have %d dimensions (want 3), labels %d (want 1)",
             dir, split, images.ndims, labels.ndims);
  } else if (images.dims[0] != labels.dims[0]) {
    s = fail(FM_IDX_ERR_DIMS, err, err_size, "%s/%s: %u images but %u labels",
             dir, split, images.dims[0], labels.dims[0]);
  } else {
    for (size_t i = 0; i < labels.size; i++)
      if (labels.data[i] >= FM_CLASSES) {
        s = fail(FM_IDX_ERR_LABEL, err, err_size,
                 "%s/%s: label %u of item %zu is not in [0, %d)", dir, split,
                 labels.data[i], i, FM_CLASSES);
        break;
      }
  }
  if (s != FM_IDX_OK) {
    fm_idx_free(&images);
    fm_idx_free(&labels);
    return s;
  }
  out->count = images.dims[0];
  out->rows = images.dims[1];
  out->cols = images.dims[2];
  out->images = images.data;
  out->labels = labels.data;
  return FM_IDX_OK;
}

void fm_dataset_free(fm_dataset *ds) {
  if (!ds)
    return;
  free(ds->images);
  free(ds->labels);
  memset(ds, 0, sizeof *ds);
}
