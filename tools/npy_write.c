/* npy_write.c - the .npy writer: version 1.0 headers with 64-byte aligned
 * data, staged and committed as npy.h says (a temporary file renamed into
 * place, so that a failure never leaves a half-written output). */
#define _XOPEN_SOURCE 700 /* realpath, readlink */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"

#define NPY_ALIGN 64

#define fail npy__fail /* its name in both files */

/* Checks the arguments and computes the data size. */
static npy_status check_array(clloss_dtype dtype, int ndim, const size_t *shape,
                              const void *data, size_t *bytes, char *msg,
                              size_t msglen) {
  if (!npy_dtype_descr(dtype))
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "cannot write dtype %d to .npy",
                (int)dtype);
  if (ndim < 0 || ndim > NPY_MAX_DIMS || (ndim && !shape))
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "bad shape (%d dimensions)",
                ndim);
  size_t count;
  if (npy__count(dtype, ndim, shape, &count))
    return fail(NPY_ERR_OVERFLOW, msg, msglen, "the shape overflows");
  *bytes = count * npy_dtype_size(dtype);
  if (*bytes && !data)
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "no data");
  return NPY_OK;
}

/* The magic, version, length and padded dictionary; at most 10 + 64 * 22 +
 * 128 bytes, so a fixed buffer is enough. Returns the header's length. */
static size_t format_header(clloss_dtype dtype, int ndim, const size_t *shape,
                            char *out, size_t cap) {
  char shape_text[NPY_MAX_DIMS * 22 + 4];
  npy_format_shape(ndim, shape, shape_text, sizeof shape_text);
  size_t dict_len =
      (size_t)snprintf(out + 10, cap - 10,
                       "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       npy_dtype_descr(dtype), shape_text);
  /* 10 preamble bytes + dictionary + spaces + '\n', a multiple of 64, with
   * NumPy's padding rule (1 to 64 spaces) so that the bytes match its own. */
  size_t pad = NPY_ALIGN - (10 + dict_len + 1) % NPY_ALIGN;
  size_t total = 10 + dict_len + pad + 1;
  if (total > cap)
    return 0;
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  out[8] = (char)((total - 10) & 0xff);
  out[9] = (char)((total - 10) >> 8);
  memset(out + 10 + dict_len, ' ', pad);
  out[total - 1] = '\n';
  return total;
}

#define NPY_HEADER_CAP (NPY_MAX_DIMS * 22 + 256)

npy_status npy_encode(clloss_dtype dtype, int ndim, const size_t *shape,
                      const void *data, void **buf, size_t *len, char *msg,
                      size_t msglen) {
  size_t bytes;
  npy_status st = check_array(dtype, ndim, shape, data, &bytes, msg, msglen);
  if (st != NPY_OK)
    return st;
  char head[NPY_HEADER_CAP];
  size_t hl = format_header(dtype, ndim, shape, head, sizeof head);
  if (bytes > SIZE_MAX - hl)
    return fail(NPY_ERR_OVERFLOW, msg, msglen, "the shape overflows");
  unsigned char *b = malloc(hl + bytes);
  if (!b)
    return fail(NPY_ERR_NOMEM, msg, msglen, "out of memory");
  memcpy(b, head, hl);
  if (bytes)
    memcpy(b + hl, data, bytes);
  *buf = b;
  *len = hl + bytes;
  return NPY_OK;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes a[an] then b[bn] to fd (-1: a failed open, whose errno stands),
 * closing it when `own`: 0, or the errno of the first failure. */
static int write_close(int fd, int own, const void *a, size_t an, const void *b,
                       size_t bn) {
  int bad =
      fd < 0 || write_all(fd, a, an) != 0 || (bn && write_all(fd, b, bn) != 0);
  int err = errno;
  if (fd >= 0 && own && close(fd) != 0 && !bad) {
    bad = 1;
    err = errno;
  }
  return bad ? err : 0;
}

/* Writes the header and data to a new temporary file next to `path`, so
 * that rename(2) is atomic (same file system); *tmp_path is its name. New
 * files get the permissions that open(2) would give: 0666 & ~umask. */
static npy_status write_temp(const char *path, const char *head, size_t hl,
                             const void *data, size_t bytes, char **tmp_path,
                             char *msg, size_t msglen) {
  size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
  char *tmp = malloc(n);
  if (!tmp)
    return fail(NPY_ERR_NOMEM, msg, msglen, "out of memory");
  snprintf(tmp, n, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp), err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
      err = errno;
      close(fd);
    } else {
      err = write_close(fd, 1, head, hl, data, bytes);
    }
    if (err)
      unlink(tmp);
  }
  if (err) {
    free(tmp);
    return fail(NPY_ERR_IO, msg, msglen, "%s: cannot %s: %s", path,
                fd < 0 ? "create" : "write", strerror(err));
  }
  *tmp_path = tmp;
  return NPY_OK;
}

/* The descriptor number N of "/dev/fd/N" or "/proc/self/fd/N"; -1 for
 * any other text. */
static int fd_of_text(const char *p) {
  static const char *const dirs[] = {"/dev/fd/", "/proc/self/fd/"};
  for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) {
    size_t n = strlen(dirs[k]);
    if (strncmp(p, dirs[k], n) != 0 || !p[n])
      continue;
    long v = 0;
    for (p += n; *p >= '0' && *p <= '9' && v < 1000000; p++)
      v = v * 10 + (*p - '0');
    return *p ? -1 : (int)v;
  }
  return -1;
}

int npy_output_fd(const char *path) {
  char hop[2][4096];
  const char *p = path;
  /* /dev/stdout -> /proc/self/fd/1: the links' own text, a few hops. */
  for (int i = 0; p && i < 8; i++) {
    int fd = fd_of_text(p);
    if (fd >= 0)
      return fd;
    ssize_t n = readlink(p, hop[i % 2], sizeof hop[i % 2] - 1);
    if (n <= 0)
      return -1;
    hop[i % 2][n] = '\0';
    p = hop[i % 2];
  }
  return -1;
}

/* What `path` is: a regular file or nothing (replaced by rename), or
 * another kind of file (written in place); *target gets the file to act
 * on (malloc'd): path itself, or where its links lead. */
enum { TARGET_REPLACE, TARGET_IN_PLACE };
static npy_status classify(const char *path, char **target, int *kind,
                           char *msg, size_t msglen) {
  struct stat st;
  *target = NULL;
  if (lstat(path, &st) != 0) {
    if (errno != ENOENT)
      return fail(NPY_ERR_IO, msg, msglen, "%s: %s", path, strerror(errno));
    st.st_mode = S_IFREG; /* a new file, made by the rename */
  } else if (S_ISLNK(st.st_mode)) {
    char *resolved = realpath(path, NULL);
    if (resolved) {
      npy_status s = classify(resolved, target, kind, msg, msglen);
      free(resolved);
      return s;
    }
    /* A link that only the kernel resolves (/proc/PID/fd/N to a pipe:
     * "pipe:[123]"): whatever it reaches is written in place. */
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
      return fail(NPY_ERR_IO, msg, msglen,
                  "%s: a symbolic link to nothing (%s); not writing through "
                  "it",
                  path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode))
    return fail(NPY_ERR_IO, msg, msglen, "%s: is a directory", path);
  *kind = S_ISREG(st.st_mode) ? TARGET_REPLACE : TARGET_IN_PLACE;
  if (!(*target = strdup(path)))
    return fail(NPY_ERR_NOMEM, msg, msglen, "out of memory");
  return NPY_OK;
}

npy_status npy_stage(const char *path, clloss_dtype dtype, int ndim,
                     const size_t *shape, const void *data, npy_staged *out,
                     char *msg, size_t msglen) {
  *out = (npy_staged){NULL, NULL, NULL, 0, -1};
  size_t bytes;
  npy_status st = check_array(dtype, ndim, shape, data, &bytes, msg, msglen);
  if (st != NPY_OK)
    return st;
  if (!path || !*path)
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "empty output path");
  char *target = NULL;
  int kind = TARGET_IN_PLACE;
  out->fd = npy_output_fd(path);
  if (out->fd >= 0) {
    int flags = fcntl(out->fd, F_GETFL);
    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY)
      return fail(NPY_ERR_IO, msg, msglen,
                  "%s: descriptor %d is not open for writing", path, out->fd);
    if (!(target = strdup(path)))
      return fail(NPY_ERR_NOMEM, msg, msglen, "out of memory");
  } else if ((st = classify(path, &target, &kind, msg, msglen)) != NPY_OK) {
    return st;
  }
  if (kind == TARGET_IN_PLACE) {
    void *buf = NULL;
    st = npy_encode(dtype, ndim, shape, data, &buf, &out->direct_len, msg,
                    msglen);
    out->direct = buf;
  } else {
    char head[NPY_HEADER_CAP];
    size_t hl = format_header(dtype, ndim, shape, head, sizeof head);
    st = write_temp(target, head, hl, data, bytes, &out->tmp_path, msg, msglen);
  }
  if (st == NPY_OK)
    out->path = target;
  else
    free(target);
  return st;
}

/* A device, a FIFO, ...: opened as it is (never created or replaced) and
 * written; one of the process's descriptors (/dev/stdout): written where
 * it stands, after what stdio holds for it. */
static npy_status write_in_place(npy_staged *s, char *msg, size_t msglen) {
  if (s->fd >= 0)
    fflush(NULL);
  int fd = s->fd >= 0 ? s->fd : open(s->path, O_WRONLY | O_NOCTTY);
  int err = write_close(fd, s->fd < 0, s->direct, s->direct_len, NULL, 0);
  npy_status st = err ? fail(NPY_ERR_IO, msg, msglen, "%s: cannot write: %s",
                             s->path, strerror(err))
                      : NPY_OK;
  npy_discard(s);
  return st;
}

npy_status npy_commit(npy_staged *s, char *msg, size_t msglen) {
  if (s->direct)
    return write_in_place(s, msg, msglen);
  if (!s->tmp_path)
    return fail(NPY_ERR_ARGUMENT, msg, msglen, "nothing staged");
  npy_status st = NPY_OK;
  if (rename(s->tmp_path, s->path) != 0) {
    st = fail(NPY_ERR_IO, msg, msglen, "%s: cannot rename: %s", s->path,
              strerror(errno));
  } else { /* renamed: nothing left to remove */
    free(s->tmp_path);
    s->tmp_path = NULL;
  }
  npy_discard(s);
  return st;
}

npy_status npy_commit_all(npy_staged *s, size_t n, char *msg, size_t msglen) {
  npy_status st = NPY_OK;
  /* What is written in place cannot be taken back: first, while every
   * file that would be replaced still holds its old contents. */
  for (size_t i = 0; i < n && st == NPY_OK; i++)
    if (s[i].direct)
      st = npy_commit(&s[i], msg, msglen);
  for (size_t i = 0; i < n && st == NPY_OK; i++)
    if (s[i].tmp_path)
      st = npy_commit(&s[i], msg, msglen);
  for (size_t i = 0; i < n; i++)
    npy_discard(&s[i]);
  return st;
}

void npy_discard(npy_staged *s) {
  if (!s)
    return;
  if (s->tmp_path)
    unlink(s->tmp_path);
  free(s->tmp_path);
  free(s->path);
  free(s->direct);
  *s = (npy_staged){NULL, NULL, NULL, 0, -1};
}

npy_status npy_write(const char *path, clloss_dtype dtype, int ndim,
                     const size_t *shape, const void *data, char *msg,
                     size_t msglen) {
  npy_staged s;
  npy_status st = npy_stage(path, dtype, ndim, shape, data, &s, msg, msglen);
  if (st != NPY_OK)
    return st;
  return npy_commit(&s, msg, msglen);
}
