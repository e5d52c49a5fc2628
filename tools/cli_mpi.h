/* cli_mpi.h - what every --vocab-parallel command shares (cli_mpi.c): MPI
 * set-up, the processes' agreement and gathering, and the
 * shards of `clloss run` (cli_run.h). Without the MPI layer cli_mpi.c
 * stands in for the MPI-only entry points with the no-MPI error. */
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

#endif

#endif
