/* program.c - building the kernel programs, once per context and set of
 * build-time parameters, when a call first needs them: from the cache
 * folder when a verified binary is there, else from the embedded sources
 * (or from the directory CLLOSS_KERNEL_DIR names, for kernel development
 * without rebuilding). */
#include <pthread.h>
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

/* Which variant's program a kernel belongs in, by its name (internal.h);
 * AUTO: every program. */
static clloss__variant kernel_variant(const char *name) {
  static const char *const marks[] = {"_item",  "_group", "_lanes",
                                      "_split", "_shard", "_combine"};
  static const clloss__variant of[] = {CLLOSS__ITEM,  CLLOSS__GROUP,
                                       CLLOSS__LANES, CLLOSS__SPLIT,
                                       CLLOSS__SPLIT, CLLOSS__SPLIT};
  for (int i = 0; i < 6; i++)
    if (strstr(name, marks[i]))
      return of[i];
  return CLLOSS__AUTO;
}

/* Whether kernel `name` belongs in the program of `key`. */
static int wanted(const clloss__program_key *key, const char *name) {
  clloss__variant v = kernel_variant(name);
  return key->variant == CLLOSS__AUTO || v == CLLOSS__AUTO || v == key->variant;
}

/* Never -cl-fast-relaxed-math: -inf logits and NaN must stay IEEE. -w: the
 * compiler's warnings would stay in the build log, but clang-based drivers
 * (PoCL) also print their count ("N warnings generated.") on the process's
 * stderr, which belongs to the user. A variant's program defines
 * CLLOSS_ONLY_KERNELS and CLLOSS_VARIANT_<ITEM|GROUP|LANES|SPLIT>; the .cl
 * files compile the other variants' __kernels out (without those #if
 * lines they are all built, and only time is lost). */
int clloss__build_options(const clloss_context *ctx,
                          const clloss__program_key *key, char *out,
                          size_t cap) {
  static const char *const only[] = {"",
                                     " -DCLLOSS_ONLY_KERNELS "
                                     "-DCLLOSS_VARIANT_ITEM",
                                     " -DCLLOSS_ONLY_KERNELS "
                                     "-DCLLOSS_VARIANT_GROUP",
                                     " -DCLLOSS_ONLY_KERNELS "
                                     "-DCLLOSS_VARIANT_SPLIT",
                                     " -DCLLOSS_ONLY_KERNELS "
                                     "-DCLLOSS_VARIANT_LANES"};
  int n = 0;
  if (ctx->cl_std_major > 1 || ctx->cl_std_minor >= 1)
    n = snprintf(out, cap, "-cl-std=CL%d.%d ", ctx->cl_std_major,
                 ctx->cl_std_minor);
  if (n < 0 || (size_t)n >= cap)
    return n;
  return n + snprintf(out + n, cap - (size_t)n,
                      "-w -DIN_TYPE=%d -DTGT_TYPE=%d -DPROB_TARGETS=%d "
                      "-DLOSS_ID=%d -DVW=%d -DSOFTCAP=%d -DWG_SIZE=%zu%s",
                      key->in_type, key->tgt_type, key->prob_targets,
                      key->loss_id, key->vw, key->softcap, ctx->wg_size,
                      only[key->variant]);
}

/* Compiles params.h + common.cl + reduce.cl + <source>.cl with the key's
 * parameters, or takes the binary from the cache; *from_source says
 * which. */
static clloss_status build(clloss_context *ctx, const clloss__program_key *key,
                           unsigned char cache_key[32], int *from_source,
                           cl_program *out) {
  char *texts[CLLOSS__PROGRAM_PARTS];
  const char *missing = "";
  clloss_status status = CLLOSS_SUCCESS;
  const char *dir = getenv("CLLOSS_KERNEL_DIR");
  if (!clloss__program_sources(key, texts, &missing))
    status = clloss__fail(
        ctx, CLLOSS_BUILD_FAILURE, "kernel source %s not found%s%s", missing,
        dir && *dir ? " in CLLOSS_KERNEL_DIR=" : "", dir && *dir ? dir : "");
  char options[512];
  int len = clloss__build_options(ctx, key, options, sizeof options);
  if (status == CLLOSS_SUCCESS && (len < 0 || (size_t)len >= sizeof options))
    status =
        clloss__fail(ctx, CLLOSS_BUILD_FAILURE,
                     "the build options of %s.cl are too long", key->source);

  cl_program program = NULL;
  if (status == CLLOSS_SUCCESS) {
    clloss__cache_key(ctx, options, (const char *const *)texts,
                      CLLOSS__PROGRAM_PARTS, cache_key);
    if (!*from_source)
      program = clloss__cache_load(ctx, cache_key, options);
  }
  if (status == CLLOSS_SUCCESS && !program) {
    *from_source = 1;
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
    }
  }
  for (int i = 0; i < CLLOSS__PROGRAM_PARTS; i++)
    free(texts[i]);
  if (status != CLLOSS_SUCCESS)
    return status;
  *out = program;
  return CLLOSS_SUCCESS;
}

static void release_kernels(clloss__program *p) {
  for (int i = 0; i < CLLOSS__MAX_KERNELS; i++)
    if (p->kernels[i])
      clReleaseKernel(p->kernels[i]);
  memset(p->kernels, 0, sizeof p->kernels);
}

/* Creates the key's kernels of p->program. A missing one is
 * CLLOSS_BUILD_FAILURE (with a detail when `report`), with p's kernels
 * released. */
static clloss_status make_kernels(clloss_context *ctx, clloss__program *p,
                                  const char *const *kernel_names, int report) {
  for (int i = 0; kernel_names[i] && i < CLLOSS__MAX_KERNELS; i++) {
    cl_int err;
    p->names[i] = kernel_names[i];
    p->max_wg[i] = 1;
    if (!wanted(&p->key, kernel_names[i]))
      continue;
    p->kernels[i] = clCreateKernel(p->program, kernel_names[i], &err);
    if (!p->kernels[i]) {
      release_kernels(p);
      return clloss__fail(report ? ctx : NULL, CLLOSS_BUILD_FAILURE,
                          "kernel %s missing from %s.cl: %s", kernel_names[i],
                          p->key.source, clloss_status_name(err));
    }
    err = clGetKernelWorkGroupInfo(p->kernels[i], ctx->device,
                                   CL_KERNEL_WORK_GROUP_SIZE,
                                   sizeof p->max_wg[i], &p->max_wg[i], NULL);
    if (err != CL_SUCCESS || p->max_wg[i] == 0)
      p->max_wg[i] = 1;
    if (p->max_wg[i] > ctx->wg_size)
      p->max_wg[i] = ctx->wg_size;
  }
  return CLLOSS_SUCCESS;
}

/* Room for one more program. The table starts with one entry per
 * configuration of clloss__program_configs, which every launcher's key is
 * among (tests/test_portable.c builds them all); it grows all the same
 * rather than fail a call. */
static void release_programs(clloss_context *ctx, void *unused);

static clloss_status reserve_entry(clloss_context *ctx) {
  if (ctx->program_count < ctx->program_capacity)
    return CLLOSS_SUCCESS;
  CLLOSS__TRY(clloss__context_on_release(ctx, release_programs, NULL));
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

/* ---------------------------------------------------------------------------
 * Programs built on a thread of their own: those a measurement of tune.c
 * needs, so that no call waits for their compiler. The thread makes a
 * context of its own on the caller's cl_context, where `run` builds them
 * and runs each once: PoCL compiles a kernel for its work-group size at its
 * first enqueue (1-2 s for a 512 x 10 cross_entropy), which is part of the
 * build. One job per context at a time; the calls take its programs once
 * it is done (clloss__get_program), the context's release waits for it.
 */
#define JOB_KEYS 2
#define JOB_ARG 128

struct clloss__prebuild {
  pthread_t thread;
  pthread_mutex_t m;
  int done;   /* under m: the thread has finished */
  int joined; /* the caller's thread only */
  cl_context cl;
  cl_device_id device;
  size_t n;
  clloss__program_key keys[JOB_KEYS];
  clloss__prebuild_run run;
  unsigned char arg[JOB_ARG];
  /* The thread's results: */
  cl_program programs[JOB_KEYS]; /* NULL: failed, or taken */
  int from_source[JOB_KEYS];
  unsigned char cache_keys[JOB_KEYS][32];
};

static void *job_main(void *arg) {
  struct clloss__prebuild *j = arg;
  clloss_context *helper = NULL;
  if (clloss_context_create(j->cl, j->device, &helper) == CLLOSS_SUCCESS) {
    helper->tune = 0;
    helper->measuring = 1; /* its programs are not written at release */
    if (j->run(helper, j->arg))
      for (size_t i = 0; i < j->n; i++)
        for (size_t k = 0; k < helper->program_count; k++) {
          const clloss__program *p = &helper->programs[k];
          if (!clloss__same_key(&p->key, &j->keys[i]) ||
              clRetainProgram(p->program) != CL_SUCCESS)
            continue;
          j->programs[i] = p->program;
          j->from_source[i] = p->from_source;
          memcpy(j->cache_keys[i], p->cache_key, sizeof j->cache_keys[i]);
        }
    clloss_context_release(helper);
  }
  pthread_mutex_lock(&j->m);
  j->done = 1;
  pthread_mutex_unlock(&j->m);
  return NULL;
}

/* Whether ctx's job has finished (joined then), or there is none. */
static int job_done(clloss_context *ctx) {
  struct clloss__prebuild *j = ctx->prebuild;
  if (!j || j->joined)
    return 1;
  pthread_mutex_lock(&j->m);
  int done = j->done;
  pthread_mutex_unlock(&j->m);
  if (done) {
    pthread_join(j->thread, NULL);
    j->joined = 1;
  }
  return done;
}

void clloss__prebuild_wait(clloss_context *ctx) {
  struct clloss__prebuild *j = ctx->prebuild;
  if (j && !j->joined) {
    pthread_join(j->thread, NULL);
    j->joined = 1;
  }
}

static void job_free(clloss_context *ctx) {
  struct clloss__prebuild *j = ctx->prebuild;
  if (!j)
    return;
  clloss__prebuild_wait(ctx);
  for (size_t i = 0; i < j->n; i++)
    if (j->programs[i])
      clReleaseProgram(j->programs[i]);
  pthread_mutex_destroy(&j->m);
  free(j);
  ctx->prebuild = NULL;
}

static int in_table(const clloss_context *ctx, const clloss__program_key *key) {
  for (size_t i = 0; i < ctx->program_count; i++)
    if (clloss__same_key(&ctx->programs[i].key, key))
      return 1;
  return 0;
}

/* The index of key among the finished job's programs, or -1. */
static int job_index(clloss_context *ctx, const clloss__program_key *key) {
  struct clloss__prebuild *j = ctx->prebuild;
  if (!j || !job_done(ctx))
    return -1;
  for (size_t i = 0; i < j->n; i++)
    if (j->programs[i] && clloss__same_key(&j->keys[i], key))
      return (int)i;
  return -1;
}

int clloss__programs_ready(clloss_context *ctx, const clloss__program_key *keys,
                           size_t n) {
  int ready = 1;
  for (size_t i = 0; i < n; i++)
    if (!in_table(ctx, &keys[i]) && job_index(ctx, &keys[i]) < 0)
      ready = ctx->prebuild && !job_done(ctx) ? 0 : -1;
  return ready;
}

clloss_status clloss__prebuild(clloss_context *ctx,
                               const clloss__program_key *keys, size_t n,
                               clloss__prebuild_run run, const void *arg,
                               size_t arg_size) {
  if (!job_done(ctx))
    return CLLOSS_SUCCESS; /* one at a time: asked again later */
  job_free(ctx);
  if (arg_size > JOB_ARG)
    return CLLOSS_INVALID_ARGUMENT;
  CLLOSS__TRY(clloss__context_on_release(ctx, release_programs, NULL));
  struct clloss__prebuild *j = calloc(1, sizeof *j);
  if (!j)
    return CLLOSS_OUT_OF_HOST_MEMORY;
  j->cl = ctx->cl;
  j->device = ctx->device;
  j->run = run;
  memcpy(j->arg, arg, arg_size);
  for (size_t i = 0; i < n && i < JOB_KEYS; i++)
    if (!in_table(ctx, &keys[i]))
      j->keys[j->n++] = keys[i];
  if (j->n == 0) {
    free(j);
    return CLLOSS_SUCCESS;
  }
  pthread_mutex_init(&j->m, NULL);
  ctx->prebuild = j;
  if (pthread_create(&j->thread, NULL, job_main, j) != 0)
    j->joined = j->done = 1; /* no thread: the job ends with nothing built */
  return CLLOSS_SUCCESS;
}

clloss_status clloss__get_program(clloss_context *ctx,
                                  const clloss__program_key *key,
                                  const char *const *kernel_names,
                                  clloss__program **out) {
  for (size_t i = 0; i < ctx->program_count; i++)
    if (clloss__same_key(&ctx->programs[i].key, key)) {
      ctx->programs[i].measure_only &= ctx->measuring;
      *out = &ctx->programs[i];
      return CLLOSS_SUCCESS;
    }
  CLLOSS__TRY(reserve_entry(ctx));
  clloss__program p;
  memset(&p, 0, sizeof p);
  p.key = *key;
  p.measure_only = ctx->measuring;
  const int k = job_index(ctx, key);
  if (k >= 0) { /* built by the job: taken as it is */
    struct clloss__prebuild *j = ctx->prebuild;
    p.program = j->programs[k];
    j->programs[k] = NULL;
    p.from_source = j->from_source[k];
    memcpy(p.cache_key, j->cache_keys[k], sizeof p.cache_key);
    p.background = 1;
  } else
    CLLOSS__TRY(build(ctx, key, p.cache_key, &p.from_source, &p.program));
  /* A cached binary that lacks a kernel is not a failure of the call. */
  clloss_status status = make_kernels(ctx, &p, kernel_names, p.from_source);
  if (status != CLLOSS_SUCCESS && !p.from_source) {
    /* The driver took the cached binary, but it is not this program's:
     * drop the file and build from source. */
    clReleaseProgram(p.program);
    clloss__cache_remove(p.cache_key);
    p.from_source = 1;
    p.background = 0;
    CLLOSS__TRY(build(ctx, key, p.cache_key, &p.from_source, &p.program));
    status = make_kernels(ctx, &p, kernel_names, 1);
  }
  if (status != CLLOSS_SUCCESS) {
    clReleaseProgram(p.program);
    return status;
  }
  ctx->programs[ctx->program_count] = p;
  *out = &ctx->programs[ctx->program_count++];
  return CLLOSS_SUCCESS;
}

/* The context's release hook (registered with the table's first entry or
 * the first job). */
static void release_programs(clloss_context *ctx, void *unused) {
  (void)unused;
  job_free(ctx); /* waits for its thread */
  for (size_t i = 0; i < ctx->program_count; i++) {
    clloss__program *p = &ctx->programs[i];
    /* Written now rather than when built: a driver may compile every
     * kernel again to produce the binary (PoCL: seconds per program), and
     * the call that built the program should not wait for that. */
    if (p->from_source && !p->measure_only)
      clloss__cache_store(ctx, p->cache_key, p->program);
    release_kernels(p);
    clReleaseProgram(p->program);
  }
  ctx->program_count = 0;
  free(ctx->programs);
  ctx->programs = NULL;
  ctx->program_capacity = 0;
}
