"""Fast tests of the state stores against a real, flushed Redis
(``tests/fresh_redis.py``). Every edge of the job state machine,
allowed and forbidden; set-unless-final; cancel against fail from many
threads at once; the indexes that free a key's slot when a job expires;
key revocation; the backlog a deadline counts."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from chorus.tasks.app import PRIORITY_STEPS
from chorus.tasks.errors import KeyRevoked, TooManyJobs
from chorus.tasks.state.backlog import STALE_S, Backlog
from chorus.tasks.state.cache import SegmentCache
from chorus.tasks.state.completion import FLEET_RENEW_EVERY, Completion, SpokenSegment
from chorus.tasks.state.fleet import Fleet
from chorus.tasks.state.jobs import CHORD_KEY_PREFIX, EDGES, FINAL, Job, JobState, JobStore
from chorus.tasks.state.metrics import Metrics
from chorus.tasks.state.keys import KeyStore

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: redis_server, r
TTL_S = 3600


@pytest.fixture
def store(r: redis.Redis) -> JobStore:
    return JobStore(r, ttl_s=TTL_S, queued_deadline_s=600)


def new_job(store: JobStore, owner: str = "alice", **options: object) -> Job:
    return store.create("tone", "wav", "A title", owner=owner, segments_total=4, chapter_titles=["One", "Two"], **options)


def put_in(store: JobStore, job_id: str, state: JobState, deadline_at: float | None = None) -> None:
    """Test set-up only: put a job in a state as if it had got there, sets included."""
    owner = store.get(job_id).owner
    store.redis.hset(store._key(job_id), "state", state.value)
    if deadline_at is not None:
        store.redis.hset(store._key(job_id), "deadline_at", deadline_at)
    for key in (store.ACTIVE, store._active_key(owner)):
        (store.redis.srem if state.final else store.redis.sadd)(key, job_id)


def indexed_as_unfinished(store: JobStore, job: Job) -> tuple[bool, bool]:
    return (bool(store.redis.sismember(store.ACTIVE, job.id)),
            bool(store.redis.sismember(store._active_key(job.owner), job.id)))


APPLY = {
    "start": lambda s, j: s.start(j, cache_hits=1, deadline_at=time.time() + 60),
    "assemble": lambda s, j: s.start_assembly(j),
    "finish": lambda s, j: s.finish(j, "k", "m", 1.5, {"audio": "k"}),
    "fail": lambda s, j: s.fail(j, "broken"),
    "cancel": lambda s, j: s.cancel(j),
    "resume": lambda s, j: s.resume(j),
    "postpone": lambda s, j: s.postpone(j, time.time() + 999),
    "chapter": lambda s, j: s.chapter_ready(j, 0, "jobs/x/chapters/001.wav", 2.0),
}


def test_every_edge_is_tested() -> None:
    assert set(APPLY) == set(EDGES)


@pytest.mark.parametrize("edge", sorted(EDGES))
@pytest.mark.parametrize("source", list(JobState))
@pytest.mark.parametrize("overdue", [False, True])
def test_edge_from_each_state(store: JobStore, edge: str, source: JobState, overdue: bool) -> None:
    job = new_job(store)
    put_in(store, job.id, source, deadline_at=time.time() + (-5 if overdue else 600))
    rule = EDGES[edge]
    allowed = source in rule.sources and (overdue or source not in rule.overdue_only)

    assert APPLY[edge](store, job.id) is allowed
    after = store.get(job.id)
    expected = (rule.target or source) if allowed else source
    assert after.state == expected
    unfinished = not after.state.final
    assert indexed_as_unfinished(store, job) == (unfinished, unfinished)


def test_done_and_cancelled_are_never_resumed(store: JobStore) -> None:
    for final in (JobState.DONE, JobState.CANCELLED):
        job = new_job(store)
        put_in(store, job.id, final, deadline_at=0)
        assert not store.resume(job.id)
        assert store.state(job.id) == final


def test_set_unless_final_first_reason_wins(store: JobStore) -> None:
    job = new_job(store)
    assert store.start(job.id, 0, time.time() + 60)
    assert store.fail(job.id, "segment 2 failed: the first reason")
    assert not store.fail(job.id, "ChordError: a later, vaguer reason")
    assert not store.cancel(job.id)
    assert not store.finish(job.id, "k", "m", 1.0, {})
    after = store.get(job.id)
    assert after.state == JobState.FAILED and after.error == "segment 2 failed: the first reason"


def test_an_earlier_run_cannot_fail_or_assemble_the_current_one(store: JobStore) -> None:
    """A job failed, was resumed and started again: the first chord's late error
    callback (or a segment of it still retrying) must not fail the new run."""
    job = new_job(store)
    assert store.start(job.id, 0, time.time() + 60)
    first = store.redrives(job.id)
    assert store.fail(job.id, "segment 1 failed after 3 attempts", run=first)
    assert store.resume(job.id)
    assert store.start(job.id, 0, time.time() + 60)
    second = store.redrives(job.id)
    assert second == first + 1
    assert not store.fail(job.id, "ChordError: from the first chord", run=first)
    assert not store.start_assembly(job.id, run=first)
    assert store.state(job.id) == JobState.RUNNING
    assert store.start_assembly(job.id, run=second)
    assert store.fail(job.id, "assembly failed", run=second)
    assert store.get(job.id).error == "assembly failed"
    assert store.redrives("0" * 32) is None


def test_late_finish_does_not_overwrite_a_cancel(store: JobStore) -> None:
    job = new_job(store)
    store.start(job.id, 0, time.time() + 60)
    store.start_assembly(job.id)
    assert store.cancel(job.id)
    assert not store.finish(job.id, "k", "m", 1.0, {"audio": "k"})
    assert store.get(job.id).artefacts == "{}"


def test_transitions_of_a_missing_job_are_refused(store: JobStore) -> None:
    for apply in APPLY.values():
        assert apply(store, "0" * 32) is False
    assert store.begin("0" * 32, "segment 0") == (None, 0, False)


def test_cancel_and_fail_race(redis_server: redis.Redis, store: JobStore) -> None:
    """Many jobs, a cancel and a failure for each at the same moment, from
    separate connections: exactly one wins each time and the sets agree."""
    port = redis_server.connection_pool.connection_kwargs["port"]
    jobs = [new_job(store, max_active=None) for _ in range(60)]
    for job in jobs:
        store.start(job.id, 0, time.time() + 60)
    wins: dict[str, list[str]] = {job.id: [] for job in jobs}
    barrier = threading.Barrier(2)

    def contender(action: str) -> None:
        own = JobStore(redis.Redis(port=port), ttl_s=TTL_S)
        for job in jobs:
            barrier.wait()
            if (own.cancel(job.id) if action == "cancel" else own.fail(job.id, "boom")):
                wins[job.id].append(action)

    threads = [threading.Thread(target=contender, args=(a,)) for a in ("cancel", "fail")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for job in jobs:
        assert len(wins[job.id]) == 1, wins[job.id]
        state = store.state(job.id)
        assert state == (JobState.CANCELLED if wins[job.id] == ["cancel"] else JobState.FAILED)
    assert store.active_ids() == [] and store.active_jobs("alice") == 0


def test_resume_starts_attempts_and_announcements_again(store: JobStore) -> None:
    job = new_job(store)
    store.start(job.id, 0, time.time() + 60)
    assert store.begin(job.id, "segment 0") == (JobState.RUNNING, 1, False)
    assert store.begin(job.id, "segment 0") == (JobState.RUNNING, 2, False)
    # Chapter 0 completes and is delivered; chapter 1 completes but its render never lands.
    assert store.segments_done(job.id, [(0, 0), (1, 0), (2, 1), (3, 1)], {0: 2, 1: 2}) == [0, 1]
    assert store.chapter_ready(job.id, 0, "jobs/x/chapters/001.wav", 3.0)
    store.redis.zadd(store.EXPIRY, {job.id: time.time() + 5})
    store.fail(job.id, "segment 4 failed")

    assert store.resume(job.id)
    after = store.get(job.id)
    assert after.state == JobState.QUEUED and after.redrives == 1 and after.error == ""
    assert store.attempts(job.id) == {}
    assert after.segments_done == 4 and set(after.chapters) == {0}
    # The split announces again what is complete: only the chapter never delivered.
    assert store.segments_done(job.id, [(0, 0), (2, 1)], {0: 2, 1: 2}) == [1]
    assert store.redis.zscore(store.EXPIRY, job.id) > time.time() + TTL_S - 60
    assert store.redis.ttl(store._key(job.id)) > TTL_S - 60


def test_a_redelivered_segment_counts_once(store: JobStore) -> None:
    job = new_job(store)
    sizes = {0: 2}
    assert store.segments_done(job.id, [(0, 0)], sizes) == []
    assert store.segments_done(job.id, [(0, 0)], sizes) == []
    assert store.segments_done(job.id, [(1, 0)], sizes) == [0]
    assert store.segments_done(job.id, [(1, 0)], sizes) == []
    assert store.get(job.id).segments_done == 2


def test_no_side_key_outlives_its_job(store: JobStore) -> None:
    """Work still in flight when its job was deleted writes nothing."""
    job = new_job(store)
    store.cancel(job.id)
    assert store.remove(job.id)
    assert store.segments_done(job.id, [(0, 0)], {0: 2}) == []
    store.record_release(job.id, "tone-1@host")
    assert store.begin(job.id, "segment 0") == (None, 0, False)
    assert list(store.redis.scan_iter(f"chorus:job:{job.id}*")) == []


def test_begin_counts_only_unfinished_work(store: JobStore) -> None:
    job = new_job(store)
    assert store.begin(job.id, "") == (JobState.QUEUED, 0, False)
    assert store.begin(job.id, "split") == (JobState.QUEUED, 1, False)
    store.cancel(job.id)
    assert store.begin(job.id, "split") == (JobState.CANCELLED, 0, False)
    assert store.attempts(job.id) == {"split": 1}


def test_begin_skips_a_task_of_an_earlier_run_without_counting_it(store: JobStore) -> None:
    job = new_job(store)
    store.start(job.id, 0, time.time() + 60)
    store.fail(job.id, "segment 1 failed")
    store.resume(job.id)
    assert store.begin(job.id, "segment 1", run=0) == (JobState.QUEUED, 0, True)
    assert store.begin(job.id, "segment 1", run=1) == (JobState.QUEUED, 1, False)
    assert store.begin(job.id, "segment 1") == (JobState.QUEUED, 2, False)
    assert store.attempts(job.id) == {"segment 1": 2}


def test_side_keys_get_the_record_lifetime_once_not_per_segment(store: JobStore) -> None:
    """Attempts get theirs when the run opens; the done counts with their
    chapter's first segment; a resume renews them with the record."""
    job = new_job(store)
    store.begin(job.id, "split")
    assert store.redis.ttl(store._key(job.id, "attempts")) == -1
    store.start(job.id, 0, time.time() + 60)
    assert store.redis.ttl(store._key(job.id, "attempts")) > TTL_S - 60
    store.begin(job.id, "segment 0")
    store.segments_done(job.id, [(0, 0)], {0: 2})
    for part in ("done", "chapter-done"):
        store.redis.expire(store._key(job.id, part), 100)
    store.fail(job.id, "segment 1 failed")
    store.resume(job.id)
    for part in ("done", "chapter-done"):
        assert store.redis.ttl(store._key(job.id, part)) > TTL_S - 60


def spoken(job_id: str, index: int, chapter: int = 0, size: int = 1000, cache_key: str | None = None) -> SpokenSegment:
    return SpokenSegment(job_id=job_id, index=index, chapter=chapter, chapter_size=2,
                         cache_key=cache_key or f"k{index}",
                         size=size, level=b"\x01\x02", worker="sim-1@host", model="sim", synthesis_s=0.3, audio_s=2.5)


@pytest.fixture
def completion(r: redis.Redis) -> Completion:
    cache = SegmentCache(r, storage=None, max_bytes=10**9, min_age_s=60)  # type: ignore[arg-type]
    return Completion(r, cache, ttl_s=TTL_S)


def test_completion_records_everything_in_one_step(store: JobStore, completion: Completion, r: redis.Redis) -> None:
    job = new_job(store)
    store.start(job.id, 0, time.time() + 60)
    completion.record(spoken("0" * 32, 9, cache_key="warm-up"))  # loads the script
    r.config_resetstat()
    assert completion.record(spoken(job.id, 0)) is False
    calls = {name: stats["calls"] for name, stats in r.info("commandstats").items()}
    assert calls.get("cmdstat_evalsha", 0) + calls.get("cmdstat_eval", 0) == 1
    assert "cmdstat_multi" not in calls
    assert completion.record(spoken(job.id, 1)) is True
    assert completion.record(spoken(job.id, 1)) is False  # redelivered: counted once, reported once
    assert store.get(job.id).segments_done == 2 and store.get(job.id).chapters_done == {0: 2}
    assert r.hget(SegmentCache.SIZES, "k0") == b"1000" and int(r.get(SegmentCache.TOTAL)) == 3000
    assert r.hget(SegmentCache.LEVELS, "k1") == b"\x01\x02" and r.zscore(SegmentCache.USED, "k1") is not None
    assert Fleet(r, TTL_S).get("sim-1@host")["segments"] == "4"
    assert 0 < r.ttl(Fleet.RECORD.format("sim-1@host")) <= TTL_S
    figures = Metrics(r, Backlog(r, PRIORITY_STEPS)).read(["sim"], []).models["sim"]
    assert figures.segments == 4 and figures.audio_seconds == pytest.approx(10.0)
    assert figures.synthesis_seconds == pytest.approx(1.2) and figures.latency[-1] == (float("inf"), 4)
    for part in ("done", "chapter-done", "chapters-sent"):
        assert 0 < r.ttl(store._key(job.id, part)) <= TTL_S


def test_cache_hits_are_the_cached_keys_marked_used(r: redis.Redis) -> None:
    cache = SegmentCache(r, storage=None, max_bytes=10**9, min_age_s=60)  # type: ignore[arg-type]
    cache.HITS_PER_CALL = 2  # several ZMSCOREs in one round trip
    r.zadd(SegmentCache.USED, {"a": 1.0, "c": 1.0, "e": 1.0})
    assert cache.hits([]) == set()
    assert cache.hits(["a", "b", "c", "d", "e", "a"]) == {"a", "c", "e"}
    assert r.zscore(SegmentCache.USED, "a") > time.time() - 60 and r.zscore(SegmentCache.USED, "b") is None


def test_completion_renews_a_worker_record_now_and_then(completion: Completion, r: redis.Redis) -> None:
    key = Fleet.RECORD.format("sim-1@host")
    completion.record(spoken("0" * 32, 0))
    r.expire(key, 100)
    for index in range(1, FLEET_RENEW_EVERY):
        completion.record(spoken("0" * 32, index))
    assert r.ttl(key) <= 100
    completion.record(spoken("0" * 32, FLEET_RENEW_EVERY))
    assert r.ttl(key) > TTL_S - 60


def test_completion_for_a_forgotten_job_leaves_no_side_key(
    store: JobStore, completion: Completion, r: redis.Redis,
) -> None:
    """The cache still learns of the stored segment; the job's keys stay gone."""
    job = new_job(store)
    store.cancel(job.id)
    assert store.remove(job.id)
    assert completion.record(spoken(job.id, 0)) is False
    assert list(r.scan_iter(f"chorus:job:{job.id}*")) == []
    assert r.zscore(SegmentCache.USED, "k0") is not None


def test_completion_evicts_when_the_cache_is_over_its_bound(store: JobStore, r: redis.Redis) -> None:
    class Objects:  # stand-in for S3: records what the cache deletes
        def __init__(self) -> None:
            self.deleted: list[str] = []

        def delete_keys(self, keys: list[str]) -> None:
            self.deleted += keys

    objects = Objects()
    cache = SegmentCache(r, storage=objects, max_bytes=1500, min_age_s=5)  # type: ignore[arg-type]
    completion = Completion(r, cache, ttl_s=TTL_S)
    completion.record(spoken("0" * 32, 0), now=time.time() - 10)
    completion.record(spoken("0" * 32, 1))
    assert objects.deleted == ["cache/k0/k0.wav"] and int(r.get(SegmentCache.TOTAL)) == 1000


def test_concurrency_limit_and_slots(store: JobStore) -> None:
    first = new_job(store, max_active=2)
    second = new_job(store, max_active=2)
    with pytest.raises(TooManyJobs):
        new_job(store, max_active=2)
    new_job(store, owner="bob", max_active=2)  # another key has its own slots
    store.cancel(first.id)
    third = new_job(store, max_active=2)
    assert store.active_jobs("alice") == 2
    # second's record expires: the sweeper frees its slot, knowing its owner
    # from the index though the record is gone.
    store.redis.delete(store._key(second.id))
    assert store.forget_expired(second.id)
    assert store.active_jobs("alice") == 1 and second.id not in store.active_ids()
    assert store.redis.hget(store.OWNERS, second.id) is None
    assert store.redis.zscore(store.EXPIRY, second.id) is None
    assert store.state(third.id) == JobState.QUEUED


def test_forget_expired_leaves_a_live_job_alone(store: JobStore) -> None:
    job = new_job(store)
    assert not store.forget_expired(job.id)  # its time has not come
    assert store.expired_ids(time.time()) == []
    later = time.time() + TTL_S + 1
    assert store.expired_ids(later) == [job.id]
    assert store.forget_expired(job.id, now=later)
    assert store.state(job.id) is None and store.active_jobs("alice") == 0


def test_a_stuck_chords_keys_go_with_its_expired_job(store: JobStore) -> None:
    """A chord that lost a part keeps its keys (they carry no expiry) until its
    job is forgotten as expired; a job its owner deletes leaves its chord to
    finish and clean up after itself."""
    from chorus.tasks.app import app

    assert app.backend.get_key_for_group("g", ".j") == f"{CHORD_KEY_PREFIX}g.j".encode()
    stuck, removed = new_job(store), new_job(store)
    for job, group in ((stuck, "g1"), (removed, "g2")):
        store.record_chord(job.id, group)
        for suffix in (".j", ".t", ".s", ".d"):
            store.redis.set(f"{CHORD_KEY_PREFIX}{group}{suffix}", 1)
    store.cancel(removed.id)
    assert store.remove(removed.id)
    assert store.forget_expired(stuck.id, now=time.time() + TTL_S + 1)
    assert sorted(k.decode() for k in store.redis.scan_iter(f"{CHORD_KEY_PREFIX}*")) == [
        f"{CHORD_KEY_PREFIX}g2{suffix}" for suffix in (".d", ".j", ".s", ".t")]
    assert store.redis.hlen(store.CHORDS) == 0


def test_remove_only_a_finished_job(store: JobStore) -> None:
    job = new_job(store)
    store.segments_done(job.id, [(0, 0)], {0: 2})
    assert not store.remove(job.id)
    store.cancel(job.id)
    assert store.remove(job.id)
    assert store.state(job.id) is None
    assert list(store.redis.scan_iter(f"chorus:job:{job.id}*")) == []
    assert store.redis.hget(store.OWNERS, job.id) is None


def test_a_queued_job_has_a_deadline(store: JobStore) -> None:
    job = new_job(store)
    assert 590 < store.get(job.id).deadline_at - time.time() <= 600


def test_job_round_trips_through_its_hash(store: JobStore) -> None:
    job = new_job(store)
    store.start(job.id, cache_hits=3, deadline_at=1234.5)
    store.chapter_ready(job.id, 1, "jobs/x/chapters/002.wav", 2.25)
    back = store.get(job.id)
    assert (back.cache_hits, back.deadline_at, back.redrives) == (3, 1234.5, 0)
    assert isinstance(back.state, JobState) and back.state == JobState.RUNNING
    assert back.chapters == {1: {"key": "jobs/x/chapters/002.wav", "seconds": 2.25}}
    assert Job.from_redis({k.encode(): v.encode() for k, v in back.to_redis().items()}).to_redis() == back.to_redis()


def test_final_states() -> None:
    assert {s for s in JobState if s.final} == FINAL == {JobState.DONE, JobState.FAILED, JobState.CANCELLED}


def test_revoked_key_is_refused_and_listed(r: redis.Redis) -> None:
    keys = KeyStore(r)
    key, record = keys.create("tenant", 1000, 10, 2)
    assert keys.lookup(key) == record
    assert keys.revoke("f" * 16) is None and keys.revoke("not-an-id") is None
    revoked = keys.revoke(record.id)
    assert revoked is not None and revoked.revoked_at
    with pytest.raises(KeyRevoked):
        keys.lookup(key)
    assert [k.revoked_at for k in keys.all()] == [revoked.revoked_at]
    # Registering it again (the local stack does at each start) does not revive it.
    keys.register(key, "tenant", 1000, 10, 2)
    with pytest.raises(KeyRevoked):
        keys.lookup(key)


def test_backlog_counts_every_priority_level_and_live_workers(r: redis.Redis) -> None:
    backlog = Backlog(r, PRIORITY_STEPS)
    queue = "chorus.synth.tone"
    lists = backlog.lists(queue)
    assert lists[0] == queue and len(lists) == len(PRIORITY_STEPS)
    for name in (lists[0], lists[3], lists[3], lists[9]):
        r.lpush(name, "message")
    assert backlog.queued(queue) == 4
    assert backlog.wait_s(queue, per_message_s=10) == 0  # nobody serves it: waiting helps nobody
    now = time.time()
    backlog.beat("tone-1@host", [queue], now=now)
    backlog.beat("tone-2@host", [queue], now=now)
    backlog.beat("tone-3@host", [queue], now=now - STALE_S - 1)  # stopped beating
    assert backlog.workers(queue) == 2
    assert backlog.wait_s(queue, per_message_s=10) == pytest.approx(20)


def test_model_workers_sweep_for_lost_messages_only_as_a_fallback() -> None:
    """The lanes' workers put a lost message back every REDELIVERY_SWEEP_S;
    a worker serving a model's queue, one of many, every FALLBACK_SWEEP_S."""
    from celery.signals import celeryd_init

    from chorus.tasks.app import FALLBACK_SWEEP_S, REDELIVERY_SWEEP_S, app

    kept = dict(app.conf.broker_transport_options)
    try:
        assert kept["unacked_restore_interval"] == REDELIVERY_SWEEP_S and kept["unacked_restore_throttle"] == 1
        celeryd_init.send(sender="jobs@host", instance=None, conf=app.conf, options={"queues": ["chorus.jobs"]})
        assert app.conf.broker_transport_options["unacked_restore_interval"] == REDELIVERY_SWEEP_S
        celeryd_init.send(sender="sim-1@host", instance=None, conf=app.conf, options={"queues": ["chorus.synth.sim"]})
        assert app.conf.broker_transport_options["unacked_restore_interval"] == FALLBACK_SWEEP_S
        assert app.conf.broker_transport_options["visibility_timeout"] == kept["visibility_timeout"]
    finally:
        app.conf.broker_transport_options = kept
