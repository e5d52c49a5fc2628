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

static npy_status fail(npy_status st, char *msg, size_t msglen, const char *fmt,
                       ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return st;
}

size_t npy_dtype_size(clloss_dtype dtype) {
  switch (dtype) {
  case CLLOSS_FLOAT16:
    return 2;
  case CLLOSS_FLOAT32:
  case CLLOSS_INT32:
    return 4;
  case CLLOSS_FLOAT64:
  case CLLOSS_INT64:
    return 8;
  default:
    return 0;
  }
}

const char *npy_dtype_descr(clloss_dtype dtype) {
  switch (dtype) {
  case CLLOSS_FLOAT16:
    return "<f2";
  case CLLOSS_FLOAT32:
    return "<f4";
  case CLLOSS_FLOAT64:
    return "<f8";
  case CLLOSS_INT32:
    return "<i4";
  case CLLOSS_INT64:
    return "<i8";
  default:
    return NULL;
  }
}

void npy_format_shape(int ndim, const size_t *shape, char *buf, size_t len) {
  size_t used = 0;
  if (!buf || !len)
    return;
  buf[0] = '\0';
#define NPY_APPEND_(...)                                                       \
  do {                                                                         \
    int n_ = snprintf(buf + used, len - used, __VA_ARGS__);                    \
    if (n_ < 0 || (size_t)n_ >= len - used)                                    \
      return;                                                                  \
    used += (size_t)n_;                                                        \
  } while (0)
  NPY_APPEND_("(");
  for (int i = 0; i < ndim; i++)
    NPY_APPEND_("%s%zu", i ? ", " : "", shape[i]);
  NPY_APPEND_(ndim == 1 ? ",)" : ")");
#undef NPY_APPEND_
}

/* ---- the header dictionary ----
 * A Python literal such as {'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }, padded with spaces and a newline. Exactly these three
 * keys, each once, in any order (NumPy rejects other keys too). */
typedef struct cursor {
  const char *p, *end;
} cursor;

static void skip_space(cursor *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int take(cursor *c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted string without escapes, copied into out[cap]; 0 if malformed or
 * too long. */
static int take_string(cursor *c, char *out, size_t cap) {
  skip_space(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return 0;
  char quote = *c->p++;
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

static int take_word(cursor *c, const char *word) {
  size_t n = strlen(word);
  skip_space(c);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
    return 0;
  c->p += n;
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
  if (!take(c, '('))
    return fail(NPY_ERR_HEADER, msg, msglen, "the shape is not a tuple");
  int trailing_comma = 0;
  h->ndim = 0;
  for (;;) {
    if (take(c, ')'))
      break;
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
    trailing_comma = take(c, ',');
    if (!trailing_comma) {
      if (!take(c, ')'))
        return fail(NPY_ERR_HEADER, msg, msglen, "the shape is malformed");
      break;
    }
  }
  if (h->ndim == 1 && !trailing_comma)
    return fail(NPY_ERR_HEADER, msg, msglen,
                "the shape is not a tuple (a 1-tuple needs a comma)");
  return NPY_OK;
}

static npy_status parse_dict(const char *text, size_t len, header *h, char *msg,
                             size_t msglen) {
  cursor c = {text, text + len};
  int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
  if (!take(&c, '{'))
    return fail(NPY_ERR_HEADER, msg, msglen, "the header is not a dictionary");
  for (;;) {
    if (take(&c, '}'))
      break;
    char key[32];
    if (!take_string(&c, key, sizeof key) || !take(&c, ':'))
      return fail(NPY_ERR_HEADER, msg, msglen,
                  "the header dictionary is malformed");
    int *seen;
    if (strcmp(key, "descr") == 0) {
      seen = &seen_descr;
      skip_space(&c);
      if (c.p < c.end && *c.p == '[')
        return fail(NPY_ERR_DTYPE, msg, msglen,
                    "structured dtypes are not supported");
      if (!take_string(&c, h->descr, sizeof h->descr))
        return fail(NPY_ERR_HEADER, msg, msglen,
                    "'descr' is not a short string");
    } else if (strcmp(key, "fortran_order") == 0) {
      seen = &seen_fortran;
      if (take_word(&c, "True"))
        h->fortran = 1;
      else if (take_word(&c, "False"))
        h->fortran = 0;
      else
        return fail(NPY_ERR_HEADER, msg, msglen,
                    "'fortran_order' is neither True nor False");
    } else if (strcmp(key, "shape") == 0) {
      seen = &seen_shape;
      npy_status st = take_shape(&c, h, msg, msglen);
      if (st != NPY_OK)
        return st;
    } else {
      return fail(NPY_ERR_HEADER, msg, msglen,
                  "the header has an unexpected key '%s'", key);
    }
    if (*seen)
      return fail(NPY_ERR_HEADER, msg, msglen, "the header has key '%s' twice",
                  key);
    *seen = 1;
    if (take(&c, ','))
      continue;
    if (take(&c, '}'))
      break;
    return fail(NPY_ERR_HEADER, msg, msglen,
                "the header dictionary is malformed");
  }
  skip_space(&c);
  while (c.p < c.end && *c.p == '\0') /* some writers pad with NULs */
    c.p++;
  if (c.p != c.end)
    return fail(NPY_ERR_HEADER, msg, msglen,
                "the header has text after the dictionary");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return fail(NPY_ERR_HEADER, msg, msglen, "the header lacks '%s'",
                !seen_descr     ? "descr"
                : !seen_fortran ? "fortran_order"
                                : "shape");
  return NPY_OK;
}

/* '<f4' and friends. Data must be little-endian: '=' is accepted as native
 * only because the tool runs on little-endian hosts. */
static npy_status decode_descr(const char *d, clloss_dtype *out, char *msg,
                               size_t msglen) {
  static const struct {
    const char *code;
    clloss_dtype dtype;
  } known[] = {{"f2", CLLOSS_FLOAT16},
               {"f4", CLLOSS_FLOAT32},
               {"f8", CLLOSS_FLOAT64},
               {"i4", CLLOSS_INT32},
               {"i8", CLLOSS_INT64}};
  char order = d[0];
  const char *code =
      (order == '<' || order == '>' || order == '=' || order == '|') ? d + 1
                                                                     : d;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (strcmp(code, known[i].code) != 0)
      continue;
    if (order == '>')
      return fail(NPY_ERR_ENDIAN, msg, msglen,
                  "big-endian data ('%s') is not supported; save it "
                  "little-endian ('<%s')",
                  d, code);
    if (order == '|')
      break;
    *out = known[i].dtype;
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

/* Checks the preamble and header of buf[len]; on success *data_at is where
 * the data starts and out has everything but the data. */
static npy_status parse_header(const unsigned char *b, size_t len,
                               npy_array *out, size_t *data_at, char *msg,
                               size_t msglen) {
  if (len == 0)
    return fail(NPY_ERR_TRUNCATED, msg, msglen, "the file is empty");
  size_t m = len < sizeof npy_magic ? len : sizeof npy_magic;
  if (memcmp(b, npy_magic, m) != 0)
    return fail(NPY_ERR_MAGIC, msg, msglen,
                "not a .npy file (no \\x93NUMPY magic)");
  if (len < 8)
    return fail(NPY_ERR_TRUNCATED, msg, msglen,
                "the file ends inside the .npy preamble");
  int major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
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
  if (st != NPY_OK)
    return st;
  clloss_dtype dtype = CLLOSS_FLOAT32;
  st = decode_descr(h.descr, &dtype, msg, msglen);
  if (st != NPY_OK)
    return st;
  if (h.fortran)
    return fail(NPY_ERR_FORTRAN, msg, msglen,
                "Fortran-order arrays are not supported; save it in C order "
                "(numpy.ascontiguousarray)");
  /* The element count: 0 if any dimension is 0, even when the product of
   * the others would overflow (NumPy's rule too). */
  size_t count = 1;
  int has_zero = 0;
  for (int i = 0; i < h.ndim; i++)
    has_zero |= h.shape[i] == 0;
  for (int i = 0; i < h.ndim && !has_zero; i++) {
    if (count > SIZE_MAX / h.shape[i])
      return fail(NPY_ERR_OVERFLOW, msg, msglen,
                  "the element count of the shape overflows");
    count *= h.shape[i];
  }
  if (has_zero)
    count = 0;
  if (count > SIZE_MAX / npy_dtype_size(dtype))
    return fail(NPY_ERR_OVERFLOW, msg, msglen,
                "the byte size of the shape overflows");
  out->dtype = dtype;
  out->ndim = h.ndim;
  memcpy(out->shape, h.shape, sizeof h.shape);
  out->count = count;
  out->data = NULL;
  *data_at = start + header_len;
  return NPY_OK;
}

/* The exact data size: a short file is the common corruption; extra bytes
 * mean the header and the data disagree. */
static npy_status check_data_size(const npy_array *a, size_t have, char *msg,
                                  size_t msglen) {
  size_t want = a->count * npy_dtype_size(a->dtype);
  char shape[256];
  if (have == want)
    return NPY_OK;
  npy_format_shape(a->ndim, a->shape, shape, sizeof shape);
  if (have < want)
    return fail(NPY_ERR_SHORT_DATA, msg, msglen,
                "the header promises %zu bytes of data (shape %s, %s) but "
                "the file holds %zu",
                want, shape, npy_dtype_descr(a->dtype), have);
  return fail(NPY_ERR_EXTRA_DATA, msg, msglen,
              "the file holds %zu bytes after the data of shape %s",
              have - want, shape);
}

npy_status npy_parse(const void *buf, size_t len, npy_array *out, char *msg,
                     size_t msglen) {
  const unsigned char *b = buf;
  size_t at;
  memset(out, 0, sizeof *out);
  if (!buf && len)
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "no buffer");
  npy_status st = parse_header(b, len, out, &at, msg, msglen);
  if (st == NPY_OK)
    st = check_data_size(out, len - at, msg, msglen);
  if (st != NPY_OK) {
    memset(out, 0, sizeof *out);
    return st;
  }
  size_t bytes = len - at;
  out->data = malloc(bytes ? bytes : 1);
  if (!out->data) {
    memset(out, 0, sizeof *out);
    return fail(NPY_ERR_NOMEM, msg, msglen, "out of memory for %zu bytes",
                bytes);
  }
  if (bytes)
    memcpy(out->data, b + at, bytes);
  return NPY_OK;
}

/* Reads a whole stream into a malloc'd buffer. */
static npy_status slurp(FILE *f, unsigned char **buf, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  unsigned char *b = malloc(cap);
  if (!b)
    return NPY_ERR_NOMEM;
  for (;;) {
    if (n == cap) {
      if (cap > SIZE_MAX / 2) {
        free(b);
        return NPY_ERR_NOMEM;
      }
      unsigned char *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        return NPY_ERR_NOMEM;
      }
      b = nb;
      cap *= 2;
    }
    size_t got = fread(b + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) {
        free(b);
        return NPY_ERR_IO;
      }
      break;
    }
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
    return fail(NPY_ERR_IO, msg, msglen, "%s: %s", path, strerror(errno));
  unsigned char *b = NULL;
  size_t len = 0;
  errno = 0;
  npy_status st = slurp(f, &b, &len);
  int err = errno;
  fclose(f);
  if (st == NPY_ERR_IO)
    return fail(st, msg, msglen, "%s: %s", path,
                err ? strerror(err) : "read error");
  if (st != NPY_OK)
    return fail(st, msg, msglen, "%s: out of memory", path);
  /* Parse in place, then move the data to the front of the buffer so that
   * the file is held in memory once. */
  char why[384] = "";
  size_t at;
  st = parse_header(b, len, out, &at, why, sizeof why);
  if (st == NPY_OK)
    st = check_data_size(out, len - at, why, sizeof why);
  if (st != NPY_OK) {
    free(b);
    memset(out, 0, sizeof *out);
    return fail(st, msg, msglen, "%s: %s", path, why);
  }
  size_t bytes = len - at;
  memmove(b, b + at, bytes);
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
    return fail(NPY_ERR_IO, msg, msglen, "%s: %s", path, strerror(errno));
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
    st = parse_header(b, len, out, data_at, why, sizeof why);
  free(b);
  if (st == NPY_OK)
    st = check_data_size(out, file_len - *data_at, why, sizeof why);
  if (st != NPY_OK) {
    fclose(*f);
    *f = NULL;
    memset(out, 0, sizeof *out);
    return fail(st, msg, msglen, "%s: %s", path,
                *why                  ? why
                : st == NPY_ERR_NOMEM ? "out of memory"
                                      : "read error");
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
  if (out->ndim == 0 || c0 > cols || cb > cols - c0) {
    fclose(f);
    memset(out, 0, sizeof *out);
    return fail(NPY_ERR_ARGUMENT, msg, msglen,
                "%s: columns [%zu, %zu) are not within the last dimension "
                "(%zu)",
                path, c0, c0 + cb, cols);
  }
  const size_t es = npy_dtype_size(out->dtype);
  const size_t rows = cols ? out->count / cols : 0;
  out->shape[out->ndim - 1] = cb;
  out->count = rows * cb;
  out->data = malloc(out->count ? out->count * es : 1);
  if (!out->data)
    st = fail(NPY_ERR_NOMEM, msg, msglen, "%s: out of memory", path);
  /* One read per row of the slice, or one for them all. */
  const size_t runs = cb == cols ? 1 : rows, run = cb == cols ? rows * cb : cb;
  for (size_t r = 0; st == NPY_OK && run && r < runs; r++) {
    const long where = (long)(at + (r * cols + c0) * es);
    if (fseek(f, where, SEEK_SET) != 0 ||
        fread((char *)out->data + r * run * es, es, run, f) != run)
      st = fail(NPY_ERR_IO, msg, msglen, "%s: read error", path);
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
