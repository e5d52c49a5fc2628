/* kernel_args.h - the host's side of kernels/params.h: the scalars' structs
 * with cl_ types, and the buffers' indices, generated from the same lists
 * as the kernels' signatures. */
#ifndef CLLOSS_KERNEL_ARGS_H
#define CLLOSS_KERNEL_ARGS_H
#include "clloss.h"
#include "params.h" /* kernels/params.h */

#define CLLOSS__H_U64(name) cl_ulong name;
#define CLLOSS__H_I64(name) cl_long name;
#define CLLOSS__H_I32(name) cl_int name;
#define CLLOSS__H_F32(name) cl_float name;

typedef struct clloss__rows_params {
  CLLOSS_ROWS_PARAMS(CLLOSS__H_U64, CLLOSS__H_I64, CLLOSS__H_I32, CLLOSS__H_F32)
} clloss__rows_params;

typedef struct clloss__pointwise_params {
  CLLOSS_POINTWISE_PARAMS(CLLOSS__H_U64, CLLOSS__H_I64, CLLOSS__H_I32,
                          CLLOSS__H_F32)
} clloss__pointwise_params;

typedef struct clloss__lce_params {
  CLLOSS_LCE_PARAMS(CLLOSS__H_U64, CLLOSS__H_I64, CLLOSS__H_I32, CLLOSS__H_F32)
} clloss__lce_params;

typedef struct clloss__finish_params {
  CLLOSS_FINISH_PARAMS(CLLOSS__H_U64, CLLOSS__H_I64, CLLOSS__H_I32,
                       CLLOSS__H_F32)
} clloss__finish_params;

/* The kernels compare rows_params.reduction with CLLOSS_ROWS_*. */
_Static_assert(CLLOSS_ROWS_MEAN == CLLOSS_REDUCTION_MEAN &&
                   CLLOSS_ROWS_SUM == CLLOSS_REDUCTION_SUM &&
                   CLLOSS_ROWS_NONE == CLLOSS_REDUCTION_NONE,
               "params.h's reductions are clloss_reduction's values");

/* g_mode for a call: no upstream gradient, one, or one per output (the
 * losses not reduced). */
static inline cl_int clloss__upstream_mode(int given, int reduced) {
  return !given    ? CLLOSS_UPSTREAM_ONE
         : reduced ? CLLOSS_UPSTREAM_SCALAR
                   : CLLOSS_UPSTREAM_EACH;
}

/* loss_mode for a call: no loss output, the losses themselves, or
 * partials that finish_sum reduces. */
static inline int clloss__losses_mode(int given, int reduced) {
  return !given    ? CLLOSS_LOSSES_NONE
         : reduced ? CLLOSS_LOSSES_PARTIALS
                   : CLLOSS_LOSSES_EACH;
}

/* The divisor of a reduced loss: none (sum), the given one (a normalizer,
 * N, the element count) or the target pass's weight sum. */
static inline int clloss__divide_mode(int mean, int given) {
  return !mean   ? CLLOSS_DIVIDE_NONE
         : given ? CLLOSS_DIVIDE_GIVEN
                 : CLLOSS_DIVIDE_STATS;
}

/* CLLOSS__ROWS_x, CLLOSS__PW_x: the index of buffer x among the kernels'
 * arguments. */
#define CLLOSS__ROWS_INDEX(type, name) CLLOSS__ROWS_##name,
#define CLLOSS__PW_INDEX(type, name) CLLOSS__PW_##name,
enum {
  CLLOSS_ROWS_BUFFERS(CLLOSS__ROWS_INDEX, CLLOSS__ROWS_INDEX)
      CLLOSS__ROWS_BUFFER_COUNT
};
enum {
  CLLOSS_POINTWISE_BUFFERS(CLLOSS__PW_INDEX, CLLOSS__PW_INDEX)
      CLLOSS__PW_BUFFER_COUNT
};

/* Sets a kernel's arguments: `count` buffers (NULL ones become `dummy`),
 * then the scalars' struct of `size` bytes, then, when local_bytes > 0, one
 * __local array of that size. Returns the first OpenCL error. */
cl_int clloss__set_kernel_args(cl_kernel k, const cl_mem *mems, cl_uint count,
                               cl_mem dummy, const void *params, size_t size,
                               size_t local_bytes);

#endif
