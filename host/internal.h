/* internal.h - the helpers shared by the launchers, above the context
 * layer (context.h). Not installed; names with two underscores are
 * library-internal. */
#ifndef CLLOSS_INTERNAL_H
#define CLLOSS_INTERNAL_H
#include <stdio.h>

#include "check.h"
#include "clloss.h"
#include "context.h"

/* Kernel families: each chooses its variant per shape class (tune.c). */
enum {
  CLLOSS__FAMILY_CROSS_ENTROPY,
  CLLOSS__FAMILY_NLL_LOSS,
  CLLOSS__FAMILY_POINTWISE,
  CLLOSS__FAMILIES
};

/* A program built for one source and one set of build-time parameters.
 * With a variant, the program holds only that variant's kernels: those
 * whose name contains "_item", "_group", "_lanes" or "_split" ("_shard" and
 * "_combine" go with split: the shard calls use its statistics), plus the
 * kernels that name no variant (finish_sum, class_targets); AUTO holds them
 * all. */
typedef struct clloss__program_key {
  const char *source; /* kernel file stem: "cross_entropy", ... */
  int in_type, tgt_type, prob_targets, loss_id, vw, softcap;
  clloss__variant variant;
} clloss__program_key;

#define CLLOSS__MAX_KERNELS 9

typedef struct clloss__program {
  clloss__program_key key;
  cl_program program;
  cl_kernel kernels[CLLOSS__MAX_KERNELS];
  const char *names[CLLOSS__MAX_KERNELS];
  size_t max_wg[CLLOSS__MAX_KERNELS]; /* CL_KERNEL_WORK_GROUP_SIZE, or 1
                                         for a kernel not in the program */
  unsigned char cache_key[32];        /* its name in the cache folder */
  int from_source;  /* compiled here: written to the cache at release */
  int measure_only; /* built only to measure variants: not written */
  int background;   /* built by a thread of its own (clloss__prebuild) */
} clloss__program;

/* The program for `key`, built on first use (program.c). The pointer is
 * valid until the next clloss__get_program (the table may grow). */
clloss_status clloss__get_program(clloss_context *ctx,
                                  const clloss__program_key *key,
                                  const char *const *kernel_names,
                                  clloss__program **out);
/* Starts building, on a thread of its own, those of keys[0..n) (n <= 2)
 * that ctx has not built: the thread creates a context on ctx's cl_context
 * and device and calls run(that context, copy of arg) (arg_size <= 128),
 * which must build them by running them (1 for success); the calls on ctx
 * take them (clloss__get_program) once the job is done. One job per
 * context: while one runs, this starts nothing. A job that fails leaves
 * nothing built (clloss__programs_ready says which). */
typedef int (*clloss__prebuild_run)(clloss_context *helper, const void *arg);
clloss_status clloss__prebuild(clloss_context *ctx,
                               const clloss__program_key *keys, size_t n,
                               clloss__prebuild_run run, const void *arg,
                               size_t arg_size);
/* 1: every one of keys[0..n) is built (in ctx's table, or by its finished
 * job); 0: ctx's job is still building; -1: some key is neither (never
 * asked for, or its build failed). Never waits. */
int clloss__programs_ready(clloss_context *ctx, const clloss__program_key *keys,
                           size_t n);
/* Waits for ctx's job, if any (context release; tests). */
void clloss__prebuild_wait(clloss_context *ctx);
/* The build options of `key` on ctx's device, as clBuildProgram gets them;
 * returns what snprintf returns. */
int clloss__build_options(const clloss_context *ctx,
                          const clloss__program_key *key, char *out,
                          size_t cap);
/* The sources of `key`'s program, in the order they are compiled:
 * texts[0..CLLOSS__PROGRAM_PARTS), malloc'd (free each). On failure every
 * text is NULL and `*missing` (may be NULL) names the file not found. */
#define CLLOSS__PROGRAM_PARTS 4
int clloss__program_sources(const clloss__program_key *key,
                            char *texts[CLLOSS__PROGRAM_PARTS],
                            const char **missing);

/* Program configurations (configs.c). The key a call with descriptor d
 * builds, for the launchers and the enumeration alike. */
clloss__program_key clloss__ce_program_key(const clloss_context *ctx,
                                           const clloss_cross_entropy_desc *d);
clloss__program_key clloss__nll_program_key(const clloss_context *ctx,
                                            const clloss_nll_loss_desc *d);
clloss__program_key clloss__pw_program_key(const clloss_context *ctx,
                                           const clloss_pointwise_desc *d);
clloss__program_key
clloss__lce_program_key(const clloss_context *ctx,
                        const clloss_linear_cross_entropy_desc *d);
int clloss__same_key(const clloss__program_key *a,
                     const clloss__program_key *b);
/* Every key that calls on ctx's device can request (ctx->info: device type
 * and fp64): the first `cap` into keys (may be NULL); returns how many. */
size_t clloss__program_configs(const clloss_context *ctx,
                               clloss__program_key *keys, size_t cap);

/* Launch helpers (launch.c). */
typedef struct clloss__launch {
  clloss_context *ctx;
  cl_command_queue queue;
  cl_uint num_events;
  const cl_event *wait_list;
  cl_event last; /* the most recent kernel's event, ours until handed out */
} clloss__launch;

/* Checks queue and wait list, and that the queue belongs to ctx. */
clloss_status clloss__launch_begin(clloss__launch *l, clloss_context *ctx,
                                   cl_command_queue queue, cl_uint num_events,
                                   const cl_event *wait_list);
/* Enqueues `k` after everything enqueued so far by this launch. */
/* Whether a call on queue q must wait for the previous call's last kernel
 * prev: not when prev is complete, nor when prev was enqueued on q and q
 * runs in order. Waiting needlessly links every call's events to the
 * previous call's: Rusticl keeps each event's dependencies alive with it,
 * and released the chain of a 20,000-call loop recursively, overflowing
 * the stack at clloss_context_release. */
int clloss__must_wait(cl_event prev, cl_command_queue q);
clloss_status clloss__launch_kernel(clloss__launch *l, cl_kernel k,
                                    size_t global, size_t local);
/* Hands the last event to the caller (or releases it); returns `status`. */
clloss_status clloss__launch_end(clloss__launch *l, clloss_status status,
                                 cl_event *event);

/* Checks that `buf` holds `offset + count` elements of `elem_size` bytes;
 * `name` goes into the detail. A NULL mem with count 0 is fine; a NULL mem
 * where `required` gives CLLOSS_INVALID_ARGUMENT. */
clloss_status clloss__check_buffer(clloss_context *ctx, const char *name,
                                   clloss_buffer buf, size_t count,
                                   size_t elem_size, int required);
/* The checks of a call that hold wherever its arrays are (device buffers
 * or host memory), each written once; CLLOSS_SUCCESS, else the failure
 * with a detail. At least one of the outputs loss and grad_input: */
clloss_status clloss__check_outputs(clloss_context *ctx, int has_loss,
                                    int has_grad);
/* No accumulation into the input itself (in_place: grad_input is it): */
clloss_status clloss__check_accumulate(clloss_context *ctx, int accumulate,
                                       int in_place);
/* CLLOSS_UNSUPPORTED for float64 data on a device without fp64: */
clloss_status clloss__check_fp64(clloss_context *ctx, clloss_dtype type);
/* The mem to pass for an optional buffer: its own, or the dummy. */
cl_mem clloss__mem_or_dummy(const clloss_context *ctx, clloss_buffer b);

/* Enqueues finish_sum of `program` over `count` partials into loss: mode
 * 0 the sum, 1 divided by fdiv when > 0 else by idiv, 2 divided by the
 * target pass's weight sum. */
clloss_status clloss__finish_sum(clloss__launch *l, clloss__program *p,
                                 int finish_index, size_t count, int mode,
                                 float fdiv, size_t idiv, clloss_buffer loss);

/* A problem that tune.c measures variants on: the caller's input type and
 * shape (element-wise: count x 1, never larger), class-index targets
 * (int64, all 0) or mse_loss's second input, mean, loss and gradient,
 * every input 0.5; buffers and queue are tune.c's. */
typedef struct clloss__tune_problem {
  int family;
  clloss_dtype type;
  size_t rows, classes;
  cl_command_queue queue;
  cl_mem x, y, t, loss, grad; /* inputs, targets, loss, gradient */
} clloss__tune_problem;
/* One run on p with ctx's forced variant (which tune.c sets for it),
 * enqueued on p->queue (not waited for) by the launcher of p's family,
 * which hands it to clloss__pick_variant: tune.c times runs through it and
 * calls no entry point of the library. */
typedef clloss_status (*clloss__tune_run)(clloss_context *ctx,
                                          const clloss__tune_problem *p);

/* The variant a call of `family` on rows x classes (element-wise: count x
 * 1) elements of `in_type` runs: the forced one, else the choice for its
 * shape class (tune.c: the heuristic, or a measured choice that beat it
 * clearly, timed with `run`). The launcher puts it into its program key,
 * once per call. */
clloss__variant clloss__pick_variant(clloss_context *ctx, int family,
                                     size_t rows, size_t classes,
                                     clloss_dtype in_type,
                                     clloss__tune_run run);

/* Forgets the process's variant choices (tests). */
void clloss__tune_forget(void);
/* Elements (rows x classes) of every timed or warm-up run that tune.c's
 * measurements have made in the process (tests: the cost of measuring). */
size_t clloss__tune_measured_elements(void);
/* Vector width of explicit loads for a storage type on this device. */
int clloss__vector_width(const clloss_context *ctx, clloss_dtype type);
/* How many iterations of its main loops a work-item of one kernel may run
 * on ctx's device: SIZE_MAX, or half its loop limit (the rest for the
 * kernel's short loops: reductions, tails, the loop over rows). */
size_t clloss__loop_budget(const clloss_context *ctx);
/* Elements per loop iteration of a work-item of the one-group kernels
 * finish_sum and class_targets (kernels/reduce.cl's REDUCE_UNROLL). */
#define CLLOSS__REDUCE_UNROLL 16
/* CLLOSS_SUCCESS when one work-group of `local` work-items can sum `count`
 * elements within ctx's loop budget; else CLLOSS_UNSUPPORTED, with a
 * detail. */
clloss_status clloss__check_one_group(clloss_context *ctx, size_t count,
                                      size_t local);
/* Local size for kernels whose work-items each own a row or a chunk. */
size_t clloss__item_local_size(const clloss_context *ctx, size_t items,
                               size_t kernel_max);
size_t clloss__group_local_size(const clloss_context *ctx, size_t kernel_max);

#endif
