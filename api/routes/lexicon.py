"""The caller's pronunciation lexicon: list it, set or delete one word, replace it whole.

Entries belong to the API key (``tasks/state/lexicon.py``); a job reads them
when it is submitted, so an edit applies to jobs submitted after it, never to
one already accepted. Matching rules and bounds: ``tasks/text/spoken/lexicon.py``.
Handlers are plain functions: FastAPI runs them in a worker thread, so their
sync Redis calls never hold up the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status

from chorus.api.deps import CallerDep
from chorus.api.schemas import ErrorDocument, JobLexicon, LexiconEntry, LexiconSaying
from chorus.tasks import clients
from chorus.tasks.errors import WordNotFound
from chorus.tasks.state.lexicon import LexiconStore
from chorus.tasks.text.spoken.lexicon import MAX_ENTRIES, MAX_SIDE_CHARS, Entry, entry

router = APIRouter(prefix="/v1/lexicon", tags=["lexicon"])

# A whole lexicon as JSON: every character of both sides escaped as \uXXXX (6
# bytes) at worst, plus the keys and punctuation of each entry.
REPLACE_MAX_BYTES = MAX_ENTRIES * (2 * MAX_SIDE_CHARS * 6 + 64) + 1024


async def _lexicons() -> LexiconStore:
    return clients.lexicons()


LexiconsDep = Annotated[LexiconStore, Depends(_lexicons)]
_NOT_FOUND = {404: {"model": ErrorDocument}}
_INVALID = {422: {"model": ErrorDocument}}


def _document(item: Entry) -> LexiconEntry:
    return LexiconEntry(word=item.word, say=item.say, case_sensitive=item.case_sensitive)


@router.get("", response_model=list[LexiconEntry], summary="This key's lexicon, ordered by word")
def list_entries(caller: CallerDep, lexicons: LexiconsDep) -> list[LexiconEntry]:
    return [_document(item) for item in lexicons.entries(caller.id)]


@router.put("", response_model=list[LexiconEntry], responses=_INVALID,
            summary="Replace this key's whole lexicon (a list of entries, or {word: respelling})")
def replace_entries(caller: CallerDep, lexicons: LexiconsDep, entries: Annotated[JobLexicon, Body()]) -> list[LexiconEntry]:
    stored = lexicons.replace(caller.id, (Entry(e.word, e.say, e.case_sensitive) for e in entries))
    return [_document(item) for item in stored]


@router.get("/{word:path}", response_model=LexiconEntry, responses=_NOT_FOUND, summary="How one word is said")
def get_entry(word: str, caller: CallerDep, lexicons: LexiconsDep) -> LexiconEntry:
    item = lexicons.get(caller.id, word)
    if item is None:
        raise WordNotFound(f"no lexicon entry for {word!r}")
    return _document(item)


@router.put(
    "/{word:path}",
    response_model=LexiconEntry,
    # 404: a word with a line break in it matches no route (it could be no entry anyway).
    responses={201: {"model": LexiconEntry, "description": "A new word"}, **_INVALID, **_NOT_FOUND},
    summary="Set how one word or phrase is said (any case of it, unless case_sensitive)",
)
def put_entry(word: str, saying: LexiconSaying, caller: CallerDep, lexicons: LexiconsDep, response: Response) -> LexiconEntry:
    item = entry(word, saying.say, saying.case_sensitive)  # InputError (422) for a word it cannot match
    if lexicons.put(caller.id, item):
        response.status_code = status.HTTP_201_CREATED
    return _document(item)


@router.delete("/{word:path}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND,
               summary="Forget how one word is said")
def delete_entry(word: str, caller: CallerDep, lexicons: LexiconsDep) -> Response:
    if not lexicons.remove(caller.id, word):
        raise WordNotFound(f"no lexicon entry for {word!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
