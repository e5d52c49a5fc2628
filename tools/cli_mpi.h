/* cli_mpi.h - the MPI set-up, agreement, timing and gathering that every
 * --vocab-parallel command shares (cli_mpi.c). The commands' own files
 * (cli_*vocab_parallel.c) are built only with the MPI layer; without it
 * cli_mpi.c stands in for their entry points with the no-MPI error. */
#ifndef CLLOSS_CLI_MPI_H
#define CLLOSS_CLI_MPI_H

#include "cli.h"

/* --vocab-parallel: every process learns whether any failed so far (rc,
 * the reason in cli_captured(); `own`: the failure is its own, not
 * another process's reported back) and which outputs each was given
 * (`wanted`, bits). One MPI_Allgather of fixed-size records. When any
 * failed, every process prints one line "clloss run: process R of P:
 * reason" (R the lowest that failed on its own) and returns R's code;
 * when the outputs differ, one line naming both and CLI_USAGE; else
 * CLI_OK. Clears the captured message. Without MPI: rc. */
int cli_vp_agree(int rc, int own, unsigned wanted);

/* MPI_Init unless MPI is already initialised, and this process's rank and
 * the job's size: CLI_OK, or an error of subcommand `cmd`. cli_mpi_end
 * calls MPI_Finalize when cli_mpi_begin called MPI_Init. Without MPI:
 * the no-MPI usage error (cli_no_mpi). */
int cli_mpi_begin(const char *cmd, int *rank, int *size);
void cli_mpi_end(void);

#ifdef CLLOSS_CLI_HAVE_MPI
#include "clloss_mpi.h"

/* Whether any process is `bad`, on every process (the collective steps
 * that follow must be run by all or by none). */
int cli_mpi_anyone(int bad);

/* `repeat` timed runs of fn after `warmup` untimed ones (by every process,
 * or process 0 alone while the others wait asleep), the slowest process's
 * time of each from a barrier, the median into *median: CLI_OK, or
 * CLI_DATA_ERROR when fn failed anywhere. */
typedef clloss_status (*cli_mpi_fn)(void *state);
int cli_mpi_timed(int repeat, int warmup, cli_mpi_fn fn, void *state,
                  int everyone, double *median);

/* Process 0 receives each process's block of an even split of `classes`
 * (clloss_mpi_even_shard): `rows` rows of its classes, `per` bytes per
 * class, and lays them side by side in `full` ([rows, classes]); the
 * others send theirs. With rows > 1 the blocks pass through `scratch`
 * (process 0: rows * classes * per bytes). counts: 2 * size ints.
 * Returns MPI's code. */
int cli_mpi_gather(const void *mine, void *full, void *scratch, size_t rows,
                   size_t classes, size_t per, int *counts);
#endif

#endif
