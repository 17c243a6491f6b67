"""Read-along EPUBs made in the tests from a real plan, synthetic timings and
real AAC audio (tones of each chapter's length), and EPUBCheck's verdict."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chorus.tasks.audio import formats
from chorus.tasks.readalong.package import Readalong
from chorus.tasks.text.plan import Plan

RATE = 22050
SECONDS_PER_CHAR = 0.04
PAUSES = {"sentence": 0.25, "paragraph": 0.7, "chapter": 2.0}


def timed_manifest(plan: Plan, words: bool = False) -> tuple[list[dict], list[dict]]:
    """Manifest segment and chapter entries as the assembly writes them, in
    book seconds (a chapter after the first starts with the chapter pause),
    each segment lasting in proportion to its text; with
    ``words``, every segment is word-timed per the manifest's contract."""
    entries: list[dict] = []
    chapters: list[dict] = []
    now = 0.0
    previous = None
    for segment in plan.segments:
        if previous is None or segment.chapter != previous.chapter:  # a later chapter's file starts with its pause
            if chapters:
                chapters[-1]["end"] = round(now, 3)
            chapters.append({"index": segment.chapter, "title": plan.chapters[segment.chapter].title,
                             "start": round(now, 3)})
        if previous is not None:
            kind = "chapter" if segment.chapter != previous.chapter else (
                "paragraph" if previous.paragraph_end else "sentence")
            now += PAUSES[kind]
        length = max(0.3, SECONDS_PER_CHAR * len(segment.text))
        entry = {"index": segment.index, "chapter": segment.chapter, "text": segment.text,
                 "start": round(now, 3), "end": round(now + length, 3)}
        if words:
            found = list(re.finditer(r"\S+", segment.text))
            step = length / len(found)
            entry["timing"] = "word"
            entry["words"] = [{"text": m.group(), "offset": m.start(), "start": round(now + k * step + 0.02, 3),
                               "end": round(now + (k + 1) * step - 0.02, 3)} for k, m in enumerate(found)]
        entries.append(entry)
        now += length
        previous = segment
    chapters[-1]["end"] = round(now, 3)
    return entries, chapters


def chapter_audio(entries: list[dict], chapters: list[dict], directory: Path) -> dict[int, Path]:
    """Each chapter's audio as the job's chapters are encoded (AAC in MP4):
    a quiet tone from its start (a later chapter's: its lead-in pause) to its end."""
    audio = {}
    for chapter in chapters:
        samples = round((chapter["end"] - chapter["start"]) * RATE)
        tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * 220 / RATE)).astype(np.float32)
        path = directory / f"chapter-{chapter['index']}.m4a"
        with formats.Encoder(path, "epub", RATE) as encoder:
            encoder.write(tone)
        audio[chapter["index"]] = path
    return audio


def readalong(plan: Plan, directory: Path, words: bool = False) -> Readalong:
    entries, chapters = timed_manifest(plan, words)
    return Readalong(plan, "urn:uuid:00000000-0000-4000-8000-000000000001", entries, chapters,
                     chapter_audio(entries, chapters, directory))


def epubcheck(path: Path) -> list[str]:
    """EPUBCheck's fatal errors, errors and warnings for ``path`` (none: it passes)."""
    program = shutil.which("epubcheck")
    if program is None:
        pytest.skip("epubcheck is not installed (Debian's epubcheck; scripts/install_test_tools.sh installs it)")
    # Debian's epubcheck is the jar itself, run through binfmt_misc where that is set up.
    command = ["java", "-jar", program] if Path(program).read_bytes()[:2] == b"PK" else [program]
    report = path.with_suffix(".json")
    subprocess.run([*command, str(path), "--json", str(report)], capture_output=True, timeout=300, check=False)
    messages = json.loads(report.read_text())["messages"]
    return [f"{m['severity']} {m['ID']}: {m['message']} at {[l.get('path') for l in m.get('locations', [])]}"
            for m in messages if m["severity"] in ("FATAL", "ERROR", "WARNING")]
