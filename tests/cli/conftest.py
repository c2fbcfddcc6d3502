"""Each CLI test runs in its own temporary directory (runs without --out go to ./runs)."""
import pytest


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
