#!/bin/bash
# The GPU benchmark, <= 8 minutes on one H200 with 16 cores (`make bench-gpu`):
#   1. R(2+1)D-18 16x112x112 training clips/s in fp32, bf16, bf16 + channels_last_3d;
#   2. the same + torch.compile, in its own process, stopped after AURL_GPU_COMPILE_LIMIT s;
#   3. Kinetics-like source videos (10 s, 340x256), then prepared (prepare_videos below);
#   4. the ZeroShotDataModule loader with N workers feeding the model: data wait and clips/s;
#   5. the report: benchmarks/results/gpu.{json,md} (gpu_quick.* with --tiny).
# Without --tiny a CUDA device is required: its absence stops the script with an error.
#   bash benchmarks/gpu.sh [--tiny] [--workers N] [--out-dir DIR]
# Environment: PYTHON (default python), AURL_GPU_COMPILE_LIMIT (seconds, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
COMPILE_LIMIT=${AURL_GPU_COMPILE_LIMIT:-180}
TINY=()
WORKERS=()
OUT_DIR=benchmarks/results
COMMAND="bash benchmarks/gpu.sh $*"
while (($#)); do
  case $1 in
    --tiny) TINY=(--tiny) ;;
    --workers) WORKERS=(--workers "$2"); shift ;;
    --out-dir) OUT_DIR=$2; shift ;;
    *) echo "gpu.sh: unknown argument $1 (expected --tiny, --workers N, --out-dir DIR)" >&2; exit 2 ;;
  esac
  shift
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bench() { "$PYTHON" -m benchmarks.gpu "$@"; }

# prepare_videos SRC DST: `aurl prepare-data` of the VideoFolder SRC (short side 128, a keyframe
# every 16 frames, no audio, one process per core); the prepared copy is DST/<name of SRC>.
prepare_videos() {
  printf 'class_path: data_modules.datasets.VideoFolder\ninit_args: {root: %s}\n' "$1" \
    > "$WORK/catalog.yaml"
  "$PYTHON" -m aurl.cli prepare-data "$WORK/catalog.yaml" --output "$2" >&2
}

bench check "${TINY[@]}"  # before any work: no CUDA device is an error (unless --tiny)
bench model "${TINY[@]}" --variants fp32 bf16 bf16_cl3d --json "$WORK/model.json"
if ((${#TINY[@]})); then
  COMPILE_STATUS=skipped  # inductor's CPU build would take longer than the whole smoke run
else
  set +e
  timeout --kill-after=15 "$COMPILE_LIMIT" \
    "$PYTHON" -m benchmarks.gpu model --variants bf16_cl3d_compile --json "$WORK/compile.json"
  status=$?
  set -e
  case $status in
    0) COMPILE_STATUS=ok ;;
    124 | 137) COMPILE_STATUS=timeout ;;
    *) COMPILE_STATUS=failed ;;
  esac
  echo "torch.compile variant: $COMPILE_STATUS (limit ${COMPILE_LIMIT} s)" >&2
fi
bench sources "${TINY[@]}" --out "$WORK/sources"
prepare_videos "$WORK/sources" "$WORK/prepared"
bench loader "${TINY[@]}" "${WORKERS[@]}" --videos "$WORK/prepared/sources" \
  --json "$WORK/loader.json"
bench report "${TINY[@]}" --model "$WORK/model.json" --compile "$WORK/compile.json" \
  --compile-status "$COMPILE_STATUS" --compile-limit "$COMPILE_LIMIT" \
  --loader "$WORK/loader.json" --out-dir "$OUT_DIR" --command "$COMMAND"
