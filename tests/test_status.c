/* test_status.c - status names and messages, storage types, and the
 * float16 / bfloat16 conversions (no device needed). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support/testutil.h"

/* The X-macro list of clloss.h, expanded here into a table. */
typedef struct status_row {
  int code;
  const char *name, *msg;
} status_row;

static const status_row rows[] = {
#define ROW_(name, code, msg) {code, "CLLOSS_" #name, msg},
    CLLOSS_STATUS_MAP(ROW_)
#undef ROW_
};
enum { NROWS = sizeof rows / sizeof rows[0] };

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static void test_status_names_from_map(void) {
  for (int i = 0; i < NROWS; i++) {
    const char *n = clloss_status_name(rows[i].code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    if (strcmp(n, rows[i].name) != 0)
      printf("\n  code %d: name %s, expected %s", rows[i].code, n,
             rows[i].name);
    CU_ASSERT_STRING_EQUAL(n, rows[i].name);
    const char *s = clloss_status_string(rows[i].code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, rows[i].msg);
  }
  CU_ASSERT_STRING_EQUAL(clloss_status_name(CLLOSS_SUCCESS), "CLLOSS_SUCCESS");
  CU_ASSERT_STRING_EQUAL(clloss_status_name(CLLOSS_INVALID_TARGET),
                         "CLLOSS_INVALID_TARGET");
  CU_ASSERT_STRING_EQUAL(clloss_status_name(CLLOSS_DEVICE_NOT_FOUND),
                         "CLLOSS_DEVICE_NOT_FOUND");
}

static void test_status_distinct(void) {
  /* One name, one message and one code per cause. */
  for (int i = 0; i < NROWS; i++) {
    for (int j = i + 1; j < NROWS; j++) {
      CU_ASSERT_NOT_EQUAL(rows[i].code, rows[j].code);
      CU_ASSERT_TRUE(strcmp(clloss_status_name(rows[i].code),
                            clloss_status_name(rows[j].code)) != 0);
      CU_ASSERT_TRUE(strcmp(clloss_status_string(rows[i].code),
                            clloss_status_string(rows[j].code)) != 0);
    }
  }
}

static void test_status_ranges(void) {
  /* Library codes are positive, 1001 and up, so they never collide with
   * OpenCL's (negative, extension codes included). */
  for (int i = 0; i < NROWS; i++) {
    if (rows[i].code == 0)
      continue;
    CU_ASSERT_TRUE(rows[i].code >= 1001);
  }
  CU_ASSERT_EQUAL(CLLOSS_SUCCESS, CL_SUCCESS);
  /* An extension code such as cl_khr_icd's -1001 is OpenCL's, not ours. */
  CU_ASSERT_STRING_EQUAL(clloss_status_name(-1001),
                         "CL_PLATFORM_NOT_FOUND_KHR");
  CU_ASSERT_PTR_NULL(strstr(clloss_status_name(-1002), "CLLOSS_"));
}

static void test_status_opencl_pass_through(void) {
  static const struct {
    int code;
    const char *name;
  } cl[] = {
      {CL_INVALID_VALUE, "CL_INVALID_VALUE"},
      {CL_OUT_OF_RESOURCES, "CL_OUT_OF_RESOURCES"},
      {CL_OUT_OF_HOST_MEMORY, "CL_OUT_OF_HOST_MEMORY"},
      {CL_BUILD_PROGRAM_FAILURE, "CL_BUILD_PROGRAM_FAILURE"},
      {CL_MEM_OBJECT_ALLOCATION_FAILURE, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
      {CL_INVALID_WORK_GROUP_SIZE, "CL_INVALID_WORK_GROUP_SIZE"},
      {CL_INVALID_KERNEL_ARGS, "CL_INVALID_KERNEL_ARGS"},
      {CL_INVALID_MEM_OBJECT, "CL_INVALID_MEM_OBJECT"},
      {CL_INVALID_COMMAND_QUEUE, "CL_INVALID_COMMAND_QUEUE"},
      {CL_INVALID_CONTEXT, "CL_INVALID_CONTEXT"},
      {CL_DEVICE_NOT_FOUND, "CL_DEVICE_NOT_FOUND"},
      {CL_INVALID_BUFFER_SIZE, "CL_INVALID_BUFFER_SIZE"}};
  for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++) {
    const char *n = clloss_status_name(cl[i].code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    if (strcmp(n, cl[i].name) != 0)
      printf("\n  %d: %s, expected %s", cl[i].code, n, cl[i].name);
    CU_ASSERT_STRING_EQUAL(n, cl[i].name);
    const char *s = clloss_status_string(cl[i].code);
    CU_ASSERT_PTR_NOT_NULL(s);
    CU_ASSERT_TRUE(s && s[0] != '\0');
  }
}

static void test_status_unknown_never_null(void) {
  static const int codes[] = {-999, -1000, -1010, -5000, 1,
                              42,   -77,   1000,  1999,  5000};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *n = clloss_status_name(codes[i]);
    const char *s = clloss_status_string(codes[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(n[0] != '\0' && s[0] != '\0');
    /* An unknown code must not borrow a known code's name. */
    for (int j = 0; j < NROWS; j++)
      CU_ASSERT_TRUE(strcmp(n, rows[j].name) != 0);
  }
}

static void test_dtype_sizes_names(void) {
  CU_ASSERT_EQUAL(clloss_dtype_size(CLLOSS_FLOAT32), 4);
  CU_ASSERT_EQUAL(clloss_dtype_size(CLLOSS_FLOAT16), 2);
  CU_ASSERT_EQUAL(clloss_dtype_size(CLLOSS_BFLOAT16), 2);
  CU_ASSERT_EQUAL(clloss_dtype_size(CLLOSS_FLOAT64), 8);
  CU_ASSERT_EQUAL(clloss_dtype_size(CLLOSS_INT32), 4);
  CU_ASSERT_EQUAL(clloss_dtype_size(CLLOSS_INT64), 8);
  CU_ASSERT_EQUAL(clloss_dtype_size((clloss_dtype)6), 0);
  CU_ASSERT_EQUAL(clloss_dtype_size((clloss_dtype)-1), 0);
  static const char *const names[] = {"float32", "float16", "bfloat16",
                                      "float64", "int32",   "int64"};
  for (int t = 0; t < 6; t++) {
    const char *n = clloss_dtype_name((clloss_dtype)t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, names[t]);
  }
  CU_ASSERT_PTR_NULL(clloss_dtype_name((clloss_dtype)6));
  CU_ASSERT_PTR_NULL(clloss_dtype_name((clloss_dtype)-1));
}

static void test_reduction_names(void) {
  static const char *const names[] = {"mean", "sum", "none", "batchmean"};
  for (int r = 0; r < 4; r++) {
    const char *n = clloss_reduction_name((clloss_reduction)r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, names[r]);
  }
  CU_ASSERT_PTR_NULL(clloss_reduction_name((clloss_reduction)4));
}

/* ---- float16 ---- */
static void test_half_exact_values(void) {
  static const struct {
    float f;
    uint16_t h;
  } v[] = {{0.0f, 0x0000},
           {1.0f, 0x3C00},
           {-2.0f, 0xC000},
           {0.5f, 0x3800},
           {65504.0f, 0x7BFF},
           {-65504.0f, 0xFBFF},
           {6.103515625e-05f, 0x0400} /* smallest normal 2^-14 */,
           {5.9604644775390625e-08f, 0x0001} /* smallest subnormal */,
           {6.097555160522461e-05f, 0x03FF} /* largest subnormal */,
           {0.333251953125f, 0x3555},
           {1024.0f, 0x6400}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint16_t h = clloss_float_to_half(v[i].f);
    if (h != v[i].h)
      printf("\n  float_to_half(%a) = 0x%04x, expected 0x%04x", v[i].f, h,
             v[i].h);
    CU_ASSERT_EQUAL(h, v[i].h);
    CU_ASSERT_EQUAL(clloss_half_to_float(v[i].h), v[i].f);
  }
  CU_ASSERT_EQUAL(clloss_float_to_half(-0.0f), 0x8000);
  CU_ASSERT_TRUE(signbit(clloss_half_to_float(0x8000)));
  CU_ASSERT_EQUAL(clloss_half_to_float(0x8000), 0.0f);
}

static void test_half_rounding(void) {
  static const struct {
    float f;
    uint16_t h;
  } v[] = {
      /* Ties to even between 1 (0x3C00) and 1 + 2^-10 (0x3C01). */
      {1.0f + 0x1p-11f, 0x3C00},
      {1.0f + 3 * 0x1p-11f, 0x3C02},
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01},
      {1.0f + 0x1p-11f - 0x1p-20f, 0x3C00},
      {-(1.0f + 3 * 0x1p-11f), 0xBC02},
      /* Mantissa overflow carries into the exponent. */
      {2.0f - 0x1p-12f, 0x4000},
      /* Largest finite, and the boundary of overflow: 65520 rounds to inf,
       * just below it to 65504. */
      {65519.0f, 0x7BFF},
      {65520.0f, 0x7C00},
      {-65520.0f, 0xFC00},
      {1e10f, 0x7C00},
      /* Subnormal rounding: 2^-25 is a tie to 0, 3 * 2^-25 a tie to 2. */
      {0x1p-25f, 0x0000},
      {0x1.8p-25f, 0x0001},
      {3 * 0x1p-25f, 0x0002},
      {5 * 0x1p-25f, 0x0002},
      {0x1p-26f, 0x0000},
      {-0x1p-24f, 0x8001},
      /* Rounding up from the largest subnormal gives the smallest normal. */
      {0x1p-14f - 0x1p-26f, 0x0400},
      /* float32 subnormals become 0. */
      {0x1p-140f, 0x0000},
      {-0x1p-140f, 0x8000},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint16_t h = clloss_float_to_half(v[i].f);
    if (h != v[i].h)
      printf("\n  float_to_half(%a) = 0x%04x, expected 0x%04x", v[i].f, h,
             v[i].h);
    CU_ASSERT_EQUAL(h, v[i].h);
  }
}

static void test_half_inf_nan(void) {
  CU_ASSERT_EQUAL(clloss_float_to_half(INFINITY), 0x7C00);
  CU_ASSERT_EQUAL(clloss_float_to_half(-INFINITY), 0xFC00);
  float inf = clloss_half_to_float(0x7C00);
  CU_ASSERT_TRUE(isinf(inf) && inf > 0);
  CU_ASSERT_TRUE(isinf(clloss_half_to_float(0xFC00)) &&
                 clloss_half_to_float(0xFC00) < 0);
  /* NaN stays NaN, also one whose payload sits in the low float bits only
   * (truncating the mantissa would make it an infinity). */
  const float nans[] = {NAN, -NAN, from_bits(0x7F800001u),
                        from_bits(0xFF800100u)};
  for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
    uint16_t h = clloss_float_to_half(nans[i]);
    if (!((h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0))
      printf("\n  float_to_half(NaN 0x%08x) = 0x%04x", bits(nans[i]), h);
    CU_ASSERT_TRUE((h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0);
  }
  CU_ASSERT_TRUE(isnan(clloss_half_to_float(0x7E00)));
  CU_ASSERT_TRUE(isnan(clloss_half_to_float(0x7C01)));
  CU_ASSERT_TRUE(isnan(clloss_half_to_float(0xFFFF)));
}

static void test_half_round_trip_all(void) {
  /* Every half converts to a float and back to itself (NaNs to a NaN), and
   * half_to_float is monotonic over the positive finite halves. */
  size_t bad = 0;
  float prev = -1.0f;
  for (uint32_t h = 0; h < 0x10000u; h++) {
    float f = clloss_half_to_float((uint16_t)h);
    uint16_t back = clloss_float_to_half(f);
    int is_nan = (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu);
    int ok =
        is_nan ? isnan(f) && (back & 0x7C00u) == 0x7C00u && (back & 0x3FFu) != 0
               : back == h;
    if (!ok && bad++ < 5)
      printf("\n  half 0x%04x -> %a -> 0x%04x", (unsigned)h, f, back);
    if (h <= 0x7C00u) {
      if (!(f > prev) && bad++ < 5)
        printf("\n  half 0x%04x -> %a is not above the previous", (unsigned)h,
               f);
      prev = f;
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* Subnormal values exactly: h * 2^-24. */
  for (uint32_t h = 1; h < 0x400u; h += 37)
    CU_ASSERT_EQUAL(clloss_half_to_float((uint16_t)h), ldexpf((float)h, -24));
}

/* ---- bfloat16 ---- */
static void test_bfloat16_values_rounding(void) {
  static const struct {
    uint32_t f;
    uint16_t b;
  } v[] = {
      {0x3F800000u, 0x3F80}, /* 1 */
      {0xC0000000u, 0xC000}, /* -2 */
      {0x3F808000u, 0x3F80}, /* tie, even stays */
      {0x3F818000u, 0x3F82}, /* tie, odd rounds up */
      {0x3F808001u, 0x3F81}, /* above the tie */
      {0x3F807FFFu, 0x3F80}, /* below the tie */
      {0x3FFF8000u, 0x4000}, /* carry into the exponent */
      {0x7F7FFFFFu, 0x7F80}, /* FLT_MAX rounds to inf */
      {0x7F7F7FFFu, 0x7F7F}, /* largest that stays finite */
      {0x7F800000u, 0x7F80}, /* inf */
      {0xFF800000u, 0xFF80}, /* -inf */
      {0x00010000u, 0x0001}, /* subnormal, exact */
      {0x00008000u, 0x0000}, /* subnormal tie to even 0 */
      {0x00018000u, 0x0002}, /* subnormal tie to even 2 */
      {0x80000000u, 0x8000}, /* -0 */
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint16_t b = clloss_float_to_bfloat16(from_bits(v[i].f));
    if (b != v[i].b)
      printf("\n  float_to_bfloat16(0x%08x) = 0x%04x, expected 0x%04x", v[i].f,
             b, v[i].b);
    CU_ASSERT_EQUAL(b, v[i].b);
  }
  CU_ASSERT_EQUAL(clloss_bfloat16_to_float(0x3F80), 1.0f);
  CU_ASSERT_EQUAL(bits(clloss_bfloat16_to_float(0x0001)), 0x00010000u);
}

static void test_bfloat16_nan_round_trip(void) {
  /* NaNs stay NaN, even when their payload is only in the low 16 bits (a
   * plain round-to-even would turn 0x7F800001 into inf or 0x7FFFFFFF into
   * the wrong sign). */
  const uint32_t nans[] = {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu,
                           0xFFFFFFFFu};
  for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
    uint16_t b = clloss_float_to_bfloat16(from_bits(nans[i]));
    int ok = (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu) != 0 &&
             (b & 0x8000u) == ((nans[i] >> 16) & 0x8000u);
    if (!ok)
      printf("\n  float_to_bfloat16(NaN 0x%08x) = 0x%04x", nans[i], b);
    CU_ASSERT_TRUE(ok);
  }
  size_t bad = 0;
  for (uint32_t b = 0; b < 0x10000u; b++) {
    float f = clloss_bfloat16_to_float((uint16_t)b);
    CU_ASSERT_EQUAL(bits(f), b << 16);
    uint16_t back = clloss_float_to_bfloat16(f);
    int is_nan = (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu);
    int ok = is_nan ? isnan(clloss_bfloat16_to_float(back)) : back == b;
    if (!ok && bad++ < 5)
      printf("\n  bfloat16 0x%04x -> 0x%04x", (unsigned)b, back);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_conversions_nearest(void) {
  /* Random floats: the conversion is the nearest representable value
   * (ties aside, checked above). */
  tu_rng r = tu_rng_make(7);
  size_t bad = 0;
  for (int i = 0; i < 20000; i++) {
    float f = tu_uniform(&r, -70000.0f, 70000.0f) *
              ldexpf(1.0f, (int)(tu_next(&r) % 40) - 30);
    uint16_t h = clloss_float_to_half(f);
    float hf = clloss_half_to_float(h);
    if (fabsf(f) < 65504.0f) {
      /* Neighbours are no closer. */
      float up = clloss_half_to_float((uint16_t)(h + 1));
      float dn = h & 0x7FFFu ? clloss_half_to_float((uint16_t)(h - 1)) : hf;
      double e = fabs((double)hf - f);
      if ((isfinite(up) && fabs((double)up - f) < e) ||
          fabs((double)dn - f) < e) {
        if (bad++ < 5)
          printf("\n  float_to_half(%a) = %a is not the nearest", f, hf);
      }
    }
    uint16_t b = clloss_float_to_bfloat16(f);
    double eb = fabs((double)clloss_bfloat16_to_float(b) - f);
    double ub = fabs((double)clloss_bfloat16_to_float((uint16_t)(b + 1)) - f);
    if (ub < eb && bad++ < 5)
      printf("\n  float_to_bfloat16(%a) is not the nearest", f);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

int test_status_register(void) {
  TU_SUITE(
      "status", NULL, NULL, TU_TEST(test_status_names_from_map),
      TU_TEST(test_status_distinct), TU_TEST(test_status_ranges),
      TU_TEST(test_status_opencl_pass_through),
      TU_TEST(test_status_unknown_never_null), TU_TEST(test_dtype_sizes_names),
      TU_TEST(test_reduction_names), TU_TEST(test_half_exact_values),
      TU_TEST(test_half_rounding), TU_TEST(test_half_inf_nan),
      TU_TEST(test_half_round_trip_all), TU_TEST(test_bfloat16_values_rounding),
      TU_TEST(test_bfloat16_nan_round_trip), TU_TEST(test_conversions_nearest));
}
