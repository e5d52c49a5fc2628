/* cli_bench_harness.c - what every `clloss bench` benchmark shares: the
 * options they have in common, the median of the timed runs, the machine's
 * load, and a JSON writer that escapes its strings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bench.h"

#define usage(...) cli_usage("bench", __VA_ARGS__)

/* ---- options ---- */

int bench_parse_dtype(const char *name, const char *v, int targets,
                      clloss_dtype *out) {
  static const clloss_dtype floats[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16,
                                        CLLOSS_BFLOAT16, CLLOSS_FLOAT64};
  static const clloss_dtype ints[] = {CLLOSS_INT64, CLLOSS_INT32};
  const clloss_dtype *all = targets ? ints : floats;
  size_t n = targets ? 2 : 4;
  if (!v)
    return usage("%s needs a value", name);
  for (size_t i = 0; i < n; i++)
    if (strcmp(v, clloss_dtype_name(all[i])) == 0) {
      *out = all[i];
      return CLI_OK;
    }
  return usage("unknown %s '%s' (%s)", name, v,
               targets ? "int64, int32"
                       : "float32, float16, bfloat16, float64");
}

static int parse_count(const char *name, const char *v, size_t lo, size_t hi,
                       size_t *out) {
  if (!v)
    return usage("%s needs a value", name);
  if (!cli_parse_size(v, out) || *out < lo || *out > hi)
    return usage("%s must be a whole number in [%zu, %zu], not '%s'", name, lo,
                 hi, v);
  return CLI_OK;
}

int bench_size_option(int argc, char **argv, int *i, const bench_size *sizes,
                      size_t n, void *args, int *matched) {
  const char *v;
  for (size_t k = 0; k < n; k++)
    if (cli_option(argc, argv, i, sizes[k].name, &v)) {
      *matched = 1;
      return parse_count(sizes[k].name, v, sizes[k].lo, sizes[k].hi,
                         (size_t *)((char *)args + sizes[k].offset));
    }
  *matched = 0;
  return CLI_OK;
}

int bench_option(int argc, char **argv, int *i, unsigned accept, bench_opts *o,
                 int *matched) {
  const char *v;
  size_t n = 0;
  int rc = CLI_OK;
  *matched = 1;
  if (cli_option(argc, argv, i, "--repeat", &v)) {
    rc = parse_count("--repeat", v, 1, 100000, &n);
    o->repeat = (int)n;
  } else if (cli_option(argc, argv, i, "--warmup", &v)) {
    rc = parse_count("--warmup", v, 0, 100000, &n);
    o->warmup = (int)n;
  } else if (cli_option(argc, argv, i, "--device", &v)) {
    if (!v || !*v)
      return usage("--device needs a value");
    o->device = v;
  } else if (cli_flag(argv[*i], "--json-only")) {
    o->json_only = 1;
    (*i)++;
  } else if ((accept & BENCH_DTYPE) &&
             cli_option(argc, argv, i, "--dtype", &v)) {
    rc = bench_parse_dtype("--dtype", v, 0, &o->dtype);
  } else if ((accept & BENCH_SEED) && cli_option(argc, argv, i, "--seed", &v)) {
    rc = parse_count("--seed", v, 0, (size_t)-1 >> 1, &n);
    o->seed = n;
  } else if ((accept & BENCH_VARIANT) &&
             cli_option(argc, argv, i, "--variant", &v)) {
    if (!v)
      return usage("--variant needs a value");
    if (strcmp(v, "auto") && strcmp(v, "item") && strcmp(v, "group") &&
        strcmp(v, "split") && strcmp(v, "lanes"))
      return usage("unknown variant '%s' (auto, item, group, split, lanes)", v);
    o->variant = v;
  } else {
    *matched = 0;
  }
  return rc;
}

/* ---- timing ---- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void bench_stats(double *v, size_t n, double *median, double *min) {
  qsort(v, n, sizeof *v, cmp_double);
  *min = v[0];
  *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

clloss_status bench_finish(cl_command_queue queue, clloss_status s) {
  if (s != CLLOSS_SUCCESS)
    return s;
  const cl_int err = clFinish(queue);
  return err == CL_SUCCESS ? CLLOSS_SUCCESS : (clloss_status)err;
}

double bench_read_value(cl_command_queue queue, cl_mem mem, clloss_dtype type) {
  double d = NAN;
  float f;
  if (type == CLLOSS_FLOAT64)
    return clEnqueueReadBuffer(queue, mem, CL_TRUE, 0, sizeof d, &d, 0, NULL,
                               NULL) == CL_SUCCESS
               ? d
               : NAN;
  return clEnqueueReadBuffer(queue, mem, CL_TRUE, 0, sizeof f, &f, 0, NULL,
                             NULL) == CL_SUCCESS
             ? f
             : NAN;
}

int bench_rounds(int warmup, int repeat, bench_step step, int steps,
                 void *state, double *const *times) {
  for (int i = -warmup; i < repeat; i++)
    for (int k = 0; k < steps; k++) {
      const double t0 = cli_now_ms();
      const int rc = step(state, k, i >= 0);
      if (i >= 0)
        times[k][i] = cli_now_ms() - t0;
      if (rc != CLI_OK)
        return rc;
    }
  return CLI_OK;
}

int bench_loadavg(double load[3]) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f)
    return 0;
  const int have = fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) == 3;
  fclose(f);
  return have;
}

/* ---- JSON ---- */

void json_string(FILE *out, const char *s) {
  if (!s) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

void json_number(FILE *out, double v, const char *fmt) {
  if (isfinite(v))
    fprintf(out, fmt, v);
  else
    fputs("null", out);
}

void json_begin(json_writer *w, FILE *out) {
  w->out = out;
  w->count = 0;
  fputc('{', out);
}

void json_end(json_writer *w) {
  fputs("}\n", w->out);
}

void json_name(json_writer *w, const char *key) {
  if (w->count++)
    fputc(',', w->out);
  json_string(w->out, key);
  fputc(':', w->out);
}

void json_str(json_writer *w, const char *key, const char *s) {
  json_name(w, key);
  json_string(w->out, s);
}

void json_num(json_writer *w, const char *key, double v, const char *fmt) {
  json_name(w, key);
  json_number(w->out, v, fmt);
}

void json_uint(json_writer *w, const char *key, unsigned long long v) {
  json_name(w, key);
  fprintf(w->out, "%llu", v);
}

void json_bool(json_writer *w, const char *key, int v) {
  json_name(w, key);
  fputs(v ? "true" : "false", w->out);
}

void json_null(json_writer *w, const char *key) {
  json_name(w, key);
  fputs("null", w->out);
}

void json_nums(json_writer *w, const char *key, const double *v, size_t n,
               const char *fmt) {
  json_name(w, key);
  fputc('[', w->out);
  for (size_t i = 0; i < n; i++) {
    if (i)
      fputc(',', w->out);
    json_number(w->out, v[i], fmt);
  }
  fputc(']', w->out);
}

void json_sizes(json_writer *w, const char *key, const size_t *v, size_t n) {
  json_name(w, key);
  fputc('[', w->out);
  for (size_t i = 0; i < n; i++)
    fprintf(w->out, "%s%zu", i ? "," : "", v[i]);
  fputc(']', w->out);
}
