/* program.c - building the kernel programs, once per context and set of
 * build-time parameters, from the embedded sources (or from the directory
 * CLLOSS_KERNEL_DIR names, for kernel development without rebuilding). */
#include <stdlib.h>
#include <string.h>

#include "binary_cache.h"
#include "internal.h"
#include "kernels.h"

/* The text of the kernel file whose stem is `name` (kernels/<name>.cl, or
 * params.h): from CLLOSS_KERNEL_DIR when set, else the copy embedded at
 * build time. Returns a malloc'd string or NULL. */
static const clloss__kernel_source *kernel_source(const char *name) {
  const clloss__kernel_source *k = clloss__kernel_sources;
  while (k->name && strcmp(k->name, name) != 0)
    k++;
  return k->name ? k : NULL;
}

static char *kernel_text(const char *name) {
  const clloss__kernel_source *k = kernel_source(name);
  if (!k)
    return NULL;
  const char *dir = getenv("CLLOSS_KERNEL_DIR");
  if (dir && *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, k->file);
    FILE *f = fopen(path, "rb");
    if (!f)
      return NULL;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) &&
        fread(buf, 1, (size_t)size, f) == (size_t)size) {
      buf[size] = '\0';
    } else {
      free(buf);
      buf = NULL;
    }
    fclose(f);
    return buf;
  }
  char *copy = malloc(k->length + 1);
  if (copy)
    memcpy(copy, k->text, k->length + 1);
  return copy;
}

static void keep_build_log(clloss_context *ctx, cl_program program) {
  size_t size = 0;
  if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL,
                            &size) != CL_SUCCESS)
    return;
  char *log = malloc(size + 1);
  if (!log)
    return;
  if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, size,
                            log, NULL) != CL_SUCCESS)
    size = 0;
  log[size] = '\0';
  free(ctx->build_log);
  ctx->build_log = log;
}

int clloss__program_sources(const clloss__program_key *key,
                            char *texts[CLLOSS__PROGRAM_PARTS],
                            const char **missing) {
  const char *parts[CLLOSS__PROGRAM_PARTS] = {"params", "common", "reduce",
                                              key->source};
  for (int i = 0; i < CLLOSS__PROGRAM_PARTS; i++)
    texts[i] = NULL;
  for (int i = 0; i < CLLOSS__PROGRAM_PARTS; i++)
    if (!(texts[i] = kernel_text(parts[i]))) {
      if (missing)
        *missing =
            kernel_source(parts[i]) ? kernel_source(parts[i])->file : parts[i];
      for (int j = 0; j < i; j++) {
        free(texts[j]);
        texts[j] = NULL;
      }
      return 0;
    }
  return 1;
}

int clloss__build_options(const clloss_context *ctx,
                          const clloss__program_key *key, char *out,
                          size_t cap) {
  /* Never -cl-fast-relaxed-math: -inf logits and NaN must stay IEEE. */
  int n = 0;
  if (ctx->cl_std_major > 1 || ctx->cl_std_minor >= 1)
    n = snprintf(out, cap, "-cl-std=CL%d.%d ", ctx->cl_std_major,
                 ctx->cl_std_minor);
  if (n < 0 || (size_t)n >= cap)
    return n;
  return n + snprintf(out + n, cap - (size_t)n,
                      "-DIN_TYPE=%d -DTGT_TYPE=%d -DPROB_TARGETS=%d "
                      "-DLOSS_ID=%d -DVW=%d -DSOFTCAP=%d -DWG_SIZE=%zu",
                      key->in_type, key->tgt_type, key->prob_targets,
                      key->loss_id, key->vw, key->softcap, ctx->wg_size);
}

/* Compiles params.h + common.cl + reduce.cl + <source>.cl with the key's
 * parameters. */
static clloss_status build(clloss_context *ctx, const clloss__program_key *key,
                           cl_program *out) {
  char *texts[CLLOSS__PROGRAM_PARTS];
  const char *missing = "";
  clloss_status status = CLLOSS_SUCCESS;
  if (!clloss__program_sources(key, texts, &missing))
    status = clloss__fail(ctx, CLLOSS_BUILD_FAILURE,
                          "kernel source %s not found", missing);
  char options[256];
  clloss__build_options(ctx, key, options, sizeof options);

  cl_program program = NULL;
  uint64_t cache_key = 0;
  if (status == CLLOSS_SUCCESS) {
    cache_key = clloss__cache_key(ctx, options, (const char *const *)texts,
                                  CLLOSS__PROGRAM_PARTS);
    program = clloss__cache_load(ctx, cache_key, options);
  }
  if (status == CLLOSS_SUCCESS && !program) {
    cl_int err;
    program = clCreateProgramWithSource(ctx->cl, CLLOSS__PROGRAM_PARTS,
                                        (const char **)texts, NULL, &err);
    if (!program)
      status = clloss__cl_status(err);
    else if ((err = clBuildProgram(program, 1, &ctx->device, options, NULL,
                                   NULL)) != CL_SUCCESS) {
      keep_build_log(ctx, program);
      clReleaseProgram(program);
      program = NULL;
      status = clloss__fail(ctx, CLLOSS_BUILD_FAILURE,
                            "building %s.cl (%s) failed with %s; see the "
                            "build log",
                            key->source, options, clloss_status_name(err));
    } else {
      clloss__cache_store(ctx, cache_key, program);
    }
  }
  for (int i = 0; i < CLLOSS__PROGRAM_PARTS; i++)
    free(texts[i]);
  if (status != CLLOSS_SUCCESS)
    return status;
  *out = program;
  return CLLOSS_SUCCESS;
}

/* Room for one more program. The table starts with one entry per
 * configuration of clloss__program_configs, which every launcher's key is
 * among (tests/test_portable.c builds them all); it grows all the same
 * rather than fail a call. */
static clloss_status reserve_entry(clloss_context *ctx) {
  if (ctx->program_count < ctx->program_capacity)
    return CLLOSS_SUCCESS;
  size_t cap = ctx->program_capacity ? 2 * ctx->program_capacity
                                     : clloss__program_configs(ctx, NULL, 0);
  clloss__program *grown =
      realloc(ctx->programs, (cap ? cap : 1) * sizeof *grown);
  if (!grown)
    return clloss__fail(ctx, CLLOSS_OUT_OF_HOST_MEMORY,
                        "cannot grow the program table to %zu entries", cap);
  ctx->programs = grown;
  ctx->program_capacity = cap ? cap : 1;
  return CLLOSS_SUCCESS;
}

clloss_status clloss__get_program(clloss_context *ctx,
                                  const clloss__program_key *key,
                                  const char *const *kernel_names,
                                  clloss__program **out) {
  for (size_t i = 0; i < ctx->program_count; i++)
    if (clloss__same_key(&ctx->programs[i].key, key)) {
      *out = &ctx->programs[i];
      return CLLOSS_SUCCESS;
    }
  CLLOSS__TRY(reserve_entry(ctx));
  clloss__program p;
  memset(&p, 0, sizeof p);
  p.key = *key;
  CLLOSS__TRY(build(ctx, key, &p.program));
  clloss_status status = CLLOSS_SUCCESS;
  for (int i = 0; kernel_names[i] && i < CLLOSS__MAX_KERNELS; i++) {
    cl_int err;
    p.names[i] = kernel_names[i];
    p.kernels[i] = clCreateKernel(p.program, kernel_names[i], &err);
    if (!p.kernels[i]) {
      status = clloss__fail(ctx, CLLOSS_BUILD_FAILURE,
                            "kernel %s missing from %s.cl: %s", kernel_names[i],
                            key->source, clloss_status_name(err));
      break;
    }
    err = clGetKernelWorkGroupInfo(p.kernels[i], ctx->device,
                                   CL_KERNEL_WORK_GROUP_SIZE,
                                   sizeof p.max_wg[i], &p.max_wg[i], NULL);
    if (err != CL_SUCCESS || p.max_wg[i] == 0)
      p.max_wg[i] = 1;
    if (p.max_wg[i] > ctx->wg_size)
      p.max_wg[i] = ctx->wg_size;
  }
  if (status != CLLOSS_SUCCESS) {
    for (int i = 0; i < CLLOSS__MAX_KERNELS; i++)
      if (p.kernels[i])
        clReleaseKernel(p.kernels[i]);
    clReleaseProgram(p.program);
    return status;
  }
  ctx->programs[ctx->program_count] = p;
  *out = &ctx->programs[ctx->program_count++];
  return CLLOSS_SUCCESS;
}

void clloss__release_programs(clloss_context *ctx) {
  for (size_t i = 0; i < ctx->program_count; i++) {
    for (int k = 0; k < CLLOSS__MAX_KERNELS; k++)
      if (ctx->programs[i].kernels[k])
        clReleaseKernel(ctx->programs[i].kernels[k]);
    clReleaseProgram(ctx->programs[i].program);
  }
  ctx->program_count = 0;
  free(ctx->programs);
  ctx->programs = NULL;
  ctx->program_capacity = 0;
}
