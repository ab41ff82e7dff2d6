"""`make bench`: every benchmark, one ratio line each (ours / baseline; lower is better)."""

import asyncio

from bench import bench_ldap, bench_listing, bench_planner, bench_scim, bench_sql, bench_target


async def run() -> None:
    print("benchmark                                    (best of N runs; ratio = ours / baseline)")
    await bench_planner.main()
    await bench_target.main()
    await bench_ldap.main()
    await bench_sql.main()
    await bench_listing.main()
    await bench_scim.main()


if __name__ == "__main__":
    asyncio.run(run())
