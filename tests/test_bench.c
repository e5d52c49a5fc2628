/* test_bench.c - `clloss bench` in-process through clloss_cli_main: the last
 * line of stdout is one JSON object (checked by a small strict parser) with
 * the required keys and sane values on tiny shapes, options are honoured,
 * and bad command lines exit with 2 and one line on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testutil.h"

#ifdef CLLOSS_HAVE_CLI_CORE
#include "cli.h"
#ifdef CLLOSS_CLI_HAVE_BENCH
#include "bench.h"
#endif

static char out_text[1 << 16], err_text[4096];

/* Runs `clloss ARGS` (split at spaces) with stdout and stderr captured. */
static int bench(const char *args) {
  char copy[1024], *argv[64];
  int argc = 0;
  argv[argc++] = (char *)"clloss";
  snprintf(copy, sizeof copy, "%s", args);
  for (char *tok = strtok(copy, " "); tok && argc < 63; tok = strtok(NULL, " "))
    argv[argc++] = tok;
  argv[argc] = NULL;
  char out_file[] = "/tmp/clloss-bench-out-XXXXXX";
  char err_file[] = "/tmp/clloss-bench-err-XXXXXX";
  int fo = mkstemp(out_file), fe = mkstemp(err_file);
  if (fo < 0 || fe < 0) {
    CU_FAIL("mkstemp failed");
    return -1;
  }
  close(fo);
  close(fe);
  int rc =
      tu_run_captured(clloss_cli_main, argc, argv, out_file, out_text,
                      sizeof out_text, err_file, err_text, sizeof err_text);
  unlink(out_file);
  unlink(err_file);
  return rc;
}

/* ---- a strict JSON parser, enough to check one object ---- */

typedef struct json_key {
  char name[32];
  const char *value; /* where its value starts */
} json_key;

typedef struct json_doc {
  json_key keys[64];
  int count;
} json_doc;

static const char *ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
    p++;
  return p;
}

static const char *value(const char *p, int depth, json_doc *top);

static const char *string(const char *p, char *copy, size_t cap) {
  size_t n = 0;
  if (*p++ != '"')
    return NULL;
  for (; *p != '"'; p++) {
    if ((unsigned char)*p < 0x20)
      return NULL;
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int k = 1; k <= 4; k++)
          if (!isxdigit((unsigned char)p[k]))
            return NULL;
        p += 4;
      } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
        return NULL;
      }
    }
    if (copy && n + 1 < cap)
      copy[n++] = *p;
  }
  if (copy)
    copy[n] = '\0';
  return p + 1;
}

static const char *number(const char *p) {
  const char *s = p;
  if (*p == '-')
    p++;
  if (!isdigit((unsigned char)*p))
    return NULL;
  if (*p == '0')
    p++;
  else
    while (isdigit((unsigned char)*p))
      p++;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!isdigit((unsigned char)*p))
      return NULL;
    while (isdigit((unsigned char)*p))
      p++;
  }
  return p > s ? p : NULL;
}

static const char *container(const char *p, int depth, json_doc *top) {
  const char close = *p == '{' ? '}' : ']';
  const int object = *p == '{';
  p = ws(p + 1);
  if (*p == close)
    return p + 1;
  for (;;) {
    if (object) {
      char name[32];
      if (!(p = string(p, name, sizeof name)))
        return NULL;
      p = ws(p);
      if (*p++ != ':')
        return NULL;
      p = ws(p);
      if (depth == 0 && top->count < 64) {
        snprintf(top->keys[top->count].name, sizeof top->keys[0].name, "%s",
                 name);
        top->keys[top->count++].value = p;
      }
    }
    if (!(p = value(p, depth + 1, top)))
      return NULL;
    p = ws(p);
    if (*p == close)
      return p + 1;
    if (*p++ != ',')
      return NULL;
    p = ws(p);
  }
}

static const char *value(const char *p, int depth, json_doc *top) {
  if (depth > 16)
    return NULL;
  switch (*p) {
  case '{':
  case '[':
    return container(p, depth, top);
  case '"':
    return string(p, NULL, 0);
  case 't':
    return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
  case 'f':
    return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
  case 'n':
    return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
  default:
    return number(p);
  }
}

/* Parses the last line of out_text as one JSON object; 0 on success. */
static int parse_last_line(json_doc *doc) {
  memset(doc, 0, sizeof *doc);
  size_t len = strlen(out_text);
  if (len == 0 || out_text[len - 1] != '\n')
    return -1;
  out_text[len - 1] = '\0';
  const char *line = strrchr(out_text, '\n');
  line = line ? line + 1 : out_text;
  if (*line != '{')
    return -1;
  const char *end = value(line, 0, doc);
  int ok = end && *ws(end) == '\0';
  out_text[len - 1] = '\n';
  return ok ? 0 : -1;
}

static const char *get(const json_doc *doc, const char *name) {
  for (int i = 0; i < doc->count; i++)
    if (strcmp(doc->keys[i].name, name) == 0)
      return doc->keys[i].value;
  printf("\n  JSON key %s missing", name);
  return NULL;
}

static double num(const json_doc *doc, const char *name) {
  const char *v = get(doc, name);
  return v && (*v == '-' || isdigit((unsigned char)*v)) ? strtod(v, NULL) : NAN;
}

static int str_is(const json_doc *doc, const char *name, const char *want) {
  const char *v = get(doc, name);
  char got[128];
  return v && string(v, got, sizeof got) && strcmp(got, want) == 0;
}

static const char *const required[] = {
    "loss",      "device",        "dtype",          "shape",     "repeat",
    "median_ms", "min_ms",        "bytes",          "gbps",      "copy_gbps",
    "variant",   "first_call_ms", "opencl_init_ms", "context_ms"};

static int run_ok(const char *args) {
  int rc = bench(args);
  if (rc != 0)
    printf("\n  `clloss %s`: exit %d, stderr: %s", args, rc, err_text);
  return rc == 0;
}

/* ---- tests ---- */

static void test_cross_entropy_json(void) {
  TU_REQUIRE_DEVICE();
  if (!run_ok("bench cross_entropy --rows 8 --classes 100 --repeat 3 "
              "--warmup 1"))
    CU_FAIL_FATAL("bench failed");
  json_doc doc;
  CU_ASSERT_EQUAL_FATAL(parse_last_line(&doc), 0);
  for (size_t i = 0; i < sizeof required / sizeof *required; i++)
    CU_ASSERT_PTR_NOT_NULL(get(&doc, required[i]));
  CU_ASSERT(str_is(&doc, "loss", "cross_entropy"));
  CU_ASSERT(str_is(&doc, "dtype", "float32"));
  const char *shape = get(&doc, "shape");
  CU_ASSERT(shape && strncmp(shape, "[8,100]", 7) == 0);
  CU_ASSERT_EQUAL(num(&doc, "repeat"), 3);
  /* input + gradient 8*100*4 each, int64 targets 8*8, the scalar loss 4. */
  CU_ASSERT_EQUAL(num(&doc, "bytes"), 2 * 8 * 100 * 4 + 8 * 8 + 4);
  double med = num(&doc, "median_ms"), mn = num(&doc, "min_ms");
  CU_ASSERT(med > 0 && mn > 0 && mn <= med);
  double gbps = num(&doc, "gbps");
  CU_ASSERT(fabs(gbps - num(&doc, "bytes") / med / 1e6) <= 0.01 * gbps + 1e-3);
  CU_ASSERT(num(&doc, "copy_gbps") > 0);
  CU_ASSERT(num(&doc, "first_call_ms") > 0);
  CU_ASSERT(num(&doc, "opencl_init_ms") >= 0 && num(&doc, "context_ms") > 0);
  const char *variant = get(&doc, "variant");
  CU_ASSERT(variant && (strncmp(variant, "\"item\"", 6) == 0 ||
                        strncmp(variant, "\"group\"", 7) == 0 ||
                        strncmp(variant, "\"split\"", 7) == 0));
  /* log-sum-exp of 100 logits in [-5, 5) minus the target's: about 6. */
  double loss = num(&doc, "loss_value");
  CU_ASSERT(loss > 2 && loss < 12);
}

static void test_options_honoured(void) {
  TU_REQUIRE_DEVICE();
  json_doc doc;
  if (!run_ok("bench mse_loss --numel 1000 --dtype float16 --repeat 1 "
              "--warmup 0 --no-copy --json-only --variant group"))
    CU_FAIL_FATAL("bench failed");
  /* --json-only: the JSON object is the only line. */
  CU_ASSERT_EQUAL(strchr(out_text, '\n'), out_text + strlen(out_text) - 1);
  CU_ASSERT_EQUAL_FATAL(parse_last_line(&doc), 0);
  CU_ASSERT(str_is(&doc, "dtype", "float16"));
  CU_ASSERT(str_is(&doc, "variant", "group"));
  CU_ASSERT_EQUAL(num(&doc, "bytes"), 3 * 1000 * 2 + 4);
  const char *copy = get(&doc, "copy_gbps");
  CU_ASSERT(copy && strncmp(copy, "null", 4) == 0);

  if (!run_ok("bench nll_loss --rows 5 --classes 7 --target-dtype int32 "
              "--reduction none --no-grad --repeat 2 --no-copy --json-only "
              "--variant item"))
    CU_FAIL_FATAL("bench failed");
  CU_ASSERT_EQUAL_FATAL(parse_last_line(&doc), 0);
  CU_ASSERT(str_is(&doc, "variant", "item"));
  /* One input entry per row 5*4, int32 targets 5*4, one loss per row, no
   * gradient. */
  CU_ASSERT_EQUAL(num(&doc, "bytes"), 5 * 4 + 5 * 4 + 5 * 4);
  const char *grad = get(&doc, "grad");
  CU_ASSERT(grad && strncmp(grad, "false", 5) == 0);
}

/* A loss smaller than the copy's least size still gets a copy. */
static void test_tiny_copy(void) {
  TU_REQUIRE_DEVICE();
  json_doc doc;
  if (!run_ok("bench l1_loss --numel 7 --repeat 1 --warmup 0 --json-only"))
    CU_FAIL_FATAL("bench failed");
  CU_ASSERT_EQUAL_FATAL(parse_last_line(&doc), 0);
  CU_ASSERT_EQUAL(num(&doc, "bytes"), 3 * 7 * 4 + 4);
  CU_ASSERT(num(&doc, "copy_gbps") > 0);
  CU_ASSERT_EQUAL(num(&doc, "copy_bytes"), 128);
}

/* No such device: exit 1, one line, nothing on stdout. */
static void test_no_such_device(void) {
  int rc = bench("bench mse_loss --numel 10 --device 999");
  CU_ASSERT_EQUAL(rc, CLI_DATA_ERROR);
  CU_ASSERT_EQUAL(strncmp(err_text, "clloss bench: ", 14), 0);
  CU_ASSERT_EQUAL(out_text[0], '\0');
}

static void expect_usage(const char *args) {
  int rc = bench(args);
  if (rc != CLI_USAGE || strncmp(err_text, "clloss bench: ", 14) != 0)
    printf("\n  `clloss %s`: exit %d (want 2), stderr: %s", args, rc, err_text);
  CU_ASSERT_EQUAL(rc, CLI_USAGE);
  CU_ASSERT_EQUAL(strncmp(err_text, "clloss bench: ", 14), 0);
  /* One line, and nothing on stdout. */
  size_t lines = 0;
  for (const char *c = err_text; *c; c++)
    lines += *c == '\n';
  CU_ASSERT_EQUAL(lines, 1);
  CU_ASSERT_EQUAL(out_text[0], '\0');
}

static void test_usage_errors(void) {
  expect_usage("bench");
  expect_usage("bench softmax");
  expect_usage("bench cross_entropy mse_loss");
  expect_usage("bench cross_entropy --numel 100");
  expect_usage("bench cross_entropy --rows 0");
  expect_usage("bench cross_entropy --rows");
  expect_usage("bench cross_entropy --classes 10x");
  expect_usage("bench cross_entropy --rows 1048576 --classes 1099511627776");
  expect_usage("bench mse_loss --rows 10");
  expect_usage("bench mse_loss --numel 10 --rows 2 --classes 5");
  expect_usage("bench mse_loss --target-dtype int32");
  expect_usage("bench mse_loss --reduction batchmean");
  expect_usage("bench mse_loss --variant split");
  expect_usage("bench l1_loss --dtype int8");
  expect_usage("bench l1_loss --variant fast");
  expect_usage("bench l1_loss --repeat 0");
  expect_usage("bench l1_loss --warmup -1");
  expect_usage("bench l1_loss --reduction avg");
  expect_usage("bench l1_loss --fast");
}

/* The JSON writer every benchmark uses escapes what a driver may put in a
 * device or platform name, and writes what is not a finite number as
 * null; the line it writes parses. */
static void test_json_escapes(void) {
#ifdef CLLOSS_CLI_HAVE_BENCH
  FILE *f = tmpfile();
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  json_writer w;
  json_begin(&w, f);
  json_str(&w, "device", "GPU \"fast\" C:\\dev\tx");
  json_str(&w, "platform", "a\\\"b");
  json_num(&w, "ms", NAN, "%.3f");
  json_bool(&w, "grad", 1);
  const double t[2] = {1.5, INFINITY};
  json_nums(&w, "times_ms", t, 2, "%.1f");
  json_end(&w);
  rewind(f);
  size_t n = fread(out_text, 1, sizeof out_text - 1, f);
  fclose(f);
  out_text[n] = '\0';
  CU_ASSERT_STRING_EQUAL(out_text,
                         "{\"device\":\"GPU \\\"fast\\\" C:\\\\dev\\u0009x\","
                         "\"platform\":\"a\\\\\\\"b\",\"ms\":null,"
                         "\"grad\":true,\"times_ms\":[1.5,null]}\n");
  json_doc doc;
  CU_ASSERT_EQUAL(parse_last_line(&doc), 0);
  CU_ASSERT_PTR_NOT_NULL(get(&doc, "platform"));
#else
  tu_skip("clloss bench is not built");
#endif
}

static void test_help(void) {
  CU_ASSERT_EQUAL(bench("bench --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "usage: clloss bench"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "Bytes"));
  CU_ASSERT_EQUAL(bench("help bench"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "copy_gbps"));
}

int test_bench_register(void) {
  TU_SUITE("bench", NULL, NULL, TU_TEST(test_cross_entropy_json),
           TU_TEST(test_options_honoured), TU_TEST(test_tiny_copy),
           TU_TEST(test_no_such_device), TU_TEST(test_usage_errors),
           TU_TEST(test_help), TU_TEST(test_json_escapes));
}

#else /* the tool is not built (CLLOSS_BUILD_TOOLS=OFF) */

static void test_bench_not_built(void) {
  tu_skip("the clloss tool is not built");
}

int test_bench_register(void) {
  TU_SUITE("bench", NULL, NULL, TU_TEST(test_bench_not_built));
}
#endif
