"""The SQLite store: every sample and every verdict, committed as it arrives, so runs resume."""
from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from pytest_passk.protocol import RunResult

#: 1: verdicts without ``worker`` and ``returns``; 2: with them (a store of schema 1 is migrated
#: when opened: its verdicts get ``worker`` '' and ``returns`` NULL, "not recorded").
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    source      TEXT NOT NULL,    -- model and sampling settings
    prompt_hash TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    problem_id  TEXT NOT NULL,
    text        TEXT NOT NULL,
    created     REAL NOT NULL,
    PRIMARY KEY (source, prompt_hash, idx)
);
CREATE TABLE IF NOT EXISTS runs (
    code_hash   TEXT NOT NULL,    -- the program that ran
    run_key     TEXT NOT NULL,    -- the test's source fingerprint and the limits it ran under
    run         INTEGER NOT NULL, -- 0 .. runs-1
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    output      TEXT NOT NULL,
    duration    REAL NOT NULL,
    created     REAL NOT NULL,
    worker      TEXT NOT NULL DEFAULT '',  -- which sandbox worker ran it (confirmation goes elsewhere)
    returns     TEXT,             -- digest of what the candidate returned (maj@k); NULL: not recorded
    PRIMARY KEY (code_hash, run_key, run)
);
-- A run asks for every verdict under one run_key (the primary key leads with code_hash); samples are
-- looked up by (source, prompt_hash), the primary key's prefix.
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (run_key);
"""

#: Reasons a verdict may owe to the machine rather than the candidate (a busy host, a container or
#: worker that died); ``--passk-redo-transient`` executes stored verdicts with these reasons again.
TRANSIENT_REASONS = ("timeout", "crash")


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:32]


class StoreError(Exception):
    """The store file cannot be used."""


class Store:
    """Samples keyed by (source, prompt, index); verdicts keyed by (program, test, run number)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit: each sample batch and each verdict is its own transaction, durable on return.
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use {self.path} as the passk store: {exc}; pass another --passk-store") from exc

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` (in one transaction, so two processes opening
        one old store at once migrate it once)."""
        with self._transaction():
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            version = None if row is None else int(row[0])
            if version is None:  # a new store: _SCHEMA made it current
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                return
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has store schema {version}, written by a newer pytest-passk "
                                 f"(this one reads up to {SCHEMA_VERSION}); upgrade, or pass another --passk-store")
            if version < 2:
                columns = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
                if "worker" not in columns:
                    self.db.execute("ALTER TABLE runs ADD COLUMN worker TEXT NOT NULL DEFAULT ''")
                if "returns" not in columns:
                    self.db.execute("ALTER TABLE runs ADD COLUMN returns TEXT")
            self.db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))

    # -- samples -----------------------------------------------------------------------------

    def samples(self, source: str, prompt_hash: str) -> list[str]:
        rows = self.db.execute(
            "SELECT text FROM samples WHERE source=? AND prompt_hash=? ORDER BY idx", (source, prompt_hash)
        ).fetchall()
        return [r[0] for r in rows]

    def add_samples(self, source: str, prompt_hash: str, problem_id: str, texts: Iterable[str]) -> None:
        """Append samples after those already stored for this (source, prompt), in one transaction."""
        now = time.time()
        with self._transaction():
            (start,) = self.db.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM samples WHERE source=? AND prompt_hash=?",
                (source, prompt_hash),
            ).fetchone()
            self.db.executemany(
                "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                [(source, prompt_hash, start + i, problem_id, t, now) for i, t in enumerate(texts)],
            )

    # -- verdicts ----------------------------------------------------------------------------

    def runs(self, run_key: str, skip_reasons: Iterable[str] = (),
             need_returns: bool = False) -> dict[tuple[str, int], RunResult]:
        """Every stored verdict under ``run_key``: ``(code_hash, run) -> result``, leaving out those whose
        reason is in ``skip_reasons`` (they are executed again and replaced) and, with
        ``need_returns``, a first run (run 0) that has no record of what the candidate returned (a
        verdict of schema 1: its sample would cast no maj@k vote)."""
        skip = sorted(set(skip_reasons))
        rows = self.db.execute(
            "SELECT code_hash, run, outcome, reason, message, output, duration, worker, returns FROM runs "
            "WHERE run_key=?"
            + (f" AND reason NOT IN ({', '.join('?' * len(skip))})" if skip else "")
            + (" AND NOT (run = 0 AND returns IS NULL)" if need_returns else ""),
            (run_key, *skip),
        ).fetchall()
        return {
            (h, run): RunResult(id=-1, outcome=o, reason=r, message=m, output=out, duration=d, worker=w,
                                returns=ret or "")
            for h, run, o, r, m, out, d, w, ret in rows
        }

    def add_run(self, code: str, run_key: str, run: int, result: RunResult) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO runs (code_hash, run_key, run, outcome, reason, message, output, duration, "
            "created, worker, returns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (code, run_key, run, result.outcome, result.reason, result.message, result.output,
             result.duration, time.time(), result.worker or "", result.returns or ""),
        )

    def counts(self) -> tuple[int, int]:
        (s,) = self.db.execute("SELECT COUNT(*) FROM samples").fetchone()
        (r,) = self.db.execute("SELECT COUNT(*) FROM runs").fetchone()
        return s, r

    def _transaction(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return _Commit(self.db)  # type: ignore[return-value]

    def close(self) -> None:
        self.db.close()


class _Commit:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
