"""Fixtures shared by every test: a running all-in-one cloud and its clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud import RunningCloud


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    """One all-in-one cloud (SQLite, in-memory bus) shared by the functional tests.

    Tests share it, so each names what it creates uniquely (see `name`)."""
    running = RunningCloud(tmp_path_factory.mktemp("cloud")).start()
    yield running
    running.stop()


@pytest.fixture
def fresh_cloud(tmp_path: Path) -> Iterator[RunningCloud]:
    """A cloud of the test's own, for tests that restart or break it."""
    running = RunningCloud(tmp_path / "state").start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin(cloud: RunningCloud):  # type: ignore[no-untyped-def]
    """openstacksdk connection as the bootstrap admin (project-scoped)."""
    return cloud.connect()


@pytest.fixture
def name() -> str:
    """A unique name for what a test creates in the shared cloud."""
    return f"t-{uuid.uuid4().hex[:10]}"
