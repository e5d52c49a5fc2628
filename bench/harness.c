/* harness.c - what every `clloss bench` benchmark shares: the
 * options parser (options as data), the timed rounds and their medians,
 * the run on one device from set-up to release, the machine's load, and a
 * JSON writer that escapes its strings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "bench.h"

#define usage(...) cli_usage("bench", __VA_ARGS__)

/* ---- options ---- */

/* Option o's value v (NULL: none given) into its field `at`. */
static int store(const bench_opt *o, const char *v, void *at) {
  static const char *const variants[] = {"auto", "item", "group", "split",
                                         "lanes"};
  static const clloss_dtype types[] = {CLLOSS_FLOAT32,  CLLOSS_FLOAT16,
                                       CLLOSS_BFLOAT16, CLLOSS_FLOAT64,
                                       CLLOSS_INT64,    CLLOSS_INT32};
  const int targets = o->kind == BENCH_TARGET;
  size_t n;
  switch (o->kind) {
  case BENCH_SIZE:
    if (!v)
      break;
    if (!cli_parse_size(v, &n) || n < o->lo || n > o->hi)
      return usage("%s must be a whole number in [%zu, %zu], not '%s'", o->name,
                   o->lo, o->hi, v);
    *(size_t *)at = n;
    return CLI_OK;
  case BENCH_FLAG:
    *(int *)at = 1;
    return CLI_OK;
  case BENCH_DTYPE:
  case BENCH_TARGET: /* the float types, or the target types */
    for (n = targets ? 4 : 0; v && n < (targets ? 6u : 4u); n++)
      if (strcmp(v, clloss_dtype_name(types[n])) == 0) {
        *(clloss_dtype *)at = types[n];
        return CLI_OK;
      }
    if (v)
      return usage("unknown %s '%s' (%s)", o->name, v,
                   targets ? "int64, int32"
                           : "float32, float16, bfloat16, float64");
    break;
  case BENCH_REDUCTION:
    return cli_parse_reduction("bench", v, at);
  case BENCH_VARIANT:
    for (n = 0; v && n < 5; n++)
      if (strcmp(v, variants[n]) == 0) {
        *(const char **)at = v;
        return CLI_OK;
      }
    if (v)
      return usage("unknown variant '%s' (auto, item, group, split, lanes)", v);
    break;
  case BENCH_DEVICE:
    if (!v || !*v)
      break;
    *(const char **)at = v;
    return CLI_OK;
  }
  return usage("%s needs a value", o->name);
}

int bench_parse(const bench_parser *p, int argc, char **argv, bench_args *a) {
  const bench_opt common[] = {
      {"--repeat", BENCH_SIZE, 1, 100000, BENCH_AT(repeat), p->repeat},
      {"--warmup", BENCH_SIZE, 0, 100000, BENCH_AT(warmup), p->warmup},
      {"--device", BENCH_DEVICE, 0, 0, BENCH_AT(device), 0},
      {"--json-only", BENCH_FLAG, 0, 0, BENCH_AT(json_only), 0}};
  memset(a, 0, sizeof *a);
  for (size_t k = 0; k < 4 + p->n; k++) {
    const bench_opt *o = k < 4 ? &common[k] : &p->opts[k - 4];
    if (o->kind == BENCH_SIZE)
      *(size_t *)((char *)a + o->at) = o->def;
    else if (o->kind == BENCH_TARGET)
      *(clloss_dtype *)((char *)a + o->at) = BENCH_UNSET;
  }
  for (int i = p->first; i < argc;) {
    const bench_opt *o = NULL;
    const char *v = NULL;
    for (size_t k = 0; k < 4 + p->n && !o; k++) {
      const bench_opt *c = k < 4 ? &common[k] : &p->opts[k - 4];
      if (c->kind == BENCH_FLAG ? cli_flag(argv[i], c->name) && ++i
                                : cli_option(argc, argv, &i, c->name, &v))
        o = c;
    }
    const int rc = o ? store(o, v, (char *)a + o->at) : p->other(a, argv[i++]);
    if (rc != CLI_OK)
      return rc;
  }
  return p->check ? p->check(a) : CLI_OK;
}

/* ---- JSON ---- */

static void json_string(FILE *out, const char *s) {
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

static void json_number(FILE *out, double v, const char *fmt) {
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

static void json_name(json_writer *w, const char *key) {
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

static void json_null(json_writer *w, const char *key) {
  json_name(w, key);
  fputs("null", w->out);
}

void json_nulls(json_writer *w, const char *const *keys) {
  for (; *keys; keys++)
    json_null(w, *keys);
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

/* ---- timing ---- */

clloss_status bench_finish(cl_command_queue queue, clloss_status s) {
  if (s != CLLOSS_SUCCESS)
    return s;
  const cl_int err = clFinish(queue);
  return err == CL_SUCCESS ? CLLOSS_SUCCESS : (clloss_status)err;
}

double bench_read_value(cl_command_queue queue, cl_mem mem, clloss_dtype type) {
  union {
    float f;
    double d;
  } v;
  const int d = type == CLLOSS_FLOAT64;
  if (clEnqueueReadBuffer(queue, mem, CL_TRUE, 0, d ? sizeof v.d : sizeof v.f,
                          &v, 0, NULL, NULL) != CL_SUCCESS)
    return NAN;
  return d ? v.d : v.f;
}

/* `warmup` untimed rounds, then `repeat` timed ones; a round calls
 * step(state, k, timed) for k = 0 .. steps-1 in turn, each timed on the
 * host clock from call to return into times[k][i]. A step's failure ends
 * the rounds. */
static int bench_rounds(int warmup, int repeat, bench_step step, int steps,
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

/* ---- device buffers ---- */

cl_int bench_buffers(clloss_context *ctx, const bench_buf *b, size_t n,
                     size_t max, cl_mem *mem, size_t *bad,
                     enum bench_phase *phase) {
  cl_command_queue q = clloss_context_queue(ctx);
  cl_int err = CL_SUCCESS;
  for (*bad = 0; *bad < n; ++*bad) {
    const size_t bytes = b[*bad].count * clloss_dtype_size(b[*bad].type);
    *phase = max && bytes > max ? BENCH_TOO_LARGE : BENCH_ALLOCATING;
    if (b[*bad].count && *phase == BENCH_TOO_LARGE)
      return CL_INVALID_BUFFER_SIZE;
    if (b[*bad].count &&
        !(mem[*bad] = clCreateBuffer(clloss_context_cl_context(ctx),
                                     b[*bad].flags, bytes, NULL, &err)))
      return err;
  }
  for (*bad = 0; *bad < n; ++*bad) {
    const bench_buf *k = &b[*bad];
    const cl_uint zero = 0;
    if (!k->count || (*phase = k->fill) == BENCH_KEEP)
      continue;
    if (k->fill == BENCH_RANDOM)
      err = bench_fill(q, mem[*bad], k->type, k->count, k->lo, k->hi, k->seed);
    else if ((err = clEnqueueFillBuffer(q, mem[*bad], &zero, sizeof zero, 0,
                                        k->count * clloss_dtype_size(k->type),
                                        0, NULL, NULL)) == CL_SUCCESS)
      err = clFinish(q);
    if (err != CL_SUCCESS)
      return err;
  }
  return err;
}

void bench_release(cl_mem *mem, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (mem[i])
      clReleaseMemObject(mem[i]);
  memset(mem, 0, n * sizeof *mem);
}

/* ---- one benchmark on one device ---- */

static void report(const bench_spec *s, const bench_run *r) {
  const clloss_device_info *info = clloss_context_device_info(r->ctx);
  double load[3];
  const int have_load = bench_loadavg(load);
  if (!r->a.json_only)
    s->text(r);
  json_writer w;
  json_begin(&w, stdout);
  json_str(&w, "loss", r->name);
  json_str(&w, "device", info->name);
  json_uint(&w, "device_index", r->device_index);
  s->json(r, &w);
  if (have_load)
    json_nums(&w, "loadavg", load, 3, "%.2f");
  else
    json_null(&w, "loadavg");
  json_str(&w, "clloss_version", CLLOSS_VERSION_STRING);
  json_end(&w);
  fflush(stdout);
}

int bench_main(const bench_spec *s, int argc, char **argv) {
  bench_args a;
  int rc = bench_parse(s->parse, argc, argv, &a);
  if (rc != CLI_OK)
    return rc;
  bench_run *r = calloc(1, s->size);
  double *t = calloc(2 * a.repeat, sizeof *t);
  if (!r || !t) {
    free(r);
    free(t);
    return cli_error("bench", CLI_DATA_ERROR, "out of host memory");
  }
  r->a = a;
  r->times[0] = t;
  r->times[1] = t + a.repeat;
  /* Start-up in parts: the drivers' own (loading and initialising them,
   * whoever makes the process's first OpenCL call), then clloss's. */
  double t0 = cli_now_ms();
  size_t devices = 0;
  clloss_device_list(NULL, 0, &devices);
  r->opencl_init_ms = cli_now_ms() - t0;
  t0 = cli_now_ms();
  rc = cli_open_device("bench", a.device, &r->ctx, &r->device_index);
  r->context_ms = cli_now_ms() - t0;
  if (rc == CLI_OK) {
    r->queue = clloss_context_queue(r->ctx);
    rc = s->setup(r);
  }
  if (rc == CLI_OK)
    rc = bench_rounds((int)a.warmup, (int)a.repeat, s->step, r->steps, r,
                      r->times);
  for (int k = 0; rc == CLI_OK && k < r->steps; k++) {
    bench_stats(r->times[k], a.repeat, &r->median[k], &r->min[k]);
    r->max[k] = r->times[k][a.repeat - 1];
  }
  if (rc == CLI_OK) {
    s->done(r);
    report(s, r);
  }
  if (s->release)
    s->release(r);
  bench_release(r->m, BENCH_COUNT(r->m));
  clloss_context_release(r->ctx);
  free(t);
  free(r);
  return rc;
}
