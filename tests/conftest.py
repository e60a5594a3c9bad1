"""Shared pytest options and fixtures."""

from __future__ import annotations

import pytest

from lazykernels.jit import load as jit_load


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden generated-source files in tests/golden/ instead of comparing",
    )


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A fresh cache directory, no debug traces, and a process that has loaded no kernel."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(directory))
    monkeypatch.delenv("LAZYKERNELS_DEBUG", raising=False)
    jit_load.forget_loaded()
    yield directory
    jit_load.forget_loaded()
