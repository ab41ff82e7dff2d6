"""The runner freezes what it made to start before it serves: full collections, which reading a
large plan still triggers, then walk only what planning made."""

import gc
from collections.abc import Iterator

import pytest
from sequence_runner.entrypoints import main


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    yield
    gc.unfreeze()


async def test_the_runner_freezes_its_startup_objects_before_it_serves(
    monkeypatch: pytest.MonkeyPatch, unfrozen_after: None
) -> None:
    gc.unfreeze()
    frozen_when_serving: list[int] = []

    class App:
        async def run(self) -> None:
            frozen_when_serving.append(gc.get_freeze_count())

    monkeypatch.setattr(main, "app_factory", lambda settings: App())
    await main.serve(settings=None)  # type: ignore[arg-type]
    # The modules, classes and the app itself are out of the collector's reach by then.
    (frozen,) = frozen_when_serving
    assert frozen > 10_000
