"""The planner against the least work any diff must do: index both sides by key, compare."""

import asyncio
import random
from typing import Any

from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import SourceEntry

from bench.timing import best_of, report

MAPPING = {"uid": "employee_id", "mail": "email", "sn": "last_name", "givenName": "first_name"}


def records(count: int) -> tuple[list[SourceEntry], list[dict[str, Any]]]:
    rng = random.Random(42)
    source = [
        SourceEntry(
            line=i + 2,
            fields={
                "employee_id": f"E{i:07d}",
                "email": f"user{i}@example.org",
                "last_name": f"Name{i}",
                "first_name": f"First{i}",
            },
        )
        for i in range(count)
    ]
    # The target has 90% of the records, a tenth of those with a changed mail.
    target = []
    for i in range(count):
        if i % 10 == 0:
            continue
        mail = f"old{i}@example.org" if rng.random() < 0.1 else f"user{i}@example.org"
        target.append(
            {
                "_id": f"E{i:07d}",
                "uid": f"E{i:07d}",
                "mail": mail,
                "sn": f"Name{i}",
                "givenName": f"First{i}",
            }
        )
    return source, target


def raw_diff(source: list[SourceEntry], target: list[dict[str, Any]]) -> int:
    wanted = {r.fields["employee_id"]: {a: r.fields[f] for a, f in MAPPING.items()} for r in source}
    existing = {t["uid"]: t for t in target}
    changed = 0
    for key, attributes in wanted.items():
        current = existing.get(key)
        if current is None or any(current.get(a) != v for a, v in attributes.items()):
            changed += 1
    return changed


async def main(count: int = 50_000) -> list[str]:
    source, target = records(count)

    async def ours() -> None:
        plan(source, target, "uid", MAPPING, delete_missing=True)

    async def baseline() -> None:
        raw_diff(source, target)

    return [
        report(
            f"plan {count:,} records (90% in target)",
            await best_of(5, ours),
            await best_of(5, baseline),
            "raw dict diff",
        )
    ]


if __name__ == "__main__":
    asyncio.run(main())
