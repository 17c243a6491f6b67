"""The planner's lanes: deadlines, memory limits, a share per key, a fast lane.

Real planner processes (spawned, warmed up as the API's are) run small
functions of this module that stand in for a slow or greedy reader.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from chorus.api.planner import Planner
from chorus.configs import Settings
from chorus.tasks.errors import TextTooLarge, TooManyJobs


def sleep_then(seconds: float, answer: str) -> str:
    """Stands in for a reader that takes ``seconds``."""
    time.sleep(seconds)
    return answer


def hold_memory(megabytes: int) -> int:
    """Stands in for a reader that builds a tree of ``megabytes``."""
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def pid() -> int:
    import os

    return os.getpid()


def planner_with(**overrides: object) -> Planner:
    settings = Settings(**{"api_planner_deadline_s": 30.0, "api_planner_deadline_per_mib_s": 0.0, **overrides})
    planner = Planner(2, settings)
    planner.start()
    return planner


@pytest.fixture(scope="module")
def planner():
    planner = planner_with(api_planner_memory_bytes=1536 * 1024 * 1024, api_planner_deadline_s=4.0)
    yield planner
    planner.close()


def test_a_planner_over_its_memory_limit_refuses_the_book_and_goes_on(planner: Planner) -> None:
    async def scenario() -> None:
        with pytest.raises(TextTooLarge, match="1,536 MiB of memory"):
            await planner.run(hold_memory, 3000, owner="a")
        assert await planner.run(hold_memory, 100, owner="a") == 100 * 1024 * 1024

    asyncio.run(scenario())


def test_one_key_holds_only_its_share_and_others_go_first(planner: Planner) -> None:
    async def scenario() -> None:
        order: list[str] = []

        async def one(owner: str, seconds: float, name: str) -> None:
            order.append(await planner.run(sleep_then, seconds, name, owner=owner))

        # Key a sends three slow books at once; key b one, a moment later.
        tasks = [asyncio.create_task(one("a", 1.5, f"a{n}")) for n in range(3)]
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await one("b", 0.1, "b")
        waited = time.monotonic() - started
        print(f"key b answered after {waited:.2f} s while key a had three books in line")
        await asyncio.gather(*tasks)
        # Key a held one process; b took the other at once, not after a's books.
        assert order[0] == "b", order

    asyncio.run(scenario())


def test_a_key_with_too_many_submissions_waiting_gets_429() -> None:
    planner = planner_with(api_planner_key_queue=1)

    async def scenario() -> None:
        first = asyncio.create_task(planner.run(sleep_then, 1.0, "1", owner="a"))
        second = asyncio.create_task(planner.run(sleep_then, 0, "2", owner="a"))
        await asyncio.sleep(0.1)
        with pytest.raises(TooManyJobs, match="waiting"):
            await planner.run(sleep_then, 0, "3", owner="a")
        assert await planner.run(sleep_then, 0, "other", owner="b") == "other"
        assert await asyncio.gather(first, second) == ["1", "2"]

    try:
        asyncio.run(scenario())
    finally:
        planner.close()


def test_small_work_has_a_lane_of_its_own(planner: Planner) -> None:
    async def scenario() -> None:
        busy = [asyncio.create_task(planner.run(sleep_then, 2.0, "big", owner=owner)) for owner in ("a", "b")]
        await asyncio.sleep(0.2)
        started = time.monotonic()
        assert await planner.run(sleep_then, 0, "small", owner="c", small=True) == "small"
        waited = time.monotonic() - started
        print(f"a small text answered in {waited:.2f} s while both book planners were busy")
        assert waited < 1.0
        await asyncio.gather(*busy)

    asyncio.run(scenario())


def test_a_planner_past_its_deadline_is_replaced_and_the_book_refused(planner: Planner) -> None:
    # Last in this module: its replaced process warms up again for a while.
    async def scenario() -> None:
        started = time.monotonic()
        with pytest.raises(TextTooLarge, match="longer than 4 s"):
            await planner.run(sleep_then, 60, "never", owner="a")
        took = time.monotonic() - started
        print(f"refused after {took:.1f} s (deadline 4 s)")
        assert took < 15
        # The lane keeps serving: the killed process was replaced.
        assert await planner.run(sleep_then, 0, "still here", owner="a") == "still here"

    asyncio.run(scenario())


# --------------------------------------------------------------------------- #
# Against the running stack: the readers' worst cases, while another key works
# --------------------------------------------------------------------------- #


def slow_pdf() -> bytes:
    """A PDF within the stream bound whose one page pypdf parses for seconds:
    a string of 4 MB of spaces (inflated; a few KB on the wire)."""
    from tests.test_text_pdf import hand_made_pdf

    return hand_made_pdf(b"BT /F1 12 Tf 72 700 Td (" + b" " * (4 * 1024 * 1024 - 64) + b"Hi) Tj ET")


def _upload(stack: dict[str, str], key: str, name: str, data: bytes) -> tuple[int, str, float]:
    from tests.test_tenants import key_client

    started = time.monotonic()
    with key_client(stack, key) as client:
        client.timeout = httpx.Timeout(300)
        response = client.post("/v1/jobs", files={"file": (name, data)}, data={"voice": "tone"})
    return response.status_code, response.json()["detail"], time.monotonic() - started


@pytest.mark.stack
@pytest.mark.chaos
def test_a_short_text_is_answered_while_another_key_plans_its_worst_books(stack, jobs) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from chorus.tasks.state.keys import KeyStore
    from tests.conftest import wait_for
    from tests.epubs import many_paragraphs_epub
    from tests.test_tenants import key_client

    keys = KeyStore(jobs.redis)
    (greedy, _), (other, _) = keys.create("greedy", 2_000_000, 50_000, 10), keys.create("other", 10_000, 100, 5)
    books = [("slow-1.pdf", slow_pdf()), ("slow-2.pdf", slow_pdf()), ("slow-3.pdf", slow_pdf()),
             ("many.epub", many_paragraphs_epub(1_500_000))]  # within the stack's 4 MiB body limit
    with ThreadPoolExecutor(len(books)) as pool, key_client(stack, other) as client:
        refused = [pool.submit(_upload, stack, greedy, name, data) for name, data in books]
        time.sleep(1.0)  # the greedy key's books are being read
        started = time.monotonic()
        response = client.post("/v1/jobs", json={"text": "Another key's short text. It is read at once.",
                                                 "voice": "tone"})
        answered = time.monotonic() - started
        assert response.status_code == 202, response.text
        busy = sum(not future.done() for future in refused)
        print(f"\nanother key's JSON text answered 202 in {answered:.2f} s with {busy} of the greedy key's "
              f"{len(books)} worst books still being planned")
        status = wait_for(client, response.json()["id"])
        finished = time.monotonic() - started
        print(f"and its job finished in {finished:.1f} s")
        assert status["state"] == "done", status
        for (name, _), future in zip(books, refused, strict=True):
            code, detail, seconds = future.result()
            print(f"{name}: {code} after {seconds:.1f} s: {detail}")
            assert code == 413, detail
    assert answered <= 3.0
    assert busy >= 1  # it was measured while they were being planned
