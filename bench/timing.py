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


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile: with few samples p95 is their worst, never an interpolation."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def report_goal(
    name: str,
    ours: float,
    baseline: float,
    baseline_name: str,
    *,
    goal: float,
    speed: bool = False,
) -> str:
    """One line with the figure, the baseline, the ratio and whether it meets its goal: a ratio
    (ours / baseline, goal an upper bound) or, with `speed`, baseline / ours (a lower bound)."""
    if speed:
        ratio = baseline / ours if ours > 0 else float("inf")
        met, label, bound = ratio >= goal, "speed", "≥"
    else:
        ratio = ours / baseline if baseline > 0 else float("inf")
        met, label, bound = ratio <= goal, "ratio", "≤"
    line = (
        f"{name:<44} ours {ours * 1000:9.1f} ms   {baseline_name} {baseline * 1000:9.1f} ms"
        f"   {label} {ratio:5.2f}x   goal {bound} {goal:g} ({'yes' if met else 'NO'})"
    )
    print(line, flush=True)
    return line
