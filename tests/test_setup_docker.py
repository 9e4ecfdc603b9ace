"""scripts/setup-docker.sh takes its Debian mirror from an option, the environment or the machine's
apt sources, and stops with a clear message when there is none (it never guesses a host)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "setup-docker.sh"


def mirror(apt: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PASSK_DEBIAN_MIRROR"}
    environ.update(env or {}, PASSK_APT_DIR=str(apt))
    return subprocess.run(["bash", str(SCRIPT), "--print-mirror", *args], capture_output=True, text=True,
                          env=environ, timeout=30)


@pytest.fixture
def apt(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_deb822_sources(apt: Path) -> None:
    (apt / "sources.list.d" / "other.sources").write_text(
        "Types: deb\nURIs: http://elsewhere.example/node\nSuites: nodistro\nComponents: main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    result = mirror(apt)
    assert (result.returncode, result.stdout.strip()) == (0, "http://mirror.example/debian"), result.stderr


def test_one_line_sources(apt: Path) -> None:
    (apt / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n")
    assert mirror(apt).stdout.strip() == "http://one.example/debian"


def test_no_mirror_is_a_clear_error(apt: Path) -> None:
    (apt / "sources.list").write_text("deb http://archive.ubuntu.example/ubuntu jammy main\n")
    result = mirror(apt)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"setup-docker: error: no Debian mirror for bookworm: none in {apt}/sources.list or "
        f"{apt}/sources.list.d/; pass --mirror URL (or set PASSK_DEBIAN_MIRROR), e.g. --mirror "
        "http://deb.debian.org/debian"]


def test_option_and_environment_win(apt: Path) -> None:
    assert mirror(apt, "--mirror", "http://opt.example/debian").stdout.strip() == "http://opt.example/debian"
    assert mirror(apt, "--mirror=http://eq.example/debian").stdout.strip() == "http://eq.example/debian"
    by_env = mirror(apt, env={"PASSK_DEBIAN_MIRROR": "http://env.example/debian"})
    assert by_env.stdout.strip() == "http://env.example/debian"


def test_unknown_argument(apt: Path) -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown argument '--bogus'" in result.stderr
