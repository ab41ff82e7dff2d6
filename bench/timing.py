"""Best-of-N wall-clock timing and the ratio line every benchmark prints."""

import time
from collections.abc import Awaitable, Callable


async def best_of(runs: int, work: Callable[[], Awaitable[object]]) -> float:
    """The fastest of `runs` runs: the least disturbed by the other load on a shared machine."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        best = min(best, time.perf_counter() - started)
    return best


def report(name: str, ours: float, baseline: float, baseline_name: str, unit: str = "") -> str:
    ratio = ours / baseline if baseline > 0 else float("inf")
    line = (
        f"{name:<44} ours {ours * 1000:9.1f} ms   {baseline_name} {baseline * 1000:9.1f} ms"
        f"   ratio {ratio:5.2f}x{unit}"
    )
    print(line, flush=True)
    return line
