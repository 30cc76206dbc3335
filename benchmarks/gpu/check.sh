#!/usr/bin/env bash
# The prepared GPU check (issue #35): at most 9 minutes; every result in $OUT (default benchmarks/gpu/out):
# check.json (everything, summarised), check.log (the full log), nb201_scale.json and its ranking (JSON and PNG).
#
#   bash benchmarks/gpu/check.sh                          # on a GPU machine (device cuda), repo root as cwd
#   bash benchmarks/gpu/check.sh --device cpu --tiny      # the rehearsal on a CPU machine
#
# Needs .gpu/ (python -m benchmarks.gpu.data pack ...: a CIFAR-10 subset and PTB, < 64 MiB), carried with the
# working tree. Installs nothing: the project runs from src/ (PYTHONPATH) on the machine's own torch.
# Parts, in order of priority, each with its own time limit inside the 9 minutes (a part that no longer fits is
# recorded as skipped): the environment; the gpu-marked tests on the device; the NAS-Bench-201 supernet at the
# benchmark's size for a fixed budget, ranked on 1,000 non-isomorphic cells; search_step.py for rnn, cnn, nb201 on
# the device and on the machine's CPU cores; two ranks (only where two GPUs are visible).
set -u
DEVICE=cuda
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "check.sh: unknown argument $1 (use --device DEV, --tiny)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
OUT=${OUT:-benchmarks/gpu/out}
WORK=${WORK:-$(mktemp -d /tmp/wpl_gpu_check.XXXX)}
TOTAL=${WPL_CHECK_SECONDS:-540}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$OUT/check.log"
PARTS="$WORK/parts.jsonl"
: > "$LOG"; : > "$PARTS"; : > "$WORK/search_step.jsonl"
START=$(date +%s)
CPUS=$(nproc)

# part NAME LIMIT_S CMD...: run CMD with a limit that also fits what is left of the total; record rc and seconds
part() {
  local name=$1 limit=$2; shift 2
  local left=$(( TOTAL - ($(date +%s) - START) - 5 ))
  if [ "$left" -lt 20 ]; then
    echo "{\"part\": \"$name\", \"rc\": null, \"skipped\": \"out of time\"}" >> "$PARTS"; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s) $*" | tee -a "$LOG"
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  echo "{\"part\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 )), \"limit\": $limit}" >> "$PARTS"
  echo "   rc $rc after $(( $(date +%s) - t0 ))s" | tee -a "$LOG"
}

part env 30 sh -c "$PY -m benchmarks.gpu.env > $WORK/env.json"
part data 60 "$PY" -m benchmarks.gpu.data unpack --src .gpu --out "$WORK/data"
part gpu_tests 150 env WPL_TEST_DEVICE="$DEVICE" "$PY" -m pytest -m gpu -p no:cacheprovider -q \
  --junitxml="$WORK/pytest.xml" tests
if [ "$TINY" = 1 ]; then
  SCALE=(--budget_s 10 --channels 4 --cells 1 --num_archs 30 --probe_rounds 3)
  STEP=(--steps 3 --archs 2); RNN=(--hid 16 --num_blocks 3); CNN_FLAGS="--cnn_final_filter_size=8"
  NB_FLAGS="--nb201_channels=4 --nb201_cells=1"
else
  SCALE=(--budget_s 160 --num_archs 1000)
  STEP=(--steps 10 --archs 4); RNN=(--hid 1000 --num_blocks 12); CNN_FLAGS=""; NB_FLAGS=""
fi
part nb201_scale 330 "$PY" -m benchmarks.gpu.nb201_scale --data_dir "$WORK/data" --device "$DEVICE" "${SCALE[@]}" \
  --work "$WORK/nb201_run" --out "$OUT/nb201_scale.json"
for dev in "$DEVICE" cpu; do
  [ "$dev" = cpu ] && [ "$DEVICE" = cpu ] && [ "$TINY" = 0 ] && continue  # a CPU-only check measured it already
  threads=$CPUS
  for space in nb201 cnn rnn; do
    case $space in
      rnn) extra=("${RNN[@]}"); [ "$dev" = cpu ] && extra=(--hid 200 --num_blocks 12); [ "$TINY" = 1 ] && extra=("${RNN[@]}") ;;
      cnn) extra=("--flags=$CNN_FLAGS") ;;
      nb201) extra=("--flags=$NB_FLAGS") ;;
    esac
    part "search_step_${space}_$dev" 90 "$PY" -m benchmarks.speed.search_step --space "$space" --data_dir "$WORK/data" \
      --device "$dev" --threads "$threads" "${STEP[@]}" "${extra[@]}" --json "$WORK/search_step.jsonl"
  done
  [ "$TINY" = 1 ] && [ "$dev" = cpu ] && break
done
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "$GPUS" -ge 2 ]; then
  part two_ranks 90 "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m wpl search \
    --network_type=nb201 --dataset=cifar10 --data_dir="$WORK/data" --nb201_channels=4 --nb201_cells=1 \
    --shared_max_step=20 --max_epoch=2 --valid_size=1000 --log_dir="$WORK/dist" --use_tensorboard=False
else
  echo "{\"part\": \"two_ranks\", \"rc\": null, \"skipped\": \"$GPUS GPU(s) visible: a data-parallel run of two ranks needs two GPUs; not run, not faked\"}" >> "$PARTS"
fi
"$PY" -m benchmarks.gpu.collect --work "$WORK" --out "$OUT/check.json" --device "$DEVICE" --tiny "$TINY" \
  --seconds $(( $(date +%s) - START )) | tee -a "$LOG"
