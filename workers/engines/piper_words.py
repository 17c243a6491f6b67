"""Where each spoken word lies in Piper's audio, from its phoneme alignments.

With alignments, Piper gives the number of audio samples each phoneme of a
sentence took. espeak-ng puts a space phoneme between the words it says, so
the phonemes between two spaces are a word: its span runs from its first
phoneme to its last one that is not punctuation (a comma's samples are the
pause after the word). Sentences follow one another in the audio.

espeak-ng sometimes says two words as one ("of the", "would have": no space
between them) and may say one as two, so the phoneme words are matched to the
words of the text (``tasks/text/words.py``) by their lengths in phonemes: each
word of the text phonemised alone (remembered, books repeat their words), a
monotone match of runs of one phoneme word to up to three words of the text or
of up to three phoneme words to one, with the least difference in length; a
phoneme word said for several words is shared between them by their lengths.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

# Phonemes that are not sounds of a word: stress and length marks, punctuation, sentence edges.
_MARKS = frozenset("ˈˌːˑ^$")
_PUNCTUATION = frozenset(".,;:!?¡¿—–-…\"'()[]«»“”‘’")
_MOST_IN_A_RUN = 3
_STEPS = [(1, k) for k in range(1, _MOST_IN_A_RUN + 1)] + [(k, 1) for k in range(2, _MOST_IN_A_RUN + 1)]


def phoneme_words(sentences: Iterable[Sequence[tuple[str, int]]]) -> list[tuple[int, int, int]]:
    """(start sample, end sample, sounds) of each phoneme word, over sentences
    of (phoneme, samples) as they follow one another in the audio."""
    found: list[tuple[int, int, int]] = []
    position = 0
    for sentence in sentences:
        start = end = -1
        sounds = 0
        for phoneme, samples in [*sentence, (" ", 0)]:
            if phoneme == " ":
                if sounds:
                    found.append((start, end, sounds))
                start, end, sounds = -1, -1, 0
            elif phoneme not in _PUNCTUATION and phoneme not in ("^", "$"):
                if start < 0:
                    start = position
                end = position + samples
                sounds += phoneme not in _MARKS
            position += samples
    return found


def sounds_in(phonemes: Iterable[Sequence[str]]) -> int:
    """How many sounds (not marks, punctuation or spaces) phonemes of a text hold."""
    return sum(1 for sentence in phonemes for p in sentence
               if p != " " and p not in _MARKS and p not in _PUNCTUATION)


def word_spans(
    found: Sequence[tuple[int, int, int]], text_words: Sequence[str], phonemise: Callable[[str], int],
) -> list[tuple[int, int]] | None:
    """(start, end) samples of each word of the text, or None when the phoneme
    words cannot be matched to them. ``phonemise`` gives a word's sounds."""
    if len(found) == len(text_words):
        return [(start, end) for start, end, _ in found]
    if not found or not text_words:
        return None
    lengths = [max(1, phonemise(word)) for word in text_words]
    best = _match(found, lengths)
    if best is None:
        return None
    spans: list[tuple[int, int]] = []
    for g0, g1, w0, w1 in best:
        start, end = found[g0][0], found[g1 - 1][1]
        if w1 - w0 == 1:
            spans.append((start, end))
            continue
        total = sum(lengths[w0:w1])
        cut = start
        for w in range(w0, w1):
            after = end if w == w1 - 1 else cut + round((end - start) * lengths[w] / total)
            spans.append((cut, after))
            cut = after
    return spans


def _match(found: Sequence[tuple[int, int, int]], lengths: Sequence[int]) -> list[tuple[int, int, int, int]] | None:
    """The monotone match of phoneme words to text words with the least total
    difference in sounds: runs (g0, g1, w0, w1), one side of each run one long."""
    groups, count = len(found), len(lengths)
    heard_before = list(itertools.accumulate((sounds for _, _, sounds in found), initial=0))
    said_before = list(itertools.accumulate(lengths, initial=0))
    inf = float("inf")
    cost = [[inf] * (count + 1) for _ in range(groups + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (count + 1) for _ in range(groups + 1)]
    cost[0][0] = 0.0
    # Words run ahead of phoneme words by what was said as one, and behind by
    # what was said as two: a band around that keeps the match linear.
    low = min(0, count - groups) - _MOST_IN_A_RUN
    high = max(0, count - groups) + _MOST_IN_A_RUN
    for g in range(groups + 1):
        for w in range(max(0, g + low), min(count, g + high) + 1):
            here = cost[g][w]
            if here == inf:
                continue
            for dg, dw in _STEPS:
                g1, w1 = g + dg, w + dw
                if g1 > groups or w1 > count:
                    continue
                heard = heard_before[g1] - heard_before[g]
                said = said_before[w1] - said_before[w]
                step = here + abs(heard - said) + 0.5 * (dg + dw - 2)  # a run costs a little: prefer one to one
                if step < cost[g1][w1]:
                    cost[g1][w1] = step
                    back[g1][w1] = (g, w)
    if cost[groups][count] == inf:
        return None
    runs: list[tuple[int, int, int, int]] = []
    g, w = groups, count
    while (g, w) != (0, 0):
        previous = back[g][w]
        assert previous is not None
        runs.append((previous[0], g, previous[1], w))
        g, w = previous
    return runs[::-1]
