"""`make bench`: every benchmark, one ratio line each, and docs/performance.md from them.

`BENCH_PLANNER_SIZES` (comma separated) sets the planner's sizes; `BENCH_ONLY` (comma separated:
planner, event_hop, target, ldap, sql, scim, listing, million_job) runs only those (`planner`
alone needs no broker, database or directory); `BENCH_MILLION_RECORDS` sets the size of the
million-record job."""

import asyncio
import os

from bench import (
    bench_event_hop,
    bench_ldap,
    bench_listing,
    bench_million_job,
    bench_planner,
    bench_scim,
    bench_sql,
    bench_target,
    performance,
)


async def run() -> None:
    print("benchmark                                    (best of N runs; ratio = ours / baseline)")
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))

    def wanted(name: str) -> bool:
        return not only or name in only

    sizes = tuple(
        int(size)
        for size in os.environ.get(
            "BENCH_PLANNER_SIZES", ",".join(str(s) for s in bench_planner.SIZES)
        ).split(",")
    )
    planner = await bench_planner.main(sizes) if wanted("planner") else []
    others: list[str] = []
    if wanted("event_hop"):
        others += await bench_event_hop.main()
    if wanted("target"):
        others += await bench_target.main()
    if wanted("ldap"):
        others += await bench_ldap.main()
    if wanted("sql"):
        others += await bench_sql.main()
    if wanted("scim"):
        others += await bench_scim.main()
    if wanted("listing"):
        others += await bench_listing.main()
    sections: list[str] = []
    if wanted("million_job"):
        million = await bench_million_job.main()
        others += million
        sections += bench_million_job.section(million)
    print(f"wrote {performance.write(planner, others, sections)}")


if __name__ == "__main__":
    asyncio.run(run())
