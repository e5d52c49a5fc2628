/* test_portable.c - small shapes for every loss and option, every storage
 * type, every variant forced, in place and not, with rows starting at every
 * element offset mod 16, against the CPU reference (with canaries after
 * every output). Designed for simulators: ./run oclgrind runs this suite
 * under Oclgrind's race and API checks on the CPU and the GPU paths (about
 * 60 s and 20 s of CPU time there); on PoCL it takes seconds once the
 * programs are built. Its last test checks that the shared context then
 * holds every program configuration that clloss__program_configs lists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support/devcheck.h"
#include "support/testutil.h"

static const clloss_dtype storage[] = {CLLOSS_FLOAT32, CLLOSS_FLOAT16,
                                       CLLOSS_BFLOAT16, CLLOSS_FLOAT64};
#define NSTORAGE (sizeof storage / sizeof *storage)
enum { ROWS = 4, ALIGN = 16 };

/* Whether ctx can run `type` (float64 needs fp64). */
static int runs(clloss_context *ctx, clloss_dtype type) {
  return tu_runs_type(ctx, type);
}

/* Rows of `classes` elements with a stride of 1 mod ALIGN: consecutive rows
 * start at consecutive offsets mod ALIGN, so ROWS rows from offset
 * `first` cover first .. first + ROWS - 1. */
static size_t stride_for(size_t classes) {
  return classes + (ALIGN + 1 - classes % ALIGN) % ALIGN;
}

/* Element offsets of case k: the input starts at step * k mod ALIGN (step
 * ROWS for the row losses, whose ROWS rows then start at ROWS consecutive
 * offsets; 1 for the element-wise losses), so that every ALIGN / step
 * consecutive cases start rows at every offset; the other buffers are
 * shifted from it. */
static void offsets(dc_opts *o, size_t k, size_t step) {
  size_t base = step * k % ALIGN;
  o->off[DC_INPUT] = base;
  o->off[DC_GRAD] = (base + 7) % ALIGN;
  o->off[DC_TARGET] = (base + 3) % ALIGN;
  o->off[DC_WEIGHT] = (base + 1) % ALIGN;
  o->off[DC_POS_WEIGHT] = (base + 5) % ALIGN;
  o->off[DC_GRAD_OUTPUT] = (base + 2) % ALIGN;
  o->off[DC_LOSS] = (base + 9) % ALIGN;
}

/* Runs `check` on case c (case number *k, which it counts) in place and
 * not, under each of `variants` forced, on every device; the first variant
 * also through the host-pointer call. With CLLOSS_TEST_TRACE set, each
 * call's description goes to stderr first, where Oclgrind reports (./run
 * oclgrind attributes each report to the call before it). */
typedef size_t (*check_fn)(size_t dev, const void *c, const dc_opts *o);

static void run_all(check_fn check, const void *c, const char *what,
                    const char *const *variants, size_t nvariants,
                    clloss_dtype type, size_t *k, size_t step) {
  const char *trace = getenv("CLLOSS_TEST_TRACE");
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    if (!runs(ctx, type))
      continue;
    for (int in_place = 0; in_place <= 1; in_place++)
      for (size_t v = 0; v < nvariants; v++) {
        dc_opts o;
        memset(&o, 0, sizeof o);
        o.in_place = in_place;
        o.host = !in_place && v == 0;
        offsets(&o, *k, step);
        if (trace && *trace) {
          fprintf(stderr, "[case] %s; %s, %s, %s, input offset %zu%s\n", what,
                  clloss_dtype_name(type), variants[v],
                  in_place ? "in place" : "not in place", o.off[DC_INPUT],
                  o.host ? ", and the host call" : "");
        }
        CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, variants[v]),
                        CLLOSS_SUCCESS);
        check(dev, c, &o);
      }
    CU_ASSERT_EQUAL(clloss_context_set_variant(ctx, "auto"), CLLOSS_SUCCESS);
  }
  (*k)++;
}

static const char *const row_variants[] = {"item", "group", "split", "lanes"};
/* nll_loss has no split kernel; the element-wise losses neither split
 * nor lanes. */
static const char *const nll_variants[] = {"item", "group", "lanes"};
static const char *const two_variants[] = {"item", "group"};

/* ---- data ---- */
/* dc_make's rows, [ROWS, ld], with row 1's target ignored when `ignore`. */
static void rows_data(dc_data *v, const dc_gen *g, size_t classes, size_t ld,
                      int64_t ignore_index, int ignore, size_t grad_count) {
  dc_make(v, g, ROWS, classes, ld, ignore_index, grad_count);
  if (ignore)
    v->t[1] = ignore_index;
}

/* ---- cross_entropy ---- */
typedef struct ce_opts {
  clloss_dtype target; /* INT32, INT64, or 0 for probabilities */
  clloss_reduction reduction;
  float smoothing, z_loss, softcap;
  int weights, ignore, grad_output;
} ce_opts;

/* Every option, and each index type with and without softcap (so that
 * every cross_entropy program configuration is built). */
static const ce_opts ce_cases[] = {
    {CLLOSS_INT64, CLLOSS_REDUCTION_MEAN, 0, 0, 0, 0, 0, 0},
    {CLLOSS_INT32, CLLOSS_REDUCTION_SUM, 0.1f, 0, 0, 0, 0, 1},
    {CLLOSS_INT64, CLLOSS_REDUCTION_MEAN, 0, 0, 0, 1, 1, 0},
    {CLLOSS_INT32, CLLOSS_REDUCTION_NONE, 0, 1e-3f, 0, 0, 1, 1},
    {CLLOSS_INT64, CLLOSS_REDUCTION_MEAN, 0.05f, 0, 5.0f, 1, 1, 1},
    {CLLOSS_INT32, CLLOSS_REDUCTION_SUM, 0, 1e-3f, 3.0f, 0, 0, 0},
    {0, CLLOSS_REDUCTION_MEAN, 0, 0, 0, 0, 0, 0},
    {0, CLLOSS_REDUCTION_NONE, 0.1f, 1e-3f, 4.0f, 1, 0, 1},
};
#define NCE (sizeof ce_cases / sizeof *ce_cases)
/* Row lengths: 1, odd ones around a vector and a work-group's worth. */
static const size_t ce_classes[] = {1, 3, 17, 33, 70, 5, 64, 47};

static size_t check_ce(size_t dev, const void *c, const dc_opts *o) {
  return dc_check_ce(dev, c, o);
}

static void ce_run(const ce_opts *co, clloss_dtype type, size_t classes,
                   const char *const *variants, size_t nvariants, size_t *k) {
  clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT;
  d.rows = ROWS, d.classes = classes, d.row_stride = stride_for(classes);
  d.input_type = type;
  d.target_type = co->target ? co->target : type;
  d.reduction = co->reduction;
  d.label_smoothing = co->smoothing, d.z_loss = co->z_loss;
  d.softcap = co->softcap;
  const dc_gen g = {1000 + *k,       0,          0, 0.0, co->weights,
                    co->grad_output, !co->target};
  dc_data v;
  rows_data(&v, &g, classes, d.row_stride, d.ignore_index, co->ignore,
            clloss_cross_entropy_output_count(&d));
  dc_ce_case c = {d, v.x, v.t, v.p, v.w, v.g};
  char what[160];
  snprintf(what, sizeof what,
           "cross_entropy C=%zu %s targets, %s, smoothing %g, z_loss %g, "
           "softcap %g%s%s%s",
           classes, co->target ? clloss_dtype_name(co->target) : "probability",
           clloss_reduction_name(co->reduction), co->smoothing, co->z_loss,
           co->softcap, co->weights ? ", weights" : "",
           co->ignore ? ", a row ignored" : "",
           co->grad_output ? ", grad_output" : "");
  run_all(check_ce, &c, what, variants, nvariants, type, k, ROWS);
  dc_data_free(&v);
}

static void test_cross_entropy(void) {
  TU_REQUIRE_DEVICE();
  for (size_t s = 0; s < NSTORAGE; s++) {
    size_t k = 0;
    for (size_t i = 0; i < NCE; i++)
      ce_run(&ce_cases[i], storage[s], ce_classes[i], row_variants, 4, &k);
  }
}

/* Rows long enough that split cuts them into several segments on CPUs
 * (segments of 16 vectors of one work-item) and on GPUs with work-groups
 * of 16 (./run oclgrind's GPU path), item and group for comparison. */
static void test_cross_entropy_long_rows(void) {
  TU_REQUIRE_DEVICE();
  for (size_t s = 0; s < NSTORAGE; s++) {
    size_t k = 1;
    ce_run(&ce_cases[4], storage[s], 2100, row_variants, 4, &k);
  }
}

/* ---- nll_loss ---- */
static size_t check_nll(size_t dev, const void *c, const dc_opts *o) {
  return dc_check_nll(dev, c, o);
}

static void test_nll_loss(void) {
  TU_REQUIRE_DEVICE();
  static const size_t classes[] = {1, 21, 70, 6};
  for (size_t s = 0; s < NSTORAGE; s++) {
    size_t k = 0;
    for (size_t i = 0; i < 4; i++) {
      clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT;
      d.rows = ROWS, d.classes = classes[i];
      d.row_stride = stride_for(classes[i]);
      d.input_type = storage[s];
      d.target_type = i % 2 ? CLLOSS_INT32 : CLLOSS_INT64;
      d.reduction = i == 3 ? CLLOSS_REDUCTION_NONE : CLLOSS_REDUCTION_MEAN;
      const dc_gen g = {2000 + i, 0, 0, 0.0, i >= 2, i == 3, 0};
      dc_data v;
      rows_data(&v, &g, d.classes, d.row_stride, d.ignore_index, i != 0, ROWS);
      dc_nll_case c = {d, v.x, v.t, v.w, v.g};
      char what[96];
      snprintf(what, sizeof what, "nll_loss C=%zu %s targets, %s", d.classes,
               clloss_dtype_name(d.target_type),
               clloss_reduction_name(d.reduction));
      run_all(check_nll, &c, what, nll_variants, 3, storage[s], &k, ROWS);
      dc_data_free(&v);
    }
  }
}

/* ---- element-wise losses ---- */
static size_t check_pw(size_t dev, const void *c, const dc_opts *o) {
  return dc_check_pw(dev, c, o);
}

static void test_pointwise(void) {
  TU_REQUIRE_DEVICE();
  /* Odd counts, so that buffers end at every alignment too. */
  static const size_t counts[] = {1, 37, 70, 17, 129, 45};
  for (size_t s = 0; s < NSTORAGE; s++) {
    size_t k = 0;
    for (int loss = CLLOSS_MSE_LOSS; loss <= CLLOSS_KL_DIV; loss++) {
      clloss_pointwise_desc d =
          CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)loss);
      d.count = counts[loss];
      d.input_type = storage[s];
      d.reduction = loss % 3 == 0   ? CLLOSS_REDUCTION_MEAN
                    : loss % 3 == 1 ? CLLOSS_REDUCTION_SUM
                                    : CLLOSS_REDUCTION_NONE;
      d.delta = 0.7f, d.beta = 0.5f;
      if (loss == CLLOSS_BCE_WITH_LOGITS) /* broadcast over 43 x 3 */
        d.weight_count = 3, d.pos_weight_count = d.count;
      if (loss == CLLOSS_KL_DIV) /* 45 = 9 x 5 */
        d.reduction = CLLOSS_REDUCTION_BATCHMEAN, d.batch = 9;
      dc_data v;
      dc_pw_case pc = dc_make_pw(&v, &d, 3000 + (uint64_t)loss,
                                 d.reduction == CLLOSS_REDUCTION_NONE);
      static const char *const names[] = {"mse_loss",        "l1_loss",
                                          "huber_loss",      "smooth_l1_loss",
                                          "bce_with_logits", "kl_div"};
      char what[96];
      snprintf(what, sizeof what, "%s count %zu, %s", names[loss], d.count,
               clloss_reduction_name(d.reduction));
      /* Three cases per loss: 18 start offsets, every residue mod ALIGN. */
      for (int rep = 0; rep < 3; rep++)
        run_all(check_pw, &pc, what, two_variants, 2, storage[s], &k, 1);
      dc_data_free(&v);
    }
  }
}

/* ---- the program table (issue 11): every configuration in one context ---- */
static int is_linear(const clloss__program_key *k) {
  return strcmp(k->source, "linear_cross_entropy") == 0;
}

static void test_every_configuration(void) {
  TU_REQUIRE_DEVICE();
  for (size_t dev = 0; dev < tu_device_count(); dev++) {
    clloss_context *ctx = tu_context(dev);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    size_t n = clloss__program_configs(ctx, NULL, 0);
    clloss__program_key *keys = dc_alloc(n * sizeof *keys);
    CU_ASSERT_EQUAL(clloss__program_configs(ctx, keys, n), n);
    /* The tests above made a call in every configuration of the losses:
     * the table holds each listed key once, and nothing else.
     * linear_cross_entropy's programs are the linear suite's to build (its
     * GEMMs are CLBlast's, which cannot run under Oclgrind, where this
     * suite runs too): listed, but not required here. */
    size_t missing = 0, extra = 0, linear = 0, linear_built = 0;
    for (size_t j = 0; j < ctx->program_count; j++)
      linear_built += is_linear(&ctx->programs[j].key);
    for (size_t i = 0; i < n; i++) {
      size_t found = 0;
      if (is_linear(&keys[i])) {
        linear += 1;
        continue;
      }
      for (size_t j = 0; j < ctx->program_count; j++)
        found += clloss__same_key(&keys[i], &ctx->programs[j].key);
      if (found != 1 && missing++ < 12)
        printf("\n  %s: %s in_type %d tgt_type %d prob %d loss %d vw %d "
               "softcap %d variant %d built %zu times",
               clloss_context_device_info(ctx)->name, keys[i].source,
               keys[i].in_type, keys[i].tgt_type, keys[i].prob_targets,
               keys[i].loss_id, keys[i].vw, keys[i].softcap,
               (int)keys[i].variant, found);
    }
    for (size_t j = 0; j < ctx->program_count; j++) {
      size_t found = 0;
      for (size_t i = 0; i < n; i++)
        found += clloss__same_key(&keys[i], &ctx->programs[j].key);
      if (!found && extra++ < 5)
        printf("\n  %s: built %s (in_type %d) is not among the listed "
               "configurations",
               clloss_context_device_info(ctx)->name,
               ctx->programs[j].key.source, ctx->programs[j].key.in_type);
    }
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(extra, 0);
    CU_ASSERT_EQUAL(ctx->program_count - linear_built, n - linear);
    /* More than the 48 programs the table used to hold. */
    CU_ASSERT(n > 48 || !clloss_context_device_info(ctx)->has_fp64);
    free(keys);
  }
}

int test_portable_register(void) {
  TU_SUITE("portable", NULL, NULL, TU_TEST(test_cross_entropy),
           TU_TEST(test_cross_entropy_long_rows), TU_TEST(test_nll_loss),
           TU_TEST(test_pointwise), TU_TEST(test_every_configuration));
}
