"""pytest-passk: evaluate code-generating models by repeated sampling, with pytest tests as verifiers."""
from __future__ import annotations

import pytest

from pytest_passk.candidate import Candidate

#: ``@passk(k=(1, 10), n=20, prompt=...)`` marks a test as a problem; it is ``pytest.mark.passk``.
passk = pytest.mark.passk

__all__ = ["Candidate", "passk"]
