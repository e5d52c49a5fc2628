/* kernels.cl - the example's own kernels around CLBlast's GEMMs and clloss's
 * loss: batch gather, bias + ReLU, their backward passes, the optimizers and
 * the on-device sums that keep the host out of the per-batch loop. */

/* x[r, p] = images[perm[start + r], p] * scale + shift; y[r] = its label.
 * Global size (pixels, rows). Normalizing here keeps the data set on the
 * device as bytes: 47 MB instead of 188 MB of floats. */
__kernel void gather_batch(__global const uchar *images,
                           __global const uchar *labels,
                           __global const int *perm, int start, int pixels,
                           float scale, float shift, __global float *x,
                           __global int *y) {
  int p = get_global_id(0), r = get_global_id(1);
  size_t item = (size_t)perm[start + r];
  x[(size_t)r * pixels + p] = images[item * pixels + p] * scale + shift;
  if (p == 0)
    y[r] = labels[item];
}

/* h[r, c] += bias[c], then max(h, 0) when relu != 0. Global (cols, rows);
 * the bias sits at `bias_off` in the parameter buffer. */
__kernel void bias_act(__global float *h, __global const float *params,
                       int bias_off, int cols, int relu) {
  int c = get_global_id(0), r = get_global_id(1);
  size_t i = (size_t)r * cols + c;
  float v = h[i] + params[bias_off + c];
  h[i] = relu ? fmax(v, 0.0f) : v;
}

/* dh *= [h > 0]: ReLU's derivative, read from its output. */
__kernel void relu_backward(__global float *dh, __global const float *h) {
  size_t i = get_global_id(0);
  if (!(h[i] > 0.0f))
    dh[i] = 0.0f;
}

/* out[off + c] = sum_r g[r, c]: the bias gradient. One work-item per column
 * summing its rows in order, so the result is the same on every run. */
__kernel void column_sums(__global const float *g, int rows, int cols,
                          __global float *out, int out_off) {
  int c = get_global_id(0);
  float s = 0.0f;
  for (int r = 0; r < rows; r++)
    s += g[(size_t)r * cols + c];
  out[out_off + c] = s;
}

/* Adam (PyTorch's torch.optim.Adam, weight decay added to the gradient):
 *   m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2
 *   p -= lr (m / bc1) / (sqrt(v / bc2) + eps),  bc = 1 - b^t            */
__kernel void adam_step(__global float *p, __global const float *g,
                        __global float *m, __global float *v, float lr,
                        float b1, float b2, float eps, float bc1, float bc2,
                        float weight_decay) {
  size_t i = get_global_id(0);
  float gi = g[i] + weight_decay * p[i];
  float mi = b1 * m[i] + (1.0f - b1) * gi;
  float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] -= lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
}

/* SGD with momentum (torch.optim.SGD): buf = mu buf + g; p -= lr buf. */
__kernel void sgd_step(__global float *p, __global const float *g,
                       __global float *buf, float lr, float momentum,
                       float weight_decay) {
  size_t i = get_global_id(0);
  float gi = g[i] + weight_decay * p[i];
  float b = momentum * buf[i] + gi;
  buf[i] = b;
  p[i] -= lr * b;
}

/* acc[0] += loss[0] * weight; acc[1] += weight. One work-item: the running
 * loss stays on the device, and in-order queues make the sum deterministic. */
__kernel void accumulate(__global const float *loss, __global float *acc,
                         float weight) {
  acc[0] += loss[0] * weight;
  acc[1] += weight;
}

/* correct[0] += [argmax_c z[r, c] == y[r]] (first maximum wins). One
 * work-item per row; integer atomics are exact, so order does not matter. */
__kernel void count_correct(__global const float *z, __global const int *y,
                            int classes, __global int *correct) {
  int r = get_global_id(0);
  __global const float *row = z + (size_t)r * classes;
  int best = 0;
  for (int c = 1; c < classes; c++)
    if (row[c] > row[best])
      best = c;
  if (best == y[r])
    atomic_inc(correct);
}
