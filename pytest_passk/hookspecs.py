"""Extension points of pytest-passk: ``pytest_passk_*`` hooks a conftest or plugin can implement."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_passk.backends import Backend
    from pytest_passk.evaluation import SuiteResult
    from pytest_passk.options import Settings
    from pytest_passk.sandbox import Sandbox


@pytest.hookspec(firstresult=True)
def pytest_passk_sandbox(config: pytest.Config, name: str) -> type[Sandbox] | None:
    """Return the sandbox class for ``--passk-sandbox=name``, or None to leave it to others.

    Example (conftest.py)::

        from pytest_passk.sandbox.local import LocalSandbox

        class NiceLocal(LocalSandbox):
            name = "nice"

        def pytest_passk_sandbox(config, name):
            return NiceLocal if name == "nice" else None
    """


@pytest.hookspec(firstresult=True)
def pytest_passk_backend(config: pytest.Config, settings: Settings) -> Backend | None:
    """Return a backend instance that will produce the samples, or None for the built-in choice.

    Example (conftest.py)::

        from pytest_passk.backends import Backend

        class Canned(Backend):
            name = "canned"
            def source_key(self):
                return "canned-v1"
            def generate(self, requests):
                for r in requests:
                    yield r, ["    return 42\\n"] * r.n

        def pytest_passk_backend(config, settings):
            return Canned(settings) if settings.model == "canned" else None
    """


def pytest_passk_suite_result(config: pytest.Config, suite: SuiteResult) -> None:
    """Called once every problem is scored, before items report; e.g. to publish the numbers.

    Example (conftest.py)::

        def pytest_passk_suite_result(config, suite):
            print("coverage", suite.coverage)
    """
