#!/usr/bin/env bash
# Wall-clock of one epoch of each README CPU example on real data (RNN on PTB, CNN on CIFAR-10),
# with WPL on from epoch 0 and with --use_wpl=False, under two checkouts of wpl, one process at a
# time; prints one row per run: total seconds and summary.json's phase seconds.
#
# usage: bash benchmarks/checks/epoch_times.sh BEFORE_CHECKOUT AFTER_CHECKOUT DATA_DIR OUT_DIR
#   e.g. git worktree add /tmp/before <rev>; bash benchmarks/checks/epoch_times.sh /tmp/before . ~/data ~/runs/epochs
#   DATA_DIR holds ptb/ and cifar10/. About 20 minutes on 2 cores.
set -euo pipefail
before=$(cd "$1" && pwd); after=$(cd "$2" && pwd); data=$3; out=$4
PY=${PY:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
source "$(dirname "$0")/readme_commands.sh"
ONE="--start_training_controller=0 --max_epoch=1"
runs=("rnn-wpl:$RNN $ONE --start_using_fisher=0 --comment=rnn-wpl" "rnn-plain:$RNN $ONE --use_wpl=False --comment=rnn-plain"
      "cnn-wpl:$CNN $ONE --start_using_fisher=0 --comment=cnn-wpl" "cnn-plain:$CNN $ONE --use_wpl=False --comment=cnn-plain")
echo "| checkout | run | total s | shared | forgetting | controller | derive | eval |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${runs[@]}"; do  # before and after next to each other, one at a time
  name=${r%%:*}
  for side in before after; do
    src=${!side}
    t0=$(date +%s.%N)
    (cd "$src" && PYTHONPATH="$src/src" "$PY" main.py ${r#*:} --log_dir="$out/$side" >"$out/$side-$name.log" 2>&1)
    t1=$(date +%s.%N)
    summary=$(ls -d "$out/$side"/*"$name"/summary.json)
    "$PY" - "$summary" "$side" "$name" "$t0" "$t1" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))["seconds"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {float(sys.argv[5]) - float(sys.argv[4]):.1f} | "
      + " | ".join(f"{s.get(k, 0):.1f}" for k in ("shared", "forgetting", "controller", "derive", "eval")) + " |")
PYEOF
  done
done
