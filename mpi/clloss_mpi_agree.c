/* clloss_mpi_agree.c - the agreement that opens every collective call of
 * the MPI layer: ONE MPI_Allreduce of a fixed-size record (its size does
 * not depend on any argument) with a user-defined operator, which gives
 * every process the same verdict: the lowest process that failed on its
 * own (with its status and detail), the range of each value that every
 * process must pass alike (with the processes holding its ends), the
 * classes of all shards, and the smallest chunk of rows any process
 * chose. See clloss_mpi.h, "Collective calls". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clloss_mpi_internal.h"

/* One value's range over the processes, with the lowest rank at each end. */
typedef struct ag_range {
  uint64_t lo, hi;
  int64_t lo_rank, hi_rank;
} ag_range;

/* The reduced record; every field has a commutative, associative combine. */
typedef struct ag_record {
  ag_range f[AG_FIELDS];
  uint64_t chunk;        /* minimum */
  uint64_t classes;      /* sum of the shards' classes (saturating) */
  uint64_t index_sum;    /* sum of the indices of the classes held, mod 2^64 */
  uint64_t first, end;   /* minimum offset, maximum end of non-empty shards */
  int64_t processes;     /* sum */
  int64_t failures;      /* sum */
  int64_t failed_rank;   /* lowest failed rank; INT64_MAX: none */
  int64_t failed_status; /* its status */
  char detail[256];      /* its detail sentence */
} ag_record;

static const char *const field_names[AG_FIELDS] = {
    "call",       "rows",          "classes",
    "hidden",     "input_type",    "target_type",
    "reduction",  "ignore_index",  "label_smoothing",
    "z_loss",     "softcap",       "normalizer",
    "grad_scale", "outputs given", "class-index targets (checksum)"};

static void combine_range(ag_range *a, const ag_range *b) {
  if (b->lo < a->lo || (b->lo == a->lo && b->lo_rank < a->lo_rank))
    a->lo = b->lo, a->lo_rank = b->lo_rank;
  if (b->hi > a->hi || (b->hi == a->hi && b->hi_rank < a->hi_rank))
    a->hi = b->hi, a->hi_rank = b->hi_rank;
}

static uint64_t min_u(uint64_t a, uint64_t b) {
  return a < b ? a : b;
}

static uint64_t max_u(uint64_t a, uint64_t b) {
  return a > b ? a : b;
}

static void combine_record(ag_record *a, const ag_record *b) {
  for (int i = 0; i < AG_FIELDS; i++)
    combine_range(&a->f[i], &b->f[i]);
  a->chunk = min_u(a->chunk, b->chunk);
  a->classes = a->classes + b->classes < a->classes ? UINT64_MAX
                                                    : a->classes + b->classes;
  a->index_sum += b->index_sum;
  a->first = min_u(a->first, b->first);
  a->end = max_u(a->end, b->end);
  a->processes += b->processes;
  a->failures += b->failures;
  if (b->failed_rank < a->failed_rank) {
    a->failed_rank = b->failed_rank;
    a->failed_status = b->failed_status;
    memcpy(a->detail, b->detail, sizeof a->detail);
  }
}

/* MPI's user function: inout[i] = in[i] (+) inout[i], copied through
 * aligned records. */
static void combine(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  for (int i = 0; i < *len; i++) {
    ag_record a, b;
    memcpy(&a, (char *)inout + (size_t)i * sizeof a, sizeof a);
    memcpy(&b, (char *)in + (size_t)i * sizeof b, sizeof b);
    combine_record(&a, &b);
    memcpy((char *)inout + (size_t)i * sizeof a, &a, sizeof a);
  }
}

/* 0 + 1 + ... + (n - 1), mod 2^64. */
static uint64_t triangle(uint64_t n) {
  return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

static void fill_record(ag_record *r, const clloss__mpi_terms *t, int rank,
                        clloss_status own, const char *detail) {
  memset(r, 0, sizeof *r);
  for (int i = 0; i < AG_FIELDS; i++)
    r->f[i] = (ag_range){t->v[i], t->v[i], rank, rank};
  r->chunk = t->chunk;
  const uint64_t o = t->shard_offset, c = t->shard_classes;
  r->classes = c;
  r->index_sum = c * o + triangle(c);
  r->first = c ? o : UINT64_MAX;
  r->end = c ? (o + c < o ? UINT64_MAX : o + c) : 0;
  r->processes = 1;
  r->failures = own != CLLOSS_SUCCESS;
  r->failed_rank = own != CLLOSS_SUCCESS ? rank : INT64_MAX;
  r->failed_status = own;
  if (own != CLLOSS_SUCCESS)
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

/* One value of field i, as the detail sentence shows it. */
static void format_value(int i, uint64_t v, char *out, size_t len) {
  float f;
  uint32_t bits = (uint32_t)v;
  switch (i) {
  case AG_KIND:
    snprintf(out, len, "%s",
             v == AG_CROSS_ENTROPY ? "clloss_mpi_cross_entropy"
                                   : "clloss_mpi_linear_cross_entropy");
    break;
  case AG_INPUT_TYPE:
  case AG_TARGET_TYPE:
    snprintf(out, len, "%s", clloss_dtype_name((clloss_dtype)v));
    break;
  case AG_IGNORE_INDEX:
    snprintf(out, len, "%" PRId64, (int64_t)v);
    break;
  case AG_LABEL_SMOOTHING:
  case AG_Z_LOSS:
  case AG_SOFTCAP:
  case AG_NORMALIZER:
  case AG_GRAD_SCALE:
    memcpy(&f, &bits, sizeof f);
    snprintf(out, len, "%.9g", (double)f);
    break;
  case AG_OUTPUTS:
    snprintf(out, len, "{%s%s%s%s }", v & 1 ? " loss" : "",
             v & 2 ? " grad_input" : "", v & 4 ? " grad_linear_weight" : "",
             v & 8 ? " grad_linear_bias" : "");
    break;
  case AG_TARGETS:
    snprintf(out, len, "%016" PRIx64, v);
    break;
  default:
    snprintf(out, len, "%" PRIu64, v);
  }
}

/* The verdict of the reduced record for this process. */
static clloss_status judge(clloss_context *ctx, const ag_record *r,
                           const clloss__mpi_terms *t, clloss_status own) {
  if (r->failures > 0) {
    if (own != CLLOSS_SUCCESS)
      return own; /* its own detail stands */
    return clloss__mpi_failf(
        ctx, CLLOSS_COLLECTIVE_FAILURE,
        "process %" PRId64 " of %" PRId64 " failed (%s: %s)%s", r->failed_rank,
        r->processes, clloss_status_name((int)r->failed_status), r->detail,
        r->failures > 1 ? "; others failed too" : "");
  }
  for (int i = 0; i < AG_FIELDS; i++) {
    const ag_range *f = &r->f[i];
    if (f->lo == f->hi)
      continue;
    char lo[96], hi[96];
    format_value(i, f->lo, lo, sizeof lo);
    format_value(i, f->hi, hi, sizeof hi);
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                             "the processes disagree on %s: process %" PRId64
                             " passed %s, process "
                             "%" PRId64 " %s; every process must pass the same",
                             field_names[i], f->lo_rank, lo, f->hi_rank, hi);
  }
  const uint64_t v = t->v[AG_CLASSES];
  if (r->classes != v)
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                             "the shards of the %" PRId64
                             " processes hold %" PRIu64
                             " classes in all, but the call has %" PRIu64
                             ": each class must be in exactly one shard",
                             r->processes, r->classes, v);
  if (v && (r->first != 0 || r->end != v || r->index_sum != triangle(v)))
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                             "the shards of the %" PRId64
                             " processes overlap or leave a gap in [0, %" PRIu64
                             "): each class must be in exactly one shard",
                             r->processes, v);
  return CLLOSS_SUCCESS;
}

clloss_status clloss__mpi_agree(clloss_context *ctx, MPI_Comm comm,
                                clloss__mpi_terms *t, clloss_status own) {
  int rank = 0;
  int rc = MPI_Comm_rank(comm, &rank);
  if (rc != MPI_SUCCESS)
    return clloss__mpi_error(ctx, "MPI_Comm_rank", rc);
  ag_record r;
  fill_record(&r, t, rank, own,
              ctx ? clloss_context_error_detail(ctx) : "ctx is NULL");
  MPI_Datatype type;
  MPI_Op op;
  rc = MPI_Type_contiguous((int)sizeof r, MPI_BYTE, &type);
  if (rc == MPI_SUCCESS && (rc = MPI_Type_commit(&type)) != MPI_SUCCESS)
    MPI_Type_free(&type);
  if (rc != MPI_SUCCESS)
    return clloss__mpi_error(ctx, "creating the agreement's MPI datatype", rc);
  rc = MPI_Op_create(combine, 1, &op);
  if (rc != MPI_SUCCESS) {
    MPI_Type_free(&type);
    return clloss__mpi_error(ctx, "creating the agreement's MPI operator", rc);
  }
  rc = MPI_Allreduce(MPI_IN_PLACE, &r, 1, type, op, comm);
  MPI_Op_free(&op);
  MPI_Type_free(&type);
  if (rc != MPI_SUCCESS)
    return clloss__mpi_error(ctx, "MPI_Allreduce (the agreement)", rc);
  clloss_status s = judge(ctx, &r, t, own);
  if (s == CLLOSS_SUCCESS)
    t->chunk = r.chunk;
  return s;
}

void clloss__mpi_terms_ce(clloss__mpi_terms *t, int kind,
                          const clloss_cross_entropy_desc *d) {
  memset(t, 0, sizeof *t);
  t->v[AG_KIND] = (uint64_t)kind;
  if (!d)
    return;
  uint32_t bits[5];
  memcpy(&bits[0], &d->label_smoothing, 4);
  memcpy(&bits[1], &d->z_loss, 4);
  memcpy(&bits[2], &d->softcap, 4);
  memcpy(&bits[3], &d->normalizer, 4);
  memcpy(&bits[4], &d->grad_scale, 4);
  t->v[AG_ROWS] = d->rows;
  t->v[AG_CLASSES] = d->classes;
  t->v[AG_INPUT_TYPE] = (uint64_t)d->input_type;
  t->v[AG_TARGET_TYPE] = (uint64_t)d->target_type;
  t->v[AG_REDUCTION] = (uint64_t)d->reduction;
  t->v[AG_IGNORE_INDEX] = (uint64_t)d->ignore_index;
  for (int i = 0; i < 5; i++)
    t->v[AG_LABEL_SMOOTHING + i] = bits[i];
}

static int is_index(clloss_dtype t) {
  return t == CLLOSS_INT32 || t == CLLOSS_INT64;
}

uint64_t clloss__mpi_checksum(clloss_dtype type, const void *target,
                              size_t rows) {
  uint64_t h = 0x6a09e667f3bcc908u ^ rows;
  for (size_t i = 0; i < rows; i++) {
    const int64_t v = type == CLLOSS_INT32 ? ((const int32_t *)target)[i]
                                           : ((const int64_t *)target)[i];
    h = (h ^ (uint64_t)v) * 0x9e3779b97f4a7c15u;
    h ^= h >> 29;
  }
  return h;
}

clloss_status
clloss__mpi_target_checksum(clloss_context *ctx, cl_command_queue queue,
                            clloss_dtype type, clloss_buffer target,
                            size_t rows, cl_uint num_events,
                            const cl_event *wait_list, uint64_t *sum) {
  *sum = 0;
  if (!is_index(type) || !target.mem || rows == 0)
    return CLLOSS_SUCCESS;
  const size_t es = clloss_dtype_size(type);
  size_t size = 0;
  cl_int err =
      clGetMemObjectInfo(target.mem, CL_MEM_SIZE, sizeof size, &size, NULL);
  if (err != CL_SUCCESS)
    return clloss__mpi_failf(ctx, (clloss_status)err,
                             "target is not a valid buffer");
  if (target.offset > size / es || rows > size / es - target.offset)
    return clloss__mpi_failf(ctx, CLLOSS_BUFFER_TOO_SMALL,
                             "target holds %zu elements; the call needs %zu "
                             "at offset %zu",
                             size / es, rows, target.offset);
  void *host = malloc(rows * es);
  if (!host)
    return clloss__mpi_failf(ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                             "no host memory for the targets' checksum");
  err = clEnqueueReadBuffer(queue, target.mem, CL_TRUE, target.offset * es,
                            rows * es, host, num_events, wait_list, NULL);
  if (err == CL_SUCCESS)
    *sum = clloss__mpi_checksum(type, host, rows);
  free(host);
  return err == CL_SUCCESS
             ? CLLOSS_SUCCESS
             : clloss__mpi_failf(ctx, (clloss_status)err,
                                 "reading the targets for their checksum "
                                 "failed (OpenCL error %d)",
                                 (int)err);
}
