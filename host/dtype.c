/* dtype.c - storage types, reductions, and the 16-bit float conversions. */
#include <math.h>
#include <string.h>

#include "clloss.h"

size_t clloss_dtype_size(clloss_dtype dtype) {
  switch (dtype) {
  case CLLOSS_FLOAT32:
  case CLLOSS_INT32:
    return 4;
  case CLLOSS_FLOAT16:
  case CLLOSS_BFLOAT16:
    return 2;
  case CLLOSS_FLOAT64:
  case CLLOSS_INT64:
    return 8;
  }
  return 0;
}

const char *clloss_dtype_name(clloss_dtype dtype) {
  static const char *const names[] = {"float32", "float16", "bfloat16",
                                      "float64", "int32",   "int64"};
  return (unsigned)dtype < sizeof names / sizeof *names ? names[dtype] : NULL;
}

const char *clloss_reduction_name(clloss_reduction reduction) {
  static const char *const names[] = {"mean", "sum", "none", "batchmean"};
  return (unsigned)reduction < sizeof names / sizeof *names ? names[reduction]
                                                            : NULL;
}

static uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

float clloss_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) /* inf or NaN */
    return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
    float v = ldexpf((float)mant, -24);
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t clloss_float_to_half(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  float a = fabsf(f);
  if (isnan(f))
    return (uint16_t)(sign | 0x7e00u);
  if (a >= 65520.0f) /* rounds to infinity */
    return (uint16_t)(sign | 0x7c00u);
  if (a < 6.103515625e-05f) { /* subnormal half: round a * 2^24 to even */
    float m = nearbyintf(ldexpf(a, 24));
    return (uint16_t)(sign | (uint16_t)m);
  }
  uint32_t au = float_bits(a);
  uint32_t exp = ((au >> 23) & 0xffu) - 112u, mant = au & 0x7fffffu;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu; /* round to nearest even */
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    h++;
  return (uint16_t)(sign | h);
}

float clloss_bfloat16_to_float(uint16_t b) {
  return bits_float((uint32_t)b << 16);
}

uint16_t clloss_float_to_bfloat16(float f) {
  uint32_t u = float_bits(f);
  if (isnan(f))
    return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
