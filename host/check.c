/* check.c - argument checks shared by the device calls and the CPU reference.
 */
#include <math.h>
#include <stdio.h>

#include "check.h"

#define FAIL(status, ...)                                                      \
  do {                                                                         \
    if (detail)                                                                \
      snprintf(detail, CLLOSS_DETAIL_SIZE, __VA_ARGS__);                       \
    return status;                                                             \
  } while (0)

static int is_float_type(clloss_dtype t) {
  return t == CLLOSS_FLOAT32 || t == CLLOSS_FLOAT16 || t == CLLOSS_BFLOAT16 ||
         t == CLLOSS_FLOAT64;
}

static int is_index_type(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

int clloss__is_probability_target(clloss_dtype target_type) {
  return is_float_type(target_type);
}

clloss_dtype clloss_loss_dtype(clloss_dtype input_type) {
  return input_type == CLLOSS_FLOAT64 ? CLLOSS_FLOAT64 : CLLOSS_FLOAT32;
}

/* 1 when n elements of `type` are more bytes than size_t holds. */
static int too_many_bytes(size_t n, clloss_dtype type) {
  size_t size = clloss_dtype_size(type);
  return size && n > SIZE_MAX / size;
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
clloss__check_cross_entropy_desc(const clloss_cross_entropy_desc *d,
                                 char *detail) {
  if (!d)
    FAIL(CLLOSS_INVALID_ARGUMENT, "desc is NULL");
  clloss_status s = check_rows(d->rows, d->classes, d->row_stride, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (!is_float_type(d->input_type))
    FAIL(CLLOSS_INVALID_ARGUMENT, "input_type must be a float type");
  if (!is_index_type(d->target_type) && d->target_type != d->input_type)
    FAIL(CLLOSS_INVALID_ARGUMENT,
         "target_type must be int32, int64 or the input_type (probabilities)");
  s = check_rows_bytes(d->rows, d->classes, d->row_stride, d->input_type,
                       detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (is_float_type(d->target_type) &&
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

clloss_status clloss__check_nll_loss_desc(const clloss_nll_loss_desc *d,
                                          char *detail) {
  if (!d)
    FAIL(CLLOSS_INVALID_ARGUMENT, "desc is NULL");
  clloss_status s = check_rows(d->rows, d->classes, d->row_stride, detail);
  if (s != CLLOSS_SUCCESS)
    return s;
  if (!is_float_type(d->input_type))
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

clloss_status clloss__check_pointwise_desc(const clloss_pointwise_desc *d,
                                           char *detail) {
  if (!d)
    FAIL(CLLOSS_INVALID_ARGUMENT, "desc is NULL");
  if ((unsigned)d->loss > CLLOSS_KL_DIV)
    FAIL(CLLOSS_INVALID_ARGUMENT, "unknown pointwise loss %d", (int)d->loss);
  if (!is_float_type(d->input_type))
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
         "ignore_index %lld",
         (long long)t, i, classes, (long long)ignore_index);
  }
  return CLLOSS_SUCCESS;
}

size_t clloss_cross_entropy_loss_count(const clloss_cross_entropy_desc *d) {
  if (!d)
    return 0;
  return d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
}

size_t clloss_nll_loss_loss_count(const clloss_nll_loss_desc *d) {
  if (!d)
    return 0;
  return d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
}

size_t clloss_pointwise_loss_count(const clloss_pointwise_desc *d) {
  if (!d)
    return 0;
  return d->reduction == CLLOSS_REDUCTION_NONE ? d->count : 1;
}
