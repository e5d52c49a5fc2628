/* stats.c - the median and minimum of timed runs, for the harness, the
 * copy kernel's calibration and kernel_ab: a file of its own, so that
 * device.c (data and copy kernel) and harness.c (which fills its buffers
 * through device.c) do not call each other. */
#include <stdlib.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void bench_stats(double *v, size_t n, double *median, double *min) {
  qsort(v, n, sizeof *v, cmp_double);
  *min = v[0];
  *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
