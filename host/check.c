/* check.c - argument checks shared by the device calls and the CPU reference.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#define FAIL(status, ...)                                                      \
  do {                                                                         \
    if (detail)                                                                \
      snprintf(detail, CLLOSS_DETAIL_SIZE, __VA_ARGS__);                       \
    return status;                                                             \
  } while (0)

int clloss__is_float_type(clloss_dtype t) {
  return t == CLLOSS_FLOAT32 || t == CLLOSS_FLOAT16 || t == CLLOSS_BFLOAT16 ||
         t == CLLOSS_FLOAT64;
}

int clloss__buffers_overlap(clloss_buffer a, size_t an, size_t as,
                            clloss_buffer b, size_t bn, size_t bs) {
  if (!a.mem || a.mem != b.mem || !an || !bn)
    return 0;
  size_t a0 = a.offset * as, b0 = b.offset * bs;
  return a0 < b0 + bn * bs && b0 < a0 + an * as;
}

static int is_index_type(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

int clloss__is_probability_target(clloss_dtype target_type) {
  return clloss__is_float_type(target_type);
}

clloss_dtype clloss_loss_dtype(clloss_dtype input_type) {
  return input_type == CLLOSS_FLOAT64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
}

/* 1 when n elements of `type` are more bytes than size_t holds. */
static int too_many_bytes(size_t n, clloss_dtype type) {
  size_t size = clloss_dtype_size(type);
  return size && n > SIZE_MAX / size;
}

/* The first release's size of each descriptor: a struct_size below it
 * cannot be from any header. */
#define FIRST_SIZE(type, last)                                                 \
  (offsetof(type, last) + sizeof(((type *)0)->last))

/* Copies the caller's descriptor (its struct_size first) over `out`, which
 * holds the defaults; see clloss.h, "Descriptors". */
static clloss_status take_desc(const void *desc, void *out, size_t size,
                               size_t first_size, const char *init,
                               char *detail) {
  if (!desc)
    FAIL(CLLOSS_INVALID_ARGUMENT, "desc is NULL");
  size_t given;
  memcpy(&given, desc, sizeof given);
  if (given < first_size)
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "desc->struct_size is %zu; initialise the descriptor with %s", given,
         init);
  if (given > size) {
    const unsigned char *extra = (const unsigned char *)desc + size;
    for (size_t i = 0; i < given - size; i++)
      if (extra[i])
        FAIL(CLLOSS_UNSUPPORTED,
             "the descriptor (%zu bytes) sets fields that clloss %s (%zu "
             "bytes) does not know",
             given, CLLOSS_VERSION_STRING, size);
    given = size;
  }
  memcpy(out, desc, given);
  memcpy(out, &size, sizeof size); /* struct_size: now ours */
  return CLLOSS_SUCCESS;
}

int clloss__zero_padding(clloss_padding padding, int in_place) {
  return padding == CLLOSS_PADDING_ZERO ||
         (padding == CLLOSS_PADDING_AUTO && in_place);
}

void clloss__zero_host_padding(void *rows, size_t n, size_t classes, size_t ld,
                               size_t elem_size) {
  for (size_t r = 0; ld > classes && r < n; r++)
    memset((char *)rows + (r * ld + classes) * elem_size, 0,
           (ld - classes) * elem_size);
}

static clloss_status
check_gradient_options(float grad_scale, clloss_padding padding, char *detail) {
  if (!isfinite(grad_scale))
    FAIL(CLLOSS_INVALID_ARGUMENT, "grad_scale must be finite");
  if ((unsigned)padding > CLLOSS_PADDING_KEEP)
    FAIL(CLLOSS_INVALID_ARGUMENT, "unknown padding %d", (int)padding);
  return CLLOSS_SUCCESS;
}

static clloss_status check_rows(size_t rows, size_t classes, size_t row_stride,
                                char *detail) {
  if (classes == 0)
    FAIL(CLLOSS_INVALID_ARGUMENT, "classes must be at least 1");
  if (row_stride != 0 && row_stride < classes)
    FAIL(CLLOSS_INVALID_ARGUMENT, "row_stride %zu is less than classes %zu",
         row_stride, classes);
  size_t ld = row_stride ? row_stride : classes;
  if (rows > 0 && (ld > SIZE_MAX / rows || rows > (size_t)INT64_MAX / ld))
    FAIL(CLLOSS_INVALID_ARGUMENT, "rows x row_stride overflows");
  return CLLOSS_SUCCESS;
}

/* The bytes of the input (and gradient): rows - 1 strides and a row. */
static clloss_status check_rows_bytes(size_t rows, size_t classes,
                                      size_t row_stride, clloss_dtype type,
                                      char *detail) {
  size_t ld = row_stride ? row_stride : classes;
  size_t extent = rows ? (rows - 1) * ld + classes : 0;
  if (too_many_bytes(extent, type))
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "the input of %zu rows, row_stride %zu, in %s is %zu elements, "
         "more bytes than size_t can count",
         rows, ld, clloss_dtype_name(type), extent);
  return CLLOSS_SUCCESS;
}

clloss_status
clloss__check_cross_entropy_desc(const clloss_cross_entropy_desc *desc,
                                 clloss_cross_entropy_desc *d, char *detail) {
  return clloss__check_cross_entropy_shard(desc, NULL, d, detail);
}

clloss_status
clloss__check_cross_entropy_shard(const clloss_cross_entropy_desc *desc,
                                  const clloss_shard *shard,
                                  clloss_cross_entropy_desc *d, char *detail) {
  const clloss_cross_entropy_desc defaults = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  *d = defaults;
  clloss_status s = take_desc(desc, d, sizeof *d,
                              FIRST_SIZE(clloss_cross_entropy_desc, padding),
                              "CLLOSS_CROSS_ENTROPY_DESC_INIT", detail);
  if (s == CLLOSS_SUCCESS && shard) {
    if (shard->classes == 0 || shard->class_offset >= d->classes ||
        shard->classes > d->classes - shard->class_offset)
      FAIL(CLLOSS_INVALID_ARGUMENT,
           "the shard [%zu, %zu + %zu) is not a nonempty block of the %zu "
           "classes",
           shard->class_offset, shard->class_offset, shard->classes,
           d->classes);
    /* The block's own rows: its row_stride holds its columns. */
    s = check_rows(d->rows, shard->classes, d->row_stride, detail);
  } else if (s == CLLOSS_SUCCESS) {
    s = check_rows(d->rows, d->classes, d->row_stride, detail);
  }
  if (s == CLLOSS_SUCCESS)
    s = check_gradient_options(d->grad_scale, d->padding, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (!clloss__is_float_type(d->input_type))
    FAIL(CLLOSS_INVALID_ARGUMENT, "input_type must be a float type");
  if (!is_index_type(d->target_type) && d->target_type != d->input_type)
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "target_type must be int32, int64 or the input_type (probabilities)");
  s = check_rows_bytes(d->rows, d->classes, d->row_stride, d->input_type,
                       detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (clloss__is_float_type(d->target_type) &&
      too_many_bytes(d->rows * d->classes, d->target_type))
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "the probability targets of %zu x %zu %s elements are more bytes "
         "than size_t can count",
         d->rows, d->classes, clloss_dtype_name(d->target_type));
  if (d->reduction != CLLOSS_REDUCTION_MEAN &&
      d->reduction != CLLOSS_REDUCTION_SUM &&
      d->reduction != CLLOSS_REDUCTION_NONE)
    FAIL(CLLOSS_INVALID_ARGUMENT, "reduction must be mean, sum or none");
  if (!(d->label_smoothing >= 0.0f && d->label_smoothing <= 1.0f))
    FAIL(CLLOSS_INVALID_ARGUMENT, "label_smoothing must be in [0, 1]");
  if (!(d->z_loss >= 0.0f) || isinf(d->z_loss))
    FAIL(CLLOSS_INVALID_ARGUMENT, "z_loss must be finite and >= 0");
  if (!(d->softcap >= 0.0f) || isinf(d->softcap))
    FAIL(CLLOSS_INVALID_ARGUMENT, "softcap must be finite and >= 0");
  if (!(d->normalizer >= 0.0f) || isinf(d->normalizer))
    FAIL(CLLOSS_INVALID_ARGUMENT, "normalizer must be finite and >= 0");
  return CLLOSS_SUCCESS;
}

clloss_status
clloss__check_linear_desc(const clloss_linear_cross_entropy_desc *desc,
                          clloss_linear_cross_entropy_desc *out, char *detail) {
  typedef clloss_linear_cross_entropy_desc lce_desc;
  const lce_desc defaults = CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
  lce_desc given = defaults;
  /* struct_size first, `ce` last with its own (clloss.h, "Descriptors"):
   * the first release's size ends with the first release's `ce`. */
  clloss_status s = take_desc(
      desc, &given, sizeof given,
      offsetof(lce_desc, ce) + FIRST_SIZE(clloss_cross_entropy_desc, padding),
      "CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT", detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  *out = given;
  s = clloss__check_cross_entropy_desc(&given.ce, &out->ce, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  const lce_desc *d = out;
  for (int i = 0; i < 4; i++)
    if (d->reserved[i])
      FAIL(CLLOSS_INVALID_ARGUMENT, "reserved fields must be 0");
  const size_t N = d->ce.rows, V = d->ce.classes, H = d->hidden;
  if (d->ce.row_stride != 0 && d->ce.row_stride != V)
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "row_stride must be 0: the logits are the call's own");
  if (H == 0)
    FAIL(CLLOSS_INVALID_ARGUMENT, "hidden must be at least 1");
  const size_t big = SIZE_MAX / 16;
  if ((N && (H > big / N || V > big / N)) || V > big / H)
    FAIL(CLLOSS_INVALID_ARGUMENT, "N x H, V x H or N x V overflows");
  return CLLOSS_SUCCESS;
}

clloss_status clloss__check_nll_loss_desc(const clloss_nll_loss_desc *desc,
                                          clloss_nll_loss_desc *d,
                                          char *detail) {
  const clloss_nll_loss_desc defaults = CLLOSS_NLL_LOSS_DESC_INIT;
  *d = defaults;
  clloss_status s =
      take_desc(desc, d, sizeof *d, FIRST_SIZE(clloss_nll_loss_desc, padding),
                "CLLOSS_NLL_LOSS_DESC_INIT", detail);
  if (s == CLLOSS_SUCCESS)
    s = check_rows(d->rows, d->classes, d->row_stride, detail);
  if (s == CLLOSS_SUCCESS)
    s = check_gradient_options(d->grad_scale, d->padding, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (!clloss__is_float_type(d->input_type))
    FAIL(CLLOSS_INVALID_ARGUMENT, "input_type must be a float type");
  if (!is_index_type(d->target_type))
    FAIL(CLLOSS_INVALID_ARGUMENT, "target_type must be int32 or int64");
  s = check_rows_bytes(d->rows, d->classes, d->row_stride, d->input_type,
                       detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (d->reduction != CLLOSS_REDUCTION_MEAN &&
      d->reduction != CLLOSS_REDUCTION_SUM &&
      d->reduction != CLLOSS_REDUCTION_NONE)
    FAIL(CLLOSS_INVALID_ARGUMENT, "reduction must be mean, sum or none");
  return CLLOSS_SUCCESS;
}

clloss_status clloss__check_pointwise_desc(const clloss_pointwise_desc *desc,
                                           clloss_pointwise_desc *d,
                                           char *detail) {
  const clloss_pointwise_desc defaults =
      CLLOSS_POINTWISE_DESC_INIT(CLLOSS_MSE_LOSS);
  *d = defaults;
  clloss_status s = take_desc(desc, d, sizeof *d,
                              FIRST_SIZE(clloss_pointwise_desc, accumulate),
                              "CLLOSS_POINTWISE_DESC_INIT", detail);
  if (s == CLLOSS_SUCCESS)
    s = check_gradient_options(d->grad_scale, CLLOSS_PADDING_AUTO, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if ((unsigned)d->loss > CLLOSS_KL_DIV)
    FAIL(CLLOSS_INVALID_ARGUMENT, "unknown pointwise loss %d", (int)d->loss);
  if (!clloss__is_float_type(d->input_type))
    FAIL(CLLOSS_INVALID_ARGUMENT, "input_type must be a float type");
  if (d->count > (size_t)INT64_MAX / 8)
    FAIL(CLLOSS_INVALID_ARGUMENT, "count is too large");
  if ((unsigned)d->reduction > CLLOSS_REDUCTION_BATCHMEAN)
    FAIL(CLLOSS_INVALID_ARGUMENT, "unknown reduction %d", (int)d->reduction);
  if (d->reduction == CLLOSS_REDUCTION_BATCHMEAN && d->loss != CLLOSS_KL_DIV)
    FAIL(CLLOSS_INVALID_ARGUMENT, "batchmean is for kl_div only");
  if (d->reduction == CLLOSS_REDUCTION_BATCHMEAN &&
      (d->batch == 0 ? d->count != 0 : d->count % d->batch != 0))
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "batchmean needs batch (dimension 0) dividing count");
  if (d->loss == CLLOSS_HUBER_LOSS && !(d->delta > 0.0f))
    FAIL(CLLOSS_INVALID_ARGUMENT, "huber_loss needs delta > 0");
  if (d->loss == CLLOSS_SMOOTH_L1_LOSS && !(d->beta >= 0.0f))
    FAIL(CLLOSS_INVALID_ARGUMENT, "smooth_l1_loss needs beta >= 0");
  if (d->loss == CLLOSS_BCE_WITH_LOGITS) {
    size_t w[2] = {d->weight_count, d->pos_weight_count};
    for (int k = 0; k < 2; k++)
      if (too_many_bytes(w[k], clloss_loss_dtype(d->input_type)))
        FAIL(CLLOSS_INVALID_ARGUMENT,
             "%s of %zu elements is more bytes than size_t can count",
             k ? "pos_weight" : "weight", w[k]);
    for (int k = 0; k < 2; k++)
      if (w[k] != 0 && w[k] != d->count && (d->count % w[k]) != 0)
        FAIL(CLLOSS_INVALID_ARGUMENT,
             "%s of %zu elements does not broadcast over %zu elements",
             k ? "pos_weight" : "weight", w[k], d->count);
  }
  return CLLOSS_SUCCESS;
}

clloss_status clloss__check_softmax_desc(const clloss_softmax_desc *desc,
                                         clloss_softmax_desc *d, char *detail) {
  const clloss_softmax_desc defaults = CLLOSS_SOFTMAX_DESC_INIT;
  *d = defaults;
  clloss_status s =
      take_desc(desc, d, sizeof *d, FIRST_SIZE(clloss_softmax_desc, padding),
                "CLLOSS_SOFTMAX_DESC_INIT", detail);
  if (s == CLLOSS_SUCCESS)
    s = check_rows(d->rows, d->classes, d->row_stride, detail);
  if (s == CLLOSS_SUCCESS)
    s = check_gradient_options(1.0f, d->padding, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (!clloss__is_float_type(d->input_type))
    FAIL(CLLOSS_INVALID_ARGUMENT, "input_type must be a float type");
  return CLLOSS_SUCCESS;
}

/* Whether `target`'s rows, read as the other integer width, would all be
 * in range: the usual mistake is int32 targets (llm.c's `int *`) read as
 * PyTorch's default int64. */
static int other_width_fits(const void *target, clloss_dtype type, size_t rows,
                            size_t classes, int64_t ignore_index) {
  size_t n = type == CLLOSS_INT64 ? rows * 2 : rows / 2;
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    int64_t t = type == CLLOSS_INT64 ? ((const int32_t *)target)[i]
                                     : ((const int64_t *)target)[i];
    if (t != ignore_index && (t < 0 || (uint64_t)t >= classes))
      return 0;
  }
  return 1;
}

clloss_status clloss__check_targets(const void *target, clloss_dtype type,
                                    size_t rows, size_t classes,
                                    int64_t ignore_index, size_t *bad_row,
                                    char *detail) {
  for (size_t i = 0; i < rows; i++) {
    int64_t t = type == CLLOSS_INT32 ? ((const int32_t *)target)[i]
                                     : ((const int64_t *)target)[i];
    if (t == ignore_index || (t >= 0 && (uint64_t)t < classes))
      continue;
    if (bad_row)
      *bad_row = i;
    FAIL(CLLOSS_INVALID_TARGET,
         "target %lld of row %zu is outside [0, %zu) and is not "
         "ignore_index %lld%s",
         (long long)t, i, classes, (long long)ignore_index,
         !other_width_fits(target, type, rows, classes, ignore_index) ? ""
         : type == CLLOSS_INT64 ? " (read as int32 they all fit: are the "
                                  "targets int32? set target_type to "
                                  "CLLOSS_INT32)"
                                : " (read as int64 they all fit: are the "
                                  "targets int64? set target_type to "
                                  "CLLOSS_INT64)");
  }
  return CLLOSS_SUCCESS;
}

size_t
clloss_cross_entropy_output_count(const clloss_cross_entropy_desc *desc) {
  clloss_cross_entropy_desc d;
  if (clloss__check_cross_entropy_desc(desc, &d, NULL) != CLLOSS_SUCCESS)
    return 0;
  return d.reduction == CLLOSS_REDUCTION_NONE ? d.rows : 1;
}

size_t clloss_nll_loss_output_count(const clloss_nll_loss_desc *desc) {
  clloss_nll_loss_desc d;
  if (clloss__check_nll_loss_desc(desc, &d, NULL) != CLLOSS_SUCCESS)
    return 0;
  return d.reduction == CLLOSS_REDUCTION_NONE ? d.rows : 1;
}

size_t clloss_pointwise_output_count(const clloss_pointwise_desc *desc) {
  clloss_pointwise_desc d;
  if (clloss__check_pointwise_desc(desc, &d, NULL) != CLLOSS_SUCCESS)
    return 0;
  return d.reduction == CLLOSS_REDUCTION_NONE ? d.count : 1;
}
