/* clloss_mpi.c - vocabulary-parallel cross_entropy over MPI: the records'
 * datatype and reduction operator, and the collective call (partial ->
 * one MPI_Allreduce -> finish). See clloss_mpi.h. Only clloss.h's API is
 * used: the layer is what a user of another transport would write. */
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clloss_mpi_internal.h"

clloss_shard clloss_mpi_even_shard(size_t classes, int rank, int size) {
  clloss_shard s = {0, 0};
  if (size <= 0 || rank < 0 || rank >= size)
    return s;
  const size_t p = (size_t)size, r = (size_t)rank;
  const size_t base = classes / p, extra = classes % p;
  s.class_offset = r * base + (r < extra ? r : extra);
  s.classes = base + (r < extra ? 1 : 0);
  return s;
}

/* MPI's user function: inout[i] = in[i] (+) inout[i]. The combine is
 * commutative bit for bit, so the order MPI applies it in does not matter
 * to the result's bits. */
static void combine32(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  clloss_ce_stats_combine(inout, in, (size_t)*len);
}

static void combine64(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  clloss_ce_stats64_combine(inout, in, (size_t)*len);
}

static int is_float_type(clloss_dtype t) {
  return t == CLLOSS_FLOAT32 || t == CLLOSS_FLOAT16 || t == CLLOSS_BFLOAT16 ||
         t == CLLOSS_FLOAT64;
}

/* Creates both or neither; an MPI error code, or MPI_SUCCESS. */
static int make_type(int f64, MPI_Datatype *type, MPI_Op *op) {
  int rc = MPI_Type_contiguous(6, f64 ? MPI_DOUBLE : MPI_FLOAT, type);
  if (rc == MPI_SUCCESS && (rc = MPI_Type_commit(type)) != MPI_SUCCESS)
    MPI_Type_free(type);
  if (rc != MPI_SUCCESS)
    return rc;
  rc = MPI_Op_create(f64 ? combine64 : combine32, 1, op);
  if (rc != MPI_SUCCESS)
    MPI_Type_free(type);
  return rc;
}

clloss_status clloss_mpi_ce_stats_type(clloss_dtype input_type,
                                       MPI_Datatype *type, MPI_Op *op) {
  if (!type || !op || !is_float_type(input_type))
    return CLLOSS_INVALID_ARGUMENT;
  return make_type(input_type == CLLOSS_FLOAT64, type, op) == MPI_SUCCESS
             ? CLLOSS_SUCCESS
             : CLLOSS_COLLECTIVE_FAILURE;
}

/* Records of either width, on the host. */
typedef struct records {
  int f64;
  size_t rows;
  unsigned char *data; /* rows + 1 records: the last is the control one */
} records;

static size_t record_size(int f64) {
  return f64 ? sizeof(clloss_ce_stats64) : sizeof(clloss_ce_stats);
}

/* Record i as {max, sumexp, sum_a, sum_ad, target_logit, target_weight}. */
static void put_record(records *r, size_t i, double max, double sum_a,
                       double target_logit, double target_weight) {
  if (r->f64) {
    clloss_ce_stats64 s = {max, 0, sum_a, 0, target_logit, target_weight};
    memcpy(r->data + i * sizeof s, &s, sizeof s);
  } else {
    clloss_ce_stats s = {(float)max,          0,
                         (float)sum_a,        0,
                         (float)target_logit, (float)target_weight};
    memcpy(r->data + i * sizeof s, &s, sizeof s);
  }
}

static void get_control(const records *r, double *sum_a, double *tl,
                        double *tw) {
  if (r->f64) {
    clloss_ce_stats64 s;
    memcpy(&s, r->data + r->rows * sizeof s, sizeof s);
    *sum_a = s.sum_a, *tl = s.target_logit, *tw = s.target_weight;
  } else {
    clloss_ce_stats s;
    memcpy(&s, r->data + r->rows * sizeof s, sizeof s);
    *sum_a = s.sum_a, *tl = s.target_logit, *tw = s.target_weight;
  }
}

/* The empty record (the combine's identity) for every row. */
static void empty_records(records *r) {
  const double lowest = r->f64 ? -DBL_MAX : -FLT_MAX;
  for (size_t i = 0; i < r->rows; i++)
    put_record(r, i, lowest, 0, 0, 0);
}

/* One call's state on this process. */
typedef struct vp_call {
  clloss_context *ctx;
  cl_command_queue queue;
  const clloss_cross_entropy_desc *desc;
  clloss_shard shard;   /* classes 0: an empty shard */
  clloss_buffer target; /* class indices, or the block's probabilities */
  int probs;            /* probability targets */
  records rec;
  cl_mem dev;          /* the records on the device */
  cl_mem dummy;        /* an empty shard's stand-in block */
  cl_mem dummy_target; /* its probability targets */
} vp_call;

static clloss_status cl_failure(clloss_context *ctx, const char *what,
                                cl_int err) {
  return clloss__mpi_failf(ctx,
                           err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                                   err == CL_INVALID_BUFFER_SIZE
                               ? CLLOSS_OUT_OF_DEVICE_MEMORY
                               : (clloss_status)err,
                           "%s failed (OpenCL error %d)", what, (int)err);
}

clloss_status clloss__mpi_buffer(clloss_context *ctx, size_t bytes,
                                 cl_mem *out) {
  cl_int err;
  *out = clCreateBuffer(clloss_context_cl_context(ctx), CL_MEM_READ_WRITE,
                        bytes ? bytes : 1, NULL, &err);
  return err == CL_SUCCESS ? CLLOSS_SUCCESS
                           : cl_failure(ctx, "clCreateBuffer", err);
}

static clloss_status create(vp_call *c, size_t bytes, cl_mem *out) {
  return clloss__mpi_buffer(c->ctx, bytes, out);
}

/* An empty shard runs the core's calls on a stand-in block of one column
 * (the shard [0, 1)): a partial that checks the arguments as every other
 * process's does, and after the all-reduce a loss-only finish, which reads
 * nothing of the block but the combined records. */
static clloss_status make_dummy(vp_call *c, clloss_buffer *input,
                                clloss_buffer *target) {
  const clloss_cross_entropy_desc *d = c->desc;
  const size_t esize = clloss_dtype_size(d->input_type);
  const size_t ld = d->row_stride ? d->row_stride : 1;
  const size_t n = d->rows ? (d->rows - 1) * ld + 1 : 0;
  const cl_uint zero = 0;
  CLLOSS_MPI_TRY(create(c, n * esize, &c->dummy));
  cl_int err = n ? clEnqueueFillBuffer(c->queue, c->dummy, &zero, 1, 0,
                                       n * esize, 0, NULL, NULL)
                 : CL_SUCCESS;
  if (err != CL_SUCCESS)
    return cl_failure(c->ctx, "clEnqueueFillBuffer", err);
  *input = (clloss_buffer){c->dummy, 0};
  *target = c->target;
  if (c->probs) {
    CLLOSS_MPI_TRY(create(c, d->rows * esize, &c->dummy_target));
    if (d->rows && (err = clEnqueueFillBuffer(c->queue, c->dummy_target, &zero,
                                              1, 0, d->rows * esize, 0, NULL,
                                              NULL)) != CL_SUCCESS)
      return cl_failure(c->ctx, "clEnqueueFillBuffer", err);
    *target = (clloss_buffer){c->dummy_target, 0};
  }
  return CLLOSS_SUCCESS;
}

/* `name` holds `count` elements of `elem` bytes from its offset. */
static clloss_status check_output(vp_call *c, const char *name, clloss_buffer b,
                                  size_t count, size_t elem) {
  size_t size = 0;
  if (!b.mem)
    return CLLOSS_SUCCESS;
  cl_int err = clGetMemObjectInfo(b.mem, CL_MEM_SIZE, sizeof size, &size, NULL);
  if (err != CL_SUCCESS)
    return clloss__mpi_failf(c->ctx, (clloss_status)err,
                             "%s is not a valid buffer", name);
  const size_t cap = size / elem;
  if (b.offset > cap || count > cap - b.offset)
    return clloss__mpi_failf(c->ctx, CLLOSS_BUFFER_TOO_SMALL,
                             "%s holds %zu elements; the call needs %zu at "
                             "offset %zu",
                             name, cap, count, b.offset);
  return CLLOSS_SUCCESS;
}

/* What only the finish would check, after the all-reduce: checked before
 * it, so that such a failure too reaches every process. */
static clloss_status check_outputs(vp_call *c, clloss_buffer grad_output,
                                   clloss_buffer loss,
                                   clloss_buffer grad_input) {
  const clloss_cross_entropy_desc *d = c->desc;
  const size_t per = d->reduction == CLLOSS_REDUCTION_NONE ? d->rows : 1;
  const size_t lsize = c->rec.f64 ? 8 : 4, cb = c->shard.classes;
  const size_t ld = d->row_stride ? d->row_stride : cb;
  if (!loss.mem && !(grad_input.mem && cb))
    return clloss__mpi_failf(c->ctx, CLLOSS_INVALID_ARGUMENT,
                             "neither loss nor grad_input is given");
  CLLOSS_MPI_TRY(check_output(c, "loss", loss, per, lsize));
  CLLOSS_MPI_TRY(check_output(c, "grad_output", grad_output, per, lsize));
  if (!cb)
    return CLLOSS_SUCCESS;
  return check_output(c, "grad_input", grad_input,
                      d->rows ? (d->rows - 1) * ld + cb : 0,
                      clloss_dtype_size(d->input_type));
}

/* This process's records: the partial statistics of its block, read to
 * the host (an empty shard's are the empty records). */
static clloss_status local_partial(vp_call *c, clloss_buffer input,
                                   clloss_buffer weight, cl_uint num_events,
                                   const cl_event *wait_list) {
  const size_t rows = c->desc->rows, rec = record_size(c->rec.f64);
  clloss_shard sh = c->shard;
  clloss_buffer x = input, t = c->target;
  if (sh.classes == 0) {
    sh = (clloss_shard){0, 1};
    weight = CLLOSS_BUFFER_NONE;
    CLLOSS_MPI_TRY(make_dummy(c, &x, &t));
  }
  CLLOSS_MPI_TRY(create(c, rows * rec, &c->dev));
  cl_event ev = NULL;
  CLLOSS_MPI_TRY(clloss_cross_entropy_partial(
      c->ctx, c->queue, c->desc, &sh, x, t, weight, (clloss_buffer){c->dev, 0},
      num_events, wait_list, &ev));
  /* Done before the combined records are written over its own (the
   * queue may be out of order). */
  cl_int err = CL_SUCCESS;
  if (c->shard.classes && rows)
    err = clEnqueueReadBuffer(c->queue, c->dev, CL_TRUE, 0, rows * rec,
                              c->rec.data, ev ? 1 : 0, ev ? &ev : NULL, NULL);
  else if (ev)
    err = clWaitForEvents(1, &ev);
  if (c->shard.classes == 0)
    empty_records(&c->rec);
  if (ev)
    clReleaseEvent(ev);
  return err == CL_SUCCESS ? CLLOSS_SUCCESS
                           : cl_failure(c->ctx, "reading the records", err);
}

/* The one collective: every process's records and its control record
 * {lowest, 0, 1, 0, shard classes, failed}, whose sums count the
 * processes, the classes of all shards and the processes that failed. */
static clloss_status reduce_records(clloss_context *ctx, MPI_Comm comm,
                                    records *r, size_t own_classes, int failed,
                                    int *failures, double *classes) {
  const double lowest = r->f64 ? -DBL_MAX : -FLT_MAX;
  put_record(r, r->rows, lowest, 1, (double)own_classes, failed);
  MPI_Datatype type;
  MPI_Op op;
  int rc = make_type(r->f64, &type, &op);
  if (rc != MPI_SUCCESS)
    return clloss__mpi_error(ctx, "creating the records' MPI datatype", rc);
  if (r->rows + 1 > (size_t)INT_MAX)
    rc = MPI_ERR_COUNT;
  else
    rc = MPI_Allreduce(MPI_IN_PLACE, r->data, (int)(r->rows + 1), type, op,
                       comm);
  MPI_Op_free(&op);
  MPI_Type_free(&type);
  if (rc != MPI_SUCCESS)
    return clloss__mpi_error(ctx, "MPI_Allreduce", rc);
  double procs, fails;
  get_control(r, &procs, classes, &fails);
  *failures = (int)fails;
  return CLLOSS_SUCCESS;
}

static clloss_status all_reduce(vp_call *c, MPI_Comm comm, int failed,
                                int *failures, double *classes) {
  return reduce_records(c->ctx, comm, &c->rec, c->shard.classes, failed,
                        failures, classes);
}

clloss_status clloss__mpi_records_allreduce(clloss_context *ctx, MPI_Comm comm,
                                            int f64, void *data, size_t rows,
                                            int failed, void *scratch) {
  const size_t rs = record_size(f64);
  records r = {f64, rows, scratch};
  if (data)
    memcpy(r.data, data, rows * rs);
  else
    empty_records(&r);
  int failures = 0;
  double classes = 0;
  clloss_status s =
      reduce_records(ctx, comm, &r, 0, failed, &failures, &classes);
  if (s == CLLOSS_SUCCESS && data)
    memcpy(data, r.data, rows * rs);
  if (s == CLLOSS_SUCCESS && failures > 0)
    s = failed ? CLLOSS_COLLECTIVE_FAILURE
               : clloss__mpi_failf(ctx, CLLOSS_COLLECTIVE_FAILURE,
                                   "%d processes failed during the call "
                                   "(this one did not): see their status",
                                   failures);
  return s;
}

/* What the control record says of the call as a whole (the shards were
 * checked by the agreement). */
static clloss_status judge(vp_call *c, MPI_Comm comm, clloss_status own,
                           int failures) {
  int size = 0;
  MPI_Comm_size(comm, &size);
  if (own != CLLOSS_SUCCESS)
    return own; /* its own detail stands */
  if (failures > 0)
    return clloss__mpi_failf(c->ctx, CLLOSS_COLLECTIVE_FAILURE,
                             "%d of the %d processes failed before the "
                             "all-reduce (this one did not): see their "
                             "status",
                             failures, size);
  return CLLOSS_SUCCESS;
}

/* The finish from the combined records: this block's gradient and the
 * loss, or for an empty shard the loss alone (nothing but a marker when
 * no loss is asked for). */
static clloss_status finish(vp_call *c, clloss_buffer input,
                            clloss_buffer weight, clloss_buffer grad_output,
                            clloss_buffer loss, clloss_buffer grad_input,
                            cl_uint num_events, const cl_event *wait_list,
                            cl_event *event) {
  const size_t rows = c->desc->rows, rec = record_size(c->rec.f64);
  cl_int err =
      rows ? clEnqueueWriteBuffer(c->queue, c->dev, CL_TRUE, 0, rows * rec,
                                  c->rec.data, 0, NULL, NULL)
           : CL_SUCCESS;
  if (err != CL_SUCCESS)
    return cl_failure(c->ctx, "writing the combined records", err);
  clloss_shard sh = c->shard;
  clloss_buffer t = c->target;
  if (sh.classes == 0) {
    if (!loss.mem) {
      err = clEnqueueMarkerWithWaitList(c->queue, num_events, wait_list, event);
      return err == CL_SUCCESS ? CLLOSS_SUCCESS
                               : cl_failure(c->ctx, "the marker", err);
    }
    sh = (clloss_shard){0, 1};
    input = (clloss_buffer){c->dummy, 0};
    if (c->probs)
      t = (clloss_buffer){c->dummy_target, 0};
    weight = CLLOSS_BUFFER_NONE;
    grad_input = CLLOSS_BUFFER_NONE;
  } else {
    num_events = 0; /* the partial waited for them */
    wait_list = NULL;
  }
  return clloss_cross_entropy_finish(c->ctx, c->queue, c->desc, &sh, input, t,
                                     weight, grad_output,
                                     (clloss_buffer){c->dev, 0}, loss,
                                     grad_input, num_events, wait_list, event);
}

clloss_status clloss__mpi_check_comm(clloss_context *ctx, MPI_Comm comm) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT,
                             "MPI is not initialized: call MPI_Init first");
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT, "MPI is finalized");
  if (comm == MPI_COMM_NULL)
    return clloss__mpi_failf(ctx, CLLOSS_INVALID_ARGUMENT, "comm is null");
  return CLLOSS_SUCCESS;
}

/* This process's own failures before the agreement: its arguments, the
 * host memory for the records, the targets' checksum (into t). */
static clloss_status prepare(vp_call *c, const clloss_cross_entropy_desc *desc,
                             const clloss_shard *shard, cl_uint num_events,
                             const cl_event *wait_list, clloss__mpi_terms *t) {
  if (!c->ctx)
    return CLLOSS_INVALID_ARGUMENT;
  if (!desc ||
      desc->struct_size <
          offsetof(clloss_cross_entropy_desc, padding) + sizeof desc->padding)
    return clloss__mpi_failf(c->ctx, CLLOSS_INVALID_ARGUMENT,
                             "desc is NULL or not initialised with "
                             "CLLOSS_CROSS_ENTROPY_DESC_INIT");
  if (!shard)
    return clloss__mpi_failf(c->ctx, CLLOSS_INVALID_ARGUMENT, "shard is NULL");
  const size_t rec = record_size(c->rec.f64);
  if (desc->rows > (SIZE_MAX - 2 * rec) / rec)
    return clloss__mpi_failf(c->ctx, CLLOSS_INVALID_ARGUMENT,
                             "%zu rows of records overflow", desc->rows);
  c->rec.data = malloc((desc->rows + 1) * rec);
  if (!c->rec.data)
    return clloss__mpi_failf(c->ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                             "no host memory for %zu records", desc->rows + 1);
  return clloss__mpi_target_checksum(c->ctx, c->queue, desc->target_type,
                                     c->target, desc->rows, num_events,
                                     wait_list, &t->v[AG_TARGETS]);
}

clloss_status clloss__mpi_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer grad_output, clloss_buffer loss, clloss_buffer grad_input,
    cl_uint num_events, const cl_event *wait_list, cl_event *event,
    clloss_status own) {
  if (event)
    *event = NULL;
  /* Without MPI or a communicator this process cannot join; every other
   * failure joins the agreement, whose size is fixed. */
  CLLOSS_MPI_TRY(clloss__mpi_check_comm(ctx, comm));
  const int desc_ok = desc && desc->struct_size >=
                                  offsetof(clloss_cross_entropy_desc, padding) +
                                      sizeof desc->padding;
  vp_call c;
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.queue = queue ? queue : ctx ? clloss_context_queue(ctx) : NULL;
  c.desc = desc;
  c.target = target;
  if (desc_ok) {
    c.rec.rows = desc->rows;
    c.rec.f64 = desc->input_type == CLLOSS_FLOAT64;
    c.probs = is_float_type(desc->target_type);
  }
  if (shard)
    c.shard = *shard;
  clloss__mpi_terms t;
  clloss__mpi_terms_ce(&t, AG_CROSS_ENTROPY, desc_ok ? desc : NULL);
  t.shard_offset = c.shard.class_offset;
  t.shard_classes = c.shard.classes;
  if (own == CLLOSS_SUCCESS)
    own = prepare(&c, desc, shard, num_events, wait_list, &t);
  clloss_status s = clloss__mpi_agree(ctx, comm, &t, own);
  if (s == CLLOSS_SUCCESS) {
    /* Every process passed the agreement: the rows, hence the records'
     * count, are the same everywhere. */
    own = local_partial(&c, input, weight, num_events, wait_list);
    if (own == CLLOSS_SUCCESS)
      own = check_outputs(&c, grad_output, loss, grad_input);
    if (own != CLLOSS_SUCCESS)
      empty_records(&c.rec);
    int failures = 0;
    double classes = 0;
    s = all_reduce(&c, comm, own != CLLOSS_SUCCESS, &failures, &classes);
    if (s == CLLOSS_SUCCESS)
      s = judge(&c, comm, own, failures);
    if (s == CLLOSS_SUCCESS)
      s = finish(&c, input, weight, grad_output, loss, grad_input, num_events,
                 wait_list, event);
  }
  /* Released buffers live on until the commands that use them finish. */
  if (c.dev)
    clReleaseMemObject(c.dev);
  if (c.dummy)
    clReleaseMemObject(c.dummy);
  if (c.dummy_target)
    clReleaseMemObject(c.dummy_target);
  free(c.rec.data);
  return s;
}

clloss_status clloss_mpi_cross_entropy(
    clloss_context *ctx, MPI_Comm comm, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer grad_output, clloss_buffer loss, clloss_buffer grad_input,
    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
  return clloss__mpi_cross_entropy(
      ctx, comm, queue, desc, shard, input, target, weight, grad_output, loss,
      grad_input, num_events, wait_list, event, CLLOSS_SUCCESS);
}
