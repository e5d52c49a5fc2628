/* llmc_loss.h - llm.c's loss step on clloss: logits of shape (B, T, Vp) of
 * which the first V columns are classes, int targets, per-position losses,
 * dlogits scaled by 1/(B*T) and written in place over the logits with the
 * padded columns zeroed, in both patterns a training loop uses. The whole
 * example is llmc_run(), so that the test suite can run it too. */
#ifndef LLMC_LOSS_H
#define LLMC_LOSS_H
#include <stddef.h>
#include <stdio.h>

#include <clloss.h>

typedef struct llmc_config {
  size_t B, T, V, Vp; /* batch, sequence length, vocabulary, padded */
  int repeat;         /* timed runs of each pattern (the median is shown) */
  unsigned seed;      /* of the random logits and targets */
} llmc_config;

/* llm.c's train_gpt2.c: B = 4, T = 64, GPT-2's V = 50257, Vp = 50304. */
llmc_config llmc_default_config(void);

typedef struct llmc_result {
  double mean_loss[2], ref_mean_loss;       /* pattern 1, 2; the reference's */
  double fused_ms, forward_ms, backward_ms; /* medians */
  double loss_err;  /* largest |loss - reference| / reference, both patterns */
  double grad_err;  /* largest |dlogit - reference| * B*T, both patterns */
  int padding_zero; /* dlogits' columns [V, Vp) were +0 in every row */
  int ok;           /* within 1e-5 both, and the padding zero */
} llmc_result;

/* Runs both patterns on ctx's device, on a queue of its own, checks them
 * against clloss's CPU reference and prints what it did to `out`. Returns
 * 0 when everything agrees, 1 when something does not, 2 when a call
 * failed (the reason printed). */
int llmc_run(clloss_context *ctx, const llmc_config *cfg, FILE *out,
             llmc_result *res);

#endif
