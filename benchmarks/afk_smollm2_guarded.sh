#!/bin/bash
# Does dropping the echoed worked examples rescue SmolLM2's tags? tema on amazon-food-kitchen with the
# SmolLM2 tags of afk_smollm2_tags.sh after the example-echo guard (`temarec tag`'s default since session
# 16: a tag copied from the prompt's worked examples that the item's own text does not support is dropped;
# "baking mat" on a coffee grinder). The model's answers are the same cached ones: no model call is made,
# only the tags assembled from them differ (about 12.6% of items lose one or more tags, 37 lose all).
#
# Fixed before any number of it existed (session 16):
#   - cells: paper.yaml's tema cell, seeds 0-2, every hyperparameter as in afk_smollm2_tags.sh;
#   - primary comparison: guarded SmolLM2 tags against unguarded SmolLM2 tags (results/smollm2-tags/),
#     expected to help in Kitchen, where the unguarded tags lost to keyphrase tags (the echo is worst there);
#   - secondary: against tema with keyphrase tags (results/amazon-food-kitchen/tema);
#   - rule: a column is won or lost when both paired per-user tests (t-test, Wilcoxon) give p < 0.05 and
#     lean the same way; every column is reported as it comes out; no seed is added afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
export TEMAREC_DATA="${TEMAREC_DATA:-../shared/data}"
D=amazon-food-kitchen
SRC=llamacpp-smollm2-135m-guarded
OUT=results/smollm2-guarded
# every answer is in the cache from afk_smollm2_tags.sh: this reads them, drops the echoes, builds the vocabulary
temarec tag --dataset $D --backend llamacpp --workers 2 --threads 1 --source-name $SRC
temarec features --dataset $D --set features.tags=$SRC
temarec bench paper --filter $D/tema/ --set features.tags=$SRC --output $OUT "$@"
for b in unguarded keyphrase; do
  case $b in
    unguarded) dir="results/smollm2-tags/$D/tema"; nb="tema, SmolLM2 tags (unguarded)" ;;
    *) dir="results/$D/tema"; nb="tema, keyphrase tags" ;;
  esac
  temarec compare --a "$OUT/$D/tema/seed*" --b "$dir/seed*" --protocol full,uni999 \
    --name-a "tema, SmolLM2 tags (guarded)" --name-b "$nb" --output $OUT/compare-$b.json > $OUT/compare-$b.md
done
echo "wrote $OUT/compare-unguarded.md and compare-keyphrase.md"
