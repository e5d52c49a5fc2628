/* configs.c - the program configurations: the key each launcher asks
 * program.c for, formed here once, and the list of every key that calls on
 * a device can request. The launchers, the size of the context's program
 * table and tools/kernel_configs.c (./run kernels-check) all use these, so
 * that what is checked is what is built. */
#include <string.h>

#include "internal.h"

clloss__program_key clloss__ce_program_key(const clloss_context *ctx,
                                           const clloss_cross_entropy_desc *d) {
  const int prob = clloss__is_probability_target(d->target_type);
  clloss__program_key key = {.source = "cross_entropy",
                             .in_type = (int)d->input_type,
                             .tgt_type =
                                 prob ? CLLOSS_INT64 : (int)d->target_type,
                             .prob_targets = prob,
                             .vw = clloss__vector_width(ctx, d->input_type),
                             .softcap = d->softcap > 0};
  return key;
}

clloss__program_key clloss__nll_program_key(const clloss_context *ctx,
                                            const clloss_nll_loss_desc *d) {
  clloss__program_key key = {.source = "nll_loss",
                             .in_type = (int)d->input_type,
                             .tgt_type = (int)d->target_type,
                             .vw = clloss__vector_width(ctx, d->input_type)};
  return key;
}

clloss__program_key clloss__pw_program_key(const clloss_context *ctx,
                                           const clloss_pointwise_desc *d) {
  clloss__program_key key = {.source = "pointwise",
                             .in_type = (int)d->input_type,
                             .tgt_type = CLLOSS_INT64,
                             .loss_id = (int)d->loss,
                             .vw = clloss__vector_width(ctx, d->input_type)};
  return key;
}

clloss__program_key
clloss__lce_program_key(const clloss_context *ctx,
                        const clloss_linear_cross_entropy_desc *d) {
  (void)ctx;
  const int prob = clloss__is_probability_target(d->ce.target_type);
  clloss__program_key key = {.source = "linear_cross_entropy",
                             .in_type = (int)d->ce.input_type,
                             .tgt_type =
                                 prob ? CLLOSS_INT64 : (int)d->ce.target_type,
                             .vw = 1};
  return key;
}

int clloss__same_key(const clloss__program_key *a,
                     const clloss__program_key *b) {
  return strcmp(a->source, b->source) == 0 && a->in_type == b->in_type &&
         a->tgt_type == b->tgt_type && a->prob_targets == b->prob_targets &&
         a->loss_id == b->loss_id && a->vw == b->vw &&
         a->softcap == b->softcap && a->variant == b->variant;
}

/* Every value of the descriptor fields that the key functions read; the
 * descriptor checks (check.c) decide which combinations a call accepts, and
 * float64 needs a device with fp64, as the launchers' buffer checks say.
 * softmax and the shard calls build cross_entropy's programs from a
 * cross_entropy descriptor (clloss__ce_program), so their keys are here. */
static const clloss_dtype all_types[] = {CLLOSS_FLOAT32,  CLLOSS_FLOAT16,
                                         CLLOSS_BFLOAT16, CLLOSS_FLOAT64,
                                         CLLOSS_INT32,    CLLOSS_INT64};
#define NTYPES (sizeof all_types / sizeof *all_types)

static int buildable(const clloss_context *ctx, clloss_dtype input_type) {
  return input_type != CLLOSS_FLOAT64 || ctx->info.has_fp64;
}

/* Appends k to all[0..*n) unless it is there already. */
static void add_one(clloss__program_key *all, size_t *n,
                    const clloss__program_key k) {
  for (size_t i = 0; i < *n; i++)
    if (clloss__same_key(&all[i], &k))
      return;
  all[(*n)++] = k;
}

/* k with each variant that its loss has kernels for (a program holds one
 * variant's kernels: program.c): cross_entropy item, group, lanes and
 * split; nll_loss item, group and lanes; element-wise item and group. */
static void add(clloss__program_key *all, size_t *n, clloss__program_key k) {
  static const clloss__variant variants[] = {CLLOSS__ITEM, CLLOSS__GROUP,
                                             CLLOSS__LANES, CLLOSS__SPLIT};
  const int count = strcmp(k.source, "cross_entropy") == 0 ? 4
                    : strcmp(k.source, "nll_loss") == 0    ? 3
                                                           : 2;
  for (int i = 0; i < count; i++) {
    k.variant = variants[i];
    add_one(all, n, k);
  }
}

/* At most four keys (variants) per descriptor visited below; one for
 * linear_cross_entropy's (its kernels belong to no variant). */
#define CANDIDATES                                                             \
  (4 * (NTYPES * NTYPES * 2 + NTYPES * NTYPES +                                \
        (CLLOSS_KL_DIV + 1) * NTYPES) +                                        \
   NTYPES * NTYPES)

size_t clloss__program_configs(const clloss_context *ctx,
                               clloss__program_key *keys, size_t cap) {
  clloss__program_key all[CANDIDATES];
  size_t n = 0;
  for (size_t i = 0; i < NTYPES; i++)
    for (size_t t = 0; t < NTYPES; t++)
      for (int cap_on = 0; cap_on <= 1; cap_on++) {
        clloss_cross_entropy_desc d = CLLOSS_CROSS_ENTROPY_DESC_INIT, ok;
        d.classes = 1;
        d.input_type = all_types[i];
        d.target_type = all_types[t];
        d.softcap = cap_on ? 1.0f : 0.0f;
        if (clloss__check_cross_entropy_desc(&d, &ok, NULL) == CLLOSS_SUCCESS &&
            buildable(ctx, d.input_type))
          add(all, &n, clloss__ce_program_key(ctx, &d));
      }
  for (size_t i = 0; i < NTYPES; i++)
    for (size_t t = 0; t < NTYPES; t++) {
      clloss_nll_loss_desc d = CLLOSS_NLL_LOSS_DESC_INIT, ok;
      d.classes = 1;
      d.input_type = all_types[i];
      d.target_type = all_types[t];
      if (clloss__check_nll_loss_desc(&d, &ok, NULL) == CLLOSS_SUCCESS &&
          buildable(ctx, d.input_type))
        add(all, &n, clloss__nll_program_key(ctx, &d));
    }
  for (int loss = CLLOSS_MSE_LOSS; loss <= CLLOSS_KL_DIV; loss++)
    for (size_t i = 0; i < NTYPES; i++) {
      clloss_pointwise_desc d =
          CLLOSS_POINTWISE_DESC_INIT((clloss_pointwise_loss)loss);
      clloss_pointwise_desc ok;
      d.input_type = all_types[i];
      if (clloss__check_pointwise_desc(&d, &ok, NULL) == CLLOSS_SUCCESS &&
          buildable(ctx, d.input_type))
        add(all, &n, clloss__pw_program_key(ctx, &d));
    }
  /* linear_cross_entropy: cross_entropy's descriptors, its own program. */
  for (size_t i = 0; i < NTYPES; i++)
    for (size_t t = 0; t < NTYPES; t++) {
      clloss_linear_cross_entropy_desc d =
          CLLOSS_LINEAR_CROSS_ENTROPY_DESC_INIT;
      clloss_cross_entropy_desc ok;
      d.ce.classes = 1;
      d.ce.input_type = all_types[i];
      d.ce.target_type = all_types[t];
      if (clloss__check_cross_entropy_desc(&d.ce, &ok, NULL) ==
              CLLOSS_SUCCESS &&
          buildable(ctx, d.ce.input_type))
        add_one(all, &n, clloss__lce_program_key(ctx, &d));
    }
  for (size_t i = 0; keys && i < n && i < cap; i++)
    keys[i] = all[i];
  return n;
}
