/* test_mpi.c - the MPI layer under mpirun (tests/mpi/run.sh starts it with
 * 2 and 3 processes): vocabulary-parallel cross_entropy against the
 * single-device call on the whole problem, for every option, even,
 * reversed and empty shards; the loss the same on every process; failures
 * that reach every process instead of leaving one waiting; the CLI's
 * `run cross_entropy --vocab-parallel`. Exit status 0 when every process
 * passed every check. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_check.h"

enum { N = 9, V = 53 };

/* One configuration of options. */
typedef struct mpi_case {
  const char *name;
  int prob, weights, ignore, int32;
  clloss_dtype dtype;
  int accumulate, padded;
  float eps, z, cap, norm, scale;
  clloss_reduction reduction;
} mpi_case;

static const mpi_case cases[] = {
    {"plain mean", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, CLLOSS_REDUCTION_MEAN},
    {"weights ignore smoothing sum", 0, 1, 1, 0, 0, 0, 0, 0.1f, 0, 0, 0, 1,
     CLLOSS_REDUCTION_SUM},
    {"int32 weights ignore mean", 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1,
     CLLOSS_REDUCTION_MEAN},
    {"z_loss softcap none padded rows", 0, 0, 1, 0, 0, 0, 1, 0.05f, 1e-3f, 3.0f,
     0, 0.25f, CLLOSS_REDUCTION_NONE},
    {"normalizer", 0, 1, 0, 0, 0, 0, 0, 0.2f, 0, 0, 11.0f, 1,
     CLLOSS_REDUCTION_MEAN},
    {"probabilities", 1, 1, 0, 0, 0, 0, 0, 0.1f, 1e-3f, 0, 0, 1,
     CLLOSS_REDUCTION_MEAN},
    {"accumulate padded rows", 0, 1, 1, 0, 0, 1, 1, 0.1f, 0, 0, 0, 0.5f,
     CLLOSS_REDUCTION_SUM},
    {"float64 smoothing mean", 0, 1, 1, 0, CLLOSS_FLOAT64, 0, 0, 0.1f, 1e-4f, 0,
     0, 1, CLLOSS_REDUCTION_MEAN},
    {"float64 probabilities none", 1, 0, 0, 0, CLLOSS_FLOAT64, 0, 0, 0, 0, 2.0f,
     0, 1, CLLOSS_REDUCTION_NONE},
    {"float16 weights smoothing mean", 0, 1, 1, 0, CLLOSS_FLOAT16, 0, 0, 0.1f,
     0, 0, 0, 1, CLLOSS_REDUCTION_MEAN},
    {"bfloat16 z_loss sum", 0, 0, 1, 0, CLLOSS_BFLOAT16, 0, 0, 0, 1e-3f, 0, 0,
     1, CLLOSS_REDUCTION_SUM},
};

/* How the classes are split over the processes. */
typedef enum split_kind { EVEN, REVERSED, ONE_EMPTY } split_kind;
static const char *const split_names[] = {"even", "reversed", "one empty"};

static clloss_shard shard_of(split_kind k, size_t classes, int rank, int size) {
  if (k == REVERSED)
    return clloss_mpi_even_shard(classes, size - 1 - rank, size);
  if (k == ONE_EMPTY) {
    /* Process 1 holds nothing; the others split the classes evenly. */
    if (rank == 1)
      return (clloss_shard){0, 0};
    return clloss_mpi_even_shard(classes, rank ? rank - 1 : 0, size - 1);
  }
  return clloss_mpi_even_shard(classes, rank, size);
}

static clloss_cross_entropy_desc desc_of(const mpi_case *k) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = N;
  d.classes = V;
  d.input_type = k->dtype;
  d.target_type = k->prob    ? d.input_type
                  : k->int32 ? CLLOSS_INT32
                             : CLLOSS_INT64;
  d.reduction = k->reduction;
  d.label_smoothing = k->eps;
  d.z_loss = k->z;
  d.softcap = k->cap;
  d.normalizer = k->norm;
  d.grad_scale = k->scale;
  d.accumulate = k->accumulate;
  return d;
}

/* The single-device result and this process's vocabulary-parallel one. */
static void run_case(mc_state *st, clloss_context *ctx, const mpi_case *k,
                     split_kind split, int salt) {
  const clloss_cross_entropy_desc d = desc_of(k);
  mc_problem pb;
  mc_make(&pb, &d, k->weights, k->ignore, salt);
  char what[160];
  snprintf(what, sizeof what, "%s, %s split", k->name, split_names[split]);
  /* The whole problem on this process's device. */
  const size_t es = clloss_dtype_size(d.input_type);
  const size_t loss_n = clloss_cross_entropy_output_count(&d);
  unsigned char *want_loss = calloc(loss_n, 8), *want_grad = malloc(N * V * es);
  memcpy(want_grad, pb.grad0, N * V * es);
  MC_CHECK(st,
           clloss_cross_entropy_host(ctx, &d, pb.x, pb.target,
                                     k->weights ? pb.w : NULL, pb.g, want_loss,
                                     want_grad) == CLLOSS_SUCCESS,
           "%s: single-device call: %s", what,
           clloss_context_error_detail(ctx));
  /* This process's block. */
  const clloss_shard sh = shard_of(split, V, st->rank, st->size);
  clloss_cross_entropy_desc bd = d;
  bd.row_stride = k->padded ? sh.classes + 3 : 0;
  mc_block b;
  mc_block_make(&b, &pb, &d, &sh, bd.row_stride);
  unsigned char *loss = calloc(loss_n, 8);
  clloss_status s = clloss_mpi_cross_entropy_host(
      ctx, MPI_COMM_WORLD, &bd, &sh, b.x, b.target, k->weights ? b.w : NULL,
      pb.g, loss, b.grad);
  MC_CHECK(st, s == CLLOSS_SUCCESS, "%s: %s: %s", what, clloss_status_name(s),
           clloss_context_error_detail(ctx));
  if (s == CLLOSS_SUCCESS) {
    mc_check_loss(st, what, d.input_type, loss, want_loss, loss_n);
    mc_check_same_everywhere(
        st, what, loss,
        loss_n * clloss_dtype_size(clloss_loss_dtype(k->dtype)));
    mc_check_block(st, what, &d, &pb, &sh, bd.row_stride, b.grad, want_grad);
    MC_CHECK(st, mc_padding_changed(&d, &sh, bd.row_stride, b.grad) == 0,
             "%s: the gradient's padding columns changed", what);
  }
  free(loss);
  free(want_loss);
  free(want_grad);
  mc_block_free(&b);
  mc_free(&pb);
}

/* The device-buffer call: gradient in place of the logits, reduction none,
 * the event of the finish. */
static void test_device_in_place(mc_state *st, clloss_context *ctx) {
  const mpi_case k = {
      "device in place",    0, 1, 1, 0, 0, 0, 0, 0.1f, 0, 0, 0, 1,
      CLLOSS_REDUCTION_NONE};
  const clloss_cross_entropy_desc d = desc_of(&k);
  mc_problem pb;
  mc_make(&pb, &d, 1, 1, 77);
  float want_loss[N], *want_grad = malloc(N * V * sizeof(float));
  clloss_cross_entropy_host(ctx, &d, pb.x, pb.target, pb.w, pb.g, want_loss,
                            want_grad);
  const clloss_shard sh = shard_of(EVEN, V, st->rank, st->size);
  mc_block b;
  mc_block_make(&b, &pb, &d, &sh, 0);
  cl_mem x = mc_buffer(ctx, N * sh.classes * sizeof(float), b.x);
  cl_mem t = mc_buffer(ctx, N * sizeof(int64_t), pb.target);
  cl_mem w = mc_buffer(ctx, sh.classes * sizeof(float), b.w);
  cl_mem g = mc_buffer(ctx, N * sizeof(float), pb.g);
  cl_mem l = mc_buffer(ctx, N * sizeof(float), NULL);
  cl_event done = NULL;
  clloss_status s = clloss_mpi_cross_entropy(
      ctx, MPI_COMM_WORLD, clloss_context_queue(ctx), &d, &sh, CLLOSS_BUFFER(x),
      CLLOSS_BUFFER(t), CLLOSS_BUFFER(w), CLLOSS_BUFFER(g), CLLOSS_BUFFER(l),
      CLLOSS_BUFFER(x), 0, NULL, &done);
  MC_CHECK(st, s == CLLOSS_SUCCESS && done, "device call: %s: %s",
           clloss_status_name(s), clloss_context_error_detail(ctx));
  if (done) {
    clWaitForEvents(1, &done);
    clReleaseEvent(done);
  }
  float loss[N];
  mc_read(ctx, l, sizeof loss, loss);
  mc_read(ctx, x, N * sh.classes * sizeof(float), b.grad);
  mc_check_loss(st, "device in place", CLLOSS_FLOAT32, loss, want_loss, N);
  mc_check_same_everywhere(st, "device in place", loss, sizeof loss);
  mc_check_block(st, "device in place", &d, &pb, &sh, 0, b.grad, want_grad);
  clReleaseMemObject(x);
  clReleaseMemObject(t);
  clReleaseMemObject(w);
  clReleaseMemObject(g);
  clReleaseMemObject(l);
  free(want_grad);
  mc_block_free(&b);
  mc_free(&pb);
}

/* Failures reach every process: nobody is left in the all-reduce. */
static void test_failures(mc_state *st, clloss_context *ctx) {
  const mpi_case k = {"failures", 0, 0, 0, 0, 0, 0,
                      0,          0, 0, 0, 0, 1, CLLOSS_REDUCTION_MEAN};
  clloss_cross_entropy_desc d = desc_of(&k);
  mc_problem pb;
  mc_make(&pb, &d, 0, 0, 5);
  clloss_shard sh = shard_of(EVEN, V, st->rank, st->size);
  mc_block b;
  mc_block_make(&b, &pb, &d, &sh, 0);
  float loss = 12345.0f;
  /* The last process passes no shard: it fails with its own status, the
   * others with CLLOSS_COLLECTIVE_FAILURE. */
  const int last = st->rank == st->size - 1;
  clloss_status s =
      clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, last ? NULL : &sh,
                                    b.x, pb.target, NULL, NULL, &loss, b.grad);
  MC_CHECK(st,
           s == (last ? CLLOSS_INVALID_ARGUMENT : CLLOSS_COLLECTIVE_FAILURE),
           "one bad process: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  MC_CHECK(st, loss == 12345.0f, "one bad process: the loss was written");
  /* A loss buffer too small on the first process, found before the
   * all-reduce (the finish would find it only after). */
  {
    cl_mem x = mc_buffer(ctx, N * sh.classes * sizeof(float), b.x);
    cl_mem t = mc_buffer(ctx, N * sizeof(int64_t), pb.target);
    cl_mem l = mc_buffer(ctx, sizeof(float), NULL);
    clloss_cross_entropy_desc none = d;
    none.reduction = CLLOSS_REDUCTION_NONE; /* N values */
    cl_mem lb = st->rank == 0 ? l : mc_buffer(ctx, N * sizeof(float), NULL);
    s = clloss_mpi_cross_entropy(
        ctx, MPI_COMM_WORLD, NULL, &none, &sh, CLLOSS_BUFFER(x),
        CLLOSS_BUFFER(t), CLLOSS_BUFFER_NONE, CLLOSS_BUFFER_NONE,
        CLLOSS_BUFFER(lb), CLLOSS_BUFFER_NONE, 0, NULL, NULL);
    MC_CHECK(st,
             s == (st->rank == 0 ? CLLOSS_BUFFER_TOO_SMALL
                                 : CLLOSS_COLLECTIVE_FAILURE),
             "a small loss buffer on process 0: got %s (%s)",
             clloss_status_name(s), clloss_context_error_detail(ctx));
    if (lb != l)
      clReleaseMemObject(lb);
    clReleaseMemObject(l);
    clReleaseMemObject(x);
    clReleaseMemObject(t);
  }
  /* Shards that leave a class out: every process is told. */
  sh = shard_of(EVEN, V - 1, st->rank, st->size);
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &sh, b.x,
                                    pb.target, NULL, NULL, &loss, NULL);
  MC_CHECK(st,
           s == CLLOSS_INVALID_ARGUMENT &&
               strstr(clloss_context_error_detail(ctx), "52 classes"),
           "shards of 52 of 53 classes: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  /* A target outside [0, V): CLLOSS_INVALID_TARGET everywhere, nothing
   * written. */
  sh = shard_of(EVEN, V, st->rank, st->size);
  ((int64_t *)pb.target)[4] = V;
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &sh, b.x,
                                    pb.target, NULL, NULL, &loss, NULL);
  MC_CHECK(st, s == CLLOSS_INVALID_TARGET && loss == 12345.0f,
           "a bad target: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  /* And the next call works again. */
  ((int64_t *)pb.target)[4] = 0;
  s = clloss_mpi_cross_entropy_host(ctx, MPI_COMM_WORLD, &d, &sh, b.x,
                                    pb.target, NULL, NULL, &loss, NULL);
  MC_CHECK(st, s == CLLOSS_SUCCESS && loss != 12345.0f,
           "after the failures: got %s (%s)", clloss_status_name(s),
           clloss_context_error_detail(ctx));
  mc_block_free(&b);
  mc_free(&pb);
}

/* The operator and the shard split, on the host. */
static void test_op_and_split(mc_state *st) {
  MPI_Datatype type;
  MPI_Op op;
  MC_CHECK(st,
           clloss_mpi_ce_stats_type(CLLOSS_INT64, &type, &op) ==
               CLLOSS_INVALID_ARGUMENT,
           "a records type for int64");
  MC_CHECK(st,
           clloss_mpi_ce_stats_type(CLLOSS_FLOAT32, &type, &op) ==
               CLLOSS_SUCCESS,
           "the records type");
  /* Each process offers a record with its rank as the max; the reduction
   * gives max = size - 1 and sumexp = sum over r of e^(r - (size-1)). */
  clloss_ce_stats r = {(float)st->rank, 1, 0, 0, (float)st->rank, 1};
  MPI_Allreduce(MPI_IN_PLACE, &r, 1, type, op, MPI_COMM_WORLD);
  double want = 0;
  for (int i = 0; i < st->size; i++)
    want += exp(i - (st->size - 1.0));
  MC_CHECK(st,
           r.max == st->size - 1.0f && fabs(r.sumexp - want) < 1e-6 * want &&
               r.target_weight == st->size,
           "the reduction of records: max %g sumexp %g (want %g)",
           (double)r.max, (double)r.sumexp, want);
  MPI_Op_free(&op);
  MPI_Type_free(&type);
  size_t total = 0, next = 0;
  for (int rk = 0; rk < 3; rk++) {
    clloss_shard s = clloss_mpi_even_shard(53, rk, 3);
    MC_CHECK(st, s.class_offset == next, "even shard %d offset", rk);
    next = s.class_offset + s.classes;
    total += s.classes;
  }
  MC_CHECK(st, total == 53 && clloss_mpi_even_shard(2, 2, 3).classes == 0,
           "even shards");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  mc_state st;
  mc_init(&st);
  clloss_context *ctx = NULL;
  clloss_status s = clloss_context_create_default(NULL, &ctx);
  if (s != CLLOSS_SUCCESS) {
    fprintf(stderr, "[%d] no device: %s\n", st.rank, clloss_status_name(s));
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  /* `linear`: only linear_cross_entropy's tests; `agree`: only those of
   * processes that disagree or fail; a number: one case of
   * cross_entropy's (to debug). */
  if (argc > 1 && strcmp(argv[1], "linear") == 0) {
    mc_test_linear(&st, ctx);
    clloss_context_release(ctx);
    const int failures = mc_finish(&st);
    MPI_Finalize();
    return failures ? 1 : 0;
  }
  if (argc > 1 && strcmp(argv[1], "agree") == 0) {
    mc_test_agree(&st, ctx);
    clloss_context_release(ctx);
    const int failures = mc_finish(&st);
    MPI_Finalize();
    return failures ? 1 : 0;
  }
  const int only = argc > 1 ? atoi(argv[1]) : -1;
  test_op_and_split(&st);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    if (only >= 0 && (size_t)only != c)
      continue;
    for (int split = EVEN; split <= (st.size > 1 ? ONE_EMPTY : EVEN); split++)
      run_case(&st, ctx, &cases[c], (split_kind)split, (int)(10 * c + split));
  }
  test_device_in_place(&st, ctx);
  test_failures(&st, ctx);
  mc_test_linear(&st, ctx);
  mc_test_cli(&st, ctx);
  mc_test_agree(&st, ctx);
  clloss_context_release(ctx);
  const int failures = mc_finish(&st);
  MPI_Finalize();
  return failures ? 1 : 0;
}
