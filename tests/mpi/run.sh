#!/usr/bin/env bash
# tests/mpi/run.sh BUILD_DIR - the MPI layer's tests (./run test): the test
# program BUILD_DIR/tests/clloss_mpi_tests under mpirun with 2 and then 3
# processes on this machine, each on the default OpenCL device, and the
# example examples/vocab_parallel with 2. Each run is under `timeout`, so
# that a process left waiting in a collective (what test_mpi_agree.c
# reproduces: processes that disagree or fail) is a failure, not a hang;
# 600 s leaves room for a cold kernel cache (280 s seen with 2 processes
# on 2 busy cores; warm: a few seconds). Exit status: the number of runs
# that failed; 0 with a printed reason when MPI is missing.
set -u
build=${1:?usage: tests/mpi/run.sh BUILD_DIR}
prog=$build/tests/clloss_mpi_tests
if ! command -v mpirun >/dev/null; then
  echo "mpi tests: skipped: no mpirun (install openmpi-bin)"
  exit 0
fi
if [ ! -x "$prog" ]; then
  echo "mpi tests: skipped: $prog was not built (CMake found no MPI;" \
       "install libopenmpi-dev)"
  exit 0
fi
args=()
if mpirun --version 2>/dev/null | grep -q "Open MPI"; then
  # More processes than cores (2 here), as root in a container, over
  # shared memory only (no network there).
  args+=(--oversubscribe)
  [ "$(id -u)" -eq 0 ] && args+=(--allow-run-as-root)
  export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
  export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
  export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
fi
failed=0
for np in 2 3; do
  start=$(date +%s%N)
  if ! timeout 600 mpirun "${args[@]}" -np "$np" "$prog"; then
    echo "mpi tests: FAILED with $np processes"
    failed=$((failed + 1))
  fi
  echo "mpi tests: $np processes, $(( ($(date +%s%N) - start) / 1000000 )) ms wall"
done
# The example that trains with its output layer split over 2 processes:
# its exit status says whether the loss fell below half its first value.
example=$build/examples/vocab_parallel
if [ -x "$example" ]; then
  out=$(timeout 300 mpirun "${args[@]}" -np 2 "$example" --steps 100 2>&1)
  rc=$?
  echo "examples/vocab_parallel: ${out##*$'\n'}"
  if [ "$rc" -ne 0 ]; then
    echo "$out"
    echo "mpi tests: FAILED: examples/vocab_parallel exited with $rc"
    failed=$((failed + 1))
  fi
fi
exit "$failed"
