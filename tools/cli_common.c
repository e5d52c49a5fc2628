/* cli_common.c - helpers shared by the subcommands: error lines, option and
 * number parsing, the clock, and opening a device. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "npy.h"

/* While capturing (--vocab-parallel), the first message since the last
 * cli_captured(). */
static struct {
  int on;
  char text[400];
} capture;

void cli_capture(int on) {
  capture.on = on;
  capture.text[0] = '\0';
}

const char *cli_captured(void) {
  return capture.text;
}

int cli_error(const char *cmd, int code, const char *fmt, ...) {
  va_list ap;
  if (capture.on) {
    if (!capture.text[0]) {
      va_start(ap, fmt);
      vsnprintf(capture.text, sizeof capture.text, fmt, ap);
      va_end(ap);
    }
    return code;
  }
  /* One write, so that the lines of processes under mpirun do not mix. */
  char line[1024];
  int at = snprintf(line, sizeof line, "clloss%s%s: ", cmd ? " " : "",
                    cmd ? cmd : "");
  va_start(ap, fmt);
  vsnprintf(line + at, sizeof line - (size_t)at, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "%s\n", line);
  return code;
}

int cli_no_mpi(const char *cmd) {
  return cli_error(cmd, CLI_USAGE,
                   "--vocab-parallel needs the MPI layer, and this clloss was "
                   "built without MPI (install libopenmpi-dev and rebuild)");
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  return cli_error(cmd, CLI_USAGE, "%s (see clloss %s --help)", line, cmd);
}

int cli_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Compares an argument's option name (up to '=' or the end) with `name`,
 * treating '_' as '-'. Returns the length matched, or 0. */
static size_t match_name(const char *arg, const char *name) {
  size_t i = 0;
  for (; name[i]; i++) {
    char a = arg[i] == '_' ? '-' : arg[i];
    if (a != name[i])
      return 0;
  }
  return arg[i] == '\0' || arg[i] == '=' ? i : 0;
}

int cli_option(int argc, char **argv, int *i, const char *name,
               const char **value) {
  size_t n = match_name(argv[*i], name);
  if (!n)
    return 0;
  if (argv[*i][n] == '=') {
    *value = argv[*i] + n + 1;
  } else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
    /* "--loss-out --cpu" is a missing value, not a file named --cpu. */
    *value = argv[*i + 1];
    (*i)++;
  } else {
    *value = NULL;
  }
  (*i)++;
  return 1;
}

int cli_flag(const char *arg, const char *name) {
  size_t n = match_name(arg, name);
  return n && arg[n] == '\0';
}

int cli_parse_double(const char *s, double *out) {
  char *end;
  if (!s || !*s)
    return 0;
  errno = 0;
  double v = strtod(s, &end);
  if (*end != '\0' || errno == ERANGE || !isfinite(v))
    return 0;
  *out = v;
  return 1;
}

int cli_parse_int64(const char *s, long long *out) {
  char *end;
  if (!s || !*s)
    return 0;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*end != '\0' || errno == ERANGE)
    return 0;
  *out = v;
  return 1;
}

int cli_parse_size(const char *s, size_t *out) {
  long long v;
  if (!cli_parse_int64(s, &v) || v < 0)
    return 0;
  *out = (size_t)v;
  return 1;
}

/* `path` with its folder resolved (links, "." and ".."), malloc'd; NULL
 * when the folder does not resolve. */
static char *resolve_folder(const char *path) {
  const char *slash = strrchr(path, '/');
  /* The folder: ".", "/", or the text before the last slash. */
  size_t n = !slash || slash == path ? 1 : (size_t)(slash - path);
  char *copy = malloc(n + 1), *folder = NULL, *out = NULL;
  if (copy) {
    memcpy(copy, slash ? path : ".", n);
    copy[n] = '\0';
    folder = realpath(copy, NULL);
  }
  size_t len = folder ? strlen(folder) + strlen(path) + 2 : 0;
  if (folder && (out = malloc(len)))
    snprintf(out, len, "%s/%s", folder, slash ? slash + 1 : path);
  free(copy);
  free(folder);
  return out;
}

int cli_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
  if (ea && eb)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
           !S_ISCHR(sa.st_mode);
  if (ea || eb)
    return 0;
  char *ra = resolve_folder(a), *rb = resolve_folder(b);
  int same = ra && rb ? strcmp(ra, rb) == 0 : strcmp(a, b) == 0;
  free(ra);
  free(rb);
  return same;
}

FILE *cli_summary_stream(const char *const *outputs, size_t n) {
  int used[3] = {0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    int fd = outputs[i] ? npy_output_fd(outputs[i]) : -1;
    if (fd >= 0 && fd < 3)
      used[fd] = 1;
  }
  return !used[1] ? stdout : !used[2] ? stderr : NULL;
}

double cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void cli_format_bytes(unsigned long long bytes, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, len, "%llu B", bytes);
  else
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

clloss_status cli_list_devices(clloss_device_info **infos, size_t *count) {
  /* The API has no "how many" call, so ask with a guess and again with the
   * total when it did not fit. */
  size_t cap = 16, total = 0;
  *infos = NULL;
  *count = 0;
  for (int tries = 0; tries < 3; tries++) {
    clloss_device_info *buf = calloc(cap, sizeof *buf);
    if (!buf)
      return CLLOSS_OUT_OF_HOST_MEMORY;
    clloss_status s = clloss_device_list(buf, cap, &total);
    if (s == CLLOSS_SUCCESS && total <= cap) {
      *infos = buf;
      *count = total;
      return CLLOSS_SUCCESS;
    }
    free(buf);
    if (s != CLLOSS_SUCCESS) /* no device is an empty list */
      return s == CLLOSS_NO_DEVICE ? CLLOSS_SUCCESS : s;
    cap = total;
  }
  return CLLOSS_OUT_OF_HOST_MEMORY;
}

int cli_open_device(const char *cmd, const char *selector, clloss_context **ctx,
                    size_t *index) {
  clloss_device_info info;
  *ctx = NULL;
  clloss_status s = clloss_device_select(selector, &info, index);
  if (s == CLLOSS_NO_DEVICE)
    return cli_error(cmd, CLI_DATA_ERROR,
                     "no OpenCL device found (--cpu uses the CPU reference)");
  if (s == CLLOSS_DEVICE_NOT_FOUND) {
    const char *env = getenv("CLLOSS_DEVICE");
    if (!selector || !*selector)
      return cli_error(cmd, CLI_DATA_ERROR,
                       "CLLOSS_DEVICE=%s matches no device (see clloss "
                       "devices)",
                       env ? env : "");
    return cli_error(cmd, CLI_DATA_ERROR,
                     "device '%s' matches no device (see clloss devices)",
                     selector);
  }
  if (s != CLLOSS_SUCCESS)
    return cli_error(cmd, CLI_DATA_ERROR, "cannot list devices: %s",
                     clloss_status_string(s));
  /* Create the context on the chosen index, so that a selector that is a
   * name substring cannot pick a different device the second time. */
  char by_index[32];
  snprintf(by_index, sizeof by_index, "%zu", *index);
  s = clloss_context_create_default(by_index, ctx);
  if (s != CLLOSS_SUCCESS) {
    *ctx = NULL;
    return cli_error(cmd, CLI_DATA_ERROR,
                     "cannot create a context on device %zu (%s): %s (%s)",
                     *index, info.name, clloss_status_name(s),
                     clloss_context_error_detail(NULL)[0]
                         ? clloss_context_error_detail(NULL)
                         : clloss_status_string(s));
  }
  return CLI_OK;
}

int cli_parse_reduction(const char *cmd, const char *v, clloss_reduction *out) {
  static const clloss_reduction all[] = {
      CLLOSS_REDUCTION_NONE, CLLOSS_REDUCTION_MEAN, CLLOSS_REDUCTION_SUM,
      CLLOSS_REDUCTION_BATCHMEAN};
  if (!v)
    return cli_usage(cmd, "--reduction needs a value");
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (strcmp(v, clloss_reduction_name(all[i])) == 0) {
      *out = all[i];
      return CLI_OK;
    }
  return cli_usage(cmd, "unknown reduction '%s' (none, mean, sum, batchmean)",
                   v);
}
