/* main.c - llmc_loss: llm.c's loss step on an OpenCL device with clloss, in
 * both training-loop patterns, checked against the CPU reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmc_loss.h"

static const char *const help =
    "usage: llmc_loss [--B N] [--T N] [--V N] [--Vp N] [--repeat R]\n"
    "                 [--seed S] [--device I] [--variant V]\n"
    "\n"
    "llm.c's loss step (train_gpt2.c's layout: logits (B, T, Vp) of which\n"
    "the first V columns are classes, int targets, per-position losses,\n"
    "dlogits = dloss/dlogits with dloss = 1/(B*T), written over the logits\n"
    "with the padded columns zeroed) on a device, in both patterns:\n"
    "  1. the fused call in the forward pass (llm.c's CUDA trainer);\n"
    "  2. the loss only in the forward pass, the gradient in the backward.\n"
    "Checks both against clloss's CPU reference and prints the ms of each.\n"
    "Defaults: B 4, T 64, V 50257, Vp 50304 (GPT-2 small), repeat 5.\n"
    "--device: an index or name substring (clloss devices); --variant:\n"
    "item, group, split or auto. Exit status: 0 ok, 1 mismatch, 2 error.\n";

static int parse(int argc, char **argv, llmc_config *c, const char **device,
                 const char **variant) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(help, stdout);
      return 1;
    }
    char *end = NULL;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    int number = v && *v && end && *end == '\0';
    if (strcmp(a, "--device") == 0 && v)
      *device = v;
    else if (strcmp(a, "--variant") == 0 && v)
      *variant = v;
    else if (strcmp(a, "--B") == 0 && number)
      c->B = (size_t)n;
    else if (strcmp(a, "--T") == 0 && number)
      c->T = (size_t)n;
    else if (strcmp(a, "--V") == 0 && number)
      c->V = (size_t)n;
    else if (strcmp(a, "--Vp") == 0 && number)
      c->Vp = (size_t)n;
    else if (strcmp(a, "--repeat") == 0 && number && n < 1000)
      c->repeat = (int)n;
    else if (strcmp(a, "--seed") == 0 && number)
      c->seed = (unsigned)n;
    else {
      fprintf(stderr, "llmc_loss: bad argument '%s'%s\n%s", a,
              v ? "" : " (or its value)", help);
      return 2;
    }
    i++;
  }
  return 0;
}

int main(int argc, char **argv) {
  llmc_config c = llmc_default_config();
  const char *device = NULL, *variant = NULL;
  int rc = parse(argc, argv, &c, &device, &variant);
  if (rc)
    return rc == 1 ? 0 : rc;
  clloss_context *ctx = NULL;
  clloss_status s = clloss_context_create_default(device, &ctx);
  if (s == CLLOSS_SUCCESS && variant)
    s = clloss_context_set_variant(ctx, variant);
  if (s != CLLOSS_SUCCESS) {
    fprintf(stderr, "llmc_loss: %s\n", clloss_status_string(s));
    clloss_context_release(ctx);
    return 2;
  }
  llmc_result res;
  rc = llmc_run(ctx, &c, stdout, &res);
  clloss_context_release(ctx);
  return rc;
}
