#!/usr/bin/env bash
# The shipped models' whole training recipe: from the Flickr8k photos to the
# model folders under models/, scored on the dev split. Each training stage is
# resumable: after a crash or kill, run the script again and it continues.
#
#   scripts/recipe.sh [RUNS]     (default runs/; run from the repository root)
#
# Needs CAPTIONER_ASSETS (the shared assets: Flickr8k photos and captions, the
# MobileNetV2 weights) and bin/captioner (make build); CAPTIONER sets another
# binary, and every captioner setting works as usual (CAPTIONER_DEVICE=cuda).
# On 2 CPU cores: features ~4 min, attention ~3-6 min an epoch (it stops 4
# epochs after its best, ~8 epochs), its three self-critical runs ~25 min each,
# merge ~6 min an epoch (see each MODEL.md): about 2.5 hours in all.
set -euo pipefail
runs=${1:-runs}
cap=${CAPTIONER:-bin/captioner}
feats=$runs/features

# train OUT FLAGS...: train into OUT, resuming its run when OUT exists (a run
# stopped before its first checkpoint starts afresh: a new run needs OUT empty).
train() {
	local out=$1
	shift
	local resume=()
	[[ -d $out ]] && resume=(--resume)
	"$cap" train --out "$out" --features "$feats" "${resume[@]}" "$@"
}

# ship RUN MODEL [WEIGHTS]: the run's curves and its selected model (or the
# model folder WEIGHTS) become models/MODEL, scored on the dev split with what
# caption and serve do by default.
ship() {
	mkdir -p "models/$2"
	cp "${3:-$1/model}"/* "$1"/curves.* "models/$2/"
	"$cap" eval --model "models/$2" --features "$feats" --save-scores --captions "$1/dev-captions.json"
}

# 1. The encoder's features of every photo: pooled vectors and 7x7 grids.
"$cap" extract --grid --out "$feats"

# 2. The default model: the attention decoder by cross-entropy (the selected
#    epoch's weights stored in float16), its LSTM context weight factorized to
#    rank 128 (decoding 38% cheaper), then three runs (seeds 11, 12, 13) of 6
#    epochs of self-critical training of the factorized model with the
#    references' cross-entropy mixed in (xe_weight 0.05; train.dropout's 0.5 on
#    the image features: without it the self-critical stage overfits the train
#    photos), then the uniform mean of the four models (the runs' last epochs),
#    factor by factor, in float16. (Encoder fine-tuning and train --mirror were
#    measured and left out: flickr8k-attention/MODEL.md.)
CAPTIONER_TRAIN_LR_DECAY=0.9 CAPTIONER_TRAIN_HALF_WEIGHTS=true \
	train "$runs/attention" --arch attention --hidden 512 --seed 3 --epochs 20
[[ -f $runs/attention-r128/config.json ]] ||
	"$cap" factorize --rank 128 --half=false --out "$runs/attention-r128" "$runs/attention/model"
for seed in 11 12 13; do
	train "$runs/attention-scst-$seed" --init "$runs/attention-r128" --arch attention --hidden 512 \
		--objective cider --xe-weight 0.05 --lr 5e-5 --seed "$seed" --epochs 6
done
"$cap" average --half --out "$runs/attention-average" "$runs/attention-r128" \
	"$runs/attention-scst-11/last" "$runs/attention-scst-12/last" "$runs/attention-scst-13/last"
ship "$runs/attention" flickr8k-attention "$runs/attention-average"

# 3. The merge model (served beside it with --models): cross-entropy only.
CAPTIONER_TRAIN_LR_DECAY=0.95 CAPTIONER_TRAIN_PATIENCE=2 train "$runs/merge" --hidden 512 --seed 3 --epochs 12
ship "$runs/merge" flickr8k-merge-lstm
