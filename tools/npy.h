/* npy.h - reads and writes NumPy .npy files (format versions 1.0 to 3.0,
 * little-endian, C order) for the clloss command-line tool.
 *
 * Every function reports failure through an npy_status and, when `msg` is
 * not NULL, one sentence in msg[msglen] (without a trailing newline). The
 * module never prints, never aborts, and never reads past the bytes given. */
#ifndef CLLOSS_NPY_H
#define CLLOSS_NPY_H
#include <stddef.h>

#include "clloss.h"

/* NumPy 2 allows 64 dimensions; older versions 32. */
#define NPY_MAX_DIMS 64

typedef enum npy_status {
  NPY_OK = 0,
  NPY_ERR_IO,         /* open, read, write or rename failed */
  NPY_ERR_NOMEM,      /* out of memory */
  NPY_ERR_MAGIC,      /* not a .npy file */
  NPY_ERR_VERSION,    /* a format version other than 1.0, 2.0, 3.0 */
  NPY_ERR_TRUNCATED,  /* the file ends inside the preamble or the header */
  NPY_ERR_HEADER,     /* the header dictionary is malformed */
  NPY_ERR_DTYPE,      /* a dtype that the tool does not support */
  NPY_ERR_ENDIAN,     /* big-endian data */
  NPY_ERR_FORTRAN,    /* fortran_order True */
  NPY_ERR_OVERFLOW,   /* the element count or byte size overflows size_t */
  NPY_ERR_SHORT_DATA, /* the header promises more data than the file holds */
  NPY_ERR_EXTRA_DATA, /* bytes follow the data */
  NPY_ERR_ARGUMENT    /* a bad argument to the writer */
} npy_status;

/* An array read from or to be written to a .npy file. */
typedef struct npy_array {
  clloss_dtype dtype; /* FLOAT32, FLOAT16, FLOAT64, INT32 or INT64 */
  int ndim;           /* 0 for a scalar, shape () */
  size_t shape[NPY_MAX_DIMS];
  size_t count; /* product of shape: 1 for (), 0 if any dimension is 0 */
  void *data;   /* count elements, malloc'd, owned; never NULL once read */
} npy_array;

/* Bytes per element of the dtypes above; 0 for the others. */
size_t npy_dtype_size(clloss_dtype dtype);
/* "<f4", "<f2", "<f8", "<i4", "<i8"; NULL for the others. */
const char *npy_dtype_descr(clloss_dtype dtype);
/* Writes "(3, 4)", "(3,)" or "()" into buf (truncated to len). */
void npy_format_shape(int ndim, const size_t *shape, char *buf, size_t len);

/* Parses a whole .npy file held in buf[len] into *out (data copied). The
 * data must be exactly as long as the header's shape and dtype say. */
npy_status npy_parse(const void *buf, size_t len, npy_array *out, char *msg,
                     size_t msglen);

/* Reads the file at `path` into *out; messages start with the path. */
npy_status npy_read(const char *path, npy_array *out, char *msg, size_t msglen);

/* The header of the file at `path`: *out has everything but the data
 * (NULL), which is checked to be there, as long as the header says. */
npy_status npy_read_header(const char *path, npy_array *out, char *msg,
                           size_t msglen);

/* Columns [c0, c0 + cb) of the last dimension of the file at `path`,
 * reading only those: *out has the file's shape with cb as its last
 * dimension. Columns beyond the last dimension (or a scalar file) are
 * NPY_ERR_ARGUMENT. */
npy_status npy_read_columns(const char *path, size_t c0, size_t cb,
                            npy_array *out, char *msg, size_t msglen);

/* Frees a's data and zeroes it; NULL and a zeroed array are fine. */
void npy_free(npy_array *a);

/* Encodes an array as a version 1.0 .npy file in a malloc'd buffer, the
 * header padded so that the data starts at a multiple of 64 bytes. */
npy_status npy_encode(clloss_dtype dtype, int ndim, const size_t *shape,
                      const void *data, void **buf, size_t *len, char *msg,
                      size_t msglen);

/* Writing is two steps so that several outputs appear together or not at
 * all: npy_stage writes a temporary file next to `path`, npy_commit renames
 * it over `path`, npy_discard removes it. A failed stage leaves nothing.
 *
 * Only regular files are replaced that way. A symbolic link is followed:
 * its target is replaced (the link stays), and a link to nothing is
 * refused. Other files (a device such as /dev/null, a FIFO) are written in
 * place by npy_commit, opened without O_CREAT, as a shell redirection
 * would; a directory is refused. One of the process's own descriptors
 * (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: npy_output_fd) is
 * written through that descriptor, wherever it leads (a pipe, a file, a
 * terminal), after stdio's buffers are flushed. */
typedef struct npy_staged {
  char *path; /* malloc'd copies; NULL when nothing is staged */
  char *tmp_path;
  unsigned char *direct; /* written in place: the whole file's bytes */
  size_t direct_len;
  int fd; /* written through this descriptor of the process; -1: none */
} npy_staged;

/* N when writing `path` means writing the process's descriptor N
 * (/dev/stdout: 1); -1 otherwise. */
int npy_output_fd(const char *path);

npy_status npy_stage(const char *path, clloss_dtype dtype, int ndim,
                     const size_t *shape, const void *data, npy_staged *out,
                     char *msg, size_t msglen);
npy_status npy_commit(npy_staged *s, char *msg, size_t msglen);
void npy_discard(npy_staged *s);
/* Commits s[0..n) so that a failure replaces no existing file: the
 * outputs written in place first (they cannot be taken back), then the
 * renames; on a failure the rest are discarded. Every entry is left
 * discarded (entries with nothing staged are skipped). */
npy_status npy_commit_all(npy_staged *s, size_t n, char *msg, size_t msglen);

/* npy_stage then npy_commit. */
npy_status npy_write(const char *path, clloss_dtype dtype, int ndim,
                     const size_t *shape, const void *data, char *msg,
                     size_t msglen);

/* Shared by npy_read.c and npy_write.c only. npy__fail puts the message
 * into msg[msglen] (when given) and returns st. npy__count: the element
 * count of a shape of a dtype that npy_dtype_size knows, 0 if any
 * dimension is 0 however large the others are (NumPy's rule), so that
 * whatever is read can be written back; returns 1 when the count overflows
 * size_t, 2 when its byte size does, else 0. */
npy_status npy__fail(npy_status st, char *msg, size_t msglen, const char *fmt,
                     ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int npy__count(clloss_dtype dtype, int ndim, const size_t *shape,
               size_t *count);

#endif
