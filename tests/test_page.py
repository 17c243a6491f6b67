"""The listening page at /, driven in headless Chromium against the real stack:
enter the key, read a pasted two-chapter text with the tone stand-in, play a
chapter, find the job in the list, cancel a slow job, read a chapter along as
it plays (a chapter, and a book of one chapter), and the manifest route it
reads from.

Chromium and chromedriver come from scripts/install_test_tools.sh (make test runs
it); where they are missing these tests skip and say so. CHORUS_TEST_CHROMIUM
and CHORUS_TEST_CHROMEDRIVER point elsewhere; CHORUS_TEST_ARTIFACTS names a
folder for the screenshot (it is also copied to test-artifacts/page.png)."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import FLAKY_FILE, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.browser, pytest.mark.timeout(240)]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra has it)")
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = os.environ.get("CHORUS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHORUS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parent.parent
KEY_ITEM = "chorus.apiKey"  # where app.js keeps the key
TWO_CHAPTERS = "Chapter 1\n\nFirst words are here.\n\nChapter 2\n\nMore words follow them."
T = TypeVar("T")
SLOW = "dawdle"  # the tone stand-in takes 4 s over a segment with this word (tests/voices.toml)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} is missing: scripts/install_test_tools.sh installs Chromium (as root, with apt-get)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Without the background-networking flags Chromium stalls on a closed network.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,2000", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _until(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], timeout: float = 60, what: str = "") -> T:
    """``condition``'s first truthy answer; on timeout, what the page shows."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        seen = {name: _text(driver, name) for name in ("error", "job-state", "job-counts", "job-error")}
        raise AssertionError(f"{what}; the page shows {seen}") from None


def _policy_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def _submit(driver: webdriver.Chrome, voice: str, audio_format: str, *, text: str = "", book: Path | None = None,
            speed: str = "1") -> str:
    """Paste a text or choose a file, then voice, format and speed; submit; the
    id of the job the page shows."""
    shown = "return document.getElementById('job').dataset.id"
    before = driver.execute_script(shown)
    box = driver.find_element(By.ID, "book-text")
    box.clear()
    box.send_keys(text)
    if book:
        driver.find_element(By.ID, "book-file").send_keys(str(book))
    driver.find_element(By.ID, "speed").clear()
    driver.find_element(By.ID, "speed").send_keys(speed)
    Select(driver.find_element(By.ID, "voice")).select_by_value(voice)
    Select(driver.find_element(By.ID, "format")).select_by_value(audio_format)
    driver.find_element(By.ID, "submit-button").click()
    _until(driver, lambda d: d.execute_script(shown) not in (None, before), 30, "the page never showed the submitted job")
    return driver.execute_script(shown)


def _screenshot(driver: webdriver.Chrome, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CHORUS_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "page.png"
    driver.save_screenshot(str(shot))
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    shutil.copyfile(shot, REPO / "test-artifacts" / "page.png")
    return shot


def test_page_is_served_without_a_key_under_a_strict_policy(stack: dict[str, str]) -> None:
    base = stack["CHORUS_API_URL"]
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
    s3 = urlsplit(stack["CHORUS_S3_ENDPOINT"])
    assert f"media-src 'self' {s3.scheme}://{s3.netloc}" in policy
    assert "access-control-allow-origin" not in page.headers
    assert httpx.get(f"{base}/static/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{base}/static/../main.py").status_code == 404
    assert httpx.get(f"{base}/static/index.html").status_code == 404  # only the listed files
    assert httpx.get(f"{base}/v1/voices").status_code == 401  # the page opens nothing else
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_listen_to_a_book(browser: webdriver.Chrome, stack: dict[str, str], api: httpx.Client, tmp_path: Path) -> None:
    driver = browser
    driver.get(f"{stack['CHORUS_API_URL']}/")

    # A wrong key: the API's 401 is shown in the page; then the right key, kept.
    driver.find_element(By.ID, "key-input").send_keys("not-a-key")
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    _until(driver, lambda d: d.find_element(By.ID, "error").is_displayed(), 15, "no error for a wrong key")
    assert _text(driver, "error").startswith("401:")
    driver.find_element(By.ID, "forget-key").click()
    assert driver.execute_script(f"return localStorage.getItem('{KEY_ITEM}')") is None
    driver.find_element(By.ID, "key-input").send_keys(stack["CHORUS_API_KEY"])
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#voice option[value='tone']"), 15, "voices not listed")
    assert not driver.find_element(By.ID, "error").is_displayed()
    assert driver.execute_script(f"return localStorage.getItem('{KEY_ITEM}')") == stack["CHORUS_API_KEY"]

    job_id = _submit(driver, "tone", "wav", text=TWO_CHAPTERS)
    _until(driver, lambda d: _text(d, "job-state") == "done", 90, "the page never showed the job done")
    status = wait_for(api, job_id)
    assert status["state"] == "done" and len(status["chapters"]) == 2

    # Each chapter plays in the page, from its presigned URL on the S3 endpoint.
    players = driver.find_elements(By.CSS_SELECTOR, "#chapters audio")
    assert len(players) == 2
    for player, chapter in zip(players, status["chapters"], strict=True):
        assert player.get_attribute("src").split("?")[0] == chapter["url"].split("?")[0]
    loaded = "const a = arguments[0]; return a.readyState >= 1 && a.duration > 0 ? a.duration : null;"
    duration = _until(driver, lambda d: d.execute_script(loaded, players[0]), 30, "the chapter's audio never loaded")
    assert duration > 0.3

    links = {a.text: a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#downloads a")}
    assert links["Audiobook"].split("?")[0] == status["result_url"].split("?")[0]
    for label, name in (("Subtitles (SRT)", "srt"), ("Subtitles (WebVTT)", "vtt"), ("Manifest (JSON)", "manifest"),
                        ("Word timings (JSON)", "words")):
        assert links[label].split("?")[0] == status["artefacts"][name].split("?")[0]

    row = f"#jobs button[data-id='{job_id}']"
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} .state-done"), 10, "the job list never showed it done")
    assert not _policy_errors(driver)
    shot = _screenshot(driver, tmp_path)
    assert shot.stat().st_size > 10_000


def test_upload_watch_and_cancel(browser: webdriver.Chrome, stack: dict[str, str], api: httpx.Client,
                                 tmp_path: Path) -> None:
    driver = browser
    driver.get(f"{stack['CHORUS_API_URL']}/")  # the key is still kept: no need to enter it again
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#voice option[value='tone']"), 15, "voices not listed")
    # A book uploaded as a file (multipart), read at another speed: slow enough
    # to show an ETA once a few segments are done, and to be cancelled after.
    book = tmp_path / "slow.txt"
    book.write_text("\n\n".join(f"Paragraph {n} will {SLOW} a while." for n in range(12)), encoding="utf-8")
    job_id = _submit(driver, "tone", "mp3", book=book, speed="1.5")
    cancel = driver.find_element(By.ID, "cancel-job")
    _until(driver, lambda d: cancel.is_displayed(), 10, "no cancel button on an unfinished job")
    eta = _until(driver, lambda d: _text(d, "job-eta"), 60, "no ETA while the job ran")
    assert eta.startswith("about ") and eta.endswith(" left")
    assert _text(driver, "job-state") == "running"
    cancel.click()
    _until(driver, lambda d: _text(d, "job-state") == "cancelled", 20, "the page never showed the job cancelled")
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"
    assert not cancel.is_displayed()
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#jobs button[data-id='{job_id}'] .state-cancelled"),
           10, "the job list never showed it cancelled")

    # The list filtered to done jobs; one opens when clicked.
    Select(driver.find_element(By.ID, "jobs-state")).select_by_value("done")
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs button")
           and not d.find_elements(By.CSS_SELECTOR, "#jobs .state-cancelled"), 10, "the list was not filtered")
    driver.find_element(By.CSS_SELECTOR, "#jobs button").click()
    _until(driver, lambda d: _text(d, "job-state") == "done" and d.find_elements(By.CSS_SELECTOR, "#chapters audio"),
           15, "clicking a done job in the list did not show it")
    assert not driver.find_element(By.ID, "error").is_displayed()


def test_resume_a_failed_job_from_the_page(browser: webdriver.Chrome, stack: dict[str, str]) -> None:
    driver = browser
    driver.get(f"{stack['CHORUS_API_URL']}/")
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#voice option[value='tone']"), 15, "voices not listed")
    driver.find_element(By.ID, "book-file").clear()  # the last test's upload would win over the text
    FLAKY_FILE.touch()  # while it exists, the stand-in fails segments with the word "flaky"
    try:
        # Words no other test speaks: a segment another test cached would not fail.
        marker = uuid.uuid4().hex[:8]
        _submit(driver, "tone", "wav", text=f"A fine line first. Then a flaky one, {marker}. A fine one last.")
        _until(driver, lambda d: _text(d, "job-state") == "failed", 60, "the page never showed the job failed")
        assert "flaky" in _text(driver, "job-error")
    finally:
        FLAKY_FILE.unlink()
    driver.find_element(By.ID, "resume-job").click()
    _until(driver, lambda d: _text(d, "job-state") == "done", 60, "the resumed job never showed done")
    assert not driver.find_element(By.ID, "resume-job").is_displayed()
    assert not driver.find_element(By.ID, "job-error").is_displayed()


READ_ALONG = ("Chapter 1\n\nA short opening line.\n\nChapter 2\n\nThe kettle began to sing. "
              "Rain tapped on every window. Then the lamps went out at last.")
# What the page highlights and what the player is at, read in one go.
SPEAKING = """const audio = arguments[0];
return [audio.currentTime, document.querySelector('#reading-1 .sentence.speaking')?.id ?? null, audio.paused];"""


def _expected(entries: list[dict], book_seconds: float) -> str | None:
    """The sentence being spoken at a time of the book: the last one started
    (to the millisecond, as the manifest keeps times)."""
    started = [e for e in entries if e["start"] <= book_seconds + 0.001]
    return f"seg-{started[-1]['index']}" if started else None


def test_read_along_a_chapter(browser: webdriver.Chrome, stack: dict[str, str], api: httpx.Client) -> None:
    """A done book's chapter opened as text: the sentence highlighted is the
    one the manifest times at the player's position, while it plays and when
    paused; clicking a sentence plays from its start."""
    driver = browser
    accepted = api.post("/v1/jobs", json={"text": READ_ALONG, "voice": "tone", "format": "wav"})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    assert wait_for(api, job_id)["state"] == "done"
    manifest = api.get(f"/v1/jobs/{job_id}/manifest").json()
    chapter = next(c for c in manifest["chapters"] if c["index"] == 1)
    entries = [e for e in manifest["segments"] if e["chapter"] == 1]
    assert [e["text"] for e in entries] == ["Chapter 2", "The kettle began to sing.", "Rain tapped on every window.",
                                            "Then the lamps went out at last."]
    assert all(e.get("timing", "sentence") == "sentence" for e in entries)

    driver.get(f"{stack['CHORUS_API_URL']}/")
    driver.execute_script(f"localStorage.setItem('{KEY_ITEM}', arguments[0])", stack["CHORUS_API_KEY"])
    driver.get(f"{stack['CHORUS_API_URL']}/")
    row = f"#jobs button[data-id='{job_id}']"
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, row), 15, "the job is not in the list")
    driver.find_element(By.CSS_SELECTOR, row).click()
    buttons = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chapters .read-along"), 15, "no read-along")
    assert len(buttons) == 2
    buttons[1].click()
    sentences = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#reading-1 .sentence"), 15, "no text shown")
    assert [s.text for s in sentences] == [e["text"] for e in entries]
    assert [s.get_attribute("id") for s in sentences] == [f"seg-{e['index']}" for e in entries]
    audio = driver.find_elements(By.CSS_SELECTOR, "#chapters audio")[1]

    # Played from the start: every look finds the sentence timed at the
    # player's position (or a frame before: the page updates once a frame).
    driver.execute_script("arguments[0].currentTime = 0; return arguments[0].play();", audio)
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        position, speaking, paused = driver.execute_script(SPEAKING, audio)
        book_seconds = position + chapter["start"]
        assert speaking in (_expected(entries, book_seconds), _expected(entries, book_seconds - 0.25)), (
            position, speaking)
        if speaking and speaking not in seen:
            seen.append(speaking)
        if paused or len(seen) == len(entries):
            break
        time.sleep(0.1)
    assert seen == [f"seg-{e['index']}" for e in entries], seen  # the highlight moved, in order

    # Paused, the highlight is exactly the manifest's sentence at that position.
    driver.execute_script("arguments[0].pause();", audio)
    position, speaking, _ = driver.execute_script(SPEAKING, audio)
    assert speaking == _expected(entries, position + chapter["start"])

    # A click on the second sentence plays from its start.
    sentences[1].click()
    started = _until(driver, lambda d: (lambda r: r if not r[2] else None)(d.execute_script(SPEAKING, audio)), 10,
                     "the click did not play")
    assert abs(started[0] - (entries[1]["start"] - chapter["start"])) < 0.3, started
    assert started[1] == f"seg-{entries[1]['index']}"
    driver.execute_script("arguments[0].pause();", audio)

    # Word timings as the manifest gives them for an aligning voice (the tone
    # stand-in has none: here they are spread evenly over each sentence): the
    # word at the player's position is highlighted inside its sentence.
    timed = [_word_timed(e) for e in entries]
    made = driver.execute_async_script(WORD_TIMED, timed, chapter["start"], audio)
    assert made is True, made
    for entry, k in ((timed[1], 2), (timed[3], 4)):
        word = entry["words"][k]
        at = (word["start"] + word["end"]) / 2 - chapter["start"]
        driver.execute_script("arguments[0].currentTime = arguments[1];", audio, at)
        highlighted = f"seg-{entry['index']}-w{k}"
        _until(driver, lambda d: d.execute_script(
            "return document.querySelector('#reading-words .word.speaking')?.id") == highlighted, 10,
            f"{highlighted} ({word['text']!r}) never highlighted")
        shown = driver.find_element(By.ID, highlighted).text
        assert shown == word["text"] == entry["text"][word["offset"]:word["offset"] + len(word["text"])]
        assert driver.find_element(By.CSS_SELECTOR, "#reading-words .sentence.speaking").get_attribute("id") == (
            f"seg-{entry['index']}")

    # A long text follows the sentence spoken, except just after the reader scrolled.
    driver.execute_script("document.getElementById('reading-words').remove();")
    length = driver.execute_script("return arguments[0].duration;", audio)
    step = length / 80
    many = [{"index": 1000 + n, "chapter": 1, "text": f"Sentence number {n} of a long chapter, long enough to wrap.",
             "start": round(chapter["start"] + n * step, 3), "end": round(chapter["start"] + (n + 1) * step, 3)}
            for n in range(80)]
    assert driver.execute_async_script(WORD_TIMED, many, chapter["start"], audio) is True
    driver.execute_script("document.getElementById('reading-words').scrollIntoView();")  # where the reader looks
    frame = "const r = document.getElementById('reading-words'); return [r.scrollTop, r.scrollHeight > r.clientHeight];"
    assert driver.execute_script(frame)[1], "the long text does not overflow its frame"
    in_view = """const node = document.getElementById(arguments[0]).getBoundingClientRect();
const frame = document.getElementById('reading-words').getBoundingClientRect();
return node.top >= frame.top - 1 && node.bottom <= frame.bottom + 1;"""
    driver.execute_script("arguments[0].currentTime = arguments[1];", audio, 70.5 * step)
    _until(driver, lambda d: d.execute_script(in_view, "seg-1070"), 10, "the view did not follow to sentence 70")
    before = _settled(lambda: driver.execute_script(frame)[0])  # a smooth scroll takes a moment
    driver.execute_script("window.dispatchEvent(new WheelEvent('wheel'));")
    driver.execute_script("arguments[0].currentTime = arguments[1];", audio, 5.5 * step)
    _until(driver, lambda d: d.execute_script(
        "return document.querySelector('#reading-words .sentence.speaking')?.id") == "seg-1005", 10, "no highlight")
    time.sleep(0.5)
    assert driver.execute_script(frame)[0] == before  # the reader's scroll is left alone
    assert not _policy_errors(driver)


def _settled(read: Callable[[], float], timeout: float = 10) -> float:
    """A value once two looks 0.3 s apart agree."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now, last = last, read()
        if now == last:
            return last
    raise AssertionError(f"still changing after {timeout} s")


WORD_TIMED = """const [entries, offset, audio, done] = arguments;
import('/static/reading.js').then(({ ReadAlong }) => {
  const reading = new ReadAlong(entries, audio, offset);
  reading.view.id = 'reading-words';
  document.body.append(reading.view);
  done(true);
}).catch((err) => done(String(err)));"""


def _word_timed(entry: dict) -> dict:
    """A sentence-timed manifest entry with word timings in the manifest's shape,
    spread evenly over its span."""
    found = list(re.finditer(r"\S+", entry["text"]))
    step = (entry["end"] - entry["start"]) / len(found)
    words = [{"text": m.group(), "offset": m.start(), "start": round(entry["start"] + k * step, 3),
              "end": round(entry["start"] + (k + 1) * step, 3)} for k, m in enumerate(found)]
    return {**entry, "timing": "word", "words": words}


# What the page highlights (sentence and word) and what the player is at, read in one go.
SPEAKING_WORD = """const audio = arguments[0];
const view = document.getElementById('reading-1');
return [audio.currentTime, view.querySelector('.sentence.speaking')?.id ?? null,
        view.querySelector('.word.speaking')?.id ?? null, audio.paused];"""


def _expected_word(entries: list[dict], book_seconds: float) -> str | None:
    """The word being spoken at a time of the book, as the manifest times it:
    the last word started in the last sentence started."""
    started = [e for e in entries if e["start"] <= book_seconds + 0.001]
    if not started or started[-1].get("timing") != "word":
        return None
    words = [k for k, w in enumerate(started[-1]["words"]) if w["start"] <= book_seconds + 0.001]
    return f"seg-{started[-1]['index']}-w{words[-1]}" if words else None


def test_read_along_words_of_a_piper_book(browser: webdriver.Chrome, stack: dict[str, str], api: httpx.Client) -> None:
    """The real Piper voice times its words: the chapter's manifest entries are
    timed by word, and while the chapter plays (and once paused) the word
    highlighted is the one the manifest times at the player's position."""
    driver = browser
    accepted = api.post("/v1/jobs", json={"text": READ_ALONG, "voice": "joe", "format": "wav"})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    assert wait_for(api, job_id)["state"] == "done"
    manifest = api.get(f"/v1/jobs/{job_id}/manifest").json()
    chapter = next(c for c in manifest["chapters"] if c["index"] == 1)
    entries = [e for e in manifest["segments"] if e["chapter"] == 1]
    assert all(e["timing"] == "word" for e in entries), [e.get("timing_reason") for e in entries]
    assert [[w["text"] for w in e["words"]] for e in entries] == [e["text"].split() for e in entries]

    driver.get(f"{stack['CHORUS_API_URL']}/")
    driver.execute_script(f"localStorage.setItem('{KEY_ITEM}', arguments[0])", stack["CHORUS_API_KEY"])
    driver.get(f"{stack['CHORUS_API_URL']}/")
    row = f"#jobs button[data-id='{job_id}']"
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, row), 15, "the job is not in the list")
    driver.find_element(By.CSS_SELECTOR, row).click()
    links = {a.text for a in _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#downloads a"), 15, "no links")}
    assert "Word timings (JSON)" in links
    buttons = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chapters .read-along"), 15, "no read-along")
    buttons[1].click()
    shown = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#reading-1 .word"), 15, "no words shown")
    assert [w.text for w in shown] == [w["text"] for e in entries for w in e["words"]]
    audio = driver.find_elements(By.CSS_SELECTOR, "#chapters audio")[1]

    # Played from the start: every look finds the word timed at the player's
    # position, or at most 0.25 s before it (the page updates once a frame,
    # and the look reads the player after the page drew).
    driver.execute_script("arguments[0].currentTime = 0; return arguments[0].play();", audio)
    seen: list[str] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        position, sentence, word, paused = driver.execute_script(SPEAKING_WORD, audio)
        book_seconds = position + chapter["start"]
        lately = {_expected_word(entries, book_seconds - step / 100) for step in range(26)}  # 0.25 s, in 10 ms
        assert word in lately, (position, word, lately)
        assert sentence in (_expected(entries, book_seconds), _expected(entries, book_seconds - 0.25)), (
            position, sentence)
        if word and word not in seen:
            seen.append(word)
        if paused:
            break
        time.sleep(0.05)
    all_words = [f"seg-{e['index']}-w{k}" for e in entries for k in range(len(e["words"]))]
    assert seen == [w for w in all_words if w in seen] and len(seen) >= min(5, len(all_words)), seen  # in order, moving

    # Paused inside a word: exactly the manifest's word at that position.
    for entry in entries[1:]:
        word = entry["words"][len(entry["words"]) // 2]
        at = (word["start"] + word["end"]) / 2 - chapter["start"]
        driver.execute_script("arguments[0].pause(); arguments[0].currentTime = arguments[1];", audio, at)
        wanted = _expected_word(entries, at + chapter["start"])
        _until(driver, lambda d: d.execute_script(SPEAKING_WORD, audio)[2] == wanted, 10, f"{wanted} never highlighted")
        assert driver.find_element(By.ID, wanted).text == word["text"]
    assert not _policy_errors(driver)


def test_read_along_a_book_of_one_chapter(browser: webdriver.Chrome, stack: dict[str, str], api: httpx.Client) -> None:
    """A book of one chapter plays from its chapter's file (the book is that
    file): its read-along view sits under the chapter's player, at the book's
    own times."""
    driver = browser
    accepted = api.post("/v1/jobs", json={"text": "Only one part here. It has two lines.", "voice": "tone",
                                          "format": "wav"})
    job_id = accepted.json()["id"]
    assert wait_for(api, job_id)["state"] == "done"
    entries = api.get(f"/v1/jobs/{job_id}/manifest").json()["segments"]
    driver.get(f"{stack['CHORUS_API_URL']}/")
    driver.execute_script(f"localStorage.setItem('{KEY_ITEM}', arguments[0])", stack["CHORUS_API_KEY"])
    driver.get(f"{stack['CHORUS_API_URL']}/")
    row = f"#jobs button[data-id='{job_id}']"
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, row), 15, "the job is not in the list")
    driver.find_element(By.CSS_SELECTOR, row).click()
    button = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chapters .read-along"), 15, "no read-along")
    assert len(button) == 1
    assert not driver.find_elements(By.CSS_SELECTOR, "#book-player .read-along")
    button[0].click()
    sentences = _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chapters .sentence"), 15, "no text")
    assert [s.text for s in sentences] == [e["text"] for e in entries] == ["Only one part here.", "It has two lines."]
    audio = driver.find_element(By.CSS_SELECTOR, "#chapters audio")
    middle = (entries[1]["start"] + entries[1]["end"]) / 2
    driver.execute_script("arguments[0].currentTime = arguments[1];", audio, middle)
    _until(driver, lambda d: d.execute_script("return document.querySelector('#chapters .speaking')?.id")
           == f"seg-{entries[1]['index']}", 10, "the second line was not highlighted")
    button[0].click()  # closes it again
    assert not driver.find_elements(By.ID, "reading-0")


def test_manifest_is_served_only_when_done_and_only_to_its_owner(api: httpx.Client, jobs, owner: str) -> None:
    job = jobs.create(voice="joe", audio_format="mp3", title="never run", owner=owner)  # recorded, never enqueued
    response = api.get(f"/v1/jobs/{job.id}/manifest")
    assert response.status_code == 409 and "queued" in response.json()["detail"]
    stranger = jobs.create(voice="joe", audio_format="mp3", title="not yours", owner="someone-else")
    assert api.get(f"/v1/jobs/{stranger.id}/manifest").status_code == 404
    assert api.get("/v1/jobs/not-an-id/manifest").status_code == 404
