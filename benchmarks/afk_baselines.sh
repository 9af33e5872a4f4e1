#!/usr/bin/env bash
# Baselines on amazon-food-kitchen (issue 2): pop once, trained models x 3 seeds.
# Each run selects its checkpoint on validation (full ranking, mean NDCG@10 over the two domains) and
# evaluates test under `full` and ABXI's `uni999` (history excluded) from that one checkpoint.
# Usage: bash benchmarks/afk_baselines.sh [OUT=results/amazon-food-kitchen]
set -euo pipefail
OUT=${1:-results/amazon-food-kitchen}
COMMON=(--dataset amazon-food-kitchen --protocol full --protocol uni999 --quiet
        --set train.epochs=80 --set train.patience=10 --set train.batch_size=128 --set train.lr=2e-3
        --set model.dropout=0.5 --set model.softmax_negatives=1000)
run() {  # model seed
  local dir="$OUT/$1/seed$2"
  if [[ -f "$dir/metrics.json" ]]; then echo "skip $dir"; return; fi
  echo "== $1 seed $2"; temarec train --model "$1" --seed "$2" --output "$dir" "${COMMON[@]}"
}
run pop 0
for seed in 0 1 2; do
  for model in sasrec gru4rec sasrec-single; do run "$model" "$seed"; done
done
