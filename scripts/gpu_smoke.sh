#!/usr/bin/env bash
# One real CosyVoice2 job end to end on a GPU host: the whole stack on free
# loopback ports with one worker pinned to the first GPU, a voice cloned from a
# WAV (zero-shot, registered once when the worker starts), a short book POSTed
# to /v1/jobs and polled to the end, the audiobook downloaded and measured.
# Prints the model's load time, the real-time factor, and the GPU memory of the
# process holding the model: after loading, at its peak during the job, and
# after the once-per-job memory release. The stack is always stopped.
#
# Needs scripts/gpu_install.sh done, and the weights:
#   COSYVOICE_MODEL_DIR=/path/to/CosyVoice2-0.5B scripts/gpu_smoke.sh
# Optional:
#   COSYVOICE_SOURCE      upstream's checkout (default: where gpu_install.sh puts it)
#   COSYVOICE_PROMPT_WAV and COSYVOICE_PROMPT_TEXT
#                         the voice to clone, 3-30 s at 16 kHz or more, and what it
#                         says (default: a clip Piper's "joe" speaks here, and its text)
#   COSYVOICE_OPTIONS     model options as TOML, e.g. 'fp16 = true, load_jit = true'
#   SMOKE_TEXT            the book (default: examples/the-lighthouse-keeper.txt)
#   PYTHON                (default .venv/bin/python, else python3)
#   KEEP_SMOKE_DIR=1      keep the stack's data and logs
#
# CosyVoice2-0.5B ships no stored speakers, so the voice here is a clone; an
# "sft" voice on it is refused when the registry loads.
#
# Exit codes: 0 job done; 1 job failed, timed out or could not be run; 2 setup missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

die_setup() { echo "gpu_smoke: $*" >&2; exit 2; }

[[ -n "${COSYVOICE_MODEL_DIR:-}" ]] || die_setup "COSYVOICE_MODEL_DIR is not set (the CosyVoice2 weights, e.g. pretrained_models/CosyVoice2-0.5B)"
[[ -f "$COSYVOICE_MODEL_DIR/cosyvoice2.yaml" ]] || die_setup "$COSYVOICE_MODEL_DIR has no cosyvoice2.yaml: not a CosyVoice2 model directory"
COSYVOICE_MODEL_DIR=$(cd "$COSYVOICE_MODEL_DIR" && pwd)
COSYVOICE_SOURCE=${COSYVOICE_SOURCE:-${XDG_DATA_HOME:-$HOME/.local/share}/chorus/cosyvoice-ace7c47}
[[ -f "$COSYVOICE_SOURCE/cosyvoice/cli/cosyvoice.py" ]] || die_setup "no upstream CosyVoice at $COSYVOICE_SOURCE (scripts/gpu_install.sh puts it there; or set COSYVOICE_SOURCE)"
COSYVOICE_SOURCE=$(cd "$COSYVOICE_SOURCE" && pwd)
command -v nvidia-smi >/dev/null 2>&1 || die_setup "nvidia-smi not found: this script needs an NVIDIA GPU"
GPU_LIST=$(nvidia-smi -L 2>/dev/null || true)
grep -q '^GPU ' <<<"$GPU_LIST" || die_setup "nvidia-smi -L lists no GPU"
echo "gpu_smoke: $(grep -m1 '^GPU ' <<<"$GPU_LIST")"

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
if ! IMPORT_ERROR=$(PYTHONPATH="$COSYVOICE_SOURCE:$COSYVOICE_SOURCE/third_party/Matcha-TTS${PYTHONPATH:+:$PYTHONPATH}" \
        "$PYTHON" -c 'import torch, torchaudio, cosyvoice.cli.cosyvoice; assert torch.cuda.is_available(), "torch sees no GPU"' 2>&1); then
    echo "$IMPORT_ERROR" | tail -n 3 >&2
    die_setup "$PYTHON cannot run upstream CosyVoice on a GPU: run scripts/gpu_install.sh"
fi
SMOKE_TEXT=${SMOKE_TEXT:-$ROOT/examples/the-lighthouse-keeper.txt}
[[ -f "$SMOKE_TEXT" ]] || die_setup "SMOKE_TEXT is not a file: $SMOKE_TEXT"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chorus-gpu-smoke.XXXXXX")
cleanup() {
    if [[ "${KEEP_SMOKE_DIR:-0}" == 1 ]]; then echo "gpu_smoke: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [[ -n "${COSYVOICE_PROMPT_WAV:-}" || -n "${COSYVOICE_PROMPT_TEXT:-}" ]]; then
    [[ -f "${COSYVOICE_PROMPT_WAV:-}" ]] || die_setup "COSYVOICE_PROMPT_WAV is not a file: ${COSYVOICE_PROMPT_WAV:-}"
    [[ -n "${COSYVOICE_PROMPT_TEXT:-}" ]] || die_setup "COSYVOICE_PROMPT_TEXT (what the prompt says) is not set"
    PROMPT_WAV=$(cd "$(dirname "$COSYVOICE_PROMPT_WAV")" && pwd)/$(basename "$COSYVOICE_PROMPT_WAV")
    PROMPT_TEXT=$COSYVOICE_PROMPT_TEXT
else
    PROMPT_WAV="$WORK/prompt.wav"
    PROMPT_TEXT="The lamp was lit at dusk, and the keeper watched the ships pass through the night."
    echo "gpu_smoke: no prompt given; Piper speaks one: \"$PROMPT_TEXT\""
    PROMPT_WAV="$PROMPT_WAV" PROMPT_TEXT="$PROMPT_TEXT" "$PYTHON" - <<'PY'
import os
from pathlib import Path

import soundfile

from chorus.configs import load_registry
from chorus.workers.engines import load_engine

registry = load_registry(Path("configs/voices.toml"))
piper = load_engine(registry.models["piper-joe"])
audio = piper.synthesize(os.environ["PROMPT_TEXT"], registry.voices["joe"])
soundfile.write(os.environ["PROMPT_WAV"], audio, piper.sample_rate)
print(f"gpu_smoke: prompt {len(audio) / piper.sample_rate:.1f} s at {piper.sample_rate} Hz")
PY
fi

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
    echo "files.source = $(toml_string "$COSYVOICE_SOURCE")"
    echo "options = { ${COSYVOICE_OPTIONS:-} }"
    echo
    echo '[[models.cosyvoice2.voices]]'
    echo 'id = "cosy-clone"'
    echo 'language = "en"'
    echo 'mode = "zero_shot"'
    echo "prompt_text = $(toml_string "$PROMPT_TEXT")"
    echo "prompt_audio = $(toml_string "$PROMPT_WAV")"
} >"$REGISTRY"
export CHORUS_REGISTRY_FILE="$REGISTRY"
echo "gpu_smoke: registry $REGISTRY"
cat "$REGISTRY"

status=0
SMOKE_WORK="$WORK" SMOKE_TEXT="$SMOKE_TEXT" "$PYTHON" - <<'PY' || status=$?
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import redis
import soundfile

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.tasks.state.fleet import Fleet

TIMEOUT_S = 1800
work = Path(os.environ["SMOKE_WORK"])
text = Path(os.environ["SMOKE_TEXT"]).read_text(encoding="utf-8")


def gpu_mib(pid: int) -> tuple[float, str]:
    """Memory the process holds on the GPU (nvidia-smi's per-process figure),
    or the whole GPU's where per-process figures are not shown (containers)."""
    try:
        apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True).stdout
        used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                              capture_output=True, text=True).stdout.split()
    except OSError:
        return float("nan"), "no GPU"
    for line in apps.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 2 and fields[0] == str(pid):
            return float(fields[1]), "the model's process"
    return (float(used[0]) if used else float("nan")), "the whole GPU"


config = StackConfig.on_free_ports(work / "stack", workers=[WorkerSpec("cosyvoice2", gpu=0)],
                                   environment={"CHORUS_REGISTRY_FILE": os.environ["CHORUS_REGISTRY_FILE"]})
stack = Stack(config)
failed = False
try:
    started = time.monotonic()
    env = stack.up(echo=lambda line: print("  " + line, flush=True))
    print(f"stack up in {time.monotonic() - started:.1f} s", flush=True)
    fleet = Fleet(redis.Redis.from_url(env["CHORUS_REDIS_URL"]), ttl_s=3600)
    # The worker answers before its pool process has loaded the model; its fleet record says when.
    deadline = time.monotonic() + 900
    while not fleet.nodes_of("cosyvoice2") and time.monotonic() < deadline:
        time.sleep(1)
    if not fleet.nodes_of("cosyvoice2"):
        raise RuntimeError("the worker did not load its model within 900 s")
    node = fleet.nodes_of("cosyvoice2")[0]
    record = fleet.get(node)
    pid = int(record["pid"])
    print(f"worker {node}: model loaded in {record['load_seconds']} s on {record['provider']} (pid {pid}), "
          f"speakers registered: {record.get('speaker_registrations', '0')}", flush=True)
    loaded, where = gpu_mib(pid)

    peak = [loaded]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], gpu_mib(pid)[0])
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    headers = {"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}
    with httpx.Client(base_url=env["CHORUS_API_URL"], timeout=60, headers=headers) as api:
        releases_before = int(record.get("releases", "0"))
        submitted = time.monotonic()
        response = api.post("/v1/jobs", json={"text": text, "voice": "cosy-clone", "format": "wav", "title": "gpu smoke"})
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text}")
        job_id = response.json()["id"]
        status = {}
        while time.monotonic() - submitted < TIMEOUT_S:
            status = api.get(f"/v1/jobs/{job_id}").json()
            if status.get("state") in ("done", "failed", "cancelled"):
                break
            time.sleep(1)
        elapsed = time.monotonic() - submitted
        print(f"job {job_id}: {status.get('state')!r} after {elapsed:.1f} s, {status.get('segments_total')} segments", flush=True)
        if status.get("state") != "done":
            print(f"status: {status}", flush=True)
            raise RuntimeError("the job did not finish")
        audio = httpx.get(status["result_url"], timeout=300, follow_redirects=True)
        audio.raise_for_status()
        (work / "smoke.wav").write_bytes(audio.content)
        info = soundfile.info(io.BytesIO(audio.content))
        print(f"audio: {info.duration:.1f} s at {info.samplerate} Hz; real-time factor {elapsed / info.duration:.3f} "
              "(POST to done: split, synthesis, assembly, upload)", flush=True)
        deadline = time.monotonic() + 120
        while int(fleet.get(node).get("releases", "0")) <= releases_before and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        sampling.set()
        sampler.join()
        after, _ = gpu_mib(pid)
        record = fleet.get(node)
        print(f"GPU memory of {where}: {loaded:.0f} MiB after loading, {peak[0]:.0f} MiB at the peak of the job, "
              f"{after:.0f} MiB after the per-job release (releases: {record.get('releases', '0')}, "
              f"model loads: {record['loads']}, speaker registrations: {record.get('speaker_registrations', '0')})", flush=True)
        if info.duration < 0.2 * len(text) / 20:  # far less audio than a text of this length takes to read
            raise RuntimeError(f"{info.duration:.1f} s of audio is too little for {len(text)} characters")
except Exception as exc:
    print(f"smoke run failed: {type(exc).__name__}: {exc}", flush=True)
    failed = True
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
