#!/bin/bash
# tema and every baseline on amazon-food-kitchen under the full softmax (model.softmax_negatives=0, the
# library's default) instead of the bench's 1,000 sampled negatives; otherwise paper.yaml's cells.
# Resumable: run it again after an interruption. Reports: results/full-softmax/amazon-food-kitchen.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
export TEMAREC_DATA="${TEMAREC_DATA:-../shared/data}"
F=()
for v in tema sasrec sasrec-single gru4rec c2dsr pop; do F+=(--filter "amazon-food-kitchen/$v/"); done
temarec bench paper --set model.softmax_negatives=0 --output results/full-softmax "${F[@]}" "$@"
