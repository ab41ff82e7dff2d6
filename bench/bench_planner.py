"""The planner against the least work any diff must do (a bare dict-of-tuples diff of the same
data), each measured in a subprocess of its own for its time and its peak resident memory.

Run alone: `python -m bench.bench_planner [10000 100000 …]`; `make bench` runs it with the rest
and draws its figures into docs/performance.md."""

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from sequence_runner.domain.collector import freeze_startup_objects
from sequence_runner.domain.planner import PlanBound, StreamedPlanner
from sequence_runner.domain.records import SourceEntry

MAPPING = {"uid": "employee_id", "mail": "email", "sn": "last_name", "givenName": "first_name"}
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
# The dict diff holds both sides in memory: beyond this it is not run (it would take GiBs).
BASELINE_LIMIT = 1_000_000
MEMORY_GOAL_MIB = 512
SPEED_GOAL = 0.5
# Up to this size each side's figure is the median of BENCH_PLANNER_RUNS runs (see runs_at).
MEDIAN_UP_TO = 100_000
# The runner hands the planner what it read in lists of this many (sequence_work.PLAN_PIECE).
PIECE = 5000

T = TypeVar("T")


def pieces(records: Iterable[T]) -> Iterator[list[T]]:
    """Records in lists of `PIECE`, as the runner reads and hands them to the planner."""
    records = iter(records)
    while piece := list(islice(records, PIECE)):
        yield piece


def source(count: int) -> Iterator[SourceEntry]:
    """`count` people, as a CSV source yields them."""
    for i in range(count):
        yield SourceEntry(
            line=i + 2,
            fields={
                "employee_id": f"E{i:08d}",
                "email": f"user{i}@example.org",
                "last_name": f"Name{i}",
                "first_name": f"First{i}",
            },
        )


def target(count: int) -> Iterator[dict[str, Any]]:
    """90% of the source (10% creations), a tenth of the source with a changed mail (10%
    updates), and 5% of the source's size who left (5% deletions)."""
    for i in range(count):
        if i % 10 == 0:
            continue
        mail = f"old{i}@example.org" if i % 10 == 1 else f"user{i}@example.org"
        yield {
            "_id": f"E{i:08d}",
            "uid": f"E{i:08d}",
            "mail": mail,
            "sn": f"Name{i}",
            "givenName": f"First{i}",
        }
    for i in range(count // 20):
        yield {"_id": f"L{i:08d}", "uid": f"L{i:08d}", "mail": "left@example.org", "sn": "Left"}


def ours(count: int) -> dict[str, Any]:
    """As the runner plans: both sides streamed into the planner (which digests the plan as it
    makes it), the plan read back once as it is stored."""
    with StreamedPlanner("uid", MAPPING, True, check_free_ids=True, bound=PlanBound()) as planner:
        for piece in pieces(source(count)):
            planner.add_source(piece)
        for target_piece in pieces(target(count)):
            planner.add_target(target_piece)
        plan = planner.finish()
        assert plan.digest is not None
        assert plan.digest.startswith("sha256:")
        stored = sum(1 for _ in plan.changes())
        counts = plan.counts.model_dump()
        spilled = planner.spilled
    assert stored == counts["create"] + counts["update"] + counts["delete"]
    return {"counts": counts, "spilled": spilled}


def raw(count: int) -> dict[str, Any]:
    """The least a diff must do: both sides as dicts of tuples, compared key by key."""
    fields = tuple(MAPPING.values())
    attributes = tuple(MAPPING)
    wanted = {r.fields["employee_id"]: tuple(r.fields[f] for f in fields) for r in source(count)}
    existing = {t["uid"]: tuple(t.get(a) for a in attributes) for t in target(count)}
    creates, updates = [], []
    for key, values in wanted.items():
        current = existing.get(key)
        if current is None:
            creates.append(key)
        elif current != values:
            updates.append(key)
    deletes = [key for key in existing if key not in wanted]
    return {"counts": {"create": len(creates), "update": len(updates), "delete": len(deletes)}}


def generate(count: int) -> dict[str, Any]:
    """Only making the data, which both sides pay and which is taken off both."""
    for _ in source(count):
        pass
    for _ in target(count):
        pass
    return {}


WORK = {"ours": ours, "raw": raw, "generate": generate}


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mib: float
    result: dict[str, Any]


def measure(what: str, count: int) -> Measured:
    """One run in a fresh interpreter: its peak resident memory is this work's alone."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_planner", "--one", what, str(count)],
        check=True,
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Measured(answer["seconds"], answer["peak_mib"], answer["result"])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def warm_repeats(count: int) -> int:
    """How many times a run repeats its work after a first, untimed one, up to MEDIAN_UP_TO.

    The first plan in a process pays its lazy imports and first allocations (tens of
    milliseconds, as much as the whole 10k diff), which a running service pays once, not per
    plan; and the processor's accounting is too coarse for one 10k run (one side's figure moved
    from 65 to 124 ms between runs). So at the smaller sizes the work runs once untimed, then
    this many times, and the median counts."""
    return 3 if count <= MEDIAN_UP_TO else 0


def _one(what: str, count: int) -> None:
    # CPU time, not wall time: the machine is shared, and a neighbour's load would be counted
    # as ours. Spilling's disk waits are not CPU; `wall` shows them.
    # As the runner does once started (entrypoints/main.py): what the imports made is frozen,
    # for either side, so a full collection walks only what the work made.
    freeze_startup_objects()
    repeats = warm_repeats(count)
    if repeats:
        WORK[what](count)
    timings = []
    for _ in range(max(1, repeats)):
        started, wall = _cpu_seconds(), time.perf_counter()
        result = WORK[what](count)
        timings.append((_cpu_seconds() - started, time.perf_counter() - wall))
    seconds, result["wall"] = sorted(timings)[len(timings) // 2]
    print(json.dumps({"seconds": seconds, "peak_mib": _peak_mib(), "result": result}))


def _peak_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    an exec, so a child would report its parent's peak (the parent has matplotlib loaded)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class PlannerFigure:
    count: int
    ours_seconds: float
    ours_peak_mib: float
    raw_seconds: float | None
    raw_peak_mib: float | None
    generate_seconds: float

    @property
    def speed(self) -> float | None:
        """Ours as a fraction of the raw diff's speed (1.0: as fast), data making taken off."""
        if self.raw_seconds is None:
            return None
        return max(self.raw_seconds - self.generate_seconds, 1e-9) / max(
            self.ours_seconds - self.generate_seconds, 1e-9
        )

    def line(self) -> str:
        name = f"plan {self.count:,} records (90% in target)"
        ours = self.ours_seconds - self.generate_seconds
        within = "within" if self.ours_peak_mib <= MEMORY_GOAL_MIB else "OVER"
        memory = f"peak {self.ours_peak_mib:6.0f} MiB ({within} the {MEMORY_GOAL_MIB} MiB bound)"
        if self.raw_seconds is None or self.speed is None:
            return (
                f"{name:<44} ours {ours * 1000:9.1f} ms   baseline not run: both sides in dicts "
                f"would not fit in memory (over {BASELINE_LIMIT:,} records)   {memory}"
            )
        baseline = self.raw_seconds - self.generate_seconds
        return (
            f"{name:<44} ours {ours * 1000:9.1f} ms   raw dict diff {baseline * 1000:9.1f} ms"
            f"   speed {self.speed:4.2f} of raw   {memory} (raw {self.raw_peak_mib:.0f})"
        )


def runs_at(count: int) -> int:
    """How many times each side runs at `count`: a run of 100,000 records is under a second, and
    one run's figure there moves by a fifth between runs (the dict diff 0.25-0.32 s), so the
    smaller sizes take the median of several, alternated; the larger ones run once."""
    return int(os.environ.get("BENCH_PLANNER_RUNS", "5")) if count <= MEDIAN_UP_TO else 1


def _median(runs: list[Measured]) -> Measured:
    """The run of median time, with the highest peak memory of them all (the bound holds for
    every run, not a typical one)."""
    middle = sorted(runs, key=lambda measured: measured.seconds)[len(runs) // 2]
    return replace(middle, peak_mib=max(measured.peak_mib for measured in runs))


def run(sizes: tuple[int, ...] = SIZES) -> list[PlannerFigure]:
    figures = []
    for count in sizes:
        made: list[Measured] = []
        ours_runs: list[Measured] = []
        raw_runs: list[Measured] = []
        for _ in range(runs_at(count)):
            made.append(measure("generate", count))
            ours_runs.append(measure("ours", count))
            if count <= BASELINE_LIMIT:
                raw_runs.append(measure("raw", count))
        generated, planned = _median(made), _median(ours_runs)
        baseline = _median(raw_runs) if raw_runs else None
        if baseline is not None:
            ours_counts = planned.result["counts"]
            assert all(ours_counts[a] == baseline.result["counts"][a] for a in ("create", "update"))
        figure = PlannerFigure(
            count,
            planned.seconds,
            planned.peak_mib,
            baseline.seconds if baseline else None,
            baseline.peak_mib if baseline else None,
            generated.seconds,
        )
        print(figure.line(), flush=True)
        figures.append(figure)
    return figures


async def main(sizes: tuple[int, ...] = SIZES) -> list[PlannerFigure]:
    return run(sizes)


def save_figures(path: Path, figures: list[PlannerFigure], seconds: float) -> None:
    """The figures of a run made before the servers start, for `python -m bench` to report."""
    path.write_text(json.dumps({"seconds": seconds, "figures": [asdict(f) for f in figures]}))


def load_figures(path: Path) -> tuple[list[PlannerFigure], float]:
    saved = json.loads(path.read_text())
    return [PlannerFigure(**figure) for figure in saved["figures"]], float(saved["seconds"])


def sizes_from_environment() -> tuple[int, ...]:
    """BENCH_PLANNER_SIZES (comma separated), else every size."""
    chosen = os.environ.get("BENCH_PLANNER_SIZES")
    return tuple(int(size) for size in chosen.split(",")) if chosen else SIZES


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        _one(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--figures"]:
        # scripts/bench.sh: BENCH_PLANNER_SIZES' sizes, the figures saved for `python -m bench`.
        started = time.perf_counter()
        figures = run(sizes_from_environment())
        save_figures(Path(sys.argv[2]), figures, time.perf_counter() - started)
    else:
        run(tuple(int(n) for n in sys.argv[1:]) or SIZES)
