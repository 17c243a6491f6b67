"""Does Piper gain from several segments per inference call on a CPU?

The voice's ONNX model (VITS) takes a batch: phoneme ids padded to the longest,
their lengths, one set of scales. This times the same segments (sentences of a
corpus chapter, in order) spoken one per call against batches of 2, 4 and 8,
on one onnxruntime thread (how a Chorus Piper worker runs: one process per
core) and on all cores. Batches are cut from the segments sorted by length, the
best case for padding. Phonemisation (espeak-ng) is done once, outside the
timings: only the ONNX calls are compared. Best of three passes each.

Prints segments/s and the ratio to one per call; never fails on timing.

    python bench/piper_batch.py [--segments 32]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnxruntime
from common import sample_text

from chorus.configs import Settings, load_registry
from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.plan import make_plan
from chorus.workers.engines.piper import PiperEngine


def phoneme_ids(engine: PiperEngine, text: str) -> list[int]:
    voice = engine.voice
    return [i for sentence in voice.phonemize(text) for i in voice.phonemes_to_ids(sentence)]


def run(session: onnxruntime.InferenceSession, batch: list[list[int]], scales: np.ndarray) -> np.ndarray:
    longest = max(len(ids) for ids in batch)
    padded = np.zeros((len(batch), longest), dtype=np.int64)
    for row, ids in enumerate(batch):
        padded[row, : len(ids)] = ids
    lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
    return session.run(None, {"input": padded, "input_lengths": lengths, "scales": scales})[0]


def timed(session: onnxruntime.InferenceSession, ids: list[list[int]], size: int, scales: np.ndarray) -> float:
    ordered = sorted(ids, key=len)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, len(ordered), size):
            run(session, ordered[start : start + size], scales)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=32)
    args = parser.parse_args()

    registry = load_registry(Settings().registry_file)
    model, voice = registry.model_of("joe"), registry.voice("joe")
    engine = PiperEngine.load(model, threads=1)
    body, source = sample_text(None)
    texts = [s.spoken for s in make_plan(parse_text(body), voice, model, namespace="bench").segments][: args.segments]
    ids = [phoneme_ids(engine, text) for text in texts]
    config = engine.voice.config
    scales = np.array([config.noise_scale, config.length_scale, config.noise_w_scale], dtype=np.float32)
    onnx_path = model.file("model")
    print(f"{len(ids)} segments of {source}; phoneme ids per segment {min(map(len, ids))}-{max(map(len, ids))}")

    for threads in (1, os.cpu_count() or 1):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
        run(session, ids[:2], scales)  # warm up
        single = timed(session, ids, 1, scales)
        print(f"\n{threads} thread(s): one per call {len(ids) / single:.2f} segments/s")
        for size in (2, 4, 8):
            seconds = timed(session, ids, size, scales)
            print(f"  batches of {size}: {len(ids) / seconds:.2f} segments/s, {single / seconds:.2f}x one per call")


if __name__ == "__main__":
    main()
