/* mpi_check.h - the MPI test program's helpers: checks counted on every
 * process, the problems and their blocks, and the comparisons (the loss
 * within 1e-6 relative, the gradient within 4 ulps, the loss the same bits
 * on every process). */
#ifndef CLLOSS_MPI_CHECK_H
#define CLLOSS_MPI_CHECK_H
#include <stddef.h>
#include <stdint.h>

#include "clloss_mpi.h"

typedef struct mc_state {
  int rank, size;
  long checks, failures;
  double t0;
} mc_state;

void mc_init(mc_state *st);
/* Sums the failures of all processes, prints them (process 0); returns
 * the sum. */
int mc_finish(mc_state *st);
/* Counts a check; prints the message when `ok` is false. */
void mc_check(mc_state *st, int ok, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
#define MC_CHECK(st, ok, ...) mc_check((st), (ok), __VA_ARGS__)

/* A whole [N, V] problem of desc's types, the same on every process:
 * logits x, targets (indices or probabilities), class weights w, upstream
 * gradients g (N values), and grad0, what accumulate adds to. */
typedef struct mc_problem {
  void *x, *target, *w, *g, *grad0;
} mc_problem;
void mc_make(mc_problem *pb, const clloss_cross_entropy_desc *d, int weights,
             int ignore, int salt);
void mc_free(mc_problem *pb);

/* This process's block of a problem: rows `ld` apart (0: dense), the
 * gradient starting as grad0's block, its padding columns as MC_PAD. */
#define MC_PAD 5.0
typedef struct mc_block {
  void *x, *target, *w, *grad;
} mc_block;
void mc_block_make(mc_block *b, const mc_problem *pb,
                   const clloss_cross_entropy_desc *d, const clloss_shard *sh,
                   size_t ld);
void mc_block_free(mc_block *b);
/* The gradient's padding columns [classes, ld) that are no longer MC_PAD
 * (the default padding policy leaves them untouched). */
size_t mc_padding_changed(const clloss_cross_entropy_desc *d,
                          const clloss_shard *sh, size_t ld, const void *grad);

/* got[n] against want[n], of the loss type of input_type. */
void mc_check_loss(mc_state *st, const char *what, clloss_dtype input_type,
                   const void *got, const void *want, size_t n);
/* The same bytes on every process. */
void mc_check_same_everywhere(mc_state *st, const char *what, const void *p,
                              size_t bytes);
/* The block's gradient against its columns of the whole one `want`,
 * measured in ulps of the largest term of its row (dx_j = s (p_j A - b_j)
 * dcap_j is the difference of two terms; clloss.h): within 4 for class
 * indices, 8 for probability targets, whose A = sum_c a_c + 2 z lse is a
 * sum over the V classes that the split adds in another order. Elementwise
 * ulps are no measure here: the split changes the rounding of log S, which
 * moves p_j = exp((v_j - m) - log S) by up to |v_j - m - log S| ulps, and
 * the two terms can cancel. Seeds 1-30 with 2 and 3 processes gave at most
 * 2 (class indices) and 7 (probabilities); elementwise up to 13 ulps for
 * plain class indices, thousands where the terms cancel. MC_STATS=1 prints
 * both measures. */
void mc_check_block(mc_state *st, const char *what,
                    const clloss_cross_entropy_desc *d, const mc_problem *pb,
                    const clloss_shard *sh, size_t ld, const void *grad,
                    const void *want);

cl_mem mc_buffer(clloss_context *ctx, size_t bytes, const void *init);
void mc_read(clloss_context *ctx, cl_mem mem, size_t bytes, void *out);

/* An input file of a CLI test: name.npy, of `type`, ndim <= 2 dimensions. */
typedef struct mc_file {
  const char *name;
  clloss_dtype type;
  int ndim;
  size_t shape[2];
  const void *data;
} mc_file;

/* Process 0 makes a folder /tmp/clloss-<tag>-XXXXXX and writes the files
 * into it; every process learns its name in dir (len bytes). Returns 1
 * where all were written, on every process (tests/mpi/mpi_cli.c). */
int mc_write_files(const char *tag, const mc_file *files, size_t n, char *dir,
                   size_t len);

/* The CLI's `run cross_entropy --vocab-parallel` against its single-device
 * run (tests/mpi/mpi_cli.c). */
void mc_test_cli(mc_state *st, clloss_context *ctx);

/* Vocabulary-parallel linear_cross_entropy against the single-device call
 * (tests/mpi/test_mpi_linear.c). */
void mc_test_linear(mc_state *st, clloss_context *ctx);

/* Processes that disagree or fail: the same error everywhere, no hang
 * (tests/mpi/test_mpi_agree.c, issue 21). */
void mc_test_agree(mc_state *st, clloss_context *ctx);

#endif
