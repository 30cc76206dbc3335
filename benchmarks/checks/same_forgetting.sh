#!/usr/bin/env bash
# A refactor check: run the original README's two commands (with the README's CPU-example flags
# appended), as written and with WPL switched on from epoch 1, under two checkouts of wpl, and
# compare their forgetting.csv byte for byte (same seed, same data: they must be identical).
#
# usage: bash benchmarks/checks/same_forgetting.sh BEFORE_CHECKOUT AFTER_CHECKOUT DATA_DIR OUT_DIR
#   e.g. git worktree add /tmp/before <rev>; bash benchmarks/checks/same_forgetting.sh /tmp/before . ~/data ~/runs/same
#   DATA_DIR holds ptb/ and cifar10/ (../shared/data/cifar10/get DATA_DIR/cifar10). About 30 min on 2 cores.
set -euo pipefail
before=$(cd "$1" && pwd); after=$(cd "$2" && pwd); data=$3; out=$4
PY=${PY:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
source "$(dirname "$0")/readme_commands.sh"
runs=("ptb_rnn-train:$RNN" "ptb_rnn-wpl:$RNN --start_using_fisher=1 --max_epoch=2 --comment=rnn-wpl"
      "cifar10_cnn-train:$CNN" "cifar10_cnn-wpl:$CNN --start_using_fisher=1 --max_epoch=2 --comment=cnn-wpl")
for side in before after; do
  src=${!side}
  for r in "${runs[@]}"; do  # one at a time: two torch processes on 2 cores slow each other 10x
    name=${r%%:*}
    echo "== $side $name $(date +%T)"
    (cd "$src" && PYTHONPATH="$src/src" "$PY" main.py ${r#*:} --log_dir="$out/$side" 2>&1 | grep "done:" || true)
  done
done
status=0
for r in "${runs[@]}"; do
  name=${r%%:*}
  if cmp -s "$out/before/$name/forgetting.csv" "$out/after/$name/forgetting.csv"; then
    echo "identical  $name/forgetting.csv  $(sha256sum < "$out/after/$name/forgetting.csv" | cut -c1-16)"
  else
    echo "DIFFERENT  $name/forgetting.csv"; status=1
  fi
done
exit $status
