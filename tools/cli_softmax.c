/* cli_softmax.c - `clloss run softmax --input X.npy --out P.npy`: the
 * probabilities of X's rows (its last axis: [N, C], [C], or any shape with
 * rows over the leading axes) on a device or the CPU reference, written in
 * X's shape and dtype. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cli_softmax.h"
#include "npy.h"

static int compute(const npy_array *x, const clloss_softmax_desc *d,
                   const char *out, const char *device, int cpu, int quiet) {
  clloss_context *ctx = NULL;
  size_t index = 0;
  char where[320];
  if (cpu) {
    snprintf(where, sizeof where, "the CPU reference");
  } else {
    int rc = cli_open_device("run", device, &ctx, &index);
    if (rc != CLI_OK)
      return rc;
    snprintf(where, sizeof where, "device %zu (%s)", index,
             clloss_context_device_info(ctx)->name);
  }
  const size_t bytes = x->count * npy_dtype_size(x->dtype);
  void *p = malloc(bytes ? bytes : 1);
  int rc = CLI_OK;
  if (!p) {
    rc = cli_error("run", CLI_DATA_ERROR, "out of memory");
  } else {
    double t0 = cli_now_ms();
    clloss_status s = ctx ? clloss_softmax_host(ctx, d, x->data, p)
                          : clloss_reference_softmax(d, x->data, p);
    double ms = cli_now_ms() - t0;
    char msg[512];
    if (s != CLLOSS_SUCCESS) {
      const char *detail = ctx ? clloss_context_error_detail(ctx) : "";
      rc = cli_error("run", CLI_DATA_ERROR, "softmax on %s failed: %s (%s)%s%s",
                     where, clloss_status_string(s), clloss_status_name(s),
                     *detail ? ": " : "", detail);
    } else if (npy_write(out, x->dtype, x->ndim, x->shape, p, msg,
                         sizeof msg) != NPY_OK) {
      rc = cli_error("run", CLI_DATA_ERROR, "%s", msg);
    } else if (!quiet && cli_summary_stream(&out, 1)) {
      npy_format_shape(x->ndim, x->shape, msg, sizeof msg);
      fprintf(cli_summary_stream(&out, 1),
              "softmax(%s, %s) over the last axis on %s in %.3f ms\n", msg,
              clloss_dtype_name(x->dtype), where, ms);
    }
  }
  free(p);
  clloss_context_release(ctx);
  return rc;
}

int cli_run_softmax(const char *input, const char *out, const char *device,
                    int cpu, int quiet) {
  npy_array x = {0};
  char msg[512];
  if (npy_read(input, &x, msg, sizeof msg) != NPY_OK)
    return cli_error("run", CLI_DATA_ERROR, "%s", msg);
  int rc = CLI_OK;
  if (x.dtype != CLLOSS_FLOAT32 && x.dtype != CLLOSS_FLOAT16 &&
      x.dtype != CLLOSS_FLOAT64) {
    rc = cli_error("run", CLI_DATA_ERROR,
                   "input: dtype %s is not a float (float16, float32, "
                   "float64)",
                   clloss_dtype_name(x.dtype));
  } else if (x.ndim == 0 || x.shape[x.ndim - 1] == 0) {
    npy_format_shape(x.ndim, x.shape, msg, sizeof msg);
    rc = cli_error("run", CLI_DATA_ERROR,
                   "softmax takes rows of at least one class, not shape %s",
                   msg);
  } else {
    clloss_softmax_desc d = CLLOSS_SOFTMAX_DESC_INIT;
    d.classes = x.shape[x.ndim - 1];
    d.rows = x.count / d.classes;
    d.input_type = x.dtype;
    rc = compute(&x, &d, out, device, cpu, quiet);
  }
  npy_free(&x);
  return rc;
}
