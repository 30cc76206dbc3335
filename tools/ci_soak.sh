#!/usr/bin/env bash
# The two-rank tests (tests/test_dist.py, every torchrun launch of the suite) N times in a row beside a busy
# loop on every core, counting the runs that fail: the check that they do not flake on a loaded machine.
# Usage: tools/ci_soak.sh N [LOG_DIR]    (run `make test` once first: it sets up .venv)
set -u
n=${1:?usage: tools/ci_soak.sh N [LOG_DIR]}
cd "$(dirname "$0")/.."
logs=${2:-$(mktemp -d)}
mkdir -p "$logs"
py=.venv/bin/python
[ -x "$py" ] || { echo "tools/ci_soak.sh: no .venv in $(pwd); run make test once first" >&2; exit 2; }
cores=$(nproc)
hogs=()
for _ in $(seq "$cores"); do (while :; do :; done) & hogs+=($!); done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
failed=0
for i in $(seq "$n"); do
    t0=$(date +%s)
    if "$py" -m pytest -p no:cacheprovider tests/test_dist.py > "$logs/run$i.log" 2>&1; then verdict=passed
    else verdict=FAILED; failed=$((failed + 1)); fi
    echo "run $i/$n: $verdict in $(($(date +%s) - t0)) s ($(tail -n 1 "$logs/run$i.log"))"
done
aborts=$(cat "$logs"/run*.log | grep -c "terminate called" || true)
echo "$failed of $n runs failed beside $cores busy loops; $aborts 'terminate called' lines; logs in $logs"
[ "$failed" -eq 0 ]
