/* test_train.c - the Fashion-MNIST example's training core on a few hundred
 * images: the loss falls, the first batch matches clloss's CPU reference,
 * a seed fixes the run, and the loss plot is a valid PNG. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"

#ifndef CLLOSS_HAVE_MNIST_CORE
static void test_train_not_built(void) {
  tu_skip("fashion_mnist_core is not built (CLBlast or zlib missing)");
}
int test_train_register(void) {
  TU_SUITE("train", NULL, NULL, TU_TEST(test_train_not_built));
}
#else
#include <unistd.h>
#include <zlib.h>

#include <clblast_c.h>

#include "fashion_mnist/idx.h"
#include "fashion_mnist/mlp.h"
#include "fashion_mnist/plot_png.h"

#define TRAIN_IMAGES 512
#define TEST_IMAGES 500

static fm_dataset g_train, g_test;
static int g_have_data;
static char g_why[1024];

static int suite_init(void) {
  g_have_data = fm_dataset_load(FM_DEFAULT_DATA_DIR, "train", TRAIN_IMAGES,
                                &g_train, g_why, sizeof g_why) == FM_IDX_OK &&
                fm_dataset_load(FM_DEFAULT_DATA_DIR, "t10k", TEST_IMAGES,
                                &g_test, g_why, sizeof g_why) == FM_IDX_OK;
  return 0;
}

static int suite_clean(void) {
  fm_dataset_free(&g_train);
  fm_dataset_free(&g_test);
  /* CLBlast's program cache holds the test context's cl_context. */
  CLBlastClearCache();
  return 0;
}

/* A trainer on the first test device with its own in-order queue, or NULL
 * (with the reason printed) when there is no device or no data. */
static fm_trainer *make(const fm_config *cfg, cl_command_queue *queue) {
  *queue = NULL;
  if (tu_device_count() == 0) {
    tu_skip("no OpenCL device");
    return NULL;
  }
  if (!g_have_data) {
    tu_skip("%s", g_why);
    return NULL;
  }
  clloss_context *ctx = tu_context(0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  cl_int e;
  *queue = clCreateCommandQueue(clloss_context_cl_context(ctx),
                                clloss_context_device(ctx), 0, &e);
  CU_ASSERT_PTR_NOT_NULL_FATAL(*queue);
  fm_trainer *t = NULL;
  char err[1024];
  int s = fm_trainer_create(ctx, *queue, cfg, &g_train, &g_test, &t, err,
                            sizeof err);
  if (s)
    printf("\n  fm_trainer_create: %s", err);
  CU_ASSERT_EQUAL_FATAL(s, 0);
  return t;
}

static void done(fm_trainer *t, cl_command_queue queue) {
  fm_trainer_release(t);
  if (queue)
    clReleaseCommandQueue(queue);
}

/* Trains `epochs` epochs; losses[i] gets epoch i's mean training loss. */
static void train(fm_trainer *t, int epochs, double *losses) {
  for (int i = 0; i < epochs; i++) {
    int s = fm_trainer_epoch(t, 0, NULL, NULL, &losses[i]);
    if (s)
      printf("\n  epoch %d: %s", i + 1, fm_trainer_error(t));
    CU_ASSERT_EQUAL_FATAL(s, 0);
  }
}

static void progress(void *user, size_t done, size_t total, double loss) {
  size_t *calls = user;
  (*calls)++;
  CU_ASSERT(done >= 1 && done <= total);
  CU_ASSERT(isfinite(loss) && loss > 0);
}

static void test_train_loss_falls_adam(void) {
  fm_config cfg = FM_CONFIG_INIT;
  cfg.batch = 64;
  cl_command_queue q;
  fm_trainer *t = make(&cfg, &q);
  if (!t)
    return;
  CU_ASSERT_EQUAL(fm_trainer_batches(t), TRAIN_IMAGES / 64);
  double before, acc_before, after, acc_after, losses[4];
  CU_ASSERT_EQUAL(fm_trainer_evaluate(t, &before, &acc_before), 0);
  /* Untrained: close to log 10 = 2.30 and about chance. */
  CU_ASSERT(fabs(before - log(10.0)) < 0.5);
  size_t calls = 0;
  CU_ASSERT_EQUAL(fm_trainer_epoch(t, 3, progress, &calls, &losses[0]), 0);
  CU_ASSERT_EQUAL(calls, 3); /* after batches 3, 6 and the last (8) */
  train(t, 3, losses + 1);
  CU_ASSERT_EQUAL(fm_trainer_evaluate(t, &after, &acc_after), 0);
  printf("\n  train loss %.4f %.4f %.4f %.4f; test loss %.4f -> %.4f, "
         "accuracy %.3f -> %.3f",
         losses[0], losses[1], losses[2], losses[3], before, after, acc_before,
         acc_after);
  for (int i = 1; i < 4; i++)
    CU_ASSERT(losses[i] < losses[i - 1]);
  CU_ASSERT(losses[3] < 0.7 * losses[0]);
  CU_ASSERT(after < 0.6 * before);
  CU_ASSERT(acc_after > 0.6);
  done(t, q);
}

static void test_train_loss_falls_sgd_smoothing(void) {
  fm_config cfg = FM_CONFIG_INIT;
  cfg.optimizer = FM_SGD;
  cfg.lr = 0.05f;
  cfg.batch = 100; /* 512 rows: a last batch of 12 */
  cfg.hidden = 64;
  cfg.label_smoothing = 0.1f;
  cl_command_queue q;
  fm_trainer *t = make(&cfg, &q);
  if (!t)
    return;
  CU_ASSERT_EQUAL(fm_trainer_batches(t), 6);
  double losses[4];
  train(t, 4, losses);
  printf("\n  train loss %.4f %.4f %.4f %.4f", losses[0], losses[1], losses[2],
         losses[3]);
  CU_ASSERT(losses[3] < 0.8 * losses[0]);
  done(t, q);
}

static void test_train_check_matches_reference(void) {
  fm_config cfg = FM_CONFIG_INIT;
  cfg.label_smoothing = 0.05f;
  cl_command_queue q;
  fm_trainer *t = make(&cfg, &q);
  if (!t)
    return;
  fm_check c;
  CU_ASSERT_EQUAL_FATAL(fm_trainer_check(t, &c), 0);
  printf("\n  loss %.7f vs %.7f, max grad error %.2e of %.2e", c.loss_device,
         c.loss_reference, c.max_abs_grad_err, c.max_abs_grad);
  CU_ASSERT_EQUAL(c.rows, 128);
  CU_ASSERT(c.ok);
  CU_ASSERT(c.max_abs_grad > 0);
  done(t, q);
}

/* Same seed, same device: bit-identical losses; another seed differs. */
static void test_train_seed_reproducible(void) {
  double a[2], b[2], c[2];
  for (int run = 0; run < 3; run++) {
    fm_config cfg = FM_CONFIG_INIT;
    cfg.hidden = 32;
    cfg.seed = run == 2 ? 7 : 3;
    cl_command_queue q;
    fm_trainer *t = make(&cfg, &q);
    if (!t)
      return;
    train(t, 2, run == 0 ? a : run == 1 ? b : c);
    done(t, q);
  }
  CU_ASSERT(a[0] == b[0] && a[1] == b[1]);
  CU_ASSERT(a[1] != c[1]);
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* The plot is a PNG whose chunks' CRCs hold and whose image inflates to
 * 400 rows of a filter byte and 640 RGB pixels. */
static void test_train_plot_png(void) {
  char file[64] = "/tmp/clloss-plot-XXXXXX";
  int fd = mkstemp(file);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  double tr[3] = {0.6, 0.4, 0.35}, te[3] = {0.5, 0.45, 0.44};
  char err[256];
  CU_ASSERT_EQUAL_FATAL(fm_plot_losses(file, tr, te, 3, err, sizeof err), 0);
  CU_ASSERT_EQUAL(
      fm_plot_losses("/nonexistent-dir/x.png", tr, te, 3, err, sizeof err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot write /nonexistent-dir/x.png"));
  FILE *f = fopen(file, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static unsigned char png[1 << 16];
  size_t n = fread(png, 1, sizeof png, f);
  fclose(f);
  unlink(file);
  CU_ASSERT_FATAL(n > 8 && n < sizeof png);
  CU_ASSERT(memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
  static unsigned char idat[1 << 16], pixels[400 * (640 * 3 + 1)];
  size_t idat_len = 0, chunks = 0;
  for (size_t i = 8; i + 12 <= n; chunks++) {
    uint32_t len = be32(png + i);
    CU_ASSERT_FATAL(i + 12 + len <= n);
    uint32_t crc = (uint32_t)crc32(0, png + i + 4, len + 4);
    CU_ASSERT(crc == be32(png + i + 8 + len));
    if (!memcmp(png + i + 4, "IHDR", 4)) {
      CU_ASSERT_EQUAL(be32(png + i + 8), 640);
      CU_ASSERT_EQUAL(be32(png + i + 12), 400);
    } else if (!memcmp(png + i + 4, "IDAT", 4)) {
      memcpy(idat + idat_len, png + i + 8, len);
      idat_len += len;
    }
    i += 12 + len;
  }
  CU_ASSERT_EQUAL(chunks, 3);
  uLongf out = sizeof pixels;
  CU_ASSERT_EQUAL(uncompress(pixels, &out, idat, idat_len), Z_OK);
  CU_ASSERT_EQUAL(out, sizeof pixels);
}

int test_train_register(void) {
  TU_SUITE("train", suite_init, suite_clean,
           TU_TEST(test_train_loss_falls_adam),
           TU_TEST(test_train_loss_falls_sgd_smoothing),
           TU_TEST(test_train_check_matches_reference),
           TU_TEST(test_train_seed_reproducible), TU_TEST(test_train_plot_png));
}
#endif
