#!/usr/bin/env bash
# Make this machine a CosyVoice2 GPU worker host:
#
#   scripts/gpu_install.sh [--venv DIR] [--source DIR] [--from PATH] [--no-install]
#
# 1. a virtualenv (default .venv) with Chorus and its gpu extra: torch and
#    torchaudio 2.7.0 (CUDA 12.6), onnxruntime-gpu 1.22.0, upstream's Python
#    dependencies at its pins (pyproject.toml says where they differ);
# 2. onnxruntime-gpu as the only `onnxruntime` in it: piper-tts pulls the CPU
#    build, which installs into the same package folder and hides the GPU one;
# 3. upstream CosyVoice at commit ace7c47, with third_party/Matcha-TTS at the
#    commit it pins (dd9105b), in --source (default
#    ~/.local/share/chorus/cosyvoice-ace7c47): cloned from GitHub, or copied
#    from --from (a checkout or an unpacked copy of that commit);
# 4. checks: upstream imports, its API is the one Chorus's engine is written
#    for, torch sees a GPU, onnxruntime offers CUDAExecutionProvider.
#
# Then name the checkout in the registry, beside the weights:
#   files.model_dir = "/models/CosyVoice2-0.5B"
#   files.source = "<the --source folder>"
# and run scripts/gpu_smoke.sh. --no-install skips 1 and 2 (the venv exists).
#
# Exit codes: 0 ready; 1 a step failed; 2 bad arguments.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMMIT=ace7c47
MATCHA_COMMIT=dd9105b
REPOSITORY=https://github.com/FunAudioLLM/CosyVoice.git
ORT_GPU=onnxruntime-gpu==1.22.0  # keep in step with the gpu extra in pyproject.toml

VENV=.venv
SOURCE="${XDG_DATA_HOME:-$HOME/.local/share}/chorus/cosyvoice-$COMMIT"
FROM=""
INSTALL=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --venv) VENV=$2; shift 2 ;;
        --source) SOURCE=$2; shift 2 ;;
        --from) FROM=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "gpu_install: unknown argument $1" >&2; exit 2 ;;
    esac
done
say() { echo "gpu_install: $*"; }
PYTHON="$VENV/bin/python"

if [[ $INSTALL == 1 ]]; then
    [[ -x "$PYTHON" ]] || python3 -m venv "$VENV"
    "$PYTHON" -m pip install --quiet --upgrade pip
    say "installing Chorus with the gpu extra into $VENV (several GB of CUDA packages)"
    "$PYTHON" -m pip install --quiet -e "$ROOT[gpu]"
    say "making onnxruntime-gpu the only onnxruntime"
    "$PYTHON" -m pip uninstall --quiet -y onnxruntime onnxruntime-gpu
    "$PYTHON" -m pip install --quiet --no-deps --force-reinstall "$ORT_GPU"
fi
[[ -x "$PYTHON" ]] || { echo "gpu_install: no $PYTHON (run without --no-install)" >&2; exit 1; }

if [[ -f "$SOURCE/cosyvoice/cli/cosyvoice.py" ]]; then
    say "upstream already at $SOURCE"
elif [[ -n "$FROM" ]]; then
    say "copying upstream from $FROM to $SOURCE"
    mkdir -p "$(dirname "$SOURCE")"
    cp -R "$FROM" "$SOURCE"
    chmod -R u+w "$SOURCE"
else
    say "cloning $REPOSITORY at $COMMIT into $SOURCE"
    mkdir -p "$(dirname "$SOURCE")"
    git clone --quiet "$REPOSITORY" "$SOURCE"
    git -C "$SOURCE" checkout --quiet "$COMMIT"
    git -C "$SOURCE" submodule update --quiet --init third_party/Matcha-TTS
fi
if git -C "$SOURCE" rev-parse --git-dir >/dev/null 2>&1; then
    head=$(git -C "$SOURCE" rev-parse HEAD)
    [[ $head == $COMMIT* ]] || { echo "gpu_install: $SOURCE is at $head, not $COMMIT" >&2; exit 1; }
    matcha=$(git -C "$SOURCE/third_party/Matcha-TTS" rev-parse HEAD 2>/dev/null || echo none)
    [[ $matcha == $MATCHA_COMMIT* ]] || { echo "gpu_install: Matcha-TTS is at $matcha, not $MATCHA_COMMIT" >&2; exit 1; }
elif [[ -f "$SOURCE/SOURCE.md" ]] && ! grep -q "$COMMIT" "$SOURCE/SOURCE.md"; then
    echo "gpu_install: $SOURCE/SOURCE.md does not name commit $COMMIT" >&2; exit 1
fi
[[ -d "$SOURCE/third_party/Matcha-TTS/matcha" ]] || { echo "gpu_install: $SOURCE lacks third_party/Matcha-TTS" >&2; exit 1; }

say "checking upstream, its API, torch and onnxruntime"
SOURCE="$SOURCE" "$PYTHON" - <<'PY'
import os
import sys

source = os.environ["SOURCE"]
sys.path[:0] = [source, os.path.join(source, "third_party", "Matcha-TTS")]
from cosyvoice.cli.cosyvoice import CosyVoice2
from cosyvoice.cli.frontend import CosyVoiceFrontEnd
import onnxruntime
import torch
import torchaudio

from chorus.workers.engines.cosyvoice import UPSTREAM_COMMIT, check_upstream_api

problems = check_upstream_api({"CosyVoice2": CosyVoice2, "CosyVoiceFrontEnd": CosyVoiceFrontEnd})
print(f"  upstream {UPSTREAM_COMMIT} API: {'; '.join(problems) or 'as the engine expects'}")
print(f"  torch {torch.__version__}, CUDA {torch.version.cuda}, GPUs: {torch.cuda.device_count()}; torchaudio {torchaudio.__version__}")
print(f"  onnxruntime {onnxruntime.__version__}: {', '.join(onnxruntime.get_available_providers())}")
failed = bool(problems)
if not torch.cuda.is_available():
    print("  torch sees no GPU", file=sys.stderr)
    failed = True
if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
    print("  onnxruntime has no CUDAExecutionProvider (is the CPU onnxruntime installed over it?)", file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
PY
say "ready. In the registry: files.source = \"$SOURCE\"; then scripts/gpu_smoke.sh"
