"""The ``chorus`` command.

    chorus up                       start the local stack (Redis, S3, workers, API, Flower) under supervisord
    chorus up --listen ADDR         ... as a control host: workers on other machines join at ADDR
    chorus up --free-ports          ... on ports free now, beside another stack (`chorus env` names them)
    chorus down                     stop it, supervisord too
    chorus env                      print the stack's endpoints and credentials (metrics token too) as exports
    chorus env --join               print the join file: what a worker host needs, no more
    chorus submit FILE [--wait]     submit a text through the API, download the audiobook
    chorus status ID                print a job's status document
    chorus cache stats|clear        show or empty the segment cache
    chorus keys create NAME         make an API key (shown once, stored hashed)
    chorus keys list                list the keys, revoked ones marked
    chorus keys revoke ID           refuse a key from its next request on, cancel its unfinished jobs
    chorus keys rotate-secret ID    give a key a new webhook secret (shown once)
    chorus worker --model NAME      run one synthesis worker for one model [--gpu N]
                  [--join FILE|-]   ... on another host, with the control host's join file
    chorus workers                  run this host's workers: one per GPU, CPU workers per core

Errors print as ``Type: message`` and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

import httpx
from tqdm import tqdm

from chorus.configs import RegistryError, Settings, get_settings
from chorus.tasks.errors import ChorusError, ModelLoadError

ENGINE_DEPENDENCIES = {"piper": ["onnxruntime", "piper"], "cosyvoice2": ["torch", "torchaudio", "cosyvoice"], "tone": []}


class ClientError(ChorusError):
    """The API answered a client command with an error."""


def _settings() -> Settings:
    """Settings from the environment, falling back to the running local stack."""
    from chorus.stack import read_env_file

    data_dir = Path(os.environ.get("CHORUS_DATA_DIR", ".chorus"))
    for key, value in read_env_file(data_dir).items():
        os.environ.setdefault(key, value)
    get_settings.cache_clear()
    return get_settings()


def _stack(settings: Settings, host: str | None = None, synthesis: bool = True, free_ports: bool = False):
    from chorus.stack import Stack, StackConfig
    from chorus.tasks import clients
    from chorus.worker_plan import detect_gpus, plan_workers

    workers = []
    if synthesis:
        workers = plan_workers(clients.registry(), detect_gpus(), os.cpu_count() or 1, settings.piper_workers)
    if free_ports:
        return Stack(StackConfig.on_free_ports(settings.data_dir, host=host or settings.host, workers=workers))
    return Stack(
        StackConfig(
            data_dir=settings.data_dir,
            host=host or settings.host,
            api_port=settings.api_port,
            flower_port=settings.flower_port,
            redis_port=settings.redis_port,
            s3_port=settings.s3_port,
            weed_ports=(settings.weed_master_port, settings.weed_volume_port, settings.weed_filer_port,
                        settings.weed_admin_port),
            workers=workers,
        )
    )


# Listening on every interface would leave no address to hand worker hosts.
WILDCARDS = ("0.0.0.0", "::", "[::]", "*")


def cmd_up(args: argparse.Namespace) -> int:
    from chorus.stack import read_env_file

    if args.listen in WILDCARDS:
        raise ClientError(f"--listen wants the one address worker hosts reach this host at, not {args.listen}")
    settings = get_settings()
    stack = _stack(settings, args.listen, synthesis=not args.no_workers, free_ports=args.free_ports)
    if stack.running() and read_env_file(stack.data_dir):
        print(f"the Chorus stack in {stack.data_dir} is already running; `chorus env` shows its endpoints")
        return 0
    print(f"starting the Chorus stack in {stack.data_dir}")
    stack.up(echo=lambda line: print(f"  {line}"))
    print(f"endpoints written to {stack.data_dir / 'stack.env'}; `eval \"$(chorus env)\"` exports them")
    print(f"worker hosts join with {stack.data_dir / 'join.env'} (`chorus worker --model M --join FILE`)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = _stack(get_settings()).down()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from chorus.stack import read_env_file

    values = read_env_file(get_settings().data_dir, "join.env" if args.join else "stack.env")
    if not values:
        raise ClientError(f"no running stack in {get_settings().data_dir} (chorus up starts one)")
    for key, value in values.items():
        # The join file as it is on disk (a file to copy); otherwise shell exports.
        print(f"{key}={shlex.quote(value)}" if args.join else f"export {key}={shlex.quote(value)}")
    return 0


def _join(source: str) -> Settings:
    """Take the control host's settings from its join file (``-``: standard
    input, as in ``ssh control chorus env --join | chorus worker ... --join -``)
    over this host's own, then prove its credentials: a worker that cannot reach
    Redis would otherwise retry quietly for ever."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from chorus.stack import parse_env
    from chorus.tasks.state.storage import Storage

    if source != "-" and not Path(source).is_file():
        raise ClientError(f"no join file {source} (the control host's `chorus env --join` prints it)")
    values = parse_env(sys.stdin.read() if source == "-" else Path(source).read_text())
    # Only Chorus's settings: a join file never sets PATH, LD_PRELOAD and the like.
    joined = {key: value for key, value in values.items() if key.startswith("CHORUS_")}
    if "CHORUS_REDIS_URL" not in joined or "CHORUS_S3_ENDPOINT" not in joined:
        raise ClientError(f"{source} is no join file: it names no CHORUS_REDIS_URL and CHORUS_S3_ENDPOINT")
    os.environ.update(joined)
    get_settings.cache_clear()
    settings = get_settings()
    where = settings.redis_url.rsplit("@", 1)[-1]
    # redis-py retries a refused password (a ConnectionError) unless told not to.
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=10, socket_timeout=10, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise ClientError(f"cannot join: Redis at {where} refused the join file's password ({exc})") from None
    except redis.RedisError as exc:
        raise ClientError(f"cannot join: Redis at {where} did not answer ({exc})") from None
    finally:
        client.close()
    try:
        Storage(settings).ping()
    except ChorusError as exc:
        raise ClientError(f"cannot join: S3 at {settings.s3_endpoint}: {exc}") from None
    return settings


def _auth(settings: Settings) -> dict[str, str]:
    if not settings.api_key:
        raise ClientError("no API key: set CHORUS_API_KEY (`chorus env` exports the local stack's)")
    return {"Authorization": f"Bearer {settings.api_key}"}


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ClientError(f"{response.status_code} {detail}")
    return response


def cmd_submit(args: argparse.Namespace) -> int:
    settings = _settings()
    path = Path(args.file)
    fields = (("voice", args.voice), ("format", args.format), ("title", args.title), ("author", args.author))
    data = {k: v for k, v in fields if v}
    media_type = "application/epub+zip" if path.suffix.lower() == ".epub" else "text/plain"
    with httpx.Client(base_url=settings.api_url, timeout=60, headers=_auth(settings)) as client:
        with path.open("rb") as handle:
            accepted = _check(client.post("/v1/jobs", files={"file": (path.name, handle, media_type)}, data=data)).json()
        job_id = accepted["id"]
        print(f"job {job_id} accepted; status: {accepted['status_url']}")
        if not (args.wait or args.output):
            return 0
        status = _wait(client, job_id)
        if status["state"] != "done":
            raise ClientError(f"job {job_id} ended {status['state']}: {status.get('error')}")
        print(f"done: {status['audio_seconds']:.1f} s of audio in s3://{settings.s3_bucket}/jobs/{job_id}/")
        output = Path(args.output) if args.output else Path(f"{job_id}.{status['format']}")
        output.parent.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", status["result_url"], timeout=120) as response:
            _check(response)
            with output.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        saved = [output]
        for name, suffix in (("manifest", ".json"), ("srt", ".srt"), ("vtt", ".vtt")):
            if name in status["artefacts"]:
                target = output.with_suffix(suffix)
                target.write_bytes(_check(httpx.get(status["artefacts"][name], timeout=60)).content)
                saved.append(target)
        print(f"saved {', '.join(str(p) for p in saved)}")
    return 0


def _wait(client: httpx.Client, job_id: str) -> dict:
    with tqdm(total=1, unit="seg", desc="synthesising", dynamic_ncols=True) as bar:
        while True:
            status = _check(client.get(f"/v1/jobs/{job_id}")).json()
            if status["segments_total"] and bar.total != status["segments_total"]:
                bar.total = status["segments_total"]
            bar.set_postfix_str(status["state"])
            bar.n = status["segments_done"]
            bar.refresh()
            if status["state"] in ("done", "failed", "cancelled"):
                return status
            time.sleep(0.5)


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings()
    response = _check(httpx.get(f"{settings.api_url}/v1/jobs/{args.job_id}", timeout=30, headers=_auth(settings)))
    print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Check the model can load here, then become its Celery worker."""
    if args.join:
        _join(args.join)  # before anything reads the settings: the registry may come with it
    from chorus.tasks import clients

    try:
        model = clients.registry().models[args.model]
    except KeyError:
        raise ModelLoadError(f"unknown model {args.model!r} (registry has: {', '.join(clients.registry().models)})") from None
    from chorus.workers.engines import import_paths

    # An engine whose code is a checkout the model names (CosyVoice's files.source)
    sys.path[:0] = [str(path) for path in import_paths(model) if str(path) not in sys.path]
    for dependency in ENGINE_DEPENDENCIES.get(model.engine, []):
        if importlib.util.find_spec(dependency) is None:
            raise ModelLoadError(f"model {model.name!r} needs the Python package {dependency!r}, which is not installed")
    for name in model.files:
        if not model.file(name).exists():
            raise ModelLoadError(f"model {model.name!r}: {name} not found: {model.file(name)}")

    if model.device == "cuda" and args.gpu is None:
        raise ModelLoadError(f"model {model.name!r} runs on cuda: pass --gpu N to pin its worker to one GPU")
    if args.gpu is not None:
        # Before anything in this process or the worker it becomes touches CUDA:
        # the worker then sees exactly one GPU, as device 0.
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
    default_name = f"{model.name}-gpu{args.gpu}" if args.gpu is not None else model.name
    node = f"{args.name or default_name}@{socket.gethostname()}"
    os.environ["CHORUS_MODEL"] = model.name
    os.environ["CHORUS_WORKER_NAME"] = node
    if args.threads:
        os.environ["CHORUS_ONNX_THREADS"] = str(args.threads)
    if args.inflight < 1 or args.concurrency < 1:
        raise ClientError("--inflight and --concurrency must be at least 1")
    if args.inflight > 1 and args.concurrency > 1:
        raise ClientError(
            "--inflight N (one model, N segments at once) and --concurrency C (C copies of the model) exclude each other"
        )
    pool = ["-c", str(args.concurrency)]
    if args.inflight > 1:
        # Celery's thread pool in one process, the model loaded once before the first task.
        from chorus.workers.inflight import POOL_PATH

        os.environ["CELERY_CUSTOM_WORKER_POOL"] = POOL_PATH
        pool = ["--pool", "custom", "-c", str(args.inflight)]
    argv = [
        sys.executable, "-m", "celery", "-A", "chorus.workers.app", "worker", "-Q", model.queue, "-n", node,
        *pool, "--prefetch-multiplier", "1", "-E", "--loglevel", args.loglevel,
    ]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_workers(args: argparse.Namespace) -> int:
    """Run this host's share of the fleet in the foreground: one worker per GPU
    for each CUDA model, and CPU workers with the cores divided among them."""
    import signal
    import subprocess

    from chorus.tasks import clients
    from chorus.worker_plan import detect_gpus, plan_workers

    settings = get_settings()
    gpus = [int(g) for g in args.gpus.split(",")] if args.gpus else detect_gpus()
    plan = plan_workers(clients.registry(), gpus, os.cpu_count() or 1, settings.piper_workers)
    if args.models:
        plan = [spec for spec in plan if spec.model in args.models.split(",")]
    commands = [command for spec in plan for command in spec.commands()]
    if not commands:
        raise ClientError("no workers to start: no model matches, or CUDA models but no GPU")
    processes = {name: subprocess.Popen(argv) for name, argv in commands}
    print(f"started {len(processes)} workers: {', '.join(processes)} (GPUs: {gpus or 'none'})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    worst = 0
    try:
        while processes:
            for name, process in list(processes.items()):
                code = process.poll()
                if code is not None:
                    print(f"worker {name} exited with {code}", file=sys.stderr, flush=True)
                    worst = max(worst, code)
                    del processes[name]
            time.sleep(0.5)
    except KeyboardInterrupt:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=60)
    return worst


def cmd_keys(args: argparse.Namespace) -> int:
    from chorus.tasks import clients

    settings = _settings()
    store = clients.keys()
    if args.action == "create":
        if not args.name:
            raise ClientError("chorus keys create needs a NAME")
        key, record = store.create(
            args.name,
            args.max_text_chars or settings.max_text_chars,
            args.max_segments or settings.max_segments_per_job,
            args.max_concurrent_jobs or settings.max_concurrent_jobs,
        )
        print(f"key for {record.name} (id {record.id}); it is shown only now:\n{key}")
        print(f"its webhook secret (signs its jobs' webhooks; `chorus keys rotate-secret {record.id}` replaces it):\n"
              f"{store.webhook_secret(record.id)}")
        return 0
    if args.action == "rotate-secret":
        record = store.find(args.name or "")
        if record is None:
            raise ClientError(f"no key with id {args.name!r} (chorus keys list shows them)")
        secret = store.rotate_webhook_secret(record.id)
        print(f"new webhook secret of key {record.id} ({record.name}); it signs every delivery from now on:\n{secret}")
        return 0
    if args.action == "revoke":
        if not args.name:
            raise ClientError("chorus keys revoke needs the key's ID (chorus keys list shows it)")
        revoked = store.revoke(args.name)
        if revoked is None:
            raise ClientError(f"no key with id {args.name!r} (chorus keys list shows them)")
        # A revoked key's work stops too; revoking again sweeps up any job
        # whose submission was accepted just before the revocation.
        from chorus.tasks.cancellation import cancel_jobs_of

        cancelled = len(cancel_jobs_of(revoked.id))
        print(f"key {revoked.id} ({revoked.name}) revoked at {revoked.revoked_at}; it is refused from now on; "
              f"{cancelled} unfinished job{'' if cancelled == 1 else 's'} cancelled")
        return 0
    for record in store.all():
        revoked = f"  REVOKED {record.revoked_at}" if record.revoked_at else ""
        print(f"{record.id}  {record.name:20}  text {record.max_text_chars}  segments {record.max_segments}  "
              f"concurrent jobs {record.max_concurrent_jobs}  created {record.created_at}{revoked}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from chorus.tasks import clients

    _settings()
    cache = clients.cache()
    if args.action == "clear":
        removed = cache.clear(older_than_s=args.older_than_days * 86400)
        print(f"removed {removed} cached segments")
    stats = cache.stats()
    print(f"segment cache: {stats['entries']} segments, {stats['bytes'] / 1e6:.1f} MB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chorus", description="Long text in, audiobook out.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local stack")
    up.add_argument(
        "--listen", metavar="ADDR",
        help="serve worker hosts: Redis, S3, the API and Flower listen on ADDR (this host's address on their "
        "network), each with its credentials; SeaweedFS's own ports stay on loopback",
    )
    up.add_argument("--no-workers", action="store_true", help="no synthesis workers here (a control host)")
    up.add_argument(
        "--free-ports", action="store_true",
        help="listen on ports free now instead of the configured ones, beside another stack (`chorus env` names them)",
    )
    up.set_defaults(run=cmd_up)
    sub.add_parser("down", help="stop the local stack").set_defaults(run=cmd_down)
    env = sub.add_parser("env", help="print the stack's endpoints as shell exports")
    env.add_argument("--join", action="store_true", help="print the join file for worker hosts instead")
    env.set_defaults(run=cmd_env)

    submit = sub.add_parser("submit", help="submit a text file")
    submit.add_argument("file")
    submit.add_argument("--voice")
    submit.add_argument("--format", choices=["wav", "flac", "mp3", "opus", "m4b"])
    submit.add_argument("--title", help="default: from the book's metadata, else the file name")
    submit.add_argument("--author")
    submit.add_argument("--wait", action="store_true", help="show progress and download the result")
    submit.add_argument("-o", "--output", help="where to save the audiobook (implies --wait)")
    submit.set_defaults(run=cmd_submit)

    status = sub.add_parser("status", help="print a job's status")
    status.add_argument("job_id")
    status.set_defaults(run=cmd_status)

    worker = sub.add_parser("worker", help="run a synthesis worker for one model")
    worker.add_argument("--model", required=True)
    worker.add_argument("--gpu", type=int, help="pin the worker to this GPU (sets CUDA_VISIBLE_DEVICES)")
    worker.add_argument("--concurrency", type=int, default=1, help="pool processes, each with its own copy of the model")
    worker.add_argument(
        "--inflight", type=int, default=1,
        help="segments synthesised at once by one process sharing one model (threads; CosyVoice on a GPU)",
    )
    worker.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: automatic)")
    worker.add_argument("--name", help="worker name before the @ (default: the model's name)")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--join", metavar="FILE",
        help="join a control host: its join file (`chorus env --join` there; - reads standard input)",
    )
    worker.set_defaults(run=cmd_worker)

    keys = sub.add_parser("keys", help="create, list or revoke API keys (stored hashed in Redis), rotate webhook secrets")
    keys.add_argument("action", choices=["create", "list", "revoke", "rotate-secret"])
    keys.add_argument("name", nargs="?", help="the new key's NAME (create), or the key's ID (revoke, rotate-secret)")
    keys.add_argument("--max-text-chars", type=int)
    keys.add_argument("--max-segments", type=int)
    keys.add_argument("--max-concurrent-jobs", type=int)
    keys.set_defaults(run=cmd_keys)

    cache = sub.add_parser("cache", help="show or clear the segment cache")
    cache.add_argument("action", choices=["stats", "clear"])
    cache.add_argument("--older-than-days", type=float, default=0.0, help="clear only entries unused this long")
    cache.set_defaults(run=cmd_cache)

    workers = sub.add_parser("workers", help="run one worker per GPU (and CPU workers) for the configured models")
    workers.add_argument("--models", help="comma-separated model names (default: all in the registry)")
    workers.add_argument("--gpus", help="comma-separated GPU indexes (default: from nvidia-smi -L)")
    workers.set_defaults(run=cmd_workers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ChorusError, RegistryError, httpx.HTTPError, OSError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
