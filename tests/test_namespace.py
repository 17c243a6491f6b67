"""One import name, ``chorus``: nothing Chorus runs imports a top-level
``tasks``, ``api``, ``configs`` or ``workers``, so a directory holding modules
of those names (a Celery tutorial's ``tasks.py``, say) cannot shadow Chorus's
when commands run from it; and the wheel installs ``chorus`` alone, with the
files it reads at run time, so ``chorus up`` works from a plain install."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile
from celery import Celery

from tests.conftest import TESTS

ROOT = TESTS.parent
SENTENCE = "The wheel installs one package, and it speaks."


def _without_chorus_settings() -> dict[str, str]:
    """This process's environment less any CHORUS_* setting and PYTHONPATH: a
    command started with it finds Chorus only where it is installed."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "PYTHONPATH"}


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def shadowing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with its own ``tasks``, ``api`` and ``configs``."""
    directory = tmp_path_factory.mktemp("shadowing")
    (directory / "tasks.py").write_text("from celery import Celery\n\napp = Celery('tasks')\n")
    (directory / "api.py").write_text("raise ImportError('the api.py of this directory, not Chorus\\'s')\n")
    (directory / "configs").mkdir()
    (directory / "configs" / "__init__.py").write_text("raise ImportError('the configs of this directory')\n")
    return directory


@pytest.mark.stack
def test_worker_starts_from_a_directory_that_shadows_the_old_names(stack: dict[str, str], shadowing: Path) -> None:
    name = f"shadowed-{uuid.uuid4().hex[:8]}"
    # `python -m` puts the working directory first on sys.path, the strictest case.
    worker = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "worker", "--model", "tone", "--name", name],
        cwd=shadowing, env={**_without_chorus_settings(), **stack}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    probe = Celery("namespace-probe", broker=stack["CHORUS_REDIS_URL"])
    try:
        deadline = time.monotonic() + 120
        answered = False
        while not answered and worker.poll() is None and time.monotonic() < deadline:
            answered = any(node.startswith(f"{name}@") for reply in probe.control.ping(timeout=1) for node in reply)
        if not answered:
            worker.terminate()
            output = worker.communicate(timeout=30)[0]
            pytest.fail(f"worker {name} did not answer ping (exit {worker.returncode}):\n{output[-3000:]}")
    finally:
        probe.close()
        if worker.poll() is None:
            worker.terminate()
            worker.communicate(timeout=60)


@pytest.mark.stack
def test_submit_from_a_directory_that_shadows_the_old_names(stack: dict[str, str], shadowing: Path) -> None:
    (shadowing / "short.txt").write_text(f"A short text, spoken from a shadowing directory {uuid.uuid4().hex[:6]}.\n")
    output = shadowing / "short.wav"
    _run(
        [sys.executable, "-m", "chorus.cli", "submit", "short.txt", "--voice", "tone", "--format", "wav", "-o", output.name],
        cwd=shadowing, env={**_without_chorus_settings(), **stack}, timeout=240,
    )
    info = soundfile.info(output)
    assert info.format == "WAV" and info.duration > 0.5


@pytest.mark.stack
def test_up_from_a_directory_that_shadows_the_old_names(shadowing: Path, tmp_path: Path) -> None:
    """`chorus up` itself (Redis, S3, the jobs worker, the API, Flower) from
    there, on ports free now, with a data directory of its own."""
    env = {**_without_chorus_settings(), "CHORUS_DATA_DIR": str(tmp_path / "data")}
    chorus = [sys.executable, "-m", "chorus.cli"]
    try:
        _run([*chorus, "up", "--free-ports", "--no-workers"], cwd=shadowing, env=env, timeout=280)
        exported = _run([*chorus, "env"], cwd=shadowing, env=env, timeout=60).stdout
        values = dict(line.removeprefix("export ").split("=", 1) for line in exported.splitlines())
        assert httpx.get(f"{values['CHORUS_API_URL']}/healthz", timeout=10).status_code == 200
    finally:
        down = subprocess.run([*chorus, "down"], cwd=shadowing, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "api" in down.stdout, down.stdout + down.stderr


# -- the wheel ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], cwd=ROOT, env=dict(os.environ),
         timeout=600)
    [built] = dist.glob("chorus_audiobooks-*.whl")
    return built


@pytest.mark.wheel
@pytest.mark.timeout(600)
def test_the_wheel_holds_one_import_name_and_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [top_level] = [n for n in names if n.endswith(".dist-info/top_level.txt")] or [None]
        declared = set(archive.read(top_level).decode().split()) if top_level else None
    installed = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert installed == {"chorus"}, installed
    assert declared in (None, {"chorus"}), declared
    for needed in ("chorus/cli.py", "chorus/stack.py", "chorus/tasks/app.py", "chorus/workers/app.py",
                   "chorus/api/main.py", "chorus/configs/voices.toml"):
        assert needed in names, needed
    static = [n for n in names if n.startswith("chorus/api/static/")]
    assert static and {Path(n).name for n in static} == {p.name for p in (ROOT / "api" / "static").iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the repository with the wheel and
    its dependencies (from the package index, through pip's cache)."""
    home = tmp_path_factory.mktemp("wheel-venv")
    venv.create(home, with_pip=True)
    _run([str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=home,
         env=_without_chorus_settings(), timeout=1500)
    return home


@pytest.fixture
def installed_stack(installed: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """`chorus up` of the installed package, from a directory outside the
    repository: one Piper worker (the default voice), on ports free now."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {**_without_chorus_settings(), "CHORUS_DATA_DIR": str(tmp_path / "data"), "CHORUS_PIPER_WORKERS": "1"}
    chorus = str(installed / "bin" / "chorus")
    try:
        _run([chorus, "up", "--free-ports"], cwd=cwd, env=env, timeout=500)
        yield cwd, env
    finally:
        subprocess.run([chorus, "down"], cwd=cwd, env=env, capture_output=True, timeout=120, check=False)


@pytest.mark.wheel
@pytest.mark.timeout(2400)
def test_the_installed_wheel_runs_a_job(installed: Path, installed_stack: tuple[Path, dict[str, str]]) -> None:
    cwd, env = installed_stack
    python, chorus = str(installed / "bin" / "python"), str(installed / "bin" / "chorus")
    where = _run([python, "-c", "import chorus.tasks; print(chorus.tasks.__file__)"], cwd=cwd, env=env, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout  # not the repository's
    (cwd / "book.txt").write_text(SENTENCE + "\n")
    _run([chorus, "submit", "book.txt", "--format", "wav", "-o", "book.wav"], cwd=cwd, env=env, timeout=600)
    info = soundfile.info(cwd / "book.wav")
    assert info.format == "WAV" and info.duration > 1.0
    assert (cwd / "book.json").is_file()  # the manifest beside it
