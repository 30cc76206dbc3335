#!/usr/bin/env bash
# Issue #12, section 4: ranking fidelity of NAS-Bench-201 supernets on real CIFAR-10, four variants
# (ENAS or random strategy, each plain or with WPL) × seeds, equal budgets, one run at a time.
# Resumable: a finished run (summary.json, rank.json, rank_recal.json present) is skipped; an interrupted one continues.
#
# usage: bash benchmarks/nb201_compare.sh DATA_DIR OUT_DIR [SEEDS...]     (default seeds 0 1 2 3 4)
#   DATA_DIR holds cifar10/ (../shared/data/cifar10/get DATA_DIR/cifar10); ≈ 4.3 min per run on 2 cores (≈ 87 min for 5 seeds)
# then: python benchmarks/nb201_table.py OUT_DIR
set -euo pipefail
data=$1; out=$2; shift 2
if [ $# -gt 0 ]; then seeds=("$@"); else seeds=(0 1 2 3 4); fi
W=${W:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/wpl}
BASE="--network_type=nb201 --dataset=cifar10 --data_dir=$data --nb201_channels=8 --nb201_cells=1 \
--batch_size=64 --test_batch_size=100 --num_batch_per_iter=5 --shared_max_step=130 --max_epoch=6 \
--shared_momentum=0.9 --shared_lr=0.05 --shared_decay=0.6 --shared_decay_after=0 --shared_l2_reg=5e-4 \
--controller_max_step=30 --nb_batch_reward_controller=2 --derive_num_sample=20 --forgetting_batches=1 \
--rank_every=1 --rank_archs=100 --rank_batches=3 --train_controller=True --start_training_controller=0 \
--fisher_clip_by_norm=10 --alpha_fisher=60 --alpha_decay=1 --alpha_decay_mode=1 --set_fisher_zero_per_iter=3 \
--use_tensorboard=False --log_level=WARNING --log_dir=$out"
declare -A VARIANT=(
  [enas-plain]="--search_strategy=enas --use_wpl=False"
  [enas-wpl]="--search_strategy=enas --start_using_fisher=1"
  [random-plain]="--search_strategy=random --use_wpl=False"
  [random-wpl]="--search_strategy=random --start_using_fisher=1"
)
mkdir -p "$out"
for s in "${seeds[@]}"; do
  for v in enas-plain enas-wpl random-plain random-wpl; do
    name="cifar10_${v}-s$s"
    if [ -f "$out/$name/summary.json" ] && [ -f "$out/$name/rank.json" ] && [ -f "$out/$name/rank_recal.json" ]; then
      continue
    fi
    echo "== $name $(date +%T)"
    $W search $BASE ${VARIANT[$v]} --random_seed=$s --comment="$v-s$s" --resume=True
    $W rank --model_name="$name" --log_dir="$out" --num_archs=200 --rank_batches=8 --seed=0 | tail -4
    $W rank --model_name="$name" --log_dir="$out" --num_archs=200 --rank_batches=8 --seed=0 --nb201_bn_recal=4 \
      --output="$out/$name/rank_recal.json" | tail -3
  done
done
