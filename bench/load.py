"""Load on the HTTP API: 200 jobs submitted at once while job status is polled
at a fixed 50 requests/s for a minute, and the workers use every core.

The real stack starts on free ports with the default registry plus the stand-in
"tone" model. By default the jobs are read by the real Piper voice, one Piper
worker per core, so the API answers while synthesis keeps every core busy
(`--voice tone` uses two tone workers instead, which cost no CPU: then the
figures are the API's, Redis's and the pipeline's alone). 200 short texts (1 to
3 sentences, WAV) are POSTed concurrently; from the first accepted id on,
GET /v1/jobs/{id} is sent at a
fixed rate (round-robin over the ids accepted so far), each request on its own
schedule slot whatever the latency of the others. After the minute the jobs
still running are polled once a second for up to 120 s more, then every id is
read a last time.

The submissions come from a process of their own (its own event loop and
200 connections), the polls from another: measured in one process, a
client's own queueing behind 200 open requests was most of the "latency".
The client is aiohttp: httpx's connection pool, under this load, held polls
for seconds before sending them (seen with httpx's trace, while the server
answered each in milliseconds), so httpx measured itself, not the API.

Prints submissions by status code, 5xx count, polls made and the rate
achieved, status latency (p50/p95/p99/max) and every job's final state. Never
fails on timing: exits 1 only when a job is unaccounted for (not accepted, or
unknown to the API) or the API answered a 5xx.

    python bench/load.py [--voice joe|tone] [--jobs 200] [--rate 50] [--seconds 60] [--drain 120]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import multiprocessing.queues
import os
import queue
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec

FINAL_STATES = ("done", "failed", "cancelled")
POLL_TIMEOUT_S = 20.0  # a status request unanswered after this counts as a timeout
MAX_IN_FLIGHT = 200  # unanswered status requests at most; a slot beyond is skipped and counted
TONE_MODEL = """
# The stand-in "tone" model (tests/voices.toml), with no cost per character.
[models.tone]
engine = "tone"
version = "1"
sample_rate = 16000
max_segment_chars = 120
options.ms_per_char = 0.0

[[models.tone.voices]]
id = "tone"
language = "en"
"""
WORDS = [
    "the", "lighthouse", "keeper", "watched", "grey", "sea", "roll", "in", "under", "a", "low", "sky", "while",
    "gulls", "argued", "over", "harbour", "wall", "and", "small", "boat", "came", "home", "late", "with", "its",
    "lamp", "swinging", "dark",
]


def registry_file(directory: Path) -> Path:
    """The default registry (configs/voices.toml, the Piper voice) plus the tone model."""
    path = directory / "voices.toml"
    path.write_text((ROOT / "configs" / "voices.toml").read_text() + TONE_MODEL)
    return path


def short_text(number: int, rng: random.Random) -> str:
    """1 to 3 sentences, each a different one (the segment cache does not answer them all)."""
    sentences = []
    for _ in range(rng.randint(1, 3)):
        words = rng.sample(WORDS, rng.randint(5, 12))
        sentences.append(" ".join(words).capitalize() + ".")
    return f"Job {number}. " + " ".join(sentences)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


class Load:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.ids: list[str] = []
        self.submissions: collections.Counter[str] = collections.Counter()  # status code (or error name) -> count
        self.server_errors: list[str] = []
        self.latencies_ms: list[tuple[float, float]] = []  # (sent at, perf_counter; latency in ms)
        self.poll_codes: collections.Counter[str] = collections.Counter()
        self.states: dict[str, str] = {}  # job id -> last state seen
        self.in_flight = 0
        self.skipped = 0  # schedule slots not sent: MAX_IN_FLIGHT polls were still unanswered
        self.submit_seconds = float("nan")
        self.submitted_at = float("inf")  # when the submitting process reported its last answer

    def _record(self, what: str, status: int, body: bytes) -> None:
        if status >= 500:
            self.server_errors.append(f"{what}: {status} {body[:200].decode(errors='replace')}")

    async def get(self, path: str) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT_S)
        async with self.session.get(path, timeout=timeout) as response:
            return response.status, await response.read()

    def take_ids(self, arrivals: multiprocessing.queues.Queue) -> None:
        """Ids the submitting process has sent over so far; its tally, when it is done."""
        while True:
            try:
                kind, *value = arrivals.get_nowait()
            except queue.Empty:
                return
            if kind == "id":
                self.ids.append(value[0])
            else:
                counts, errors, self.submit_seconds = value
                self.submissions.update(counts)
                self.server_errors.extend(errors)
                self.submitted_at = time.perf_counter()

    async def poll(self, job_id: str) -> None:
        started = time.perf_counter()
        self.in_flight += 1
        try:
            status, body = await self.get(f"/v1/jobs/{job_id}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.poll_codes[type(exc).__name__] += 1
            return
        finally:
            self.in_flight -= 1
        self.latencies_ms.append((started, (time.perf_counter() - started) * 1000))
        self.poll_codes[str(status)] += 1
        self._record(f"GET /v1/jobs/{job_id}", status, body)
        if status == 200:
            self.states[job_id] = json.loads(body)["state"]

    async def poll_at_fixed_rate(
        self, arrivals: multiprocessing.queues.Queue, rate: float, seconds: float
    ) -> tuple[int, float, float]:
        """One GET per 1/rate s, each on its own slot of a fixed schedule
        (not after the previous answer), round-robin over the accepted ids."""
        tasks: list[asyncio.Task] = []
        while not self.ids:  # from the first accepted submission on
            self.take_ids(arrivals)
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        slot = 0
        while (due := started + slot / rate) < started + seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.take_ids(arrivals)
            if self.in_flight >= MAX_IN_FLIGHT:
                self.skipped += 1  # the API is that far behind: bounded, and counted, not queued
            else:
                tasks.append(asyncio.create_task(self.poll(self.ids[slot % len(self.ids)])))
            slot += 1
        sent = time.perf_counter() - started
        await asyncio.gather(*tasks)
        return slot, sent, time.perf_counter() - started  # polls, seconds to send them, seconds to all answers

    async def drain(self, seconds: float) -> float:
        """Poll the unfinished jobs once a second until all are final or time is up."""
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            pending = [j for j in self.ids if self.states.get(j) not in FINAL_STATES]
            if not pending:
                break
            for batch in range(0, len(pending), 20):
                await asyncio.gather(*(self.poll(j) for j in pending[batch : batch + 20]))
            await asyncio.sleep(1.0)
        return time.perf_counter() - started


def submit_all(api_url: str, headers: dict[str, str], voice: str, texts: list[str],
               arrivals: multiprocessing.queues.Queue) -> None:
    """In a process of its own: POST every text at once. Each accepted id goes
    to ``arrivals`` as it comes, then ("done", status counts, 5xx lines, seconds)."""
    async def submit() -> None:
        counts: collections.Counter[str] = collections.Counter()
        errors: list[str] = []
        connector = aiohttp.TCPConnector(limit=len(texts))
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(api_url, headers=headers, connector=connector, timeout=timeout) as session:
            async def one(number: int, text: str) -> None:
                try:
                    async with session.post("/v1/jobs", json={"text": text, "voice": voice, "format": "wav"}) as response:
                        status, body = response.status, await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    counts[type(exc).__name__] += 1
                    return
                counts[str(status)] += 1
                if status >= 500:
                    errors.append(f"POST /v1/jobs (job {number}): {status} {body[:200].decode(errors='replace')}")
                if status == 202:
                    arrivals.put(("id", json.loads(body)["id"]))

            started = time.perf_counter()
            await asyncio.gather(*(one(n, t) for n, t in enumerate(texts)))
            arrivals.put(("done", dict(counts), errors, time.perf_counter() - started))

    asyncio.run(submit())


async def run(api_url: str, headers: dict[str, str], args: argparse.Namespace) -> int:
    rng = random.Random(20240601)
    texts = [short_text(number, rng) for number in range(args.jobs)]
    context = multiprocessing.get_context("spawn")
    arrivals = context.Queue()
    submitter = context.Process(target=submit_all, args=(api_url, headers, args.voice, texts, arrivals))
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    async with aiohttp.ClientSession(api_url, headers=headers, connector=connector) as session:
        load = Load(session)
        submitter.start()
        polls, send_seconds, poll_seconds = await load.poll_at_fixed_rate(arrivals, args.rate, args.seconds)
        while submitter.is_alive() or not arrivals.empty():  # the tally, if the submissions outlasted the polling
            load.take_ids(arrivals)
            await asyncio.sleep(0.05)
        submitter.join()
        load.take_ids(arrivals)
        submitted_at, submit_seconds = load.submitted_at, load.submit_seconds
        latencies = [ms for _, ms in load.latencies_ms]
        poll_codes = collections.Counter(load.poll_codes)  # of the fixed-rate polls, before the drain's
        after_burst = [ms for sent, ms in load.latencies_ms if sent >= submitted_at]
        drain_seconds = await load.drain(args.drain)

        # Every job, a last time: its final state, and that the API knows it.
        final: dict[str, str] = {}
        unknown: list[str] = []
        for batch in range(0, len(load.ids), 20):
            answers = await asyncio.gather(*(load.get(f"/v1/jobs/{j}") for j in load.ids[batch : batch + 20]))
            for job_id, (status, body) in zip(load.ids[batch : batch + 20], answers):
                load._record(f"GET /v1/jobs/{job_id} (final)", status, body)
                if status == 200:
                    final[job_id] = json.loads(body)["state"]
                else:
                    unknown.append(f"{job_id}: {status}")

    accepted = load.submissions.get("202", 0)
    print()
    print(f"submissions: {args.jobs} sent in {submit_seconds:.1f} s; by status: "
          + ", ".join(f"{code}: {count}" for code, count in sorted(load.submissions.items())))
    print(f"  accepted {accepted}, rejected {args.jobs - accepted}")
    sent = polls - load.skipped
    print(f"polls: {polls} slots in {send_seconds:.1f} s, {sent} sent = {sent / send_seconds:.1f} requests/s "
          f"(target {args.rate:g}; {load.skipped} skipped with {MAX_IN_FLIGHT} unanswered); "
          f"all answered after {poll_seconds:.1f} s = {polls / poll_seconds:.1f} answers/s; by status: " + ", ".join(f"{code}: {count}" for code, count in sorted(poll_codes.items())))
    print(f"status latency over the {args.seconds:g} s: p50 {percentile(latencies, 0.50):.1f} ms, "
          f"p95 {percentile(latencies, 0.95):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
          f"max {max(latencies, default=float('nan')):.1f} ms ({len(latencies)} answers)")
    print(f"  of those sent after the submissions were all answered: p50 {percentile(after_burst, 0.50):.1f} ms, "
          f"p95 {percentile(after_burst, 0.95):.1f} ms, p99 {percentile(after_burst, 0.99):.1f} ms, "
          f"max {max(after_burst, default=float('nan')):.1f} ms ({len(after_burst)} answers)")
    print(f"5xx responses: {len(load.server_errors)}")
    for line in load.server_errors[:10]:
        print(f"  {line}")
    counts = collections.Counter(final.values())
    other = sum(c for s, c in counts.items() if s not in ("done", "failed"))
    print(f"drain: {drain_seconds:.1f} s after the polling minute")
    print(f"every job accounted for: {len(final)} of {args.jobs} known to the API; "
          f"done {counts.get('done', 0)}, failed {counts.get('failed', 0)}, other {other}"
          + (f" ({', '.join(f'{s}: {c}' for s, c in sorted(counts.items()) if s not in ('done', 'failed'))})" if other else ""))
    missing = args.jobs - len(final)
    if missing:
        print(f"UNACCOUNTED: {missing} job(s): {args.jobs - accepted} not accepted, {len(unknown)} unknown to the API")
        for line in unknown[:10]:
            print(f"  {line}")
    return 1 if missing or load.server_errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", choices=("joe", "tone"), default="joe",
                        help="joe: the Piper voice, one worker per core; tone: the stand-in, two workers")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="status requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to poll at that rate")
    parser.add_argument("--drain", type=float, default=120.0, help="then wait at most this long for all jobs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chorus-load-") as tmp:
        environment = {
            "CHORUS_REGISTRY_FILE": str(registry_file(Path(tmp))),
            # One key submits all the jobs: let it have them all running at once.
            "CHORUS_MAX_CONCURRENT_JOBS": str(max(1000, args.jobs)),
        }
        cores = os.cpu_count() or 1
        workers = [WorkerSpec("piper-joe", count=cores, threads=1)] if args.voice == "joe" else [WorkerSpec("tone", count=2)]
        stack = Stack(StackConfig.on_free_ports(Path(tmp) / "stack", workers=workers, environment=environment))
        print(f"starting the stack ({', '.join(f'{w.count} {w.model}' for w in workers)} workers) in {tmp} ...", flush=True)
        env = stack.up()
        try:
            key = env.get("CHORUS_API_KEY")
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            print(f"API at {env['CHORUS_API_URL']}; {args.jobs} jobs, status polled at {args.rate:g}/s for {args.seconds:g} s", flush=True)
            return asyncio.run(run(env["CHORUS_API_URL"], headers, args))
        finally:
            stack.down()


if __name__ == "__main__":
    sys.exit(main())
