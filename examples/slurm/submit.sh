#!/bin/bash
# Submit the whole pipeline as chained SLURM array jobs: describe → encode-text → fuse → metrics → merge.
#
#   TASK=ivf A=/data/MSRS/ir B=/data/MSRS/vi OUT=/scratch/msrs SHARDS=16 examples/slurm/submit.sh
#
# Each stage is an array of SHARDS tasks (examples/slurm/stage.sbatch); the next stage starts when every task of
# the previous one has ended (afterany: a shard with a bad pair does not hold back the rest). Extra sbatch
# options for every job go in SBATCH_OPTS (e.g. "--partition=gpu --gres=gpu:1").
set -euo pipefail

: "${TASK:?set TASK}" "${A:?set A}" "${B:?set B}" "${OUT:?set OUT}"
SHARDS="${SHARDS:-8}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export TASK A B OUT FUSEKIT_EXAMPLES="$(dirname "$HERE")"
previous=""
for stage in describe encode-text fuse metrics; do
  job=$(sbatch --parsable ${SBATCH_OPTS:-} --array=0-$((SHARDS - 1)) ${previous:+--dependency=afterany:$previous} \
        --job-name="fusekit-$stage" "$HERE/stage.sbatch" "$stage")
  echo "$stage: job $job"
  previous="$job"
done
job=$(sbatch --parsable ${SBATCH_OPTS:-} --dependency=afterany:"$previous" "$HERE/merge.sbatch")
echo "merge: job $job"
