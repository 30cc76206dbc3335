#!/usr/bin/env bash
# Run the two NAS-Bench-201 studies side by side, one run of each in turn, sharing one work folder of trained
# supernets: whichever study reaches a (seed, arm) first trains it, the other checks its flags and scores it. A
# run folder is scratch (a machine that goes takes it along), so scoring each supernet for both studies soon after
# it is trained is what keeps a lost machine from costing more than a run or two. Resumable: run it again.
#
#   PYTHON=.venv/bin/python bash benchmarks/studies/run_nb201.sh ~/data     # ≈ 70 min per seed on 2 CPU cores
set -euo pipefail
data=${1:?usage: run_nb201.sh DATA_DIR (the folder holding cifar10/)}
py=${PYTHON:-python}
here=$(dirname "$0")
work=$here/nb201_confirmatory/work
confirm=("$here/nb201_confirmatory.toml")
scoring=("$here/nb201_scoring.toml" --work_dir "$work")

# each call ends with the report's "wrote ..." line, "(interim)" until the study's last run is in; tee -a: a log that
# stderr goes to is appended to, not truncated by each call
confirm_done=0 scoring_done=0
until (( confirm_done && scoring_done )); do
  last=$("$py" -m wpl study "${confirm[@]}" --data_dir "$data" --max_runs 1 | tee -a /dev/stderr | tail -n 1)
  [[ $last == *"(interim)"* ]] || confirm_done=1
  last=$("$py" -m wpl study "${scoring[@]}" --data_dir "$data" --max_runs 1 | tee -a /dev/stderr | tail -n 1)
  [[ $last == *"(interim)"* ]] || scoring_done=1
done
