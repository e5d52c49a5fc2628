/* clloss.h - loss functions and their gradients on any OpenCL 1.2 device.
 *
 * The one public header of clloss: a symbol not declared here is not API.
 * Semantics are PyTorch's torch.nn.functional (same names, options and
 * defaults); docs/LOSSES.md gives every formula and gradient. How clloss
 * chooses kernels, its accuracy derivation and performance: docs/, README.
 *
 * Ownership -----------------------------------------------------------------
 * The caller owns its cl_context, cl_device_id, cl_command_queue, every input
 * and output cl_mem, and every cl_event a call returns through `event`
 * (release it with clReleaseEvent). clloss retains the cl_context and
 * cl_device_id given to clloss_context_create until clloss_context_release,
 * and frees only what it made: programs, kernels, its own command queue, the
 * reduction scratch and the host-pointer calls' pooled buffers, which grow to
 * the largest call and are kept until the release (scratch sizes:
 * docs/variants.md). clloss never calls abort() or exit() and never prints.
 *
 * Threads -------------------------------------------------------------------
 * - One context per thread: contexts used by different threads at the same
 *   time are independent, also on one device and on one cl_context.
 * - One context shared by several threads: allowed when the caller's own
 *   lock makes the calls on it one at a time, including reading its
 *   strings (clloss_context_error_detail, _build_log, _last_variant: they
 *   change with its next call) and clloss_context_release, which comes
 *   after every other call.
 * - Locked by clloss, so that any thread may use them at any time:
 *   clloss_device_list, clloss_device_select, context creation, the
 *   process's table of variant choices, and the cache folder, which
 *   processes may share too (docs/threads.md).
 * - Functions without a context (the CPU reference, status and dtype
 *   names, the loss counts) are reentrant.
 * - Environment variables are read when a context is created, also by the
 *   tuning thread of a GPU context: no setenv while either may run.
 * Calls on one context run one after the other on the device, whichever queues
 * they are given (the first kernel of a call on another queue waits for the
 * previous call's last: they share the context's scratch), so a call must not
 * wait, through its wait list, for a later call. For overlapping work on
 * several queues, use one context per queue.
 *
 * Status codes --------------------------------------------------------------
 * Every call returns a clloss_status, 0 on success. OpenCL errors pass
 * through with their own negative codes (extension codes such as
 * CL_PLATFORM_NOT_FOUND_KHR included); clloss's own are 1001 and up.
 * clloss_context_error_detail() gives a sentence about the last failure of
 * a context (for example which buffer was too small).
 *
 * Names ---------------------------------------------------------------------
 * clloss_<object>_<verb> (clloss_device_list, clloss_context_create), or a
 * loss's PyTorch name and a suffix (clloss_nll_loss_host, _output_count);
 * `weight` is PyTorch's (class or element weights, below); a linear layer's
 * W is linear_weight, its gradient grad_linear_weight.
 */
#ifndef CLLOSS_H
#define CLLOSS_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#ifdef __APPLE__
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLLOSS_VERSION_MAJOR 0
#define CLLOSS_VERSION_MINOR 2
#define CLLOSS_VERSION_PATCH 0
#define CLLOSS_VERSION_STRING "0.2.0"

#if defined(_WIN32) && defined(CLLOSS_SHARED_BUILD)
#define CLLOSS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CLLOSS_API __attribute__((visibility("default")))
#else
#define CLLOSS_API
#endif

/* --- Status codes: one list gives the enum, the names and messages -------- */
#define CLLOSS_STATUS_MAP(X)                                                   \
  X(SUCCESS, 0, "success")                                                     \
  X(INVALID_ARGUMENT, 1001, "invalid argument")                                \
  X(BUFFER_TOO_SMALL, 1002, "a buffer is smaller than the call needs")         \
  X(INVALID_TARGET, 1003,                                                      \
    "a target is outside [0, C) and is not ignore_index")                      \
  X(UNSUPPORTED, 1004, "not supported by this device")                         \
  X(BUILD_FAILURE, 1005, "the OpenCL program failed to build")                 \
  X(OUT_OF_DEVICE_MEMORY, 1006, "out of device memory")                        \
  X(OUT_OF_HOST_MEMORY, 1007, "out of host memory")                            \
  X(NO_DEVICE, 1008, "no OpenCL device found")                                 \
  X(DEVICE_NOT_FOUND, 1009, "no OpenCL device matches the selection")          \
  X(COLLECTIVE_FAILURE, 1010,                                                  \
    "a call across processes failed on another process or in transport")

typedef enum clloss_status {
#define CLLOSS_STATUS_ENUM_(name, code, msg) CLLOSS_##name = code,
  CLLOSS_STATUS_MAP(CLLOSS_STATUS_ENUM_)
#undef CLLOSS_STATUS_ENUM_
  /* Not a status: makes the type signed, so that `s < 0` (an OpenCL
   * error) means what it says. */
  CLLOSS__STATUS_SIGNED = -2147483647 - 1
} clloss_status;

/* "CLLOSS_INVALID_TARGET", "CL_OUT_OF_RESOURCES", ...; never NULL. */
CLLOSS_API const char *clloss_status_name(int status);
/* A sentence describing the status; never NULL. */
CLLOSS_API const char *clloss_status_string(int status);

/* --- Types shared by all losses ------------------------------------------- */
typedef enum clloss_reduction {
  CLLOSS_REDUCTION_MEAN = 0, /* PyTorch's default */
  CLLOSS_REDUCTION_SUM = 1,
  CLLOSS_REDUCTION_NONE = 2,
  CLLOSS_REDUCTION_BATCHMEAN = 3 /* kl_div only: sum / size of dimension 0 */
} clloss_reduction;

/* Storage types. Arithmetic is float32 or wider whatever the storage. */
typedef enum clloss_dtype {
  CLLOSS_FLOAT32 = 0,
  CLLOSS_FLOAT16 = 1,  /* IEEE half, core OpenCL 1.2 via vload_half */
  CLLOSS_BFLOAT16 = 2, /* 16-bit words: the upper half of a float32 */
  CLLOSS_FLOAT64 = 3,  /* only where the device has fp64 */
  CLLOSS_INT32 = 4,    /* class-index targets */
  CLLOSS_INT64 = 5     /* class-index targets (PyTorch's default) */
} clloss_dtype;

/* Size in bytes of one element of `dtype`; 0 for an unknown value. */
CLLOSS_API size_t clloss_dtype_size(clloss_dtype dtype);
/* "float32", "int64", ...; NULL for an unknown value. */
CLLOSS_API const char *clloss_dtype_name(clloss_dtype dtype);
CLLOSS_API const char *clloss_reduction_name(clloss_reduction reduction);

/* A device buffer plus an offset counted in elements of its own type. A NULL
 * mem means "not given" where an argument is optional. */
typedef struct clloss_buffer {
  cl_mem mem;
  size_t offset;
} clloss_buffer;

/* An optional argument that is not given, and a whole buffer from 0. */
#ifdef __cplusplus
#define CLLOSS_BUFFER_NONE (clloss_buffer{NULL, 0})
#define CLLOSS_BUFFER(mem) (clloss_buffer{(mem), 0})
#else
#define CLLOSS_BUFFER_NONE ((clloss_buffer){NULL, 0})
#define CLLOSS_BUFFER(mem) ((clloss_buffer){(mem), 0})
#endif

/* Descriptors: every call takes its shape and options in a struct whose first
 * field, struct_size, is sizeof the struct as the caller's header declared it;
 * initialise each with its *_DESC_INIT macro (C and C++), then set fields by
 * name. Fields are only ever appended: those past an older caller's
 * struct_size take their defaults; a struct_size below the first release's is
 * CLLOSS_INVALID_ARGUMENT; a larger one is accepted when the fields this
 * library does not know are zero, else CLLOSS_UNSUPPORTED. */

/* What a call writes into the gradient's (softmax: the output's) padding,
 * the columns [C, row_stride) of each row. */
typedef enum clloss_padding {
  CLLOSS_PADDING_AUTO = 0, /* zeros when the output is the input (in
                              place), where the padding would otherwise
                              keep the input's values; else untouched */
  CLLOSS_PADDING_ZERO = 1, /* zeros */
  CLLOSS_PADDING_KEEP = 2  /* untouched */
} clloss_padding;

/* --- Devices and contexts ------------------------------------------------- */
typedef struct clloss_device_info {
  cl_platform_id platform;
  cl_device_id device;
  char name[256];
  char vendor[256];
  char platform_name[256];
  char driver_version[128];
  char opencl_c_version[128]; /* CL_DEVICE_OPENCL_C_VERSION as reported */
  int opencl_c_major, opencl_c_minor;
  cl_device_type type;
  int has_fp64, has_fp16;
  size_t max_work_group_size;
  cl_ulong local_mem_size, global_mem_size, max_alloc_size;
  cl_uint compute_units;
} clloss_device_info;

/* Lists every device of every platform, in the order whose indices
 * CLLOSS_DEVICE and `clloss devices` use. Writes at most `capacity` entries
 * (capacity 0 with infos NULL only counts); `*count` receives the total.
 * No device at all: CLLOSS_NO_DEVICE with *count = 0. */
CLLOSS_API clloss_status clloss_device_list(clloss_device_info *infos,
                                            size_t capacity, size_t *count);

/* Chooses a device: `selector` is an index as clloss_device_list numbers
 * them, or a case-insensitive substring of the device or platform name;
 * NULL or "" uses the environment variable CLLOSS_DEVICE, and when that is
 * unset too, the first GPU, else the first device of any platform. `info`
 * and `*index` (each may be NULL) receive the chosen device and its index. */
CLLOSS_API clloss_status clloss_device_select(const char *selector,
                                              clloss_device_info *info,
                                              size_t *index);

typedef struct clloss_context clloss_context;

/* Creates a context on the caller's OpenCL context and device. Both are
 * retained (never owned). Creating one builds, runs and measures nothing.
 * Kernels are built on the first call that needs them (per loss, storage type
 * and variant: only the variant that runs) and kept for the context's
 * lifetime; a build failure is that call's CLLOSS_BUILD_FAILURE, with the log
 * in clloss_context_build_log. Compiled binaries are cached on disk where they
 * pay back, each file checked before the driver sees it (README, section
 * "Devices": "Program and tuning cache", "Trust rule"). An unknown
 * CLLOSS_VARIANT, a CLLOSS_TUNE or CLLOSS_CACHE that is not a switch (on, 1,
 * yes, true, off, 0, no, false, any case) and a CLLOSS_KERNEL_DIR that is not
 * a folder are CLLOSS_INVALID_ARGUMENT; clloss_context_error_detail(NULL)
 * names it. */
CLLOSS_API clloss_status clloss_context_create(cl_context cl_ctx,
                                               cl_device_id device,
                                               clloss_context **out);

/* Creates a context, its own cl_context and command queue, on the device that
 * clloss_device_select(selector) picks. */
CLLOSS_API clloss_status clloss_context_create_default(const char *selector,
                                                       clloss_context **out);

/* Frees everything the context made and releases what it retained. NULL is a
 * harmless no-op. First writes the binaries the context compiled to the
 * cache (here, not in a call: a driver may compile again to produce one)
 * and waits for a variant build on its own thread (docs/variants.md). */
CLLOSS_API void clloss_context_release(clloss_context *ctx);

CLLOSS_API cl_context clloss_context_cl_context(const clloss_context *ctx);
CLLOSS_API cl_device_id clloss_context_device(const clloss_context *ctx);
/* The context's own in-order queue (used by the host-pointer calls); owned by
 * the context. Callers of clloss_context_create_default may use it. */
CLLOSS_API cl_command_queue clloss_context_queue(const clloss_context *ctx);
CLLOSS_API const clloss_device_info *
clloss_context_device_info(const clloss_context *ctx);
/* The log of the last program build (empty when none failed); owned by ctx. */
CLLOSS_API const char *clloss_context_build_log(const clloss_context *ctx);
/* A sentence about the last failed call on ctx, "" after a success. NULL
 * ctx: why the calling thread's last clloss_context_create or
 * _create_default failed (each thread has its own, as errno; for example
 * which environment variable's value is refused), "" after one succeeded. */
CLLOSS_API const char *clloss_context_error_detail(const clloss_context *ctx);
/* For layers built on clloss (clloss_mpi.h, a caller's own transport):
 * records `detail` (NULL: "") as ctx's error detail, as clloss records its
 * own failures, and returns `status` (NULL ctx: only returns it). */
CLLOSS_API clloss_status clloss_context_fail(clloss_context *ctx,
                                             clloss_status status,
                                             const char *detail);

/* Forces the kernel variant of the calls on ctx: "item", "group", "lanes" or
 * "split"; "auto", NULL or "" restore the default, which starts from a
 * heuristic and may switch a shape class once, for every context of the
 * process on the device, to a variant it measured 20% faster (what each
 * variant does and how auto chooses: docs/variants.md). CLLOSS_VARIANT does
 * the same for contexts created while it is set. Where a loss or device cannot
 * run the variant, another runs (clloss_context_last_variant says which).
 * Results agree within rounding whichever variant runs; each is deterministic,
 * so identical calls give bit-identical results except across auto's one
 * switch (force a variant, or CLLOSS_TUNE=off, to exclude it). Unknown name:
 * CLLOSS_INVALID_ARGUMENT. */
CLLOSS_API clloss_status clloss_context_set_variant(clloss_context *ctx,
                                                    const char *variant);
/* The variant the last successful call on ctx ran ("item", ...), or "". */
CLLOSS_API const char *clloss_context_last_variant(const clloss_context *ctx);

/* Device-side error word. Device-buffer calls check their targets on the
 * device (stopping would need a host round trip): a row whose target is
 * neither in [0, C) nor ignore_index reads and writes nothing out of bounds,
 * gets NaN as its loss and gradient, and is recorded in an error word of the
 * context. This call waits for `queue` (NULL: the context's own), returns
 * CLLOSS_INVALID_TARGET if any call since the last check saw such a row, with
 * the lowest such row index in *bad_row (may be NULL; saturated at 2^32 - 1),
 * and clears the word. */
CLLOSS_API clloss_status clloss_check_device_errors(clloss_context *ctx,
                                                    cl_command_queue queue,
                                                    uint64_t *bad_row);

/* --- cross_entropy ----------------------------------------------------------
 *   lse_i  = log sum_c exp(x_ic)
 *   loss_i = (1-e) w[t_i] (lse_i - x_{i,t_i}) + (e/C) sum_c w_c (lse_i - x_ic)
 *            (+ z lse_i^2) for rows whose target is not ignore_index, else 0
 *   none: loss[N]; sum: sum_i loss_i; mean: sum_i loss_i / D, with
 *         D = sum_valid w[t_i] (normalizer instead when it is > 0)
 *   dL/dx_ij = s_i [(1-e) w[t_i] (p_ij - [j=t_i]) + (e/C)(W p_ij - w_j)
 *              (+ 2 z lse_i p_ij)] for valid rows, else 0; W = sum_c w_c
 *   s_i = grad_scale * h_i, h_i = g (sum), g / D (mean) or g_i (none); g is
 *         grad_output, 1 when not given
 * With probability targets y[N, C] (target_type a float type), y' =
 * (1-e) y + e/C: loss_i = sum_c w_c y'_ic (lse_i - x_ic), mean / N, and
 * dL/dx_ij = s_i [(sum_c w_c y'_ic) p_ij - w_j y'_ij].
 * softcap c > 0: x -> c tanh(x / c) first, the gradient times
 * 1 - tanh^2(x / c).
 *
 * Loss and gradient are exact to about (C/2 + ln C + 460) 2^-24 of their
 * terms' size at any logit scale, in every variant, on any conformant
 * device (class targets; docs/error-bounds.md, README "Error bounds").
 * Layout: x [N, C] with rows `row_stride` elements apart, the gradient
 * alike (padded vocabularies such as llm.c's: README, "Padded layouts
 * (llm.c)"). NaN propagates as in PyTorch; a -inf logit is a class of
 * probability 0. All rows ignored with mean: loss NaN, gradient 0.
 * Training-loop patterns: README, "Training loops".
 */
typedef struct clloss_cross_entropy_desc {
  size_t struct_size;         /* sizeof(clloss_cross_entropy_desc) */
  size_t rows;                /* N >= 0 */
  size_t classes;             /* C >= 1 */
  size_t row_stride;          /* elements between rows; 0 means C */
  clloss_dtype input_type;    /* input and gradient storage (float32) */
  clloss_dtype target_type;   /* INT64 / INT32 indices, or the input_type
                                 for probability targets [N, C] (INT64) */
  clloss_reduction reduction; /* MEAN, SUM or NONE (MEAN) */
  int64_t ignore_index;       /* -100 */
  float label_smoothing;      /* in [0, 1] (0) */
  float z_loss;               /* >= 0; adds z lse^2 per valid row (0) */
  float softcap;              /* > 0: x -> c tanh(x / c) first; 0 off (0) */
  float normalizer;           /* > 0: mean divides by this instead (0) */
  float grad_scale;           /* multiplies the gradient, any reduction (1) */
  int accumulate;             /* 1: grad_input += the gradient; never in
                                 place (0) */
  clloss_padding padding;     /* the gradient's columns [C, row_stride)
                                 (AUTO: zeros in place) */
} clloss_cross_entropy_desc;

#define CLLOSS_CROSS_ENTROPY_DESC_INIT                                         \
  {                                                                            \
    sizeof(clloss_cross_entropy_desc), 0, 0, 0, CLLOSS_FLOAT32, CLLOSS_INT64,  \
        CLLOSS_REDUCTION_MEAN, -100, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0,          \
        CLLOSS_PADDING_AUTO                                                    \
  }

/* --- cross_entropy over a split vocabulary: shard statistics ----------------
 * With the classes split into blocks (one per device or process, or the fused
 * linear layer's vocabulary blocks), each block computes a record of partial
 * statistics per row, the blocks' records are combined, and each block
 * finishes its gradient (and the rows' losses) from the combination:
 *   partial(block k) -> combine over k (any order, any grouping) -> finish
 * For any split this is clloss_cross_entropy's loss and gradient up to
 * rounding, with every option of the descriptor (class indices are global;
 * each block passes its slice of the weights and probability targets).
 * desc->classes is the whole V; desc->row_stride is that of the block's own
 * input (0: the block's width). A record holds, over the block's classes,
 * with v the (capped) logits and a_c = w_c (label smoothing) or w_c y'_c
 * (probability targets), else 0:
 *   max            max v (-FLT_MAX, -DBL_MAX for float64, when empty)
 *   sumexp         sum exp(v - max)
 *   sum_a          sum a_c
 *   sum_ad         sum a_c (max - v_c), >= 0 for nonnegative weights
 *   target_logit   v at the row's target if it is in the block, else 0
 *   target_weight  w at the row's target if it is in the block, else 0
 * in the loss type: clloss_ce_stats (float32), clloss_ce_stats64 (float64
 * input). On the device a record buffer's offset counts records.
 */
typedef struct clloss_ce_stats {
  float max, sumexp, sum_a, sum_ad, target_logit, target_weight;
} clloss_ce_stats;
typedef struct clloss_ce_stats64 {
  double max, sumexp, sum_a, sum_ad, target_logit, target_weight;
} clloss_ce_stats64;

/* The block [class_offset, class_offset + classes) of desc->classes. */
typedef struct clloss_shard {
  size_t class_offset;
  size_t classes; /* >= 1 */
} clloss_shard;

/* The combine (the online-softmax merge) on the host: inout[i] =
 * combine(inout[i], in[i]) for `count` records. Commutative (bitwise),
 * associative up to rounding; plain C, fit for MPI_Op_create. */
CLLOSS_API void clloss_ce_stats_combine(clloss_ce_stats *inout,
                                        const clloss_ce_stats *in,
                                        size_t count);
CLLOSS_API void clloss_ce_stats64_combine(clloss_ce_stats64 *inout,
                                          const clloss_ce_stats64 *in,
                                          size_t count);

/* Partial statistics of one block: input [N, shard->classes] (rows
 * desc->row_stride apart), target (class indices [N], global; or the block's
 * probabilities [N, shard->classes]), weight (the block's [shard->classes],
 * optional) -> stats [N records]. stats sharing a byte with input, target or
 * weight is CLLOSS_INVALID_ARGUMENT. */
CLLOSS_API clloss_status clloss_cross_entropy_partial(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer stats, cl_uint num_events, const cl_event *wait_list,
    cl_event *event);

/* The combine on the device: inout[i] = combine(inout[i], in[i]) for
 * `rows` records of the loss type of `input_type` (a float type, else
 * CLLOSS_INVALID_ARGUMENT). */
CLLOSS_API clloss_status clloss_cross_entropy_combine(
    clloss_context *ctx, cl_command_queue queue, size_t rows,
    clloss_dtype input_type, clloss_buffer inout, clloss_buffer in,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* The finish of one block from the combined records `stats` [N]: the
 * rows' losses into `loss` (as clloss_cross_entropy: the same on every
 * block) and the block's gradient into grad_input [N, shard->classes]
 * (rows desc->row_stride apart; may be the input, in place). Either may be
 * omitted, not both; loss sharing a byte with any other operand, or
 * grad_input with anything but its input, is CLLOSS_INVALID_ARGUMENT. A
 * target outside [0, V), not ignore_index: NaN and the error word. */
CLLOSS_API clloss_status clloss_cross_entropy_finish(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, const clloss_shard *shard,
    clloss_buffer input, clloss_buffer target, clloss_buffer weight,
    clloss_buffer grad_output, clloss_buffer stats, clloss_buffer loss,
    clloss_buffer grad_input, cl_uint num_events, const cl_event *wait_list,
    cl_event *event);

/* nll_loss: input log-probabilities x[N, C];
 *   loss_i = -w[t_i] x_{i,t_i} for valid rows; mean / sum_valid w[t_i]
 *   dL/dx_ij = -s_i w[t_i] [j = t_i]                                       */
typedef struct clloss_nll_loss_desc {
  size_t struct_size; /* sizeof(clloss_nll_loss_desc) */
  size_t rows, classes, row_stride;
  clloss_dtype input_type;    /* input and gradient storage (float32) */
  clloss_dtype target_type;   /* INT64 or INT32 (INT64) */
  clloss_reduction reduction; /* MEAN */
  int64_t ignore_index;       /* -100 */
  float grad_scale;           /* multiplies the gradient (1) */
  int accumulate;             /* 1: grad_input += the gradient (0) */
  clloss_padding padding;     /* as cross_entropy's (AUTO) */
} clloss_nll_loss_desc;

#define CLLOSS_NLL_LOSS_DESC_INIT                                              \
  {                                                                            \
    sizeof(clloss_nll_loss_desc), 0, 0, 0, CLLOSS_FLOAT32, CLLOSS_INT64,       \
        CLLOSS_REDUCTION_MEAN, -100, 1.0f, 0, CLLOSS_PADDING_AUTO              \
  }

/* softmax: p_ij = exp(x_ij - lse_i) over the C classes of each row (rows
 * row_stride apart, the output alike), for sampling and evaluation, with
 * cross_entropy's kernels (same variants, storage types and accuracy at
 * any logit scale). The output may be the input (in place). */
typedef struct clloss_softmax_desc {
  size_t struct_size; /* sizeof(clloss_softmax_desc) */
  size_t rows, classes, row_stride;
  clloss_dtype input_type; /* input and output storage (float32) */
  clloss_padding padding;  /* the output's columns [C, row_stride) (AUTO) */
} clloss_softmax_desc;

#define CLLOSS_SOFTMAX_DESC_INIT                                               \
  { sizeof(clloss_softmax_desc), 0, 0, 0, CLLOSS_FLOAT32, CLLOSS_PADDING_AUTO }

/* --- Element-wise losses ----------------------------------------------------
 * Input x and target y of the same shape, `count` elements, d = x - y.
 * Reductions: none (count values), sum, mean (/count); kl_div batchmean
 * divides by `batch` (the size of dimension 0).
 *   mse_loss   d^2; grad 2d
 *   l1_loss    |d|; grad sign(d), sign(0) = 0
 *   huber_loss 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)
 *   smooth_l1  0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta (beta 0: l1)
 *   binary_cross_entropy_with_logits: w [(1 - y) x + l (log1p(exp(-|x|)) +
 *              max(-x, 0))], l = 1 + (pos_weight - 1) y; grad
 *              w [l sigmoid(x) - pos_weight y]; weight (pos_weight alike):
 *              weight_count elements, the last dimension (broadcast: element
 *              i uses w[i % weight_count]) or count
 *   kl_div     x = log q, y = p: y (log y - x), 0 where y = 0, grad -y;
 *              log_target (y = log p): e^y (y - x), grad -e^y
 */
typedef enum clloss_pointwise_loss {
  CLLOSS_MSE_LOSS = 0,
  CLLOSS_L1_LOSS = 1,
  CLLOSS_HUBER_LOSS = 2,
  CLLOSS_SMOOTH_L1_LOSS = 3,
  CLLOSS_BCE_WITH_LOGITS = 4,
  CLLOSS_KL_DIV = 5
} clloss_pointwise_loss;

typedef struct clloss_pointwise_desc {
  size_t struct_size; /* sizeof(clloss_pointwise_desc) */
  clloss_pointwise_loss loss;
  size_t count;               /* elements of input and target */
  clloss_dtype input_type;    /* input, target and gradient storage (f32) */
  clloss_reduction reduction; /* MEAN */
  float delta;                /* huber_loss: > 0 (1) */
  float beta;                 /* smooth_l1_loss: >= 0 (1) */
  int log_target;             /* kl_div: target given as log p (0) */
  size_t batch;               /* kl_div batchmean: size of dimension 0 */
  size_t weight_count;        /* BCE weight elements, when given: the last
                                 dimension (broadcast) or count */
  size_t pos_weight_count;    /* BCE pos_weight elements, likewise */
  float grad_scale;           /* multiplies the gradient (1) */
  int accumulate;             /* 1: grad_input += the gradient; never in
                                 place (0) */
} clloss_pointwise_desc;

#define CLLOSS_POINTWISE_DESC_INIT(which)                                      \
  {                                                                            \
    sizeof(clloss_pointwise_desc), (which), 0, CLLOSS_FLOAT32,                 \
        CLLOSS_REDUCTION_MEAN, 1.0f, 1.0f, 0, 0, 0, 0, 1.0f, 0                 \
  }

/* Shapes and types of outputs, for callers sizing their buffers: the
 * number of loss values (1 for sum and mean), and the type of the loss,
 * weight and grad_output (float32; float64 for float64 input). */
CLLOSS_API size_t
clloss_cross_entropy_output_count(const clloss_cross_entropy_desc *desc);
CLLOSS_API size_t
clloss_nll_loss_output_count(const clloss_nll_loss_desc *desc);
CLLOSS_API size_t
clloss_pointwise_output_count(const clloss_pointwise_desc *desc);
CLLOSS_API clloss_dtype clloss_loss_dtype(clloss_dtype input_type);

/* Arguments of every call: `loss` is a float32 scalar (float64 for float64
 * input) for sum and mean, one value per row (cross_entropy, nll_loss) or per
 * element for none. `grad_output` is the upstream gradient g: one value for
 * sum and mean, one per loss output for none, of the loss output's type; not
 * given means 1. `weight` is the class weights w[C] (cross_entropy, nll_loss)
 * or the BCE weight, float32 (float64 for float64 input); not given means
 * all 1. `pos_weight` is BCE's; not given means 1. Either output may be
 * omitted (not given / NULL), not both.
 * Device-buffer calls enqueue on `queue` (of the context's cl_context and
 * device, else CLLOSS_INVALID_ARGUMENT, as is a cl_mem of another cl_context)
 * after `wait_list`, and return in `*event` (when not NULL) an event that
 * completes with the last kernel; the caller releases it. They do not wait
 * for the device, except a call that builds a program (the first of its
 * kind) or that measures its shape class's variants. The same call twice
 * gives bit-identical results. Input and gradient may be the same buffer and
 * offset (in place). */
CLLOSS_API clloss_status clloss_cross_entropy(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_cross_entropy_desc *desc, clloss_buffer input,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input, cl_uint num_events,
    const cl_event *wait_list, cl_event *event);
CLLOSS_API clloss_status clloss_nll_loss(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_nll_loss_desc *desc, clloss_buffer input, clloss_buffer target,
    clloss_buffer weight, clloss_buffer grad_output, clloss_buffer loss,
    clloss_buffer grad_input, cl_uint num_events, const cl_event *wait_list,
    cl_event *event);
CLLOSS_API clloss_status clloss_pointwise(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_pointwise_desc *desc, clloss_buffer input,
    clloss_buffer target, clloss_buffer weight, clloss_buffer pos_weight,
    clloss_buffer grad_output, clloss_buffer loss, clloss_buffer grad_input,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);
CLLOSS_API clloss_status clloss_softmax(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_softmax_desc *desc, clloss_buffer input, clloss_buffer output,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* Host-pointer calls: the same losses on host arrays, through device
 * buffers the context pools. They return when the results are in host
 * memory and the device no longer reads the caller's arrays (whatever the
 * outcome); a bad target is CLLOSS_INVALID_TARGET before any output is
 * touched. */
CLLOSS_API clloss_status clloss_cross_entropy_host(
    clloss_context *ctx, const clloss_cross_entropy_desc *desc,
    const void *input, const void *target, const void *weight,
    const void *grad_output, void *loss, void *grad_input);
CLLOSS_API clloss_status
clloss_nll_loss_host(clloss_context *ctx, const clloss_nll_loss_desc *desc,
                     const void *input, const void *target, const void *weight,
                     const void *grad_output, void *loss, void *grad_input);
CLLOSS_API clloss_status clloss_pointwise_host(
    clloss_context *ctx, const clloss_pointwise_desc *desc, const void *input,
    const void *target, const void *weight, const void *pos_weight,
    const void *grad_output, void *loss, void *grad_input);
CLLOSS_API clloss_status clloss_softmax_host(clloss_context *ctx,
                                             const clloss_softmax_desc *desc,
                                             const void *input, void *output);

/* --- linear_cross_entropy ---------------------------------------------------
 * A classifier's last linear layer and its cross-entropy in one call, never
 * holding the N x V logits.
 *   z    = X W^T + b       X [N, H], W [V, H] (torch.nn.Linear's layout), b [V]
 *   loss = cross_entropy(z, target)   with every option of `ce` (see above)
 *   dz   = d loss / dz                (upstream gradient as cross_entropy's)
 *   dX   = dz W            [N, H]
 *   dW   = dz^T X          [V, H]  (added with accumulate_grad_linear_weight)
 *   db   = sum_i dz_i      [V]     (added with accumulate_grad_bias)
 * vocab_block 0: row chunks, each chunk's logits [chunk_rows, V] in the
 * workspace; > 0: vocabulary blocks, the rows' statistics merged block by
 * block (the shard calls above), no chunk x V tensor, for two forward GEMMs
 * instead of one. chunk_rows 0 chooses the chunk (from workspace_limit when
 * given). Storage ce.input_type (X, W, b, dX, dW, db, probability targets):
 * float32, float64 (devices with fp64), float16 and bfloat16 (computed in
 * float32, dW and db rounded once at the end); class weights, grad_output
 * and loss float32 (float64 for float64). In detail, with related work:
 * docs/linear-cross-entropy.md. Results equal cross_entropy on the full
 * logits within float32 rounding of the GEMMs (the mean divides by the
 * weight sum over all N rows); the same call twice gives bit-identical
 * results. Needs CLBlast (else every linear_cross_entropy call is
 * CLLOSS_UNSUPPORTED), which keeps its programs, and a reference to the
 * cl_context, until CLBlastClearCache(). */
typedef struct clloss_linear_cross_entropy_desc {
  size_t struct_size;     /* sizeof(clloss_linear_cross_entropy_desc) */
  size_t hidden;          /* H >= 1 */
  size_t chunk_rows;      /* rows per chunk; 0 chooses (0) */
  size_t vocab_block;     /* classes per block; 0: row chunks (0) */
  size_t workspace_limit; /* bytes the automatic chunk aims at; 0
                             chooses (0) */
  int accumulate_grad_linear_weight; /* 1: dW is added to grad_linear_weight (0)
                                      */
  int accumulate_grad_bias;     /* 1: db is added to grad_linear_bias (0) */
  size_t reserved[4];           /* 0: room for fields before `ce` */
  clloss_cross_entropy_desc ce; /* N, V, storage, targets and every option
                                   (grad_scale: dX, dW and db; accumulate:
                                   dX += ); row_stride 0. Last: it grows */
} clloss_linear_cross_entropy_desc;

#define CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT                                  \
  {                                                                            \
    sizeof(clloss_linear_cross_entropy_desc), 0, 0, 0, 0, 0, 0, {0, 0, 0, 0},  \
        CLLOSS_CROSS_ENTROPY_DESC_INIT                                         \
  }

/* Bytes of device workspace beyond the arguments, CLBlast's temporary buffer
 * included, that a call with `desc` and these outputs (nonzero: wanted)
 * allocates on ctx for buffers at offset 0 (other offsets can make CLBlast
 * copy more), and the chunk it chooses in *chunk_rows; the context keeps the
 * workspace for later calls, as its scratch. Either pointer may be NULL, not
 * both; with bytes NULL only the chunk is computed (no query of CLBlast). More
 * than SIZE_MAX bytes: CLLOSS_OUT_OF_DEVICE_MEMORY (nothing written), never a
 * wrapped size. */
CLLOSS_API clloss_status clloss_linear_cross_entropy_workspace_size(
    clloss_context *ctx, const clloss_linear_cross_entropy_desc *desc,
    int want_grad_input, int want_grad_weight, int want_grad_bias,
    size_t *bytes, size_t *chunk_rows);

/* Device buffers, on the caller's queue after wait_list, without host
 * synchronisation; CLBlast's kernels follow ours on the same queue (behind a
 * barrier on an out-of-order queue); `*event` completes with the last command.
 * X, linear_weight W and target are required; linear_bias, weight (class
 * weights), grad_output and every output may be CLLOSS_BUFFER_NONE: an output
 * not given is not computed (loss only: no backward GEMMs), but one must be
 * given. Outputs must not overlap inputs. Bad targets: as cross_entropy (NaN
 * rows, the error word with the row's index in X). */
CLLOSS_API clloss_status clloss_linear_cross_entropy(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, clloss_buffer input,
    clloss_buffer linear_weight, clloss_buffer linear_bias,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input,
    clloss_buffer grad_linear_weight, clloss_buffer grad_linear_bias,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* Host arrays, through buffers the context pools; returns when the results
 * are in host memory. NULL outputs are not computed; bad targets give
 * CLLOSS_INVALID_TARGET before any output is touched. */
CLLOSS_API clloss_status clloss_linear_cross_entropy_host(
    clloss_context *ctx, const clloss_linear_cross_entropy_desc *desc,
    const void *input, const void *linear_weight, const void *linear_bias,
    const void *target, const void *weight, const void *grad_output, void *loss,
    void *grad_input, void *grad_linear_weight, void *grad_linear_bias);

/* linear_cross_entropy over a split vocabulary (vocabulary parallelism): this
 * device or process holds the rows [shard->class_offset, + shard->classes) of
 * W, of b and of the class weights (classes 0: none); the shards of all
 * participants tile the V = desc->ce.classes classes. Each computes its logits
 * block by block (vocab_block; 0: its whole shard as one block, computed once)
 * and the shard statistics (above) of each chunk of rows, which `exchange`
 * combines with the other shards' (an all-reduce with
 * clloss_ce_stats_combine); from the combined records each finishes its own
 * block's gradient. Inputs: X [N, H] whole; linear_weight [shard classes, H];
 * linear_bias and weight its entries; target: class indices [N] (global, the
 * same everywhere) or the shard's probabilities [N, shard classes]. Results:
 * loss, the whole problem's (the same on every shard of the same kind of
 * device: the combined records are); grad_input, THIS shard's part of dX, dz_r
 * W_r [N, H], whose sum over the shards is dX (added with ce.accumulate);
 * grad_linear_weight its rows of dW [shard classes, H]; grad_linear_bias its
 * entries of db.
 * exchange->exchange(user, kind, data, count) runs on the host (the call
 * waits for it), in a sequence that depends only on N, V and chunk_rows:
 * first CLLOSS_EXCHANGE_SUM, count 1: the shard's part of the mean's weight
 * sum (float; double for float64), to be replaced by the sum over the shards;
 * then per chunk CLLOSS_EXCHANGE_RECORDS, count = its rows: records
 * (clloss_ce_stats; _stats64) to be replaced by their combine over the
 * shards. Anything but CLLOSS_SUCCESS ends the call with that status (the
 * exchange sets the detail: clloss_context_fail). chunk_rows 0 chooses the
 * chunk from the whole problem (as clloss_linear_cross_entropy with every
 * gradient wanted), so that every shard makes the same exchanges. An empty
 * shard (classes 0) joins the exchanges with empty records, computes the loss,
 * zeroes grad_input (its part of dX) and has no weight or bias gradient. */
typedef enum clloss_exchange_kind {
  CLLOSS_EXCHANGE_SUM = 0,
  CLLOSS_EXCHANGE_RECORDS = 1
} clloss_exchange_kind;
typedef struct clloss_linear_exchange {
  clloss_status (*exchange)(void *user, clloss_exchange_kind kind, void *data,
                            size_t count);
  void *user;
} clloss_linear_exchange;

CLLOSS_API clloss_status clloss_linear_cross_entropy_shard(
    clloss_context *ctx, cl_command_queue queue,
    const clloss_linear_cross_entropy_desc *desc, const clloss_shard *shard,
    const clloss_linear_exchange *exchange, clloss_buffer input,
    clloss_buffer linear_weight, clloss_buffer linear_bias,
    clloss_buffer target, clloss_buffer weight, clloss_buffer grad_output,
    clloss_buffer loss, clloss_buffer grad_input,
    clloss_buffer grad_linear_weight, clloss_buffer grad_linear_bias,
    cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* Convenience wrappers for the two most common element-wise losses. */
CLLOSS_API clloss_status clloss_mse_loss_host(clloss_context *ctx, size_t count,
                                              clloss_reduction reduction,
                                              const float *input,
                                              const float *target, float *loss,
                                              float *grad_input);
CLLOSS_API clloss_status clloss_l1_loss_host(clloss_context *ctx, size_t count,
                                             clloss_reduction reduction,
                                             const float *input,
                                             const float *target, float *loss,
                                             float *grad_input);

/* --- CPU reference -------------------------------------------------------- */
/* The same descriptors and arguments on host arrays, in plain C with
 * double accumulation. Use it to verify results. */
CLLOSS_API clloss_status clloss_reference_cross_entropy(
    const clloss_cross_entropy_desc *desc, const void *input,
    const void *target, const void *weight, const void *grad_output, void *loss,
    void *grad_input);
CLLOSS_API clloss_status clloss_reference_nll_loss(
    const clloss_nll_loss_desc *desc, const void *input, const void *target,
    const void *weight, const void *grad_output, void *loss, void *grad_input);
CLLOSS_API clloss_status clloss_reference_pointwise(
    const clloss_pointwise_desc *desc, const void *input, const void *target,
    const void *weight, const void *pos_weight, const void *grad_output,
    void *loss, void *grad_input);
CLLOSS_API clloss_status clloss_reference_softmax(
    const clloss_softmax_desc *desc, const void *input, void *output);

/* linear_cross_entropy in double: the logits one row at a time (chunk_rows,
 * vocab_block and workspace_limit of the descriptor are ignored). */
CLLOSS_API clloss_status clloss_reference_linear_cross_entropy(
    const clloss_linear_cross_entropy_desc *desc, const void *input,
    const void *linear_weight, const void *linear_bias, const void *target,
    const void *weight, const void *grad_output, void *loss, void *grad_input,
    void *grad_linear_weight, void *grad_linear_bias);

/* Conversions between the 16-bit storage types and float. */
CLLOSS_API float clloss_half_to_float(uint16_t h);
CLLOSS_API uint16_t clloss_float_to_half(float f); /* round to even */
CLLOSS_API float clloss_bfloat16_to_float(uint16_t b);
CLLOSS_API uint16_t clloss_float_to_bfloat16(float f); /* round to even */

#ifdef __cplusplus
}
#endif
#endif /* CLLOSS_H */
