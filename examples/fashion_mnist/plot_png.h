/* plot_png.h - a minimal PNG writer (zlib deflate + CRC) and the loss plot:
 * train and test loss per epoch as two polylines with axes and ticks. */
#ifndef FM_PLOT_PNG_H
#define FM_PLOT_PNG_H
#include <stddef.h>
#include <stdint.h>

/* Writes `rgb` (height rows of width * 3 bytes) as an 8-bit RGB PNG.
 * Returns 0, or -1 with a sentence in `err`. */
int fm_png_write_rgb(const char *path, const uint8_t *rgb, unsigned width,
                     unsigned height, char *err, size_t err_size);

/* Plots train[i] and test[i] (test may be NULL) against epochs 1..epochs
 * into a 640 x 400 PNG at `path`. Returns 0, or -1 with `err` set. */
int fm_plot_losses(const char *path, const double *train, const double *test,
                   size_t epochs, char *err, size_t err_size);

#endif
