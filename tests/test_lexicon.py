"""The pronunciation lexicon: its matching rules, its cost on adversarial
input, its place in the plan (spoken form and cache key change, the text as
written does not), its store in a real Redis, and, against the real stack, the
lexicon's routes, tenants kept apart, and a job with the key's lexicon and an
inline one."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.api.submission import Received
from chorus.tasks.errors import InputError
from chorus.tasks.state.keys import KeyStore
from chorus.tasks.state.lexicon import LexiconStore
from chorus.tasks.state.storage import plan_key
from chorus.tasks.text.plan import Plan
from chorus.tasks.text.spoken import spoken_form
from chorus.tasks.text.spoken.lexicon import MAX_ENTRIES, MAX_SIDE_CHARS, Entry, Lexicon, entry, merge
from tests.conftest import best_time, plan_of, plan_text, submission_of, wait_for

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: redis_server, r


def respell(text: str, *entries: Entry) -> str:
    return Lexicon(entries).apply(text)


# -- matching rules ------------------------------------------------------------------


def test_case_insensitive_by_default_and_exact_when_asked() -> None:
    assert respell("GIF, gif and Gif.", entry("gif", "jif")) == "jif, jif and jif."
    assert respell("US and us.", entry("US", "you ess", case_sensitive=True)) == "you ess and us."


def test_whole_words_only() -> None:
    gif = entry("GIF", "jif")
    assert respell("GIFT GIFs aGIF GIF2 GIF_", gif) == "GIFT GIFs aGIF GIF2 jif_"  # "_" is not a letter: a boundary
    assert respell("(GIF) GIF's \"GIF\" GIF.", gif) == "(jif) jif's \"jif\" jif."


def test_punctuation_at_an_edge_needs_no_boundary() -> None:
    assert respell("Dr. Who and Dr.No", entry("Dr.", "Drive")) == "Drive Who and DriveNo"
    assert respell("I like C++ and C.", entry("C++", "see plus plus")) == "I like see plus plus and C."


def test_phrases_and_whitespace() -> None:
    york = entry("new   york", "Noo York")  # stored with single spaces
    assert york.word == "new york"
    assert respell("New York, New\tYork and New  York.", york) == "Noo York, Noo York and New  York."


def test_longest_match_wins_leftmost_first() -> None:
    entries = (entry("New", "Nu"), entry("New York", "Noo York"), entry("New York City", "N Y C"), entry("York", "Yawk"))
    assert respell("New York City is in New York, not New Jersey; York.", *entries) == (
        "N Y C is in Noo York, not Nu Jersey; Yawk."
    )


def test_overlaps_are_taken_left_to_right_and_never_rescanned() -> None:
    entries = (entry("a b", "X"), entry("b c", "Y"), entry("X", "never"))
    assert respell("a b c", *entries) == "X c"  # "a b" starts first; its respelling "X" is not matched again


def test_a_longer_entry_that_fails_its_boundary_gives_way_to_a_shorter_one() -> None:
    entries = (entry("New York", "Noo York"), entry("New Yorker", "magazine"), entry("New", "Nu"))
    assert respell("New Yorkers", *entries) == "Nu Yorkers"


def test_at_equal_length_the_case_sensitive_entry_wins() -> None:
    entries = (entry("us", "uss"), entry("US", "you ess", case_sensitive=True))
    assert respell("US us Us", *entries) == "you ess uss uss"


def test_chinese_entries_match_as_substrings() -> None:
    beijing = entry("北京", "Běijīng")
    assert respell("北京市和在北京。", beijing) == "Běijīng市和在Běijīng。"
    # Chinese characters are not letters next to a Latin entry, nor does a
    # Latin entry match inside a Latin word next to them.
    assert respell("用GPU算，GPUs。", entry("GPU", "gee pee you")) == "用gee pee you算，GPUs。"


def test_case_folding_keeps_positions() -> None:
    # "İ".lower() is two characters: the text's other positions must not shift.
    assert respell("İstanbul GIF", entry("gif", "jif")) == "İstanbul jif"


def test_no_entries_leave_the_text_alone() -> None:
    assert Lexicon(()).apply("Anything at all.") == "Anything at all."
    assert not Lexicon(())


def test_entries_are_checked() -> None:
    for word, say in (("", "x"), ("...", "x"), ("a" * (MAX_SIDE_CHARS + 1), "x"), ("ok", ""), ("ok", "a\x00b"),
                      ("ok", "y" * (MAX_SIDE_CHARS + 1))):
        with pytest.raises(InputError):
            entry(word, say)
    assert entry("  Caf\u0065\u0301  ", "ka fay").word == "Café"  # NFC, trimmed


def test_later_lexicons_override_earlier_ones_word_by_word_whatever_the_case() -> None:
    key = (entry("GIF", "gif"), entry("SQL", "sequel"))
    job = (entry("gif", "jif"),)
    merged = merge(key, job)
    assert {(e.word, e.say) for e in merged} == {("gif", "jif"), ("SQL", "sequel")}
    assert merge(job, key) != merged


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="aAb _1.北", max_size=40), st.lists(st.text(alphabet="aAb _1.北", min_size=1, max_size=5), max_size=6),
       st.lists(st.booleans(), min_size=6, max_size=6))
def test_matches_a_naive_reference(text: str, words: list[str], exact: list[bool]) -> None:
    """The automaton agrees with the rules as written, tried position by position."""
    entries = []
    for word, case_sensitive in zip(words, exact):
        try:
            entries.append(entry(word, f"<{word.strip()}>", case_sensitive))
        except InputError:
            pass
    entries = list(merge(entries))
    assert Lexicon(entries).apply(text) == naive(text, entries)


def naive(text: str, entries: list[Entry]) -> str:
    def word_char(c: str) -> bool:
        return c.isalnum() and not ("\u4e00" <= c <= "\u9fff")

    out, i = [], 0
    while i < len(text):
        best = None
        for e in entries:
            piece = text[i : i + len(e.word)]
            if piece.lower() != e.word.lower() or (e.case_sensitive and piece != e.word):
                continue
            j = i + len(e.word)
            if i > 0 and word_char(text[i]) and word_char(text[i - 1]):
                continue
            if j < len(text) and word_char(text[j - 1]) and word_char(text[j]):
                continue
            if best is None or len(e.word) > len(best.word) or (len(e.word) == len(best.word) and e.case_sensitive):
                best = e
        if best is None:
            out.append(text[i])
            i += 1
        else:
            out.append(best.say)
            i += len(best.word)
    return "".join(out)


# -- cost -----------------------------------------------------------------------------


def adversarial_entries() -> list[Entry]:
    """Entries as long as allowed, sharing long prefixes with the text, none of
    which ever completes: a trie walked from each position would go 100
    characters deep at every one."""
    entries = [entry("a " * 48 + str(i), "x") for i in range(MAX_ENTRIES // 2)]
    entries += [entry("中" * 99 + chr(0x5000 + i), "x") for i in range(MAX_ENTRIES // 2)]
    return entries


@pytest.mark.parametrize("unit", ["a ", "中"])
def test_linear_on_adversarial_input(unit: str) -> None:
    lexicon = Lexicon(adversarial_entries())
    small, large = unit * 50_000, unit * 100_000
    assert lexicon.apply(small) == small
    for _ in range(3):  # a busy machine may spoil one round of timings, not three
        t1, t2 = best_time(lambda: lexicon.apply(small)), best_time(lambda: lexicon.apply(large))
        if t2 < 3.0 * t1:
            break
    assert t2 < 3.0 * t1, (t1, t2)  # linear: about 2x for twice the text (quadratic would be 4x)
    assert t2 / len(large) < 10e-6, t2  # and a few microseconds a character, not the entries' length times that


def test_per_segment_cost_is_small() -> None:
    """A thousand ordinary entries on a segment-sized sentence."""
    lexicon = Lexicon([entry(f"word{i}", f"say {i}") for i in range(MAX_ENTRIES)])
    sentence = "It is a truth universally acknowledged, that a single man in possession of a good fortune, word7 must be."
    seconds = best_time(lambda: [lexicon.apply(sentence) for _ in range(1000)]) / 1000
    assert seconds < 0.001, seconds


# -- in the plan ----------------------------------------------------------------------


def test_lexicon_before_the_reading_rules() -> None:
    assert spoken_form("Dr. Smith lives here.", "en") == "Doctor Smith lives here."
    drive = Lexicon([entry("Dr. Smith", "Drive Smith")])
    assert spoken_form("Dr. Smith lives here.", "en", drive) == "Drive Smith lives here."
    # A respelling is read by the rules like any text.
    assert spoken_form("Watch HAL9000 now.", "en", Lexicon([entry("HAL9000", "Hal 9000")])) == "Watch Hal nine thousand now."


def test_the_plan_keeps_the_text_as_written_and_keys_what_is_said() -> None:
    text = "The GIF loaded. Nothing else changed."
    plain, respelled = plan_text(text), plan_text(text, lexicon={"GIF": "jif"})
    assert [s.text for s in plain.segments] == [s.text for s in respelled.segments]
    assert respelled.segments[0].text == "The GIF loaded." and respelled.segments[0].spoken == "The jif loaded."
    assert respelled.segments[0].cache_key != plain.segments[0].cache_key  # what is said changed
    assert respelled.segments[1].cache_key == plain.segments[1].cache_key  # nothing said differently: same audio
    assert respelled.lexicon == (Entry("GIF", "jif"),)


def test_an_entry_that_matches_nothing_changes_no_key() -> None:
    text = "A plain sentence."
    assert plan_text(text).segments == plan_text(text, lexicon=[{"word": "zebra", "say": "zee bra"}]).segments


def test_the_jobs_entries_override_the_keys() -> None:
    plan = plan_text("GIF and SQL.", key_lexicon=(entry("GIF", "gif"), entry("SQL", "sequel")), lexicon={"gif": "jif"})
    assert plan.segments[0].spoken == "jif and sequel."


def test_the_plan_round_trips_with_its_lexicon() -> None:
    plan = plan_text("GIF.", lexicon=[{"word": "GIF", "say": "jif", "case_sensitive": True}])
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


@pytest.mark.parametrize("lexicon", [
    {"...": "dots"},
    {"a" * (MAX_SIDE_CHARS + 1): "x"},
    {"ok": ""},
    [{"word": "ok"}],
    {str(i): "x" for i in range(MAX_ENTRIES + 1)},
    "not json",
    [{"word": "ok", "say": "fine", "case_sensitive": "perhaps"}],
])
def test_bad_inline_lexicons_are_refused(lexicon: object) -> None:
    with pytest.raises(InputError, match="lexicon"):
        plan_text("Hello.", lexicon=lexicon)


def test_a_form_field_carries_the_lexicon_as_json() -> None:
    fields = {"voice": "tone", "lexicon": json.dumps({"GIF": "jif"}), "speed": "1.5"}
    plan = plan_of(submission_of(Received("upload", b"The GIF.", "a.txt", fields)))
    assert plan.segments[-1].spoken == "The jif." and plan.speed == 1.5


# -- the store ------------------------------------------------------------------------


def test_store_per_key(r) -> None:
    store = LexiconStore(r)
    assert store.put("k1", entry("GIF", "jif")) is True
    assert store.put("k1", entry("gif", "gif", case_sensitive=True)) is False  # the same word: replaced
    assert store.entries("k1") == (Entry("gif", "gif", True),)
    assert store.entries("k2") == ()
    assert store.get("k1", "GIF") == Entry("gif", "gif", True)
    assert store.remove("k1", "Gif") and not store.remove("k1", "Gif")
    assert store.replace("k1", [entry("b", "bee"), entry("a", "ay")]) == (Entry("a", "ay"), Entry("b", "bee"))
    assert store.replace("k1", []) == () and store.entries("k1") == ()


def test_store_bound(r) -> None:
    store = LexiconStore(r)
    store.replace("k1", [entry(f"w{i}", "x") for i in range(MAX_ENTRIES)])
    with pytest.raises(InputError, match="holds"):
        store.put("k1", entry("one-more", "x"))
    store.put("k1", entry("w1", "changed"))  # an existing word may still change
    with pytest.raises(InputError):
        store.replace("k1", [entry(f"v{i}", "x") for i in range(MAX_ENTRIES + 1)])


# -- against the real stack -----------------------------------------------------------


def key_client(stack: dict[str, str], key: str) -> httpx.Client:
    return httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.mark.stack
def test_lexicon_routes_per_key(stack, jobs) -> None:
    keys = KeyStore(jobs.redis)
    (key_a, _), (key_b, _) = keys.create("lexicon-a", 10_000, 100, 5), keys.create("lexicon-b", 10_000, 100, 5)
    with key_client(stack, key_a) as a, key_client(stack, key_b) as b:
        assert a.get("/v1/lexicon").json() == []
        created = a.put("/v1/lexicon/GIF", json={"say": "jif"})
        assert created.status_code == 201, created.text
        assert created.json() == {"word": "GIF", "say": "jif", "case_sensitive": False}
        assert a.put("/v1/lexicon/gif", json={"say": "jiff"}).status_code == 200  # the same word, any case
        assert a.put("/v1/lexicon/New York", json={"say": "Noo York", "case_sensitive": True}).status_code == 201
        assert a.put("/v1/lexicon/A%2FB", json={"say": "a or b"}).status_code == 201  # a slash in the word
        assert [e["word"] for e in a.get("/v1/lexicon").json()] == ["A/B", "gif", "New York"]
        assert a.get("/v1/lexicon/GIF").json()["say"] == "jiff"
        # Another key sees none of it, and cannot touch it.
        assert b.get("/v1/lexicon").json() == []
        assert b.get("/v1/lexicon/gif").status_code == 404
        assert b.delete("/v1/lexicon/gif").status_code == 404
        assert a.delete("/v1/lexicon/GIF").status_code == 204
        assert a.delete("/v1/lexicon/GIF").status_code == 404
        for bad in ({"say": ""}, {"say": "x" * (MAX_SIDE_CHARS + 1)}, {}, {"say": "ok", "case_sensitive": "perhaps"}):
            assert a.put("/v1/lexicon/word", json=bad).status_code == 422, bad
        assert a.put("/v1/lexicon/...", json={"say": "dots"}).status_code == 422
        whole = a.put("/v1/lexicon", json={"SQL": "sequel", "GIF": "jif"})
        assert whole.status_code == 200 and [e["word"] for e in whole.json()] == ["GIF", "SQL"]
        assert a.put("/v1/lexicon", json={str(i): "x" for i in range(MAX_ENTRIES + 1)}).status_code == 422
        assert [e["word"] for e in a.get("/v1/lexicon").json()] == ["GIF", "SQL"]
        assert httpx.get(stack["CHORUS_API_URL"] + "/v1/lexicon").status_code == 401


@pytest.mark.stack
def test_a_job_with_the_keys_and_its_own_lexicon(stack, jobs, storage) -> None:
    key, _ = KeyStore(jobs.redis).create("lexicon-job", 10_000, 100, 5)
    text = "The GIF opened. Then SQL ran. Then nothing."
    with key_client(stack, key) as client:
        assert client.put("/v1/lexicon/GIF", json={"say": "gif with a hard g"}).status_code == 201
        assert client.put("/v1/lexicon/SQL", json={"say": "sequel"}).status_code == 201
        response = client.post("/v1/jobs", json={"text": text, "voice": "tone", "lexicon": {"gif": "jif"}})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        # An edit after submission does not reach the job: its plan holds the lexicon of its submission.
        assert client.put("/v1/lexicon/SQL", json={"say": "ess queue ell"}).status_code == 200
        status = wait_for(client, job_id)
        assert status["state"] == "done", status["error"]
        plan = Plan.from_dict(storage.get_json(plan_key(job_id)))
        assert [s.spoken for s in plan.segments] == ["The jif opened.", "Then sequel ran.", "Then nothing."]
        manifest = httpx.get(status["manifest_url"], timeout=30).json()
        assert [s["text"] for s in manifest["segments"]] == ["The GIF opened.", "Then SQL ran.", "Then nothing."]
        srt = httpx.get(status["artefacts"]["srt"], timeout=30).text
        assert "The GIF opened." in srt and "jif" not in srt

        bad = client.post("/v1/jobs", json={"text": text, "voice": "tone", "lexicon": [{"word": "...", "say": "x"}]})
        assert bad.status_code == 422 and "lexicon" in bad.json()["detail"]
