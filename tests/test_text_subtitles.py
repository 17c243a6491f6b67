"""Subtitles carry the book's text as it is: escaped in WebVTT, where cue text
is markup, and plain in SRT, where it is not."""

from __future__ import annotations

import srt

from chorus.tasks.audio.subtitles import Cue, to_srt, to_vtt

CUES = [Cue(1, 0.0, 1.5, "Tom & Jerry: <b>not bold</b>, 3 < 4 > 2."), Cue(2, 1.5, 3.0, "Plain words.")]


def test_vtt_cue_text_is_escaped() -> None:
    vtt = to_vtt(CUES)
    assert "Tom &amp; Jerry: &lt;b&gt;not bold&lt;/b&gt;, 3 &lt; 4 &gt; 2." in vtt
    body = vtt.split("\n", 1)[1]  # after the WEBVTT header
    cue_lines = [line for line in body.splitlines() if line and "-->" not in line and not line.isdigit()]
    assert all("<" not in line and ">" not in line for line in cue_lines)
    assert "Plain words." in vtt


def test_srt_cue_text_stays_plain() -> None:
    parsed = list(srt.parse(to_srt(CUES)))
    assert parsed[0].content == "Tom & Jerry: <b>not bold</b>, 3 < 4 > 2."
    assert "&amp;" not in to_srt(CUES)
