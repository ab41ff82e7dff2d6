"""The cyclic garbage collector paused while many small acyclic records are made at once, made
rarer while a plan is read in, and kept off what the process made to start."""

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_collector_lock = threading.Lock()
_collector_pausers = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while records are keyed, spilled and diffed, or read
    from a directory page by page (a synchronous piece of work, never across an await).

    Planning makes millions of small tuples and dicts, none in a cycle (reference counting frees
    them), and with a large live heap each collection the allocations trigger walks all of it:
    about a quarter of the planner's CPU time at a million records. Counted, so plans computed
    in parallel threads pause it once and the last one done restarts it; paused only during a
    piece of planning work, so the rest of the process collects in between."""
    global _collector_pausers
    with _collector_lock:
        if _collector_pausers == 0 and not gc.isenabled():
            paused_here = False
        else:
            paused_here = True
            _collector_pausers += 1
            gc.disable()
    try:
        yield
    finally:
        if paused_here:
            with _collector_lock:
                _collector_pausers -= 1
                if _collector_pausers == 0:
                    gc.enable()


# The youngest generation's threshold while a plan is being read in (the interpreter's default
# is 700).
_RELAXED_YOUNG_THRESHOLD = 10_000
_collector_relaxers = 0
_collector_threshold_before: tuple[int, int, int] | None = None


def relax_collector() -> Callable[[], None]:
    """Collections made rarer from now until the returned function is called (once; later
    calls do nothing), for a plan's whole reading, between its pieces too.

    While a sequence is read, the reader (a file parser, a database driver, the bench) makes
    its pieces of thousands of records between the planner's calls, and they live long enough
    to reach the oldest generation: with the default thresholds a full collection ran every few
    pieces, some 30 at a million records, about 0.4 s of CPU and more in the processor's caches
    they flushed. A higher threshold for the youngest generation makes every generation's
    collections some 14 times rarer; garbage in a cycle is still collected, a little later.
    Counted, like `collector_paused`: the last plan done restores the thresholds, unless
    something else changed them meanwhile."""
    global _collector_relaxers, _collector_threshold_before
    with _collector_lock:
        if _collector_relaxers == 0:
            before = gc.get_threshold()
            if before[0] < _RELAXED_YOUNG_THRESHOLD:
                _collector_threshold_before = before
                gc.set_threshold(_RELAXED_YOUNG_THRESHOLD, before[1], before[2])
        _collector_relaxers += 1
    done = False

    def restore() -> None:
        global _collector_relaxers, _collector_threshold_before
        nonlocal done
        with _collector_lock:
            if done:
                return
            done = True
            _collector_relaxers -= 1
            before = _collector_threshold_before
            if _collector_relaxers == 0 and before is not None:
                if gc.get_threshold()[0] == _RELAXED_YOUNG_THRESHOLD:
                    gc.set_threshold(*before)
                _collector_threshold_before = None

    return restore


def freeze_startup_objects() -> None:
    """The objects the process made to start (its modules, classes, the app: some 113,000 in
    the runner) moved out of the cyclic collector's reach for good. They live as long as the
    process, yet every full collection walked them all, some 80 ms each, and reading a large
    plan still triggers full collections now and then (above): a 10,000-record plan took some
    20% longer on average for it. Collected once first, so no garbage is kept."""
    gc.collect()
    gc.freeze()
