/* idx.h - reader for the IDX files of (Fashion-)MNIST, plain or gzip'd, and
 * the loader of one split (images + labels) of the data set. */
#ifndef FM_IDX_H
#define FM_IDX_H
#include <stddef.h>
#include <stdint.h>

/* Where Debian's dataset-fashion-mnist package puts the files. */
#define FM_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

/* Every reader call returns one of these; the `err` buffer of the call gets a
 * sentence naming the file and what is wrong with it. */
typedef enum fm_idx_status {
  FM_IDX_OK = 0,
  FM_IDX_ERR_OPEN = -1,      /* the file is missing or cannot be opened */
  FM_IDX_ERR_READ = -2,      /* I/O or gzip stream error */
  FM_IDX_ERR_MAGIC = -3,     /* not an IDX header: bad magic number */
  FM_IDX_ERR_TYPE = -4,      /* an element type other than unsigned byte */
  FM_IDX_ERR_TRUNCATED = -5, /* fewer data bytes than the header promises */
  FM_IDX_ERR_TRAILING = -6,  /* more bytes than the header promises */
  FM_IDX_ERR_DIMS = -7,      /* shapes that do not fit (ranks, counts) */
  FM_IDX_ERR_LABEL = -8,     /* a label outside [0, FM_CLASSES) */
  FM_IDX_ERR_MEMORY = -9     /* out of host memory */
} fm_idx_status;

#define FM_CLASSES 10

/* "FM_IDX_ERR_MAGIC", ...; never NULL. */
const char *fm_idx_status_name(int status);

/* One IDX array of unsigned bytes: dims[0] x ... x dims[ndims-1]. */
typedef struct fm_idx {
  int ndims;        /* 1 to 4 */
  uint32_t dims[4]; /* dims[0] is the item count */
  size_t size;      /* bytes of data: the product of dims */
  uint8_t *data;
} fm_idx;

/* Reads the IDX file at `path` (gzip'd or not: zlib reads both). With
 * max_items > 0, reads at most that many items along dimension 0 and sets
 * dims[0] to the number read; otherwise reads all and checks that nothing
 * follows the data. On failure *out is left empty. */
int fm_idx_read(const char *path, size_t max_items, fm_idx *out, char *err,
                size_t err_size);
void fm_idx_free(fm_idx *idx);

/* One split: count images of rows x cols pixels and their labels. */
typedef struct fm_dataset {
  size_t count, rows, cols;
  uint8_t *images; /* count * rows * cols bytes, 0 (background) to 255 */
  uint8_t *labels; /* count labels in [0, FM_CLASSES) */
} fm_dataset;

/* Loads `<dir>/<split>-images-idx3-ubyte[.gz]` and
 * `<dir>/<split>-labels-idx1-ubyte[.gz]`, split being "train" or "t10k".
 * limit > 0 keeps only the first `limit` items. Checks ranks (3 and 1), that
 * both files hold the same count, and that labels are in [0, FM_CLASSES). */
int fm_dataset_load(const char *dir, const char *split, size_t limit,
                    fm_dataset *out, char *err, size_t err_size);
void fm_dataset_free(fm_dataset *ds);

#endif
