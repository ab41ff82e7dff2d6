"""`make bench`: every benchmark, one ratio line each, and docs/performance.md from them.

`BENCH_PLANNER_SIZES` (comma separated) sets the planner's sizes; `BENCH_ONLY` (comma separated:
planner, event_hop, target, ldap, sql, scim, listing, latency, plan_apply, million_job) runs only
those (`planner` alone needs no broker, database or directory); `BENCH_MILLION_RECORDS` sets the
size of the million-record job. Each benchmark's wall time is printed and written with the
figures, so `make bench` can be budgeted."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    bench_event_hop,
    bench_latency,
    bench_ldap,
    bench_listing,
    bench_million_job,
    bench_plan_apply,
    bench_planner,
    bench_scim,
    bench_sql,
    bench_target,
    performance,
)


def _planner_measured_before() -> tuple[list[bench_planner.PlannerFigure], float] | None:
    """The planner's figures and seconds when scripts/bench.sh measured them before the servers
    started (BENCH_PLANNER_FIGURES)."""
    measured = os.environ.get("BENCH_PLANNER_FIGURES")
    if not measured or not Path(measured).exists():
        return None
    return bench_planner.load_figures(Path(measured))


async def run() -> None:
    print("benchmark                                    (best of N runs; ratio = ours / baseline)")
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))

    def wanted(name: str) -> bool:
        return not only or name in only

    sizes = bench_planner.sizes_from_environment()
    durations: list[tuple[str, float]] = []
    started = time.perf_counter()
    planner: list[bench_planner.PlannerFigure] = []
    if wanted("planner"):
        # scripts/bench.sh runs the planner before it starts the servers (see there) and hands
        # over its figures; run alone, the planner runs here.
        saved = _planner_measured_before()
        if saved is not None:
            planner, seconds = saved
            for figure in planner:
                print(figure.line(), flush=True)
            durations.append(("planner", seconds))
        else:
            planner = await bench_planner.main(sizes)
            durations.append(("planner", time.perf_counter() - started))
    others: list[str] = []
    sections: list[performance.Section] = []

    async def timed(name: str, bench: Callable[[], Awaitable[list[str]]]) -> None:
        if not wanted(name):
            return
        started = time.perf_counter()
        nonlocal others
        others += await bench()
        durations.append((name, time.perf_counter() - started))
        print(f"({name}: {durations[-1][1]:.0f} s)", flush=True)

    async def with_notes(
        name: str,
        title: str,
        about: list[str],
        bench: Callable[[], Awaitable[tuple[list[str], list[str]]]],
    ) -> None:
        async def lines() -> list[str]:
            found, notes = await bench()
            sections.append(performance.Section(title, about, notes))
            return found

        await timed(name, lines)

    await with_notes("event_hop", "Event hop", bench_event_hop.ABOUT, bench_event_hop.main)
    await timed("target", bench_target.main)
    await timed("ldap", bench_ldap.main)
    await timed("sql", bench_sql.main)
    await timed("scim", bench_scim.main)
    await with_notes("latency", "Job latency", bench_latency.ABOUT, bench_latency.main)
    await with_notes("plan_apply", "Plan and apply", bench_plan_apply.ABOUT, bench_plan_apply.main)

    async def million_job() -> list[str]:
        found = await bench_million_job.main()
        sections.append(bench_million_job.section(found))
        return found

    await timed("million_job", million_job)
    # Last: at 1,000,000 job instances SecantusDB holds each sorted page's documents in memory
    # and keeps what it grew to, and its writes slow down the longer it runs; the benchmarks
    # above time writes and round trips, so they meet the server before the listing does.
    await with_notes("listing", "Job listing", bench_listing.ABOUT, bench_listing.main)
    print(f"wrote {performance.write(planner, others, sections, durations)}")


if __name__ == "__main__":
    asyncio.run(run())
