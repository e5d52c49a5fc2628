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
