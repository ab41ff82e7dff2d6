"""`make bench`: every benchmark, one ratio line each, and docs/performance.md from them.

`BENCH_PLANNER_SIZES` (comma separated) sets the planner's sizes; `BENCH_ONLY=planner` runs the
planner alone (no broker, database or directory needed)."""

import asyncio
import os

from bench import bench_ldap, bench_listing, bench_planner, bench_target, performance


async def run() -> None:
    print("benchmark                                    (best of N runs; ratio = ours / baseline)")
    sizes = tuple(
        int(size)
        for size in os.environ.get(
            "BENCH_PLANNER_SIZES", ",".join(str(s) for s in bench_planner.SIZES)
        ).split(",")
    )
    planner = await bench_planner.main(sizes)
    others: list[str] = []
    if os.environ.get("BENCH_ONLY") != "planner":
        others += await bench_target.main()
        others += await bench_ldap.main()
        others += await bench_listing.main()
    print(f"wrote {performance.write(planner, others)}")


if __name__ == "__main__":
    asyncio.run(run())
