#!/usr/bin/env bash
# One real CosyVoice2 job end to end on a GPU machine: a temporary registry with
# a `cosyvoice2` model, the whole stack on free loopback ports with one worker
# pinned to the first GPU, a short Chinese text POSTed to /v1/jobs, polled to
# the end, the WAV downloaded and measured. The stack is always stopped.
#
# Needs: pip install .[cosyvoice], CosyVoice's source (with third_party/Matcha-TTS)
# on PYTHONPATH, and the weights:
#   COSYVOICE_MODEL_DIR=/path/to/CosyVoice2-0.5B scripts/gpu_smoke.sh
# Optional, to add and test a zero-shot voice "cosy-clone" too:
#   COSYVOICE_PROMPT_WAV=/path/to/prompt.wav COSYVOICE_PROMPT_TEXT="its transcript"
# Optional: PYTHON (default .venv/bin/python, else python3), KEEP_SMOKE_DIR=1
# to keep the stack's data and logs.
#
# Exit codes: 0 job done; 1 job failed, timed out or could not be run; 2 setup missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

die_setup() { echo "gpu_smoke: $*" >&2; exit 2; }

if [[ -z "${COSYVOICE_MODEL_DIR:-}" ]]; then
    die_setup "COSYVOICE_MODEL_DIR is not set (the CosyVoice2 weights directory, e.g. pretrained_models/CosyVoice2-0.5B)"
fi
if [[ ! -d "$COSYVOICE_MODEL_DIR" ]]; then
    die_setup "COSYVOICE_MODEL_DIR is not a directory: $COSYVOICE_MODEL_DIR"
fi
COSYVOICE_MODEL_DIR=$(cd "$COSYVOICE_MODEL_DIR" && pwd)
if ! command -v nvidia-smi >/dev/null 2>&1; then
    die_setup "nvidia-smi not found: this script needs an NVIDIA GPU"
fi
GPU_LIST=$(nvidia-smi -L 2>/dev/null || true)
if ! grep -q '^GPU ' <<<"$GPU_LIST"; then
    die_setup "nvidia-smi -L lists no GPU"
fi
echo "gpu_smoke: $(grep -m1 '^GPU ' <<<"$GPU_LIST")"

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
if ! IMPORT_ERROR=$("$PYTHON" -c 'import cosyvoice.cli.cosyvoice' 2>&1); then
    echo "$IMPORT_ERROR" | tail -n 3 >&2
    die_setup "$PYTHON cannot import cosyvoice.cli.cosyvoice: pip install .[cosyvoice] and put CosyVoice's source (and third_party/Matcha-TTS) on PYTHONPATH"
fi
if ! "$PYTHON" -c 'import sys; from workers.engines import ENGINES; sys.exit("cosyvoice2" not in ENGINES)' 2>/dev/null; then
    die_setup "engine 'cosyvoice2' is not in workers/engines/__init__.py ENGINES"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chorus-gpu-smoke.XXXXXX")
cleanup() {
    if [[ "${KEEP_SMOKE_DIR:-0}" == 1 ]]; then echo "gpu_smoke: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# TOML basic strings: escape backslashes and double quotes.
toml_string() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

REGISTRY="$WORK/voices.toml"
{
    echo '[models.cosyvoice2]'
    echo 'engine = "cosyvoice2"'
    echo 'device = "cuda"'
    echo 'version = "cosyvoice2-smoke"'
    echo 'sample_rate = 24000'
    echo 'max_segment_chars = 120'
    echo "files.model_dir = $(toml_string "$COSYVOICE_MODEL_DIR")"
    echo
    echo '[[models.cosyvoice2.voices]]'
    echo 'id = "cosy-zh"'
    echo 'language = "zh"'
    echo 'mode = "sft"'
    echo 'speaker = "中文女"'
    if [[ -n "${COSYVOICE_PROMPT_WAV:-}" && -n "${COSYVOICE_PROMPT_TEXT:-}" ]]; then
        [[ -f "$COSYVOICE_PROMPT_WAV" ]] || die_setup "COSYVOICE_PROMPT_WAV is not a file: $COSYVOICE_PROMPT_WAV"
        echo
        echo '[[models.cosyvoice2.voices]]'
        echo 'id = "cosy-clone"'
        echo 'language = "zh"'
        echo 'mode = "zero_shot"'
        echo "prompt_text = $(toml_string "$COSYVOICE_PROMPT_TEXT")"
        echo "prompt_audio = $(toml_string "$(cd "$(dirname "$COSYVOICE_PROMPT_WAV")" && pwd)/$(basename "$COSYVOICE_PROMPT_WAV")")"
    fi
} >"$REGISTRY"
export CHORUS_REGISTRY_FILE="$REGISTRY"
echo "gpu_smoke: registry $REGISTRY"
cat "$REGISTRY"

status=0
SMOKE_WORK="$WORK" "$PYTHON" - <<'PY' || status=$?
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import soundfile

from chorus.stack import Stack, StackConfig, WorkerSpec

TEXT = "春天来了，公园里的花都开了。孩子们在草地上奔跑，老人们坐在长椅上聊天。"
TIMEOUT_S = 600
work = Path(os.environ["SMOKE_WORK"])
registry = os.environ["CHORUS_REGISTRY_FILE"]

# A CUDA worker is pinned to one GPU (chorus worker --gpu N) where WorkerSpec knows how.
spec = WorkerSpec("cosyvoice2")
if "gpu" in getattr(WorkerSpec, "__dataclass_fields__", {}):
    spec = WorkerSpec("cosyvoice2", gpu=0)
config = StackConfig.on_free_ports(
    work / "stack", workers=[spec], environment={"CHORUS_REGISTRY_FILE": registry},
)
stack = Stack(config)
voices = ["cosy-zh"] + (["cosy-clone"] if "cosy-clone" in Path(registry).read_text(encoding="utf-8") else [])
failed = []
try:
    started = time.monotonic()
    env = stack.up(echo=lambda line: print("  " + line, flush=True))
    print(f"stack up in {time.monotonic() - started:.1f} s", flush=True)
    with httpx.Client(base_url=env["CHORUS_API_URL"], timeout=60) as api:
        for voice in voices:
            submitted = time.monotonic()
            response = api.post("/v1/jobs", json={"text": TEXT, "voice": voice, "format": "wav", "title": f"smoke-{voice}"})
            if response.status_code != 202:
                print(f"[{voice}] POST /v1/jobs answered {response.status_code}: {response.text}", flush=True)
                failed.append(voice)
                continue
            job_id = response.json()["id"]
            status = {}
            while time.monotonic() - submitted < TIMEOUT_S:
                status = api.get(f"/v1/jobs/{job_id}").json()
                if status.get("state") in ("done", "failed", "cancelled"):
                    break
                time.sleep(1)
            elapsed = time.monotonic() - submitted
            print(f"[{voice}] job {job_id}: state {status.get('state')!r} after {elapsed:.1f} s", flush=True)
            print(f"[{voice}] status: {status}", flush=True)
            if status.get("state") != "done":
                failed.append(voice)
                continue
            audio = httpx.get(status["result_url"], timeout=120, follow_redirects=True)
            audio.raise_for_status()
            out = work / f"{voice}.wav"
            out.write_bytes(audio.content)
            info = soundfile.info(io.BytesIO(audio.content))
            print(
                f"[{voice}] downloaded {len(audio.content)} bytes: {info.duration:.2f} s at {info.samplerate} Hz "
                f"(job says {status.get('audio_seconds')} s), real-time factor {elapsed / max(info.duration, 1e-9):.2f} "
                f"including the pipeline",
                flush=True,
            )
            if info.duration < 1.0:
                print(f"[{voice}] audio suspiciously short", flush=True)
                failed.append(voice)
    print(subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.used", "--format=csv"], capture_output=True, text=True,
    ).stdout, flush=True)
except Exception as exc:
    print(f"smoke run failed: {type(exc).__name__}: {exc}", flush=True)
    failed.append("stack")
finally:
    stack.down()
    logs = work / "stack" / "logs"
    if failed and logs.is_dir():
        for log in sorted(logs.glob("worker-cosyvoice2*.log")):
            print(f"--- last lines of {log} ---")
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))
sys.exit(1 if failed else 0)
PY

if [[ $status -eq 0 ]]; then
    echo "gpu_smoke: OK"
else
    echo "gpu_smoke: FAILED (exit $status)" >&2
fi
exit "$status"
