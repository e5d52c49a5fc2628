/* npy_read.c - the .npy reader: preamble, header dictionary, size checks,
 * and reading a whole file. Every length is checked before it is used, so
 * that any byte string (see fuzz/npy_fuzz.c) gives a status, never a crash.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* The dtypes that .npy files hold, by clloss_dtype (bfloat16 has no
 * entry), said once for the size, the descr that the writer puts in
 * headers, and the reader's decoding. */
static const struct npy_type {
  const char *descr;
  size_t size;
} npy_types[] = {[CLLOSS_FLOAT32] = {"<f4", 4},
                 [CLLOSS_FLOAT16] = {"<f2", 2},
                 [CLLOSS_FLOAT64] = {"<f8", 8},
                 [CLLOSS_INT32] = {"<i4", 4},
                 [CLLOSS_INT64] = {"<i8", 8}};
#define NPY_NTYPES (sizeof npy_types / sizeof npy_types[0])

npy_status npy__fail(npy_status st, char *msg, size_t msglen, const char *fmt,
                     ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return st;
}
#define fail npy__fail /* its name in both files */

/* A failure of the file at `path`: "path: why", or the status's own words
 * when there is no why. */
static npy_status fail_file(npy_status st, const char *path, const char *why,
                            char *msg, size_t msglen) {
  return fail(st, msg, msglen, "%s: %s", path,
              *why                  ? why
              : st == NPY_ERR_NOMEM ? "out of memory"
                                    : "read error");
}

size_t npy_dtype_size(clloss_dtype dtype) {
  return (unsigned)dtype < NPY_NTYPES ? npy_types[dtype].size : 0;
}

const char *npy_dtype_descr(clloss_dtype dtype) {
  return (unsigned)dtype < NPY_NTYPES ? npy_types[dtype].descr : NULL;
}

int npy__count(clloss_dtype dtype, int ndim, const size_t *shape,
               size_t *count) {
  *count = 1;
  for (int i = 0; i < ndim; i++)
    if (shape[i] == 0)
      *count = 0;
  for (int i = 0; i < ndim && *count; i++) {
    if (*count > SIZE_MAX / shape[i])
      return 1;
    *count *= shape[i];
  }
  return *count > SIZE_MAX / npy_dtype_size(dtype) ? 2 : 0;
}

void npy_format_shape(int ndim, const size_t *shape, char *buf, size_t len) {
  if (!buf || !len)
    return;
  /* snprintf truncates each piece; once one is cut, the rest is left out. */
  size_t used = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < ndim && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%zu", i ? ", " : "",
                             shape[i]);
  if (used < len)
    snprintf(buf + used, len - used, ndim == 1 ? ",)" : ")");
}

/* ---- the header dictionary ----
 * A Python literal such as {'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }, padded with spaces and a newline. Exactly these three
 * keys, each once, in any order (NumPy rejects other keys too). */
static const char *const header_keys[] = {"descr", "fortran_order", "shape"};
enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, NKEYS };

typedef struct cursor {
  const char *p, *end;
} cursor;

static void skip_space(cursor *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

/* The exact text `word` after any spaces: 1 and past it, or 0. */
static int take(cursor *c, const char *word) {
  size_t n = strlen(word);
  skip_space(c);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
    return 0;
  c->p += n;
  return 1;
}

/* A quoted string without escapes, copied into out[cap]; 0 if malformed or
 * too long. */
static int take_string(cursor *c, char *out, size_t cap) {
  if (!take(c, "'") && !take(c, "\""))
    return 0;
  char quote = c->p[-1];
  size_t n = 0;
  while (c->p < c->end && *c->p != quote) {
    if (*c->p == '\\' || n + 1 >= cap)
      return 0;
    out[n++] = *c->p++;
  }
  if (c->p >= c->end)
    return 0;
  c->p++;
  out[n] = '\0';
  return 1;
}

typedef struct header {
  char descr[32];
  int fortran;
  int ndim;
  size_t shape[NPY_MAX_DIMS];
} header;

/* (d0, d1, ...) with Python's tuple rules: "(3)" is not a tuple. */
static npy_status take_shape(cursor *c, header *h, char *msg, size_t msglen) {
  if (!take(c, "("))
    return fail(NPY_ERR_HEADER, msg, msglen, "the shape is not a tuple");
  int trailing_comma = 0;
  h->ndim = 0;
  while (!take(c, ")")) {
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
      return fail(NPY_ERR_HEADER, msg, msglen,
                  "the shape holds something other than sizes");
    if (h->ndim == NPY_MAX_DIMS)
      return fail(NPY_ERR_HEADER, msg, msglen,
                  "the shape has more than %d dimensions", NPY_MAX_DIMS);
    size_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      size_t digit = (size_t)(*c->p - '0');
      if (v > (SIZE_MAX - digit) / 10)
        return fail(NPY_ERR_OVERFLOW, msg, msglen,
                    "a dimension of the shape overflows size_t");
      v = v * 10 + digit;
      c->p++;
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 longs in old files */
      c->p++;
    h->shape[h->ndim++] = v;
    trailing_comma = take(c, ",");
    if (!trailing_comma) {
      if (!take(c, ")"))
        return fail(NPY_ERR_HEADER, msg, msglen, "the shape is malformed");
      break;
    }
  }
  if (h->ndim == 1 && !trailing_comma)
    return fail(NPY_ERR_HEADER, msg, msglen,
                "the shape is not a tuple (a 1-tuple needs a comma)");
  return NPY_OK;
}

/* The value of header_keys[key] into h. */
static npy_status take_value(cursor *c, int key, header *h, char *msg,
                             size_t msglen) {
  if (key == KEY_SHAPE)
    return take_shape(c, h, msg, msglen);
  if (key == KEY_FORTRAN) {
    h->fortran = take(c, "True") ? 1 : take(c, "False") ? 0 : -1;
    return h->fortran >= 0 ? NPY_OK
                           : fail(NPY_ERR_HEADER, msg, msglen,
                                  "'fortran_order' is neither True nor False");
  }
  skip_space(c);
  if (c->p < c->end && *c->p == '[')
    return fail(NPY_ERR_DTYPE, msg, msglen,
                "structured dtypes are not supported");
  if (!take_string(c, h->descr, sizeof h->descr))
    return fail(NPY_ERR_HEADER, msg, msglen, "'descr' is not a short string");
  return NPY_OK;
}

static npy_status parse_dict(const char *text, size_t len, header *h, char *msg,
                             size_t msglen) {
  cursor c = {text, text + len};
  int seen[NKEYS] = {0};
  if (!take(&c, "{"))
    return fail(NPY_ERR_HEADER, msg, msglen, "the header is not a dictionary");
  while (!take(&c, "}")) {
    char key[32];
    if (!take_string(&c, key, sizeof key) || !take(&c, ":"))
      return fail(NPY_ERR_HEADER, msg, msglen,
                  "the header dictionary is malformed");
    int k = 0;
    while (k < NKEYS && strcmp(key, header_keys[k]) != 0)
      k++;
    if (k == NKEYS)
      return fail(NPY_ERR_HEADER, msg, msglen,
                  "the header has an unexpected key '%s'", key);
    npy_status st = take_value(&c, k, h, msg, msglen);
    if (st != NPY_OK)
      return st;
    if (seen[k]++)
      return fail(NPY_ERR_HEADER, msg, msglen, "the header has key '%s' twice",
                  key);
    if (!take(&c, ",")) {
      if (!take(&c, "}"))
        return fail(NPY_ERR_HEADER, msg, msglen,
                    "the header dictionary is malformed");
      break;
    }
  }
  skip_space(&c);
  while (c.p < c.end && *c.p == '\0') /* some writers pad with NULs */
    c.p++;
  if (c.p != c.end)
    return fail(NPY_ERR_HEADER, msg, msglen,
                "the header has text after the dictionary");
  for (int k = 0; k < NKEYS; k++)
    if (!seen[k])
      return fail(NPY_ERR_HEADER, msg, msglen, "the header lacks '%s'",
                  header_keys[k]);
  return NPY_OK;
}

/* '<f4' and friends. Data must be little-endian: '=' is accepted as native
 * only because the tool runs on little-endian hosts. */
static npy_status decode_descr(const char *d, clloss_dtype *out, char *msg,
                               size_t msglen) {
  char order = d[0];
  const char *code =
      (order == '<' || order == '>' || order == '=' || order == '|') ? d + 1
                                                                     : d;
  for (size_t i = 0; i < NPY_NTYPES; i++) {
    if (!npy_types[i].descr || strcmp(code, npy_types[i].descr + 1) != 0)
      continue;
    if (order == '>')
      return fail(NPY_ERR_ENDIAN, msg, msglen,
                  "big-endian data ('%s') is not supported; save it "
                  "little-endian ('<%s')",
                  d, code);
    if (order == '|')
      break;
    *out = (clloss_dtype)i;
    return NPY_OK;
  }
  return fail(NPY_ERR_DTYPE, msg, msglen,
              "dtype '%s' is not supported (float16, float32, float64, "
              "int32 and int64 are)",
              d);
}

/* Reads a little-endian unsigned integer of n bytes. */
static size_t read_le(const unsigned char *p, int n) {
  size_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* Checks the preamble and header in b[len], the start of a file of `total`
 * bytes: on success *data_at is where the data starts and out has
 * everything but the data; on failure out is zeroed. The data must be
 * exactly as long as the header says: a short file is the common
 * corruption; extra bytes mean the header and the data disagree. */
static npy_status check_header(const unsigned char *b, size_t len, size_t total,
                               npy_array *out, size_t *data_at, char *msg,
                               size_t msglen) {
  memset(out, 0, sizeof *out);
  if (len == 0)
    return fail(NPY_ERR_TRUNCATED, msg, msglen, "the file is empty");
  size_t m = len < sizeof npy_magic ? len : sizeof npy_magic;
  if (memcmp(b, npy_magic, m) != 0)
    return fail(NPY_ERR_MAGIC, msg, msglen,
                "not a .npy file (no \\x93NUMPY magic)");
  int major = len < 8 ? 0 : b[6], minor = len < 8 ? 0 : b[7];
  if (len >= 8 && (major < 1 || major > 3 || minor != 0))
    return fail(NPY_ERR_VERSION, msg, msglen,
                ".npy format version %d.%d is not supported (1.0 to 3.0 are)",
                major, minor);
  int width = major == 1 ? 2 : 4; /* the header length field */
  if (len < 8 + (size_t)width)
    return fail(NPY_ERR_TRUNCATED, msg, msglen,
                "the file ends inside the .npy preamble");
  size_t header_len = read_le(b + 8, width);
  size_t start = 8 + (size_t)width;
  if (header_len > len - start)
    return fail(NPY_ERR_TRUNCATED, msg, msglen,
                "the header is %zu bytes but the file ends after %zu",
                header_len, len - start);
  header h;
  memset(&h, 0, sizeof h);
  npy_status st =
      parse_dict((const char *)b + start, header_len, &h, msg, msglen);
  clloss_dtype dtype = CLLOSS_FLOAT32;
  if (st == NPY_OK)
    st = decode_descr(h.descr, &dtype, msg, msglen);
  if (st != NPY_OK)
    return st;
  if (h.fortran)
    return fail(NPY_ERR_FORTRAN, msg, msglen,
                "Fortran-order arrays are not supported; save it in C order "
                "(numpy.ascontiguousarray)");
  size_t count;
  int over = npy__count(dtype, h.ndim, h.shape, &count);
  if (over)
    return fail(NPY_ERR_OVERFLOW, msg, msglen, "the %s of the shape overflows",
                over == 1 ? "element count" : "byte size");
  out->dtype = dtype;
  out->ndim = h.ndim;
  memcpy(out->shape, h.shape, sizeof h.shape);
  out->count = count;
  *data_at = start + header_len;
  size_t want = count * npy_dtype_size(dtype), have = total - *data_at;
  char shape[256];
  npy_format_shape(out->ndim, out->shape, shape, sizeof shape);
  if (have < want)
    st = fail(NPY_ERR_SHORT_DATA, msg, msglen,
              "the header promises %zu bytes of data (shape %s, %s) but "
              "the file holds %zu",
              want, shape, npy_dtype_descr(dtype), have);
  else if (have > want)
    st = fail(NPY_ERR_EXTRA_DATA, msg, msglen,
              "the file holds %zu bytes after the data of shape %s",
              have - want, shape);
  if (st != NPY_OK)
    memset(out, 0, sizeof *out);
  return st;
}

npy_status npy_parse(const void *buf, size_t len, npy_array *out, char *msg,
                     size_t msglen) {
  size_t at;
  memset(out, 0, sizeof *out);
  if (!buf && len)
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "no buffer");
  npy_status st = check_header(buf, len, len, out, &at, msg, msglen);
  if (st != NPY_OK)
    return st;
  size_t bytes = len - at;
  out->data = malloc(bytes ? bytes : 1);
  if (!out->data) {
    memset(out, 0, sizeof *out);
    return fail(NPY_ERR_NOMEM, msg, msglen, "out of memory for %zu bytes",
                bytes);
  }
  if (bytes)
    memcpy(out->data, (const unsigned char *)buf + at, bytes);
  return NPY_OK;
}

/* Reads a whole stream into a malloc'd buffer. */
static npy_status slurp(FILE *f, unsigned char **buf, size_t *len) {
  unsigned char *b = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      unsigned char *nb =
          cap > SIZE_MAX / 2 ? NULL : realloc(b, cap ? cap * 2 : 1 << 16);
      if (!nb) {
        free(b);
        return NPY_ERR_NOMEM;
      }
      b = nb;
      cap = cap ? cap * 2 : 1 << 16;
    }
    got = fread(b + n, 1, cap - n, f);
    n += got;
  } while (got);
  if (ferror(f)) {
    free(b);
    return NPY_ERR_IO;
  }
  *buf = b;
  *len = n;
  return NPY_OK;
}

npy_status npy_read(const char *path, npy_array *out, char *msg,
                    size_t msglen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail_file(NPY_ERR_IO, path, strerror(errno), msg, msglen);
  unsigned char *b = NULL;
  size_t len = 0, at;
  errno = 0;
  npy_status st = slurp(f, &b, &len);
  int err = errno;
  fclose(f);
  char why[384] = "";
  if (st == NPY_ERR_IO && err)
    snprintf(why, sizeof why, "%s", strerror(err));
  /* Parse in place, then move the data to the front of the buffer so that
   * the file is held in memory once. */
  if (st == NPY_OK)
    st = check_header(b, len, len, out, &at, why, sizeof why);
  if (st != NPY_OK) {
    free(b);
    return fail_file(st, path, why, msg, msglen);
  }
  memmove(b, b + at, len - at);
  out->data = b; /* at least the header's bytes, so never a 0-byte block */
  return NPY_OK;
}

/* Opens `path` and reads its preamble and header: *f is left open for the
 * data, which starts at *data_at and is checked to be as long as the
 * header says. Messages start with the path. */
static npy_status open_header(const char *path, FILE **f, npy_array *out,
                              size_t *data_at, char *msg, size_t msglen) {
  memset(out, 0, sizeof *out);
  *f = fopen(path, "rb");
  if (!*f)
    return fail_file(NPY_ERR_IO, path, strerror(errno), msg, msglen);
  /* The preamble (12 bytes at most), then the whole header, which a
   * corrupt length cannot make longer than the file. */
  long end = -1;
  if (fseek(*f, 0, SEEK_END) == 0)
    end = ftell(*f);
  rewind(*f);
  unsigned char pre[12];
  size_t got = fread(pre, 1, sizeof pre, *f);
  size_t len = got, file_len = end > 0 ? (size_t)end : 0;
  if (got >= 10 && memcmp(pre, npy_magic, sizeof npy_magic) == 0 &&
      pre[6] >= 1 && pre[6] <= 3)
    len = (pre[6] == 1 ? 10 + read_le(pre + 8, 2) : 12 + read_le(pre + 8, 4));
  if (len > file_len)
    len = file_len > got ? file_len : got;
  unsigned char *b = malloc(len ? len : 1);
  npy_status st = b ? NPY_OK : NPY_ERR_NOMEM;
  if (st == NPY_OK && len) {
    memcpy(b, pre, got < len ? got : len);
    if (len > got)
      len = got + fread(b + got, 1, len - got, *f);
  }
  char why[384] = "";
  if (st == NPY_OK && end < 0)
    st = NPY_ERR_IO;
  if (st == NPY_OK)
    st = check_header(b, len, file_len, out, data_at, why, sizeof why);
  free(b);
  if (st != NPY_OK) {
    fclose(*f);
    *f = NULL;
    return fail_file(st, path, why, msg, msglen);
  }
  return NPY_OK;
}

npy_status npy_read_header(const char *path, npy_array *out, char *msg,
                           size_t msglen) {
  FILE *f;
  size_t at;
  npy_status st = open_header(path, &f, out, &at, msg, msglen);
  if (st == NPY_OK)
    fclose(f);
  return st;
}

npy_status npy_read_columns(const char *path, size_t c0, size_t cb,
                            npy_array *out, char *msg, size_t msglen) {
  FILE *f;
  size_t at;
  npy_status st = open_header(path, &f, out, &at, msg, msglen);
  if (st != NPY_OK)
    return st;
  const size_t cols = out->ndim ? out->shape[out->ndim - 1] : 0;
  const size_t es = npy_dtype_size(out->dtype);
  const size_t rows = cols ? out->count / cols : 0;
  if (out->ndim == 0 || c0 > cols || cb > cols - c0) {
    st = fail(NPY_ERR_ARGUMENT, msg, msglen,
              "%s: columns [%zu, %zu) are not within the last dimension "
              "(%zu)",
              path, c0, c0 + cb, cols);
  } else {
    out->shape[out->ndim - 1] = cb;
    out->count = rows * cb;
    out->data = malloc(out->count ? out->count * es : 1);
    if (!out->data)
      st = fail_file(NPY_ERR_NOMEM, path, "", msg, msglen);
  }
  /* One read per row of the slice, or one for them all. */
  const size_t runs = cb == cols ? 1 : rows, run = cb == cols ? rows * cb : cb;
  for (size_t r = 0; st == NPY_OK && run && r < runs; r++) {
    const long where = (long)(at + (r * cols + c0) * es);
    if (fseek(f, where, SEEK_SET) != 0 ||
        fread((char *)out->data + r * run * es, es, run, f) != run)
      st = fail_file(NPY_ERR_IO, path, "", msg, msglen);
  }
  fclose(f);
  if (st != NPY_OK)
    npy_free(out);
  return st;
}

void npy_free(npy_array *a) {
  if (!a)
    return;
  free(a->data);
  memset(a, 0, sizeof *a);
}
