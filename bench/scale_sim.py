"""Scheduling at scale, simulated: many GPU workers, many jobs, the real stack.

The real stack (Redis, SeaweedFS, Celery workers, API) starts on free ports
with one model, the ``sim`` stand-in (workers/engines/sim.py: it sleeps for a
GPU's time and returns a quiet tone; bench/sim_voices.toml holds its cost
model). Jobs go through the whole path: POST, plan, split, chord of
``chorus.synthesize`` on the model's queue, segment audio to S3, assembly,
done.

How the GPUs are simulated: a simulated GPU costs no CPU while it "works"
(the engine sleeps), so one worker process can stand for many. ``--processes``
worker processes (`chorus worker --inflight T`, Celery's thread pool around
one model) each stand for G / processes GPUs (the engine's ``devices``
option), with ``--batch`` segments in flight on each (T = devices x batch):
64 GPUs are 64 x batch threads that each take their own message from Redis,
as 64 one-GPU workers would, while the CPU work around each segment
(mastering, WAV, S3, Redis) runs in a few processes that fit on a few cores.
What it does not represent: each real GPU worker is a process with its own
connections and its own prefetch of ``batch`` messages; here a process's
threads share one connection pool and reserve T messages together (the same
number in all).

Jobs: ``--jobs`` (20) texts totalling ``--segments`` (10,000) segments, every
sentence unique (no cache hits), one chapter each: four long books (36, 24,
12 and 6 % of the segments) and 16 short ones sharing the rest. They are
POSTed in one order — a long book, then short ones behind it, and so on —
and ``--late`` (4) of the short ones are held back and submitted while the
long books' later segments wait in the queue, at 20, 40, 60 and 80 % of the
ideal time.

Figures (never fails on timing):

* efficiency = ideal / measured. Measured: from the first POST to the last
  job's ``finished_at``. Ideal: W / G, where W is the sum over segments of a
  segment's GPU-seconds with every GPU's batch full (its call time at n =
  batch, divided by batch: a GPU serves ``batch`` segments in one call
  time), plus one unavoidable serial tail: whichever job finishes last, its
  assembly cannot start before its last segment, and at best that is the
  cheapest assembly of the run (taken as measured, from the jobs worker's
  log; not the last job's own, which a schedule that finishes its longest
  book last would count in its own favour). Also given without the tail.
* short jobs: time to done (``finished_at`` - ``created_at``) against their
  own ideal (their W / G: the whole fleet to themselves), for those
  submitted behind a long book and those submitted late.
* Redis commands per segment, counted two ways: those the clients send
  (MONITOR's lines not marked ``lua``: a script's EVALSHA is one, a MULTI
  block is each of its commands) and those Redis executes (every MONITOR
  line, the calls inside scripts too; ``INFO commandstats`` before and after
  gives the same count, plus the commands MONITOR never shows), by command.
  MONITOR costs Redis some CPU of its own while it runs.
* wall time, segments/s, S3 objects written per segment, and where the time
  went: throughput over time, the synthesis task's own time beside the
  engine's, the time from the last segment to the last job's end.

    python bench/scale_sim.py                         # 10,000 segments, 64 GPUs
    python bench/scale_sim.py --segments 1000 --gpus 16   # quick
"""

from __future__ import annotations

import argparse
import collections
import datetime
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.configs import Model, load_registry
from chorus.tasks.text.plain import parse_text
from chorus.tasks.text.plan import make_plan
from chorus.workers.engines.sim import SimEngine

REGISTRY = ROOT / "bench" / "sim_voices.toml"
FINAL = ("done", "failed", "cancelled")
LONG_SHARES = (0.36, 0.24, 0.12, 0.06)  # of all segments, the long books
POLL_S = 2.0  # job status polls; finish times come from the jobs' own timestamps
WORDS = (
    "lantern", "harbour", "quiet", "morning", "river", "window", "garden", "letter", "stranger", "evening",
    "mountain", "silver", "winter", "meadow", "anchor", "candle", "voyage", "orchard", "shadow", "meadowlark",
    "bridge", "village", "sailor", "thunder", "whisper", "cottage", "ember", "forest", "journey", "kettle",
    "ribbon", "saddle", "tower", "valley", "willow", "yonder", "basket", "compass", "the", "a", "of", "and",
    "to", "in", "over", "under", "beside", "towards", "after", "before", "while", "old", "young", "bright",
    "grey", "slow", "distant", "gentle", "heavy", "narrow", "ancient", "restless", "patient", "walked",
    "carried", "watched", "remembered", "found", "opened", "gathered", "followed", "answered", "waited",
    "listened", "kept",
)
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/[^\]]*\] Task (chorus\.\w+)\[[^\]]*\] succeeded in ([\d.]+)s")


def sentence(rng: random.Random, serial: int) -> str:
    """One unique sentence of 30 to 190 characters (one segment each). The
    serial number, spelled in letters, keeps every sentence apart from all others."""
    target = rng.choice((40, 70, 100, 100, 130, 160, 185))
    words = [_spell(serial)]
    while sum(len(w) + 1 for w in words) < target - 12:
        words.append(rng.choice(WORDS))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _spell(number: int) -> str:
    """A number as letters only (base 26, lower case): no digits for the
    spoken form to expand, no two alike."""
    letters = ""
    number += 26 * 27  # at least three letters
    while number:
        number, digit = divmod(number, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[digit] + letters
    return "q" + letters


def book(rng: random.Random, segments: int, first_serial: int) -> str:
    paragraphs, serial = [], first_serial
    while serial < first_serial + segments:
        size = min(rng.randint(4, 12), first_serial + segments - serial)
        paragraphs.append(" ".join(sentence(rng, serial + i) for i in range(size)))
        serial += size
    return "\n\n".join(paragraphs) + "\n"


def job_sizes(total: int, jobs: int) -> tuple[list[int], list[int]]:
    """(long books, short jobs): the long ones fixed shares, the short ones
    between 1/3 and 5/3 of their mean, summing exactly to ``total``."""
    longs = [max(1, round(total * share)) for share in LONG_SHARES[: max(1, min(4, jobs // 4))]]
    count, rest = jobs - len(longs), total - sum(longs)
    rng = random.Random(7)
    weights = [rng.uniform(1 / 3, 5 / 3) for _ in range(count)]
    shorts = [max(1, int(rest * w / sum(weights))) for w in weights]
    shorts[-1] += rest - sum(shorts)
    return longs, shorts


def registry_file(directory: Path, options: dict[str, float]) -> Path:
    """bench/sim_voices.toml with the given options of the sim model."""
    data = tomllib.loads(REGISTRY.read_text())
    model = data["models"]["sim"]
    model["options"].update(options)
    lines = ["[models.sim]"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in model.items() if k not in ("options", "voices")]
    lines += [f"options.{k} = {v!r}".replace("'", '"') for k, v in model["options"].items()]
    for voice in model["voices"]:
        lines += ["", "[[models.sim.voices]]", *(f"{k} = {v!r}".replace("'", '"') for k, v in voice.items())]
    path = directory / "sim_voices.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def timestamp(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def log_events(path: Path) -> list[tuple[float, str, float]]:
    """(finished at, task, seconds) of every task a worker's log says succeeded."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_TIME.match(line)
        if match:
            at = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            events.append((at, match.group(2), float(match.group(3))))
    return events


ASSEMBLED = re.compile(r"/(ForkPoolWorker-\d+)\] job (\w+): [\d.]+ s of audio")
ASSEMBLY_DONE = re.compile(r"/(ForkPoolWorker-\d+)\] Task chorus\.assemble\[[^\]]*\] succeeded in ([\d.]+)s")


def assembly_seconds(path: Path) -> dict[str, float]:
    """Each job's assembly time, from the jobs worker's log: a pool process
    logs the book's length, then that its assembly succeeded."""
    seconds, last_job = {}, {}
    for line in path.read_text(errors="replace").splitlines():
        if match := ASSEMBLED.search(line):
            last_job[match.group(1)] = match.group(2)
        elif (match := ASSEMBLY_DONE.search(line)) and match.group(1) in last_job:
            seconds[last_job.pop(match.group(1))] = float(match.group(2))
    return seconds


def fair_share(arrivals: list[float], work: list[float], capacity: float) -> list[float]:
    """Each job's time to done under ideal processor sharing: the fleet
    (``capacity`` GPU-seconds per second) split equally among the jobs not yet
    done, from each job's arrival; pipeline costs none. What a perfectly fair
    scheduler would give each job, whatever the queue does."""
    left = dict(enumerate(work))
    done = [0.0] * len(work)
    now, active = 0.0, set()
    pending = sorted(range(len(work)), key=arrivals.__getitem__)
    while pending or active:
        if not active:
            now = max(now, arrivals[pending[0]])
        while pending and arrivals[pending[0]] <= now:
            active.add(pending.pop(0))
        rate = capacity / len(active)
        finishing = min(active, key=left.__getitem__)
        step = left[finishing] / rate
        if pending and arrivals[pending[0]] < now + step:
            step = arrivals[pending[0]] - now
        for job in active:
            left[job] -= rate * step
        now += step
        for job in [j for j in active if left[j] <= 1e-9]:
            active.discard(job)
            done[job] = now - arrivals[job]
    return done


def redis_calls(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


class CommandCounter(threading.Thread):
    """Counts Redis commands through MONITOR while ``counting`` is set: each
    command's name, sent by a client or run by a script (a line marked lua)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.sent: collections.Counter[str] = collections.Counter()
        self.in_scripts: collections.Counter[str] = collections.Counter()
        self.counting = False
        self.stopping = False
        self._started = threading.Event()

    def run(self) -> None:
        with self.client.monitor() as monitor:
            self._started.set()
            while not self.stopping:
                line = monitor.connection.read_response()
                if not self.counting or not isinstance(line, bytes):
                    continue
                # b'1700000000.123456 [0 127.0.0.1:50000] "EVALSHA" "..." ...' or [0 lua]
                source, _, rest = line.partition(b"] ")
                name = rest[1 : rest.find(b'"', 1)].decode(errors="replace").upper()
                (self.in_scripts if source.endswith(b" lua") else self.sent)[name] += 1

    def begin(self) -> None:
        self.start()
        self._started.wait(10)
        time.sleep(0.5)  # MONITOR is answered before its first line arrives
        self.counting = True

    def end(self) -> None:
        self.counting, self.stopping = False, True
        self.client.ping()  # a line that wakes the reader
        self.join(10)


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) so far of each service of the stack, its
    children included; supervisord's own only (every service is its child)."""
    seconds: dict[str, float] = {}
    for name, pid in stack.running().items():
        try:
            process = psutil.Process(pid)
            total = 0.0
            for each in (process, *(process.children(recursive=True) if name != "supervisord" else ())):
                times = each.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
        service = "sim workers" if name.startswith("worker-sim") else name
        seconds[service] = seconds.get(service, 0.0) + total
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--processes", type=int, default=4, help="worker processes the GPUs are spread over")
    parser.add_argument("--batch", type=int, default=1, help="segments in flight per simulated GPU")
    # Splits and assemblies; 2 as `chorus up` starts it. 4 was tried: on two
    # cores parallel assemblies only slowed each other (1,142 s of assembly in
    # all instead of 530 s) and short jobs waited longer, not shorter.
    parser.add_argument("--jobs-concurrency", type=int, default=2, help="pool processes of the jobs worker")
    parser.add_argument("--late", type=int, default=4, help="short jobs submitted while the long books run")
    parser.add_argument("--fixed-ms", type=float)
    parser.add_argument("--ms-per-char", type=float)
    parser.add_argument("--alpha", type=float, help="batch curve exponent")
    parser.add_argument("--format", default="wav")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep-logs", type=Path, help="copy the stack's logs here before it is removed")
    args = parser.parse_args()
    if args.gpus % args.processes:
        raise SystemExit("--gpus must be a multiple of --processes")

    devices = args.gpus // args.processes
    options: dict[str, float] = {"devices": devices}
    for name, value in (("fixed_ms", args.fixed_ms), ("ms_per_char", args.ms_per_char), ("batch_alpha", args.alpha)):
        if value is not None:
            options[name] = value

    longs, shorts = job_sizes(args.segments, args.jobs)
    rng = random.Random(20250101)
    # Submission order: each long book followed by its share of short jobs; the
    # last ``late`` short jobs are held back.
    late_count = min(args.late, len(shorts) - 1)
    on_time, late = shorts[: len(shorts) - late_count], shorts[len(shorts) - late_count :]
    order: list[tuple[str, int]] = []
    per_long = -(-len(on_time) // len(longs))
    for number, size in enumerate(longs):
        order.append(("long", size))
        order += [("short", s) for s in on_time[number * per_long : (number + 1) * per_long]]
    order += [("late", s) for s in late]
    serial, texts = 0, []
    for kind, size in order:
        texts.append((kind, book(rng, size, serial)))
        serial += size

    with tempfile.TemporaryDirectory(prefix="chorus-scale-sim-") as tmp:
        registry_path = registry_file(Path(tmp), options)
        registry = load_registry(registry_path)
        model: Model = registry.models["sim"]
        voice = registry.voices["sim"]
        engine = SimEngine(model)
        # The plan the API will make, made here too: the ideal time is the sum of its segments' GPU-seconds.
        plans = [make_plan(parse_text(text), voice, model, namespace="bench").segments for _, text in texts]
        work = [sum(engine.gpu_seconds(s.spoken, args.batch) for s in plan) for plan in plans]
        total_segments = sum(len(p) for p in plans)
        ideal = sum(work) / args.gpus
        mean_call = statistics.fmean(engine.call_seconds(s.spoken, args.batch) for p in plans for s in p)
        print(f"{len(texts)} jobs, {total_segments} segments ({', '.join(str(len(p)) for p in plans)}), "
              f"{args.gpus} simulated GPUs in {args.processes} processes x {devices * args.batch} threads, "
              f"batch {args.batch}; jobs worker x {args.jobs_concurrency}; mean call {mean_call:.2f} s; ideal (W/G) {ideal:.1f} s", flush=True)

        environment = {
            "CHORUS_REGISTRY_FILE": str(registry_path),
            "CHORUS_MAX_CONCURRENT_JOBS": "1000",
        }
        workers = [WorkerSpec("sim", count=args.processes, inflight=devices * args.batch)]
        stack = Stack(StackConfig.on_free_ports(Path(tmp) / "stack", workers=workers, environment=environment,
                                                jobs_concurrency=args.jobs_concurrency))
        env = stack.up()
        try:
            return run(stack, env, args, texts, plans, work, ideal, total_segments)
        finally:
            stack.down()
            if args.keep_logs:
                shutil.copytree(stack.log_dir, args.keep_logs, dirs_exist_ok=True)


def run(stack: Stack, env: dict[str, str], args: argparse.Namespace, texts: list[tuple[str, str]],
        plans: list, work: list[float], ideal: float, total_segments: int) -> int:
    api, headers = env["CHORUS_API_URL"], {"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}
    client = redis.Redis.from_url(env["CHORUS_REDIS_URL"])
    http = httpx.Client(base_url=api, headers=headers, timeout=120)
    time.sleep(3)  # let the workers' start-up chatter settle before counting
    counter = CommandCounter(env["CHORUS_REDIS_URL"])
    counter.begin()
    before, cpu_before = redis_calls(client), cpu_seconds(stack)

    ids: list[str | None] = [None] * len(texts)
    late = [n for n, (kind, _) in enumerate(texts) if kind == "late"]
    late_at = {n: ideal * (k + 1) / (len(late) + 1) for k, n in enumerate(late)}

    def submit(number: int) -> None:
        answer = http.post("/v1/jobs", json={"text": texts[number][1], "voice": "sim", "format": args.format})
        if answer.status_code != 202:
            raise SystemExit(f"job {number}: {answer.status_code} {answer.text[:300]}")
        ids[number] = answer.json()["id"]

    started = time.time()
    for number in range(len(texts)):
        if number not in late_at:
            submit(number)
    submitted_s = time.time() - started
    print(f"submitted {len(texts) - len(late)} jobs in {submitted_s:.1f} s", flush=True)

    status: dict[str, dict] = {}
    timeline: list[tuple[float, int]] = []
    loads: list[float] = []  # the host's 1-minute load average at each poll
    polls = 0
    while time.time() - started < args.timeout:
        for number, at in late_at.items():
            if ids[number] is None and time.time() - started >= at:
                submit(number)
        done = 0
        for job_id in filter(None, ids):
            if status.get(job_id, {}).get("state") in FINAL:
                done += status[job_id]["segments_done"]
                continue
            status[job_id] = http.get(f"/v1/jobs/{job_id}").json()
            polls += 1
            done += status[job_id]["segments_done"]
        timeline.append((time.time() - started, done))
        loads.append(psutil.getloadavg()[0])
        if all(ids) and all(status.get(j, {}).get("state") in FINAL for j in ids):
            break
        time.sleep(POLL_S)
    after, cpu_after = redis_calls(client), cpu_seconds(stack)
    counter.end()
    client.close()

    finals = collections.Counter(status.get(j, {}).get("state", "unknown") for j in ids if j)
    if finals.get("done", 0) != len(texts):
        print(f"NOT ALL DONE: {dict(finals)}; " + "; ".join(
            f"{j}: {status[j].get('error')}" for j in filter(None, ids) if status.get(j, {}).get("state") == "failed"))
    first = min(timestamp(status[j]["created_at"]) for j in ids if j)
    last = max(timestamp(status[j]["finished_at"]) for j in ids if j and status[j].get("finished_at"))
    measured = last - first

    # Where the time went: the workers' logs.
    synth = [e for path in stack.log_dir.glob("worker-sim-*.log") for e in log_events(path) if e[1] == "chorus.synthesize"]
    assemblies = assembly_seconds(stack.log_dir / "worker-jobs.log")
    last_job = max((j for j in ids if j and status[j].get("finished_at")), key=lambda j: timestamp(status[j]["finished_at"]))
    cheapest = min(assemblies.values(), default=0.0)
    last_segment = max(e[0] for e in synth) if synth else last
    ideal_tail = ideal + cheapest

    print()
    print(f"wall time            {measured:.1f} s (first POST to last job done); {total_segments / measured:.1f} segments/s")
    print(f"ideal                {ideal:.1f} s (W/G) + {cheapest:.1f} s (the cheapest assembly) = {ideal_tail:.1f} s")
    print(f"efficiency           {ideal_tail / measured:.1%} (ideal incl. the serial tail / measured); "
          f"{ideal / measured:.1%} without the tail")
    until_last = last_segment - first
    print(f"until the last seg.  {until_last:.1f} s; efficiency {ideal / until_last:.1%} (W/G / first POST to last segment)")
    print(f"last segment → end   {last - last_segment:.1f} s; assemblies {sum(assemblies.values()):.0f} s in all, "
          f"longest {max(assemblies.values(), default=0):.1f} s, the last job's {assemblies.get(last_job, 0.0):.1f} s")

    # Fairness: each job against its own ideal (the whole fleet to itself)
    # and against ideal processor sharing (the fleet split equally among the
    # jobs not yet done, from the moment each arrived).
    finished = [n for n in range(len(texts)) if status.get(ids[n] or "", {}).get("finished_at")]
    created = {n: timestamp(status[ids[n]]["created_at"]) for n in finished}
    took = {n: timestamp(status[ids[n]]["finished_at"]) - created[n] for n in finished}
    fair = fair_share([created[n] - first for n in finished], [work[n] for n in finished], args.gpus)
    fair = dict(zip(finished, fair))
    print()
    print("job  kind    segments  ideal alone  fair share  time to done  / alone  / fair")
    for n in finished:
        own = work[n] / args.gpus
        print(f"{n:>3}  {texts[n][0]:<6} {len(plans[n]):>9} {own:>10.1f} s {fair[n]:>8.1f} s {took[n]:>10.1f} s "
              f"{took[n] / own:>8.1f} {took[n] / fair[n]:>6.2f}")
    for kind in ("short", "late"):
        chosen = [n for n in finished if texts[n][0] == kind]
        if chosen:
            alone = [took[n] / (work[n] / args.gpus) for n in chosen]
            shared = [took[n] / fair[n] for n in chosen]
            print(f"{kind} jobs: time to done / ideal alone median {statistics.median(alone):.1f}, max {max(alone):.1f}; "
                  f"/ fair share median {statistics.median(shared):.2f}, max {max(shared):.2f}")

    # Redis commands: sent by the clients, and executed (script calls too).
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    delta = {name: calls for name, calls in delta.items() if calls > 0}
    total_calls = sum(delta.values())
    sent, executed = counter.sent, counter.sent + counter.in_scripts
    per = total_segments
    print()
    print(f"Redis commands per segment ({polls} status polls by this benchmark among them): "
          f"sent {sum(sent.values()) / per:.1f} ({sum(sent.values())}), executed {sum(executed.values()) / per:.1f} "
          f"({sum(executed.values())}; INFO commandstats: {total_calls / per:.1f})")
    print(f"  {'command':<22} {'sent':>7} {'in scripts':>11} {'executed':>9}  per segment: sent, executed")
    for name, calls in sorted(executed.items(), key=lambda item: -item[1]):
        print(f"  {name:<22} {sent[name]:>7} {counter.in_scripts[name]:>11} {calls:>9}  "
              f"{sent[name] / per:>6.2f} {calls / per:>6.2f}")
    unseen = {name: calls for name, calls in delta.items() if calls > executed.get(name.upper(), 0) + 2}
    if unseen:
        print("  INFO commandstats counts more of: " + ", ".join(f"{name} {calls}" for name, calls in sorted(unseen.items())))

    print(f"Redis: {total_calls / measured:.0f} commands/s over the wall time")

    cpu = {name: cpu_after.get(name, 0.0) - spent for name, spent in cpu_before.items()}
    print()
    print(f"CPU: {sum(cpu.values()):.0f} s in all over {measured:.0f} s of wall time "
          f"({sum(cpu.values()) / measured:.2f} cores), {1000 * sum(cpu.values()) / total_segments:.1f} ms per segment:")
    print("  " + ", ".join(f"{name} {1000 * spent / total_segments:.1f}" for name, spent in sorted(cpu.items(), key=lambda i: -i[1])))
    # What saturates: Redis and each Celery main process are one thread (one core at most);
    # the host's cores are shared by every service and whatever else runs on it.
    print(f"cores busy, by service, over the wall time (host: {psutil.cpu_count()} cores; "
          f"load average mean {statistics.fmean(loads):.1f}, max {max(loads):.1f}):")
    print("  " + ", ".join(f"{name} {spent / measured:.2f}" for name, spent in sorted(cpu.items(), key=lambda i: -i[1])))

    # Throughput over time, against the fleet's ideal rate.
    if synth:
        engine_s = statistics.fmean(SimEngine(load_registry(Path(stack.environment()["CHORUS_REGISTRY_FILE"])).models["sim"])
                                    .call_seconds(s.spoken, args.batch) for p in plans for s in p)
        task_s = statistics.fmean(e[2] for e in synth)
        print()
        print(f"synthesis task: {task_s * 1000:.0f} ms on average, of which the simulated GPU "
              f"{engine_s * 1000:.0f} ms: {(task_s - engine_s) * 1000:.0f} ms around it per segment")
        rate = total_segments / ideal
        print(f"throughput per 10 % of the run (ideal {rate:.1f} segments/s):")
        begin = started
        span = max(e[0] for e in synth) - begin
        counts = collections.Counter(min(9, int(10 * (e[0] - begin) / span)) for e in synth)
        print("  " + " ".join(f"{counts[b] / (span / 10):.0f}" for b in range(10)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
