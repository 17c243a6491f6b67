"""Peak memory of assembly for a ~1 h and a ~10 h audiobook.

Assembly must stream: its peak memory should be the same for a short and a long
book. Each size runs on a fresh stack (free ports) whose synthesis worker is the
fast `tone` stand-in (a beep per word, 0.3 s a word, 22.05 kHz) so the
measurement is about assembly, not speech. The jobs worker runs one pool
process; its peak resident set (VmHWM) after the job covers split, the chapter
files and the whole-book assembly. Text: Pride and Prejudice from the shared
corpus (the first sixth for ~1 h; the whole book, then Frankenstein, for ~10 h).
Prints both peaks and their ratio; never fails on the figures.

    python bench/assembly_memory.py [--format mp3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import CORPUS, read_text, run_job

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec

REGISTRY = """
[models.tone]
engine = "tone"
version = "bench"
sample_rate = 22050
max_segment_chars = 400
options.ms_per_char = 0.0

[[models.tone.voices]]
id = "tone"
language = "en"
"""


def peak_rss_mb(main_pid: int) -> float:
    """VmHWM of the worker's pool process(es): the largest."""
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    peaks = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def book_text(hours: float) -> str:
    pride = read_text(CORPUS / "pride_and_prejudice.txt")
    if hours <= 1.5:
        return pride[: len(pride) // 6]
    return pride + "\n\n" + read_text(CORPUS / "frankenstein.txt")[: len(pride) // 2]


def measure(text: str, audio_format: str) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        registry = Path(tmp) / "voices.toml"
        registry.write_text(REGISTRY)
        stack = Stack(StackConfig.on_free_ports(
            Path(tmp) / "stack", workers=[WorkerSpec("tone", count=2)], jobs_concurrency=1,
            environment={"CHORUS_REGISTRY_FILE": str(registry), "CHORUS_MAX_TEXT_CHARS": "5000000"},
        ))
        env = stack.up()
        try:
            started = time.perf_counter()
            seconds, status = run_job(env, text, audio_format, voice="tone")
            main_pid = stack.pid("worker-jobs")
            return status["audio_seconds"] / 3600, peak_rss_mb(main_pid), time.perf_counter() - started, status["segments_total"]
        finally:
            stack.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="mp3")
    args = parser.parse_args()
    if not (CORPUS / "pride_and_prejudice.txt").exists():
        raise SystemExit(f"needs the corpus at {CORPUS} (set CHORUS_BENCH_CORPUS)")
    rows = [measure(book_text(hours), args.format) for hours in (1, 10)]
    for hours, peak, seconds, segments in rows:
        print(f"{hours:5.2f} h of audio ({segments} segments, {args.format}): peak RSS of the jobs worker {peak:6.1f} MB; job took {seconds:.0f} s")
    print(f"ratio 10 h / 1 h: {rows[1][1] / rows[0][1]:.3f}")


if __name__ == "__main__":
    main()
