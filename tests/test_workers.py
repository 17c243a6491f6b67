"""Worker processes: Flower sees them, and one without its model refuses to start."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.stack


def test_flower_lists_the_workers_behind_basic_auth(stack: dict[str, str]) -> None:
    url = f"{stack['CHORUS_FLOWER_URL']}/api/workers"
    assert httpx.get(url, timeout=10).status_code == 401
    auth = (stack["CHORUS_FLOWER_USER"], stack["CHORUS_FLOWER_PASSWORD"])
    workers = httpx.get(url, auth=auth, params={"refresh": "true"}, timeout=30).json()
    names = {name.split("@")[0] for name in workers}
    assert {"jobs", "piper-joe-1", "tone-1"} <= names


def test_worker_with_a_missing_model_file_exits_with_one_clear_line(stack: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "worker", "--model", "broken"],
        capture_output=True, text=True, env={**stack, "PATH": "/usr/bin:/bin"}, timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == ["ModelLoadError: model 'broken': model not found: /nonexistent/chorus/voice.onnx"]


def test_worker_whose_model_fails_to_load_exits_non_zero(stack: dict[str, str], tmp_path) -> None:
    """The files exist, so the pre-flight passes; the pool process then fails to
    load them and takes the whole worker down instead of idling without a model."""
    from chorus.configs import Settings, load_registry

    piper = load_registry(Settings().registry_file).models["piper-joe"]
    (tmp_path / "voice.onnx").write_bytes(b"not an onnx model")
    registry = tmp_path / "voices.toml"
    registry.write_text(
        '[models.corrupt]\nengine = "piper"\nsample_rate = 22050\n'
        f'files.model = "{tmp_path / "voice.onnx"}"\nfiles.config = "{piper.file("config")}"\n'
        '[[models.corrupt.voices]]\nid = "corrupt"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "worker", "--model", "corrupt", "--name", "corrupt-test"],
        capture_output=True, text=True, timeout=90,
        env={**stack, "PATH": "/usr/bin:/bin", "CHORUS_REGISTRY_FILE": str(registry)},
    )
    assert result.returncode == 1
    assert "ModelLoadError: model 'corrupt': cannot load voice.onnx" in result.stdout + result.stderr
