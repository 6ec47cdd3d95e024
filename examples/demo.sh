#!/bin/sh
# `make demo`: fusekit's whole text-guided pipeline, offline, on the example pair of every task.
#
#   sh examples/demo.sh [OUT]        (default OUT: demo-out; `fusekit` must be on PATH, as `make demo` arranges)
#
# Per task: describe (offline `stats` describer) → encode-text (offline encoder) → fuse with the bundled `compact`
# model → the same pair fused by the task's best training-free baseline → metrics of both side by side
# (evaluator convention: EN SD SF AG VIF Qabf, higher is better). Nothing is downloaded. Files written:
# OUT/<task>/<name>.descriptions.json, .text.safetensors, .compact.png, .<baseline>.png, and OUT/metrics.json.
set -eu

OUT=${1:-demo-out}
IMAGES=$(cd "$(dirname "$0")" && pwd)/images
METRICS="EN,SD,SF,AG,VIF,Qabf"
mkdir -p "$OUT"
manifest="$OUT/metrics-pairs.jsonl"
: > "$manifest"

for task in ivf mif mef mff; do
    # A/B folders in the task's order, and the baseline `fusekit fuse` would otherwise use
    # (fusekit.models.baselines.DEFAULT)
    case $task in
        ivf) role_a=ir; role_b=vi; baseline=gff ;;
        mif) role_a=mri; role_b=other; baseline=gff ;;
        mef) role_a=over; role_b=under; baseline=mertens ;;
        mff) role_a=a; role_b=b; baseline=focus-map ;;
    esac
    set -- "$IMAGES/$task/$role_a"/*.png
    pairs=$#
    for a in "$@"; do
        name=$(basename "$a" .png)
        b="$IMAGES/$task/$role_b/$name.png"
        dir="$OUT/$task"
        mkdir -p "$dir"
        echo "== $task: $name" >&2
        fusekit describe "$a" "$b" --task "$task" -o "$dir/$name.descriptions.json"
        fusekit encode-text "$dir/$name.descriptions.json" -o "$dir/$name.text.safetensors"
        fusekit fuse "$a" "$b" --task "$task" --model compact --text "$dir/$name.text.safetensors" -o "$dir/$name.compact.png"
        fusekit fuse "$a" "$b" --task "$task" --model "$baseline" -o "$dir/$name.$baseline.png"
        for model in compact "$baseline"; do
            label="$task $model"  # the table's row name; the pair's name too when a task has several
            [ "$pairs" -gt 1 ] && label="$task $name $model"
            printf '{"name": "%s", "fused": "%s", "a": "%s", "b": "%s"}\n' \
                "$label" "$task/$name.$model.png" "$a" "$b" >> "$manifest"  # relative to the manifest's folder
        done
    done
done

echo >&2
echo "Fused images, descriptions and text features: $OUT/<task>/ (metrics JSON: $OUT/metrics.json)" >&2
fusekit metrics --manifest "$manifest" -M "$METRICS" --json -o "$OUT/metrics.json"
fusekit metrics --manifest "$manifest" -M "$METRICS"
