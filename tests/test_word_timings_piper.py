"""Word timings from the real Piper voice (en_US joe): one span per word of
the text, in order, inside the audio, and quieter at the words' edges than
inside the segment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chorus.configs import load_registry
from chorus.tasks.audio import mastering, timings
from chorus.tasks.text.words import words
from chorus.workers.engines.piper import PiperEngine

REGISTRY = load_registry(Path(__file__).parent.parent / "configs" / "voices.toml")
JOE = REGISTRY.voices["joe"]

SENTENCES = [
    "It was on a dreary night of November that I beheld the accomplishment of my toils.",
    "You may conceive my astonishment on hearing such a question addressed to me from a man on the brink of "
    "destruction, and to whom I should have supposed that my vessel would have been a resource.",
    "As soon as he showed signs of life we wrapped him up in blankets and placed him near the chimney of the "
    "kitchen stove.",
    "Mister Bennet was so odd a mixture of quick parts, sarcastic humour, reserve, and caprice, that the "
    "experience of three and twenty years had been insufficient to make his wife understand his character.",
]


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    return PiperEngine.load(REGISTRY.models["piper-joe"], threads=1)


def test_piper_aligns_one_span_per_word_in_order_inside_the_audio(piper: PiperEngine) -> None:
    assert piper.aligns_words
    for text in SENTENCES:
        samples, spans = piper.synthesize_words(text, JOE)
        assert spans is not None and len(spans) == len(words(text)), text
        assert all(0 <= a < b <= samples.size for a, b in spans)
        assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))


def test_word_edges_are_quieter_than_the_segment(piper: PiperEngine) -> None:
    """Without speech recognition: if the spans are where the words are, the
    audio around their edges (± 10 ms) is quieter than the segment on average."""
    rate = piper.sample_rate
    quieter = 0
    for text in SENTENCES:
        raw, spans = piper.synthesize_words(text, JOE)
        samples, trimmed = mastering.prepare_segment_at(raw, rate)
        recorded = timings.recorded_spans(spans, trimmed, samples.size, rate)
        edge_energy = timings.edge_energy(samples, rate, recorded)
        if edge_energy < float(np.mean(samples.astype(np.float64) ** 2)):
            quieter += 1
    assert quieter == len(SENTENCES)


def test_speed_is_in_the_spans(piper: PiperEngine) -> None:
    text = SENTENCES[0]
    normal, at_normal = piper.synthesize_words(text, JOE)
    fast, at_double = piper.synthesize_words(text, JOE, speed=2.0)
    assert at_normal is not None and at_double is not None
    # The length scale shortens the words as it shortens the audio (each
    # phoneme at least a frame, so not quite half at twice the speed).
    words_ratio = (at_double[-1][1] - at_double[0][0]) / (at_normal[-1][1] - at_normal[0][0])
    audio_ratio = fast.size / normal.size
    assert words_ratio < 0.75 and abs(words_ratio - audio_ratio) < 0.05
    assert at_double[-1][1] <= fast.size
