/* mlp.h - a 784 -> hidden -> 10 ReLU MLP trained on an OpenCL device: GEMMs
 * through CLBlast, the loss and its gradient through clloss, the rest in the
 * example's own kernels (kernels.cl). */
#ifndef FM_MLP_H
#define FM_MLP_H
#include <stddef.h>
#include <stdint.h>

#include "clloss.h"
#include "idx.h"

typedef enum fm_optimizer { FM_ADAM = 0, FM_SGD = 1 } fm_optimizer;

typedef struct fm_config {
  size_t hidden;          /* hidden units (256) */
  size_t batch;           /* training mini-batch rows (128) */
  size_t eval_batch;      /* rows per evaluation chunk (1000) */
  fm_optimizer optimizer; /* FM_ADAM */
  float lr;               /* learning rate (1e-3 for Adam) */
  float momentum;         /* SGD momentum (0.9) */
  float weight_decay;     /* L2 added to the gradient (0) */
  float label_smoothing;  /* clloss cross_entropy's label_smoothing (0) */
  uint64_t seed;          /* initial weights and shuffling (1) */
} fm_config;

#define FM_CONFIG_INIT                                                         \
  { 256, 128, 1000, FM_ADAM, 1e-3f, 0.9f, 0.0f, 0.0f, 1 }

typedef struct fm_trainer fm_trainer;

/* Status of the calls below: 0, or the failing call's own code (OpenCL,
 * clloss or CLBlast; fm_trainer_error() says which and where). */

/* Uploads both splits (as bytes) and the initial weights, builds the
 * kernels. `ctx` is a clloss context on the cl_context and device of
 * `queue`, an in-order queue; both stay the caller's and must outlive the
 * trainer. `test` may be NULL (no evaluation). On failure, *out is NULL and
 * `err` holds the reason. */
int fm_trainer_create(clloss_context *ctx, cl_command_queue queue,
                      const fm_config *cfg, const fm_dataset *train,
                      const fm_dataset *test, fm_trainer **out, char *err,
                      size_t err_size);
void fm_trainer_release(fm_trainer *t);
/* The reason for the last failure on t. */
const char *fm_trainer_error(const fm_trainer *t);

/* Runs every kernel once (forward, loss, backward, an evaluation chunk)
 * without changing the model, so that CLBlast's and the devices' program
 * builds happen here rather than inside the first timed epoch. */
int fm_trainer_warm_up(fm_trainer *t);

/* Called every `every` batches and after the last one with the batches done
 * so far and the mean loss over them; each call costs one small read. */
typedef void (*fm_progress_fn)(void *user, size_t done, size_t total,
                               double running_loss);

/* One pass over the shuffled training set. Without a callback, the host
 * waits only once, at the end. *train_loss gets the epoch's mean loss. */
int fm_trainer_epoch(fm_trainer *t, size_t every, fm_progress_fn progress,
                     void *user, double *train_loss);

/* Mean loss and accuracy over the test split (same loss definition). */
int fm_trainer_evaluate(fm_trainer *t, double *loss, double *accuracy);

typedef struct fm_check {
  size_t rows;
  double loss_device, loss_reference;
  double max_abs_grad_err; /* max |dL/dz device - reference| */
  double max_abs_grad;     /* max |dL/dz reference|, for scale */
  int ok;                  /* within the tolerances below */
} fm_check;

/* Runs the forward pass and clloss on the first training batch (in the
 * current order, without updating) and compares loss and gradient with
 * clloss_reference_cross_entropy: |dloss| <= 1e-5 + 1e-5 |loss|,
 * |dgrad| <= 1e-6 + 1e-4 max|grad|. */
int fm_trainer_check(fm_trainer *t, fm_check *out);

/* Number of training batches per epoch. */
size_t fm_trainer_batches(const fm_trainer *t);

#endif
