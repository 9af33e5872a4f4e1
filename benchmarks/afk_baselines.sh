#!/usr/bin/env bash
# Baselines on amazon-food-kitchen (issue 2): pop once, trained models x 3 seeds.
# Each run selects its checkpoint on validation (full ranking, mean NDCG@10 over the two domains) and
# evaluates test under `full` and ABXI's `uni999` (history excluded) from that one checkpoint.
# Usage: JOBS=2 bash benchmarks/afk_baselines.sh [OUT=results/amazon-food-kitchen]
#   JOBS     runs in parallel (default 1; each run then uses THREADS torch threads, default 2/JOBS)
#   TEMAREC  the command to call (default `temarec`; e.g. "python -m temarec.cli" from a source snapshot)
# Finished runs (metrics.json present) are skipped; an interrupted run resumes from its checkpoint.
set -euo pipefail
OUT=${1:-results/amazon-food-kitchen}
JOBS=${JOBS:-1}
THREADS=${THREADS:-$(( 2 / JOBS > 0 ? 2 / JOBS : 1 ))}
export OUT THREADS TEMAREC=${TEMAREC:-temarec}
run() {  # model seed
  local dir="$OUT/$1/seed$2"
  if [[ -f "$dir/metrics.json" ]]; then echo "skip $dir"; return; fi
  mkdir -p "$dir"
  echo "== $1 seed $2 ($(date +%T))"
  $TEMAREC train --model "$1" --seed "$2" --output "$dir" \
    --dataset amazon-food-kitchen --protocol full --protocol uni999 --quiet \
    --set train.epochs=80 --set train.patience=10 --set train.batch_size=128 --set train.lr=2e-3 \
    --set model.dropout=0.5 --set model.softmax_negatives=1000 --set train.threads="$THREADS" \
    > "$dir/train.log" 2>&1 || { echo "FAILED $dir (see $dir/train.log)"; return 1; }
  echo "done $1 seed $2 ($(date +%T))"
}
export -f run
mkdir -p "$OUT"
run pop 0
for seed in 0 1 2; do for model in sasrec gru4rec sasrec-single; do echo "$model $seed"; done; done \
  | xargs -P "$JOBS" -L 1 bash -c 'run "$0" "$1"'
