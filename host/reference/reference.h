/* reference.h - helpers shared by the CPU reference losses: element loads
 * and stores in every storage type, with the arithmetic in double. */
#ifndef CLLOSS_REFERENCE_H
#define CLLOSS_REFERENCE_H
#include <stddef.h>
#include <stdint.h>

#include "clloss.h"

/* Element i of an array of float storage type t, as a double. */
static inline double clloss__ref_load(const void *p, clloss_dtype t, size_t i) {
  switch (t) {
  case CLLOSS_FLOAT16:
    return clloss_half_to_float(((const uint16_t *)p)[i]);
  case CLLOSS_BFLOAT16:
    return clloss_bfloat16_to_float(((const uint16_t *)p)[i]);
  case CLLOSS_FLOAT64:
    return ((const double *)p)[i];
  default:
    return ((const float *)p)[i];
  }
}

/* Stores v as element i of an array of float storage type t, rounding to
 * nearest even (through float32 for the 16-bit types). */
static inline void clloss__ref_store(void *p, clloss_dtype t, size_t i,
                                     double v) {
  switch (t) {
  case CLLOSS_FLOAT16:
    ((uint16_t *)p)[i] = clloss_float_to_half((float)v);
    break;
  case CLLOSS_BFLOAT16:
    ((uint16_t *)p)[i] = clloss_float_to_bfloat16((float)v);
    break;
  case CLLOSS_FLOAT64:
    ((double *)p)[i] = v;
    break;
  default:
    ((float *)p)[i] = (float)v;
    break;
  }
}

/* Writes gradient element i: v, or v added to what is there (accumulate). */
static inline void clloss__ref_put(void *p, clloss_dtype t, size_t i, double v,
                                   int accumulate) {
  clloss__ref_store(p, t, i, accumulate ? clloss__ref_load(p, t, i) + v : v);
}

/* The upstream gradient: 1 when not given, else element i of grad_output
 * (of the loss type: float64 for float64 input, float32 otherwise). */
static inline double clloss__ref_grad_output(const void *grad_output,
                                             clloss_dtype loss_type, size_t i) {
  return grad_output ? clloss__ref_load(grad_output, loss_type, i) : 1.0;
}

/* Element i of an optional weight array (1 when not given). */
static inline double clloss__ref_weight(const void *weight,
                                        clloss_dtype loss_type, size_t i) {
  return weight ? clloss__ref_load(weight, loss_type, i) : 1.0;
}

/* Class-index target of row i as int64. */
static inline int64_t clloss__ref_target(const void *target, clloss_dtype t,
                                         size_t i) {
  return t == CLLOSS_INT32 ? ((const int32_t *)target)[i]
                           : ((const int64_t *)target)[i];
}

#endif
