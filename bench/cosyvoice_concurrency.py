"""CosyVoice2 throughput with N segments in flight on one loaded model.

One CosyVoiceEngine (upstream's code at ace7c47, Chorus's adapter) is loaded
once and a reference speaker registered once; then the same segments are
synthesised with N = 1, 2, 4 threads calling ``engine.synthesize`` at once, as
a worker started with ``chorus worker --inflight N`` does. Segments per second
and audio seconds per second are the segment count and their audio over the
wall time; best of ``--repeat`` runs per N, after a warm-up. Never fails on
timing.

Without ``--model-dir`` it builds the tiny random model of the tests
(tests/upstream_cosyvoice.py): noise, but every call runs upstream's code, so
the figures show how upstream's code scales with threads, not how fast
CosyVoice2-0.5B speaks. On a GPU host, pass the real weights and a prompt:

    python bench/cosyvoice_concurrency.py                      # tiny model, CPU
    python bench/cosyvoice_concurrency.py --device cuda --model-dir /models/CosyVoice2-0.5B \\
        --prompt prompt.wav --prompt-text "what the prompt says"

Run it in .venv-cosyvoice (``make bench-cosyvoice``) or on a GPU host's venv.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import CORPUS, ROOT, chapter, read_text

sys.path.insert(0, str(ROOT / "tests"))
import upstream_cosyvoice as up  # noqa: E402

from chorus.configs.registry import Model, Voice  # noqa: E402
from chorus.workers.engines.cosyvoice import CosyVoiceEngine  # noqa: E402

PROMPT_TEXT = "希望你以后能够做的比我还好呦。"


def segments(count: int, max_chars: int) -> list[str]:
    """Sentences of Pride and Prejudice, chapter III (or the project's example), at most max_chars each."""
    book = CORPUS / "pride_and_prejudice.txt"
    text = chapter(read_text(book), "III") if book.exists() else read_text(ROOT / "examples" / "the-lighthouse-keeper.txt")
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if 20 <= len(s.strip()) <= max_chars]
    return sentences[:count]


def run(engine: CosyVoiceEngine, voice: Voice, texts: list[str], inflight: int) -> tuple[float, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=inflight) as pool:
        audio = list(pool.map(lambda text: engine.synthesize(text, voice), texts))
    seconds = time.perf_counter() - started
    return seconds, sum(a.size for a in audio) / engine.sample_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model-dir", type=Path, help="CosyVoice2 weights (default: build the tiny random model)")
    parser.add_argument("--prompt", type=Path, help="reference clip (default: a synthetic buzz)")
    parser.add_argument("--prompt-text", default=PROMPT_TEXT)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--max-chars", type=int, default=120)
    parser.add_argument("--inflight", default="1,2,4", help="comma-separated N to measure")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--fp16", action="store_true", help="cuda only")
    args = parser.parse_args()

    reason = up.skip_reason()
    if reason and not (args.model_dir and args.device == "cuda"):
        raise SystemExit(reason)
    up.put_on_path()
    work = Path(tempfile.mkdtemp(prefix="chorus-cosy-bench-"))
    model_dir = args.model_dir or up.build_tiny_model(work / "tiny")
    prompt = args.prompt or up.write_prompt(work / "prompt.wav")
    options = {"fp16": True} if args.fp16 else {}
    model = Model(name="cosy-bench", engine="cosyvoice2", device=args.device, version="bench", sample_rate=24000,
                  max_segment_chars=args.max_chars, files={"model_dir": str(model_dir), "source": str(up.source_dir())},
                  options=options)
    loaded_at = time.perf_counter()
    engine = CosyVoiceEngine.load(model, threads=args.threads)
    print(f"model {'tiny random' if not args.model_dir else model_dir} on {engine.provider}, loaded in "
          f"{time.perf_counter() - loaded_at:.1f} s", flush=True)
    engine.register_speaker("bench", args.prompt_text, prompt)
    voice = Voice(id="bench", model=model.name, engine="cosyvoice2", language="en", sample_rate=24000, mode="zero_shot")
    texts = segments(args.segments, args.max_chars)
    import torch

    print(f"{len(texts)} segments of {sum(map(len, texts))} characters; torch {torch.__version__}, "
          f"{torch.get_num_threads()} intra-op threads", flush=True)
    run(engine, voice, texts[:4], 1)  # warm-up: the first calls are slow
    run(engine, voice, texts[:4], 2)

    print(f"{'in flight':>9}  {'best wall s':>11}  {'segments/s':>10}  {'audio s/s':>9}  {'vs N=1':>6}")
    base = None
    for inflight in [int(n) for n in args.inflight.split(",")]:
        best = min((run(engine, voice, texts, inflight) for _ in range(args.repeat)), key=lambda r: r[0])
        rate = len(texts) / best[0]
        base = base or rate
        print(f"{inflight:>9}  {best[0]:>11.2f}  {rate:>10.2f}  {best[1] / best[0]:>9.2f}  {rate / base:>6.2f}", flush=True)
    if engine.uses_cuda:
        print(f"GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB peak allocated, "
              f"{torch.cuda.memory_reserved() / 2**20:.0f} MiB reserved before release", flush=True)
        engine.release_memory()
        print(f"GPU memory after release_memory(): {torch.cuda.memory_reserved() / 2**20:.0f} MiB reserved", flush=True)


if __name__ == "__main__":
    main()
