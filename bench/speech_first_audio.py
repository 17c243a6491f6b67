"""How soon /v1/audio/speech starts to play, against waiting for the job's file.

The real stack starts on free ports with one Piper worker per core. For each
of a short and a longer English text (2 and 12 sentences) it measures, in one
run, each figure the best of three fresh texts (a number in the text keeps
the segment cache out of it):

- speech, first bytes: POST /v1/audio/speech (OpenAI's client, streamed, MP3)
  until its first audio bytes arrive;
- speech, whole: until the stream ends;
- job, file: POST /v1/jobs with the same text (MP3) until the status says done,
  polled every 50 ms: what a client of the job API waits before it can play.

Prints the figures and their ratios; never fails on timing.

    python bench/speech_first_audio.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import run_job
from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec

SENTENCES = [
    "The lighthouse stood at the end of the long grey pier.",
    "Every evening the keeper climbed its hundred and twelve steps.",
    "He trimmed the wick, polished the glass, and wound the clockwork.",
    "Ships passed in the dark, and none of them knew his name.",
    "In winter the spray froze on the railings like sugar.",
    "In summer the gulls nested on the ledge below the lamp room.",
    "He kept a log of every ship, every storm, and every quiet night.",
    "Once a year a boat brought oil, flour, and a bundle of letters.",
    "He read the letters slowly, one each evening, to make them last.",
    "His daughter wrote that the city had grown loud and bright.",
    "He wrote back that the sea was loud enough for him.",
    "And the light turned, as it always had, until the morning came.",
]


def text(sentences: int, run: int) -> str:
    return f"Take {run}. " + " ".join(SENTENCES[:sentences])


def speech(client: openai.OpenAI, body: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    first, size = None, 0
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=body, response_format="mp3",
    ) as response:
        for chunk in response.iter_bytes():
            if first is None and chunk:
                first = time.perf_counter() - started
            size += len(chunk)
    return first or 0.0, time.perf_counter() - started, size


def main() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="chorus-speech-bench-") as tmp:
        stack = Stack(StackConfig.on_free_ports(Path(tmp), workers=[WorkerSpec("piper-joe", count=cores, threads=1)],
                                                jobs_concurrency=1))
        env = stack.up()
        try:
            client = openai.OpenAI(api_key=env["CHORUS_API_KEY"], base_url=env["CHORUS_API_URL"] + "/v1",
                                   max_retries=0, timeout=300)
            speech(client, "Warm up.")
            print(f"{cores} Piper workers x 1 thread; best of 3 fresh texts each\n")
            print(f"{'text':<14}{'speech: first bytes':>22}{'speech: whole':>16}{'job: file':>12}{'first / file':>15}")
            run = 0
            for sentences in (2, 12):
                firsts, wholes, files = [], [], []
                for _ in range(3):
                    run += 1
                    first, whole, _ = speech(client, text(sentences, run))
                    run += 1
                    elapsed, _ = run_job(env, text(sentences, run), "mp3", poll_s=0.05)
                    firsts.append(first)
                    wholes.append(whole)
                    files.append(elapsed)
                first, whole, file = min(firsts), min(wholes), min(files)
                print(f"{sentences:>2} sentences  {first:>20.2f} s{whole:>14.2f} s{file:>10.2f} s{first / file:>15.2f}")
        finally:
            stack.down()


if __name__ == "__main__":
    main()
