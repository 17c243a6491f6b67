"""The documentation holds together: the MkDocs site builds with --strict (a
broken link, anchor or absolute link fails it, as mkdocs.yml's `validation`
asks), the README stays short and its relative links lead to files that exist,
and every setting has its row in the configuration reference."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from chorus.configs import Settings

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_MAX_LINES = 150
# [text](target) with the target up to its first space or closing bracket.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)")


def test_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        capture_output=True, text=True, timeout=240, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_readme_relative_links_exist() -> None:
    targets = LINK.findall(README.read_text(encoding="utf-8"))
    relative = [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]
    assert relative, "README.md links into docs/"
    missing = [t for t in relative if not (REPO / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_readme_names_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`CHORUS_{name.upper()}`" not in reference]
    assert not missing, f"settings missing from docs/operations.md: {missing}"
