/* main.c - fashion_mnist: trains a 784-256-10 MLP on Fashion-MNIST on an
 * OpenCL device, with clloss computing the loss and its gradient. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <clblast_c.h>

#include "clloss.h"
#include "idx.h"
#include "mlp.h"
#include "plot_png.h"

#ifndef FM_DEFAULT_PLOT
#define FM_DEFAULT_PLOT "fashion_mnist_loss.png"
#endif
#define MAX_EPOCHS 1000

typedef struct options {
  fm_config cfg;
  long epochs;
  const char *device, *data, *plot;
  size_t limit;
  int check;
} options;

static void usage(FILE *f) {
  fprintf(f, "usage: fashion_mnist [options]\n"
             "  --epochs N           passes over the training set (10)\n"
             "  --batch-size N       mini-batch rows (128)\n"
             "  --lr X               learning rate (Adam 0.001, SGD 0.05)\n"
             "  --optimizer adam|sgd Adam, or SGD with momentum 0.9 (adam)\n"
             "  --hidden N           hidden units (256)\n"
             "  --label-smoothing X  cross_entropy label smoothing (0)\n"
             "  --device SEL         device index or name substring "
             "(CLLOSS_DEVICE)\n"
             "  --seed N             initial weights and shuffling (1)\n"
             "  --data DIR           IDX files (" FM_DEFAULT_DATA_DIR ")\n"
             "  --limit N            use only the first N training images\n"
             "  --plot PATH          loss plot (" FM_DEFAULT_PLOT ")\n"
             "  --check              compare the first batch's loss and "
             "gradient with\n"
             "                       clloss's CPU reference, exit 1 if they "
             "differ\n");
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A whole number in [0, 2^64): decimal, 0x hex or 0 octal. */
static int parse_u64(const char *val, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(val, &end, 0);
  if (!*val || *val == '-' || *end || errno)
    return 0;
  *out = v;
  return 1;
}

/* Parses "--name value" and "--name=value"; returns 0, or 2 after a usage
 * message. */
static int parse(int argc, char **argv, options *o) {
  fm_config init = FM_CONFIG_INIT;
  int lr_given = 0;
  o->cfg = init;
  o->epochs = 10;
  o->data = FM_DEFAULT_DATA_DIR;
  o->plot = FM_DEFAULT_PLOT;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i], *val = NULL, *eq = strchr(arg, '=');
    char name[64];
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    snprintf(name, sizeof name, "%.*s", (int)len, arg);
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
      usage(stdout);
      exit(0);
    }
    if (!strcmp(name, "--check")) {
      o->check = 1;
      continue;
    }
    if (eq)
      val = eq + 1;
    else if (i + 1 < argc)
      val = argv[++i];
    if (!val) {
      fprintf(stderr, "fashion_mnist: %s needs a value\n", name);
      return 2;
    }
    char *end;
    double num = strtod(val, &end);
    int is_num = *val && *end == '\0';
    int is_count = is_num && num >= 1 && num == (double)(long long)num;
    if (!strcmp(name, "--epochs") && is_count && num <= MAX_EPOCHS)
      o->epochs = (long)num;
    else if (!strcmp(name, "--batch-size") && is_count && num <= 65536)
      o->cfg.batch = (size_t)num;
    else if (!strcmp(name, "--hidden") && is_count && num <= 65536)
      o->cfg.hidden = (size_t)num;
    else if (!strcmp(name, "--limit") && is_count)
      o->limit = (size_t)num;
    else if (!strcmp(name, "--seed") && parse_u64(val, &o->cfg.seed))
      continue;
    else if (!strcmp(name, "--lr") && is_num && num > 0)
      o->cfg.lr = (float)num, lr_given = 1;
    else if (!strcmp(name, "--label-smoothing") && is_num && num >= 0 &&
             num <= 1)
      o->cfg.label_smoothing = (float)num;
    else if (!strcmp(name, "--optimizer") &&
             (!strcmp(val, "adam") || !strcmp(val, "sgd")))
      o->cfg.optimizer = !strcmp(val, "sgd") ? FM_SGD : FM_ADAM;
    else if (!strcmp(name, "--device"))
      o->device = val;
    else if (!strcmp(name, "--data"))
      o->data = val;
    else if (!strcmp(name, "--plot"))
      o->plot = val;
    else {
      fprintf(stderr, "fashion_mnist: bad option or value: %s %s\n", name, val);
      usage(stderr);
      return 2;
    }
  }
  if (o->cfg.optimizer == FM_SGD && !lr_given)
    o->cfg.lr = 0.05f;
  return 0;
}

/* The progress bar: redrawn in place on a terminal, not shown otherwise. */
typedef struct progress {
  long epoch, epochs;
  double t0;
} progress;

static void show_progress(void *user, size_t done, size_t total,
                          double running_loss) {
  const progress *p = user;
  enum { WIDTH = 30 };
  char bar[WIDTH + 1];
  size_t fill = done * WIDTH / total;
  for (size_t i = 0; i < WIDTH; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[WIDTH] = '\0';
  double dt = now() - p->t0;
  printf("\repoch %ld/%ld [%s] %zu/%zu  %.1f batch/s  loss %.4f ", p->epoch,
         p->epochs, bar, done, total, dt > 0 ? done / dt : 0.0, running_loss);
  fflush(stdout);
}

static void print_check(const fm_check *c) {
  printf("check: first batch (%zu rows): loss %.7f device, %.7f reference; "
         "max |grad error| %.2e (max |grad| %.2e): %s\n",
         c->rows, c->loss_device, c->loss_reference, c->max_abs_grad_err,
         c->max_abs_grad, c->ok ? "OK" : "MISMATCH");
}

int main(int argc, char **argv) {
  options o = {0};
  int rc = parse(argc, argv, &o);
  if (rc)
    return rc;
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* The data first: a missing package is the likeliest failure. */
  fm_dataset train = {0}, test = {0};
  char err[1024];
  double t0 = now();
  int st = fm_dataset_load(o.data, "train", o.limit, &train, err, sizeof err);
  if (st == FM_IDX_OK)
    st = fm_dataset_load(o.data, "t10k", 0, &test, err, sizeof err);
  if (st != FM_IDX_OK) {
    fprintf(stderr, "fashion_mnist: %s\n", err);
    fm_dataset_free(&train);
    return 1;
  }
  printf("data: %zu training and %zu test images from %s (%.1f s)\n",
         train.count, test.count, o.data, now() - t0);

  clloss_device_info info;
  clloss_status s = clloss_device_select(o.device, &info, NULL);
  if (s != CLLOSS_SUCCESS) {
    fprintf(stderr, "fashion_mnist: no device%s%s: %s\n",
            o.device ? " matching " : "", o.device ? o.device : "",
            clloss_status_string(s));
    fm_dataset_free(&train);
    fm_dataset_free(&test);
    return 1;
  }
  printf("device: %s (%s)\n", info.name, info.platform_name);

  /* Our own OpenCL context and queue, as an application would have; clloss
   * works on them. */
  cl_int e;
  cl_context cl = clCreateContext(NULL, 1, &info.device, NULL, NULL, &e);
  cl_command_queue queue = NULL;
  clloss_context *ctx = NULL;
  fm_trainer *t = NULL;
  double *train_loss = NULL, *test_loss = NULL;
  rc = 1;
  if (!cl) {
    fprintf(stderr, "fashion_mnist: clCreateContext: %s\n",
            clloss_status_name(e));
    goto out;
  }
  queue = clCreateCommandQueue(cl, info.device, 0, &e);
  if (!queue) {
    fprintf(stderr, "fashion_mnist: clCreateCommandQueue: %s\n",
            clloss_status_name(e));
    goto out;
  }
  s = clloss_context_create(cl, info.device, &ctx);
  if (s != CLLOSS_SUCCESS) {
    fprintf(stderr, "fashion_mnist: clloss_context_create: %s\n",
            clloss_status_string(s));
    goto out;
  }

  t0 = now();
  if (fm_trainer_create(ctx, queue, &o.cfg, &train, &test, &t, err,
                        sizeof err) ||
      fm_trainer_warm_up(t)) {
    fprintf(stderr, "fashion_mnist: %s\n", t ? fm_trainer_error(t) : err);
    goto out;
  }
  printf("model: 784-%zu-10 MLP, %s lr %g, batch %zu, label smoothing %g; "
         "kernels ready in %.1f s\n",
         o.cfg.hidden, o.cfg.optimizer == FM_SGD ? "SGD momentum 0.9" : "Adam",
         o.cfg.lr, o.cfg.batch, o.cfg.label_smoothing, now() - t0);

  if (o.check) {
    fm_check c;
    if (fm_trainer_check(t, &c)) {
      fprintf(stderr, "fashion_mnist: %s\n", fm_trainer_error(t));
      goto out;
    }
    print_check(&c);
    if (!c.ok)
      goto out;
  }

  train_loss = calloc((size_t)o.epochs, sizeof *train_loss);
  test_loss = calloc((size_t)o.epochs, sizeof *test_loss);
  if (!train_loss || !test_loss) {
    fprintf(stderr, "fashion_mnist: out of memory\n");
    goto out;
  }
  int tty = isatty(STDOUT_FILENO);
  size_t batches = fm_trainer_batches(t);
  size_t every = batches / 60 ? batches / 60 : 1;
  double accuracy = 0, t_train = now();
  for (long ep = 1; ep <= o.epochs; ep++) {
    progress p = {ep, o.epochs, now()};
    if (fm_trainer_epoch(t, every, tty ? show_progress : NULL, &p,
                         &train_loss[ep - 1])) {
      fprintf(stderr, "\nfashion_mnist: %s\n", fm_trainer_error(t));
      goto out;
    }
    double dt = now() - p.t0;
    if (fm_trainer_evaluate(t, &test_loss[ep - 1], &accuracy)) {
      fprintf(stderr, "\nfashion_mnist: %s\n", fm_trainer_error(t));
      goto out;
    }
    printf("%sepoch %ld/%ld: train loss %.4f, test loss %.4f, test accuracy "
           "%.4f (%.1f s, %.0f batch/s)%s\n",
           tty ? "\r" : "", ep, o.epochs, train_loss[ep - 1], test_loss[ep - 1],
           accuracy, dt, batches / dt, tty ? "\033[K" : "");
  }
  printf("training: %.1f s\n", now() - t_train);
  if (fm_plot_losses(o.plot, train_loss, test_loss, (size_t)o.epochs, err,
                     sizeof err))
    fprintf(stderr, "fashion_mnist: plot not written: %s\n", err);
  else
    printf("plot: %s\n", o.plot);
  printf("test accuracy: %.4f\n", accuracy);
  rc = 0;

out:
  free(train_loss);
  free(test_loss);
  fm_trainer_release(t);
  /* CLBlast caches its programs, which hold our cl_context, until told. */
  CLBlastClearCache();
  fm_dataset_free(&train);
  fm_dataset_free(&test);
  clloss_context_release(ctx);
  if (queue)
    clReleaseCommandQueue(queue);
  if (cl)
    clReleaseContext(cl);
  return rc;
}
