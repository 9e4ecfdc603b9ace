"""Turns ``@passk``-marked items into validated :class:`Problem` records."""
from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

MARKER = "passk"
MARKER_SIGNATURE = (
    "passk(k=1, n=None, prompt=None, id=None, timeout=None, reference=None, min=1, style=None, depends=(), "
    "answer=None, support=None): "
    "evaluate a code-generating model on this test by repeated sampling; "
    "k: int or ints for pass@k, n: samples per problem (default max(k)), "
    "prompt: str or callable of the test's parameters (default: a 'prompt' parameter, else the docstring), "
    "id: problem id, str or callable (default: the node id), timeout: seconds per candidate run, "
    "reference: canonical solution code, min: correct samples needed for the item to pass, "
    "style: 'completion' (program = prompt + completion) or 'chat' (program = code block of the reply), "
    "depends: glob(s) relative to the test file naming data the test reads (stored verdicts are redone when they "
    "change), answer: callable taking a sample's text and returning its final answer (majority voting, maj@k), "
    "support: helper code (str or callable of the parameters) run in the candidate's process before its program"
)
STYLES = ("completion", "chat")
_KEYWORDS = ("k", "n", "prompt", "id", "timeout", "reference", "min", "style", "depends", "answer", "support")


class MarkerError(Exception):
    """A ``@passk`` marker with an unknown keyword or a bad value."""


@dataclass(frozen=True)
class Problem:
    """One evaluation problem: a passk-marked test item and what to ask the model."""

    id: str
    nodeid: str
    prompt: str
    ks: tuple[int, ...]
    n: int
    timeout: float | None
    reference: str | None
    min_correct: int
    style: str | None
    fingerprint: str
    #: the final answer of a sample's text (answer-style problems), for majority voting
    answer: Callable[[str], Any] | None = None
    #: Helper code run in the candidate's process before its program (e.g. a TreeNode class and
    #: converters from and to lists); tests call it through the candidate like the program itself.
    support: str | None = None


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MarkerError(f"passk({name}=...) must be a positive int, got {value!r}")
    return value


def _params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def _call_with_params(name: str, fn: Callable[..., Any], params: dict[str, Any]) -> Any:
    sig = inspect.signature(fn)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    kwargs = params if accepts_any else {k: v for k, v in params.items() if k in sig.parameters}
    try:
        return fn(**kwargs)
    except TypeError as exc:
        raise MarkerError(f"passk({name}=<callable>) could not be called with the test's parameters: {exc}") from exc


_file_digests: dict[tuple[str, int, int], bytes] = {}


def _digest(path: Path) -> bytes:
    """A file's content digest, cached per (path, mtime, size) for the session's many items."""
    try:
        st = path.stat()
    except OSError:
        return b"missing"
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _file_digests:
        try:
            _file_digests[key] = hashlib.sha256(path.read_bytes()).digest()
        except OSError:
            _file_digests[key] = b"unreadable"
    return _file_digests[key]


def _glob(base: Path, pattern: str, declared_by: str) -> list[Path]:
    pattern_path = Path(pattern)
    if pattern_path.is_absolute():
        base, pattern = Path(pattern_path.anchor), str(pattern_path.relative_to(pattern_path.anchor))
    found = sorted(p for p in base.glob(pattern) if p.is_file())
    if not found:
        raise MarkerError(f"{declared_by}: {pattern!r} matches no file under {base}; "
                          "fix the pattern or remove it")
    return found


def _dependencies(item: pytest.Item, declared: Sequence[str]) -> list[Path]:
    """Every file a verdict of this item depends on besides the candidate: the test module, each
    conftest.py from the rootdir down to it, the files defining the fixtures it uses, the local modules
    its module imports, the ``passk_depends`` ini globs and the marker's ``depends=`` globs."""
    config = item.config
    root = Path(str(config.rootpath)).resolve()
    path = Path(str(item.path)).resolve()
    files: set[Path] = {path}
    folder = path.parent
    while True:
        if (folder / "conftest.py").is_file():
            files.add(folder / "conftest.py")
        if folder == root or folder == folder.parent or root not in folder.parents:
            break
        folder = folder.parent
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    for defs in getattr(fixtureinfo, "name2fixturedefs", {}).values():
        for fixturedef in defs:
            source = _source_file(getattr(fixturedef, "func", None))
            if source is not None and not _is_library(source):
                files.add(source)
    module = getattr(item, "module", None)
    for value in list(vars(module).values()) if module is not None else []:
        source = _source_file(value)
        if source is not None and root in source.parents and not _is_library(source):
            files.add(source)
    from pytest_passk.options import _raw

    for pattern in _raw(config, "depends") or []:
        files.update(_glob(root, pattern, "--passk-depends"))
    for pattern in declared:
        files.update(_glob(path.parent, pattern, "passk(depends=...)"))
    return sorted(files)


@lru_cache(maxsize=1)
def _library_dirs() -> tuple[Path, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.add(Path(__file__).resolve().parent)  # pytest-passk itself: its version is in the key
    return tuple(dirs)


def _is_library(path: Path) -> bool:
    """Installed code (the standard library, site-packages, pytest-passk): versioned, not hashed."""
    return any(d == path or d in path.parents for d in _library_dirs()) or bool(
        {"site-packages", "dist-packages"} & set(path.parts))


def _source_file(obj: Any) -> Path | None:
    if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return None
    try:
        source = inspect.getsourcefile(obj if inspect.ismodule(obj) else inspect.unwrap(obj))
    except Exception:  # builtins, proxies, objects with odd __getattr__: no file to hash
        return None
    return Path(source).resolve() if source else None


def _fingerprint(item: pytest.Item, declared: Sequence[str]) -> str:
    """What a verdict depends on besides the candidate and the limits: the node id and the content of
    every file :func:`_dependencies` names (their paths relative to the rootdir)."""
    root = Path(str(item.config.rootpath)).resolve()
    h = hashlib.sha256(item.nodeid.encode())
    for dep in _dependencies(item, declared):
        try:
            name = str(dep.relative_to(root))
        except ValueError:
            name = str(dep)
        h.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0" + _digest(dep))
    return h.hexdigest()[:32]


def problem_from_item(item: pytest.Item) -> Problem | None:
    """The item's problem, or None if it is not passk-marked. Raises :class:`MarkerError` on bad markers."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    if marker.args:
        raise MarkerError(f"passk takes keyword arguments only, got positional {marker.args!r}")
    unknown = sorted(set(marker.kwargs) - set(_KEYWORDS))
    if unknown:
        raise MarkerError(f"passk got unknown keyword(s) {', '.join(unknown)}; known: {', '.join(_KEYWORDS)}")
    kw = marker.kwargs
    params = _params(item)

    raw_k = kw.get("k", 1)
    ks_in: Sequence[Any] = (raw_k,) if isinstance(raw_k, int) and not isinstance(raw_k, bool) else raw_k
    if isinstance(ks_in, (str, bytes)) or not isinstance(ks_in, Sequence) or not ks_in:
        raise MarkerError(f"passk(k=...) must be a positive int or a non-empty sequence of them, got {raw_k!r}")
    ks = tuple(sorted({_positive_int("k", k) for k in ks_in}))
    n = _positive_int("n", kw["n"]) if kw.get("n") is not None else max(ks)
    if max(ks) > n:
        raise MarkerError(f"passk(k={raw_k!r}, n={n}): k={max(ks)} exceeds n={n}, so pass@{max(ks)} could never be "
                          f"estimated; raise n to at least {max(ks)} or drop k={max(ks)}")

    prompt = kw.get("prompt")
    if callable(prompt):
        prompt = _call_with_params("prompt", prompt, params)
    elif prompt is None and "prompt" in params:
        prompt = params["prompt"]
    elif prompt is None:
        doc = getattr(getattr(item, "obj", None), "__doc__", None)
        prompt = inspect.cleandoc(doc) if doc else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise MarkerError(
            "passk needs a prompt: pass prompt='...' (or a callable), parametrize an argument named "
            f"'prompt', or give the test a docstring; got {prompt!r}"
        )

    pid = kw.get("id")
    if callable(pid):
        pid = _call_with_params("id", pid, params)
    if pid is None:
        pid = item.nodeid
    if not isinstance(pid, str) or not pid:
        raise MarkerError(f"passk(id=...) must be a non-empty str or a callable returning one, got {pid!r}")

    timeout = kw.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise MarkerError(f"passk(timeout=...) must be a positive number of seconds, got {timeout!r}")
        timeout = float(timeout)

    reference = kw.get("reference")
    if callable(reference):
        reference = _call_with_params("reference", reference, params)
    if reference is not None and not isinstance(reference, str):
        raise MarkerError(f"passk(reference=...) must be source code as a str, got {type(reference).__name__}")

    min_correct = _positive_int("min", kw.get("min", 1))
    if min_correct > n:
        raise MarkerError(f"passk(min={min_correct}) cannot exceed n={n}")

    style = kw.get("style")
    if style is not None and style not in STYLES:
        raise MarkerError(f"passk(style=...) must be one of {', '.join(STYLES)}, got {style!r}")

    depends = kw.get("depends", ())
    if isinstance(depends, (str, Path)):
        depends = (depends,)
    if not isinstance(depends, Sequence) or not all(isinstance(d, (str, Path)) and str(d) for d in depends):
        raise MarkerError(f"passk(depends=...) must be a glob or a sequence of globs (relative to the test file), "
                          f"got {depends!r}")

    answer = kw.get("answer")
    if answer is not None and not callable(answer):
        raise MarkerError(f"passk(answer=...) must be a callable taking a sample's text, got {type(answer).__name__}")
    support = kw.get("support")
    if callable(support):
        support = _call_with_params("support", support, params)
    if support is not None and not isinstance(support, str):
        raise MarkerError(f"passk(support=...) must be source code as a str, got {type(support).__name__}")

    return Problem(
        id=pid,
        nodeid=item.nodeid,
        prompt=prompt,
        ks=ks,
        n=n,
        timeout=timeout,
        reference=reference,
        min_correct=min_correct,
        style=style,
        fingerprint=_fingerprint(item, [str(d) for d in depends]),
        answer=answer,
        support=support,
    )
