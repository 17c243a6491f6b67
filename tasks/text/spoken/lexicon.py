"""A pronunciation lexicon: words and phrases respelled before the reading rules.

An entry maps a word or phrase as written to what the engine should say
instead ("GIF" -> "jif", "Nguyen" -> "win", "Dr." -> "Drive"). A key keeps its
own lexicon (``tasks/state/lexicon.py``), a job may bring one inline; the job's
entries override the key's for the same word, and the merged lexicon is frozen
into the job's plan when it is made.

Where it applies: to each segment's text as written, before the language's
reading rules (``chorus.tasks.text.spoken``), so entries for abbreviations, numbers
and letter-digit words ("Dr.", "2001", "C3PO") match what the author wrote;
the respelling is then read by those rules like any text. Only the spoken
form changes: the plan's ``text`` (manifest, subtitles) stays as written.

Matching rules:

- Case: an entry matches regardless of case unless it says
  ``case_sensitive``; an entry's identity is its word without case, so a
  lexicon holds one entry for "GIF" and "gif" alike.
- Boundaries: an entry whose first (last) character is a letter or digit
  matches only where the text's character before (after) it is not one: "GIF"
  matches in "a GIF." and "GIF's", not in "GIFT". Chinese characters and kana
  have no word boundaries: at an edge that is one of them the entry matches as
  a substring ("北京" in "北京市"), and they do not count as letters next to a
  Latin entry ("GPU" in "用GPU算").
- Phrases: whitespace inside an entry is one space; it matches any one
  whitespace character (segments hold single spaces).
- Overlaps: scanning left to right, the longest entry that matches at a
  position wins (at equal length a case-sensitive entry beats one that is
  not); matched text is replaced and never rescanned, so a respelling is
  never matched again.

Cost: linear in the text, whatever the entries. Boundaries are made part of
the text: one regular expression (no nested quantifiers) marks where each run
of letters and digits begins and ends, and entries are marked the same way, so
that a plain substring match of a marked entry in the marked text is exactly a
match by the rules above. The marked text is then read once, backwards, by an
Aho–Corasick automaton of the reversed entries: at each position it knows the
longest entry that starts there, at amortised constant cost per character, no
matter how many entries share how long a prefix (a trie walked from every
position would cost up to ``MAX_SIDE_CHARS`` steps per character). A left to
right pass then takes the leftmost, longest matches. Building the automaton
costs the total length of the entries, once per plan. Bounds: ``MAX_ENTRIES``
entries per lexicon (a key's, a job's: so at most twice that merged),
``MAX_SIDE_CHARS`` characters per word and per respelling.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from chorus.tasks.errors import InputError

__all__ = ["MAX_ENTRIES", "MAX_SIDE_CHARS", "Entry", "Lexicon", "entry", "identity", "merge"]

MAX_ENTRIES = 1000
MAX_SIDE_CHARS = 100

_SPACES = re.compile(r"\s+")
_ODD_SPACE = re.compile(r"[^\S ]")  # whitespace other than a plain space, one character at a time
# A run of letters and digits: alphanumerics except Chinese characters and
# kana (chorus.tasks.text.script's "han" and "kana"), which have no word boundaries.
_WORD_RUN = re.compile(
    r"(?:(?![\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])[^\W_])+"
)
# Marks around each run (control characters: no text or entry keeps one).
_BEGIN, _FINISH = "\x02", "\x03"
_UNMARK = {ord(_BEGIN): None, ord(_FINISH): None}


@dataclass(frozen=True)
class Entry:
    word: str  # as written in the text: a word or phrase
    say: str  # what the engine says instead
    case_sensitive: bool = False

    @property
    def identity(self) -> str:
        """One entry per word, whatever its case: the job's overrides the key's."""
        return identity(self.word)


def identity(word: str) -> str:
    """What tells one entry's word from another's: NFC, single spaces, no case."""
    return _fold(_SPACES.sub(" ", unicodedata.normalize("NFC", word)).strip())


def _clean(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"lexicon: {what} must be a string")
    value = _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if not value:
        raise InputError(f"lexicon: {what} is empty")
    if len(value) > MAX_SIDE_CHARS:
        raise InputError(f"lexicon: {what} {value[:20]!r}... is longer than {MAX_SIDE_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise InputError(f"lexicon: {what} {value!r} holds control or unassigned characters")
    return value


def entry(word: str, say: str, case_sensitive: bool = False) -> Entry:
    """A checked entry (NFC, whitespace as single spaces, within the bounds);
    InputError says what is wrong."""
    word = _clean(word, "word")
    if not any(c.isalnum() for c in word):
        raise InputError(f"lexicon: word {word!r} has no letter or digit")
    return Entry(word, _clean(say, f"respelling of {word!r}"), bool(case_sensitive))


def merge(*lexicons: Iterable[Entry]) -> tuple[Entry, ...]:
    """Lexicons merged, later ones overriding earlier ones word by word;
    ordered by word, so the same entries always make the same plan. Each is
    bounded by ``MAX_ENTRIES`` where it is accepted (the key's store, the
    job's request), so a key's and a job's make at most twice that."""
    merged: dict[str, Entry] = {}
    for lexicon in lexicons:
        for item in lexicon:
            merged[item.identity] = item
    return tuple(sorted(merged.values(), key=lambda e: (e.identity, e.word)))


def _fold_char(char: str) -> str:
    """One character for one: its lower case where that is one character
    ("İ".lower() is two)."""
    lower = char.lower()
    return lower if len(lower) == 1 else char


def _fold(text: str) -> str:
    """Lower case, position for position with ``text``."""
    lower = text.lower()
    return lower if len(lower) == len(text) else "".join(map(_fold_char, text))


def _marked(text: str) -> str:
    """Each run of letters and digits between a begin and a finish mark."""
    return _WORD_RUN.sub(_BEGIN + r"\g<0>" + _FINISH, text)


class _Automaton:
    """Aho–Corasick over reversed (marked) words: read a text backwards, it
    says at each position the longest word that starts there."""

    def __init__(self, words: Iterable[tuple[str, Entry]]) -> None:
        goto: list[dict[str, int]] = [{}]
        longest: list[tuple[int, Entry] | None] = [None]  # per state: the longest word that ends its string
        for word, item in words:
            state = 0
            for char in reversed(word):
                following = goto[state].get(char)
                if following is None:
                    following = len(goto)
                    goto[state][char] = following
                    goto.append({})
                    longest.append(None)
                state = following
            longest[state] = (len(word), item)
        fail = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:  # breadth first: a state's failure is shallower, so done before it
            state = queue.popleft()
            for char, following in goto[state].items():
                queue.append(following)
                back = fail[state]
                while back and char not in goto[back]:
                    back = fail[back]
                fail[following] = goto[back].get(char, 0)
                if longest[following] is None:
                    longest[following] = longest[fail[following]]
        self.goto, self.fail, self.longest = goto, fail, longest

    def scan(self, text: str, found: dict[int, tuple[int, Entry]]) -> None:
        """Record in ``found``, per start in ``text``, the longest word there
        (where it is longer than what ``found`` holds already)."""
        goto, fail, longest = self.goto, self.fail, self.longest
        last = len(text) - 1
        state = 0
        for back, char in enumerate(reversed(text)):
            while state and char not in goto[state]:
                state = fail[state]
            state = goto[state].get(char, 0)
            hit = longest[state]
            if hit is not None:
                start = last - back
                known = found.get(start)
                if known is None or hit[0] > known[0]:
                    found[start] = hit


class Lexicon:
    """Entries compiled for matching: an automaton for those that say
    ``case_sensitive`` (read on the text as written) and one for the rest
    (read on the text in lower case)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = tuple(entries)
        exact = [(_marked(e.word), e) for e in self.entries if e.case_sensitive]
        folded = [(_fold(_marked(e.word)), e) for e in self.entries if not e.case_sensitive]
        self._exact = _Automaton(exact) if exact else None
        self._folded = _Automaton(folded) if folded else None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def apply(self, text: str) -> str:
        """``text`` with every match replaced by its respelling (rules above)."""
        if not self.entries:
            return text
        source = text
        if _ODD_SPACE.search(source):  # a tab or a no-break space matches an entry's space
            source = _ODD_SPACE.sub(" ", source)
        marked = _marked(source.translate(_UNMARK))
        found: dict[int, tuple[int, Entry]] = {}
        if self._exact is not None:  # first: at equal length it wins
            self._exact.scan(marked, found)
        if self._folded is not None:
            self._folded.scan(_fold(marked), found)
        if not found:
            return text
        out: list[str] = []
        done = 0  # marked text before this is in ``out`` (or replaced)
        for start in sorted(found):
            if start < done:  # inside a match taken already: never rescanned
                continue
            length, item = found[start]
            out.append(marked[done:start])
            out.append(item.say)
            done = start + length
        out.append(marked[done:])
        return "".join(out).translate(_UNMARK)
