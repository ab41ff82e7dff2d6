"""The cyclic garbage collector paused while many small acyclic records are made at once."""

import gc
import threading
from collections.abc import Iterator
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
