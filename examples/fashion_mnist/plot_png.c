/* plot_png.c - PNG writer and loss plot. No plotting library: an RGB canvas,
 * Bresenham lines, a 5x7 bitmap font for the labels, zlib for IDAT. */
#include "plot_png.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* One chunk: length, type, data, CRC-32 of type and data. */
static int write_chunk(FILE *f, const char *type, const unsigned char *data,
                       size_t len) {
  unsigned char head[8], tail[4];
  put_u32(head, (uint32_t)len);
  memcpy(head + 4, type, 4);
  uLong crc = crc32(0L, (const Bytef *)type, 4);
  if (len)
    crc = crc32(crc, data, (uInt)len);
  put_u32(tail, (uint32_t)crc);
  return fwrite(head, 1, 8, f) == 8 &&
                 (!len || fwrite(data, 1, len, f) == len) &&
                 fwrite(tail, 1, 4, f) == 4
             ? 0
             : -1;
}

int fm_png_write_rgb(const char *path, const uint8_t *rgb, unsigned width,
                     unsigned height, char *err, size_t err_size) {
  size_t stride = (size_t)width * 3, raw_len = (stride + 1) * height;
  unsigned char *raw = malloc(raw_len);
  uLongf packed_len = compressBound((uLong)raw_len);
  unsigned char *packed = malloc(packed_len);
  if (!raw || !packed) {
    free(raw);
    free(packed);
    snprintf(err, err_size, "%s: out of memory", path);
    return -1;
  }
  for (unsigned y = 0; y < height; y++) { /* filter type 0 on every row */
    raw[y * (stride + 1)] = 0;
    memcpy(raw + y * (stride + 1) + 1, rgb + y * stride, stride);
  }
  int z = compress2(packed, &packed_len, raw, (uLong)raw_len, 9);
  free(raw);
  if (z != Z_OK) {
    free(packed);
    snprintf(err, err_size, "%s: deflate failed (%d)", path, z);
    return -1;
  }
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(packed);
    snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  static const unsigned char sig[8] = {0x89, 'P',  'N',  'G',
                                       '\r', '\n', 0x1a, '\n'};
  unsigned char ihdr[13];
  put_u32(ihdr, width);
  put_u32(ihdr + 4, height);
  ihdr[8] = 8;  /* bits per sample */
  ihdr[9] = 2;  /* colour type: RGB */
  ihdr[10] = 0; /* deflate */
  ihdr[11] = 0; /* adaptive filtering */
  ihdr[12] = 0; /* no interlace */
  int bad = fwrite(sig, 1, 8, f) != 8 || write_chunk(f, "IHDR", ihdr, 13) ||
            write_chunk(f, "IDAT", packed, packed_len) ||
            write_chunk(f, "IEND", NULL, 0);
  free(packed);
  if (fclose(f) != 0 || bad) {
    snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* ---- drawing ---- */

#define W 640
#define H 400
#define LEFT 70
#define RIGHT 20
#define TOP 40
#define BOTTOM 50

typedef struct canvas {
  uint8_t px[H][W][3];
} canvas;

static void dot(canvas *c, int x, int y, const uint8_t rgb[3]) {
  if (x >= 0 && x < W && y >= 0 && y < H)
    memcpy(c->px[y][x], rgb, 3);
}

static void box(canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]) {
  for (int j = y; j < y + h; j++)
    for (int i = x; i < x + w; i++)
      dot(c, i, j, rgb);
}

/* Bresenham, `thick` pixels wide. */
static void line(canvas *c, int x0, int y0, int x1, int y1, int thick,
                 const uint8_t rgb[3]) {
  int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1, e = dx + dy;
  for (;;) {
    box(c, x0 - thick / 2, y0 - thick / 2, thick, thick, rgb);
    if (x0 == x1 && y0 == y1)
      break;
    int e2 = 2 * e;
    if (e2 >= dy) {
      e += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      e += dx;
      y0 += sy;
    }
  }
}

/* A 5x7 font for the characters the plot writes; rows top to bottom, bit 4
 * is the leftmost pixel. Other characters are drawn as blanks. */
static const struct {
  char ch;
  uint8_t rows[7];
} font[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},
    {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
    {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
    {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}},
    {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}},
    {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}},
    {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}},
    {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
};

/* Draws `s` with its top-left corner at (x, y), `scale` pixels per dot;
 * returns the width drawn. */
static int text(canvas *c, int x, int y, const char *s, int scale,
                const uint8_t rgb[3]) {
  int x0 = x;
  for (; *s; s++, x += 6 * scale)
    for (size_t g = 0; g < sizeof font / sizeof font[0]; g++)
      if (font[g].ch == *s)
        for (int r = 0; r < 7; r++)
          for (int b = 0; b < 5; b++)
            if (font[g].rows[r] & (0x10 >> b))
              box(c, x + b * scale, y + r * scale, scale, scale, rgb);
  return x - x0;
}

static int text_width(const char *s, int scale) {
  return (int)strlen(s) * 6 * scale;
}

/* A 1, 2 or 5 times a power of ten, about a fifth of `range`. */
static double nice_step(double range) {
  double raw = range / 5.0, p = pow(10.0, floor(log10(raw)));
  double m = raw / p;
  return (m < 1.5 ? 1.0 : m < 3.5 ? 2.0 : m < 7.5 ? 5.0 : 10.0) * p;
}

int fm_plot_losses(const char *path, const double *train, const double *test,
                   size_t epochs, char *err, size_t err_size) {
  static const uint8_t black[3] = {0, 0, 0}, grid[3] = {225, 225, 225},
                       blue[3] = {31, 119, 180}, orange[3] = {255, 127, 14};
  if (epochs == 0) {
    snprintf(err, err_size, "%s: nothing to plot (0 epochs)", path);
    return -1;
  }
  canvas *c = malloc(sizeof *c);
  if (!c) {
    snprintf(err, err_size, "%s: out of memory", path);
    return -1;
  }
  memset(c, 255, sizeof *c);
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < epochs; i++)
    for (int s = 0; s < 2; s++) {
      const double *v = s ? test : train;
      if (v && isfinite(v[i])) {
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
      }
    }
  if (!(lo <= hi))
    lo = 0, hi = 1;
  if (hi - lo < 1e-6 * fmax(1.0, fabs(hi)))
    lo -= 0.5 * fmax(1e-3, fabs(lo) * 0.1),
        hi += 0.5 * fmax(1e-3, fabs(hi) * 0.1);
  double step = nice_step(hi - lo);
  lo = floor(lo / step) * step;
  hi = ceil(hi / step) * step;
  int pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
  /* Epoch e (1-based) sits at x; one epoch sits in the middle. */
#define PX(e)                                                                  \
  (LEFT + (epochs > 1                                                          \
               ? (int)lround((double)((e)-1) * pw / (double)(epochs - 1))      \
               : pw / 2))
#define PY(v) (TOP + ph - (int)lround(((v)-lo) / (hi - lo) * ph))
  int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  char label[32];
  for (double v = lo; v <= hi + step / 2; v += step) {
    int y = PY(v);
    line(c, LEFT, y, LEFT + pw, y, 1, grid);
    line(c, LEFT - 5, y, LEFT, y, 1, black);
    snprintf(label, sizeof label, "%.*f", decimals, v);
    text(c, LEFT - 8 - text_width(label, 1), y - 3, label, 1, black);
  }
  size_t every = epochs <= 10 ? 1 : (epochs + 9) / 10;
  for (size_t e = 1; e <= epochs; e += every) {
    int x = PX(e);
    line(c, x, TOP + ph, x, TOP + ph + 5, 1, black);
    snprintf(label, sizeof label, "%zu", e);
    text(c, x - text_width(label, 1) / 2, TOP + ph + 9, label, 1, black);
  }
  line(c, LEFT, TOP, LEFT, TOP + ph, 1, black);
  line(c, LEFT, TOP + ph, LEFT + pw, TOP + ph, 1, black);
  text(c, LEFT + pw / 2 - text_width("epoch", 2) / 2, H - 22, "epoch", 2,
       black);
  text(c, 8, 12, "cross-entropy loss per epoch", 2, black);
  for (int s = 0; s < 2; s++) {
    const double *v = s ? test : train;
    const uint8_t *col = s ? orange : blue;
    if (!v)
      continue;
    for (size_t e = 1; e <= epochs; e++) {
      if (!isfinite(v[e - 1]))
        continue;
      int x = PX(e), y = PY(v[e - 1]);
      box(c, x - 3, y - 3, 7, 7, col);
      if (e > 1 && isfinite(v[e - 2]))
        line(c, PX(e - 1), PY(v[e - 2]), x, y, 2, col);
    }
    /* Legend, top right. */
    int ly = TOP + 10 + 18 * s, lx = W - RIGHT - 110;
    box(c, lx, ly, 24, 3, col);
    text(c, lx + 32, ly - 5, s ? "test" : "train", 2, black);
  }
#undef PX
#undef PY
  int r = fm_png_write_rgb(path, &c->px[0][0][0], W, H, err, err_size);
  free(c);
  return r;
}
