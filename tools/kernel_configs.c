/* kernel_configs.c - writes every program configuration that clloss can
 * build, for CPU-class and GPU-class devices, as the exact source text and
 * build options that program.c hands to clBuildProgram; tools/kernels-check.sh
 * compiles each with clang for several targets (./run kernels-check).
 *
 * Usage: clloss_kernel_configs OUTDIR
 * Writes OUTDIR/<id>.cl and one line per configuration to
 * OUTDIR/configs.txt: "<id> <options>". Needs no OpenCL device: the device
 * classes below stand in for what clloss reads from a real one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct device_class {
  const char *name;
  cl_device_type type;
} device_class;

/* What the key and options depend on: the device type (vector widths),
 * fp64 (float64 configurations), OpenCL C 1.2 (-cl-std) and the
 * work-group size the programs are built for (min(device max, 256)). */
static const device_class classes[] = {{"cpu", CL_DEVICE_TYPE_CPU},
                                       {"gpu", CL_DEVICE_TYPE_GPU}};

static int write_file(const char *path, char *const *texts) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return 0;
  int ok = 1;
  for (int i = 0; i < CLLOSS__PROGRAM_PARTS; i++) {
    size_t n = strlen(texts[i]);
    ok &= fwrite(texts[i], 1, n, f) == n;
  }
  return fclose(f) == 0 && ok;
}

/* A program holds one variant's kernels (program.c): the rest of its .cl
 * file is compiled out. Checking every configuration of every variant
 * would compile the same helpers again and again (about 2000 compilations,
 * over 15 minutes on two cores), so keys[0..n) becomes every
 * configuration with all its variants' kernels in one program, plus each
 * variant's own program for float32 storage with plain class-index targets
 * (which checks that each variant's #if selection compiles alone). The
 * test suite builds every one of the library's programs on PoCL. Returns
 * the new count. */
static size_t whole_programs(clloss__program_key *keys, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    clloss__program_key k = keys[i];
    if (!(k.in_type == CLLOSS_FLOAT32 && !k.prob_targets && !k.softcap))
      k.variant = CLLOSS__AUTO;
    size_t j = 0;
    while (j < m && !clloss__same_key(&keys[j], &k))
      j++;
    if (j == m)
      keys[m++] = k;
  }
  return m;
}

static int write_class(const char *dir, const device_class *dc, FILE *list) {
  clloss_context ctx = {.info = {.type = dc->type,
                                 .has_fp64 = 1,
                                 .max_work_group_size = 1024,
                                 .compute_units = 1},
                        .cl_std_major = 1,
                        .cl_std_minor = 2,
                        .wg_size = 256};
  size_t n = clloss__program_configs(&ctx, NULL, 0);
  clloss__program_key *keys = calloc(n ? n : 1, sizeof *keys);
  if (!keys)
    return -1;
  clloss__program_configs(&ctx, keys, n);
  n = whole_programs(keys, n);
  int written = 0;
  for (size_t i = 0; i < n; i++) {
    char id[128], path[4096], options[256];
    char *texts[CLLOSS__PROGRAM_PARTS];
    const char *missing = "";
    snprintf(id, sizeof id, "%s-%s-%02zu", dc->name, keys[i].source, i);
    snprintf(path, sizeof path, "%s/%s.cl", dir, id);
    int len = clloss__build_options(&ctx, &keys[i], options, sizeof options);
    if (len < 0 || (size_t)len >= sizeof options) {
      fprintf(stderr, "kernel_configs: options of %s too long\n", id);
      written = -1;
      break;
    }
    if (!clloss__program_sources(&keys[i], texts, &missing)) {
      fprintf(stderr, "kernel_configs: %s.cl not found\n", missing);
      written = -1;
      break;
    }
    int ok = write_file(path, texts);
    for (int k = 0; k < CLLOSS__PROGRAM_PARTS; k++)
      free(texts[k]);
    if (!ok) {
      fprintf(stderr, "kernel_configs: cannot write %s\n", path);
      written = -1;
      break;
    }
    fprintf(list, "%s %s\n", id, options);
    written++;
  }
  free(keys);
  return written;
}

int main(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: clloss_kernel_configs OUTDIR\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/configs.txt", argv[1]);
  FILE *list = fopen(path, "w");
  if (!list) {
    fprintf(stderr, "kernel_configs: cannot write %s\n", path);
    return 1;
  }
  int status = 0;
  for (size_t c = 0; c < sizeof classes / sizeof *classes; c++) {
    int n = write_class(argv[1], &classes[c], list);
    if (n < 0) {
      status = 1;
      break;
    }
    printf("%s: %d configurations\n", classes[c].name, n);
  }
  if (fclose(list) != 0)
    status = 1;
  return status;
}
