/* kernels.h - the OpenCL sources embedded at build time (clloss_kernels.c). */
#ifndef CLLOSS_KERNELS_H
#define CLLOSS_KERNELS_H
#include <stddef.h>

typedef struct clloss__kernel_source {
  const char *name; /* file stem: "common", "cross_entropy", ... */
  const char *file; /* its name in kernels/: "common.cl", "params.h" */
  const char *text;
  size_t length;
} clloss__kernel_source;

/* Terminated by an entry whose name is NULL. */
extern const clloss__kernel_source clloss__kernel_sources[];

#endif
