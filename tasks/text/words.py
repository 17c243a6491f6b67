"""Words of a segment, as written and as spoken, and which spoken words each
written word became.

A word is a run of non-space characters with at least one letter or digit in
it: "1818," and "“Yes,”" are words (punctuation stays with the word it
touches, as a reader sees it), a lone "—" is not. The spoken form
(``tasks/text/spoken``) rewrites some written words into several ("1818" ->
"eighteen eighteen", "Dr." -> "Doctor", "12 March" -> "the twelfth of
March") and keeps every other word as it was, so the two word lists are
matched by their words in common (``difflib``'s longest common runs, on words
folded to lower-case letters and digits), and each run of words between two
matches is shared out in order: a lone written word gets every spoken word of
its run; several ("e.g. No. 5") are told apart by what each says alone
(the reading rules applied to the word by itself), or, without the rules, in
proportion.

The correspondence is kept compactly, as ``ends``: for each written word, the
index just past the last spoken word it became; the first written word starts
at spoken word 0 and each next one where the one before ended, and the last
ends at the number of spoken words. A written word may become no spoken word
(its range is empty: a quote mark the reading rules dropped) and spoken words
the rules added go with the written word before them. ``()`` stands for the
common case, each written word one spoken word.

Segments are bounded in size (``sentences.split``), so the matching, quadratic
at worst in a segment's words, is linear in the book.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence

_WORD = re.compile(r"\S+")
_ALNUM = re.compile(r"[^\W_]")  # a letter or digit: what str.isalnum says, found by the regex engine
_FOLD = re.compile(r"[\W_]+")


def words_with_offsets(text: str) -> list[tuple[int, str]]:
    """The words of ``text`` and where each starts (in characters)."""
    return [(m.start(), m.group(0)) for m in _WORD.finditer(text) if _ALNUM.search(m.group(0))]


def words(text: str) -> list[str]:
    """The words of ``text``, in order."""
    search = _ALNUM.search
    return [w for w in text.split() if search(w)]


def _fold(word: str) -> str:
    return _FOLD.sub("", word).lower()


def correspondence(written: str, spoken: str, speak: Callable[[str], str] | None = None) -> tuple[int, ...]:
    """The ``ends`` of each written word of ``written`` in the words of ``spoken``
    (see the module docstring); ``()`` when each written word is one spoken word.
    ``speak`` (the reading rules that made ``spoken``) shares out a run of
    several written words by what each says alone."""
    if written == spoken:
        return ()
    said, heard = words(written), words(spoken)
    if len(said) == len(heard):  # most segments: the rules changed marks or respelled word for word
        return ()
    folded_said, folded_heard = [_fold(w) for w in said], [_fold(w) for w in heard]
    ends = [0] * len(said)
    matcher = difflib.SequenceMatcher(None, folded_said, folded_heard, autojunk=False)
    for tag, w0, w1, s0, s1 in matcher.get_opcodes():
        count = w1 - w0
        if tag == "equal" or count == s1 - s0:
            for i in range(count):
                ends[w0 + i] = s0 + i + 1
        elif count == 0:  # spoken words the rules added: they go with the written word before
            if w0:
                ends[w0 - 1] = s1
        elif count == 1 or speak is None:  # written words become these spoken words in proportion
            for i in range(count):
                ends[w0 + i] = s0 + round((i + 1) * (s1 - s0) / count)
        else:
            for i, end in enumerate(_share(said[w0:w1], folded_heard[s0:s1], speak)):
                ends[w0 + i] = s0 + end
    if said:
        ends[-1] = len(heard)  # spoken words added after the last match go with the last word
    return tuple(ends)


def _share(said: Sequence[str], heard: Sequence[str], speak: Callable[[str], str]) -> list[int]:
    """Ends, within ``heard``, of each of several written words that became
    ``heard`` together: each word's spoken words found by matching what it says
    alone; a spoken word found for none goes with the next word found."""
    alone = [(owner, _fold(w)) for owner, word in enumerate(said) for w in words(speak(word))]
    owners: list[int | None] = [None] * len(heard)
    matcher = difflib.SequenceMatcher(None, [w for _, w in alone], list(heard), autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            owners[b + k] = alone[a + k][0]
    following = len(said) - 1
    for position in range(len(heard) - 1, -1, -1):  # unmatched: the owner of the next matched word
        owner = owners[position]
        if owner is None:
            owners[position] = following
        else:
            following = owner
    ends, position = [], 0
    for owner in range(len(said)):
        while position < len(heard) and owners[position] == owner:
            position += 1
        ends.append(position)
    ends[-1] = len(heard)
    return ends


def spoken_ranges(ends: Sequence[int], written_count: int) -> list[range]:
    """For each of ``written_count`` written words, the range of spoken words it became."""
    if not ends:
        return [range(i, i + 1) for i in range(written_count)]
    starts = [0, *ends[:-1]]
    return [range(start, end) for start, end in zip(starts, ends)]
