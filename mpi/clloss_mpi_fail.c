/* clloss_mpi_fail.c - how every file of the MPI layer reports a failure:
 * the status and a sentence in the context's error detail. Below the
 * others, so that none of them calls back into another. */
#include <stdarg.h>
#include <stdio.h>

#include "clloss_mpi_internal.h"

clloss_status clloss__mpi_failf(clloss_context *ctx, clloss_status status,
                                const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return clloss_context_fail(ctx, status, detail);
}

clloss_status clloss__mpi_error(clloss_context *ctx, const char *call,
                                int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    snprintf(text, sizeof text, "MPI error %d", code);
  return clloss__mpi_failf(ctx, CLLOSS_COLLECTIVE_FAILURE, "%s failed: %s",
                           call, text);
}
