#!/bin/bash
# tema on amazon-food-kitchen with tags written by the local LLM (SmolLM2-135M through llama.cpp) instead
# of the keyphrase tagger: an ablation of the tag source, 3 seeds, paper.yaml's tema cell otherwise.
# Reported beside the keyphrase cells with paired per-user tests, whichever way it comes out (nothing here
# is selected). Resumable at every step: tagging answers are cached, bench cells resume from checkpoints.
#   1. tags: two 1-thread worker processes on shards of the catalogue (`--workers 2`: on 2 cores about
#      2.3 items/s, against 1.4 for one 2-thread process), then the vocabulary (no refinement pass: with
#      SmolLM2 it is not worth its time, results/tagging.md);
#   2. features for that tag source; 3. the bench cells into results/smollm2-tags/;
#   4. paired tests against tema with keyphrase tags, sasrec and tema-no-tags (results/smollm2-tags/compare-*).
set -euo pipefail
cd "$(dirname "$0")/.."
export TEMAREC_DATA="${TEMAREC_DATA:-../shared/data}"
D=amazon-food-kitchen
SRC=llamacpp-smollm2-135m
OUT=results/smollm2-tags
# --keep-example-tags: these results were made before the example-echo guard existed (session 16); the
# guarded tags are afk_smollm2_guarded.sh's
temarec tag --dataset $D --backend llamacpp --workers 2 --threads 1 --keep-example-tags
temarec features --dataset $D --set features.tags=$SRC
temarec bench paper --filter $D/tema/ --set features.tags=$SRC --output $OUT "$@"
# tema-no-tags (the same model without tags) was added after the first two tables were seen: it
# selects nothing, it says whether these tags help at all
for b in tema sasrec tema-no-tags; do
  case $b in
    tema) name=keyphrase; nb="tema, keyphrase tags" ;;
    sasrec) name=sasrec; nb=sasrec ;;
    *) name=no-tags; nb=tema-no-tags ;;
  esac
  temarec compare --a "$OUT/$D/tema/seed*" --b "results/$D/$b/seed*" --protocol full,uni999 \
    --name-a "tema, SmolLM2 tags" --name-b "$nb" --output $OUT/compare-$name.json > $OUT/compare-$name.md
done
echo "wrote $OUT/compare-keyphrase.md, compare-sasrec.md and compare-no-tags.md"
