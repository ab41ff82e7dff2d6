"""docs/performance.md from one `make bench` run: the machine, every figure, how each grows with
size, and plots."""

import itertools
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

from bench.bench_planner import MEMORY_GOAL_MIB, SPEED_GOAL, PlannerFigure

DOCS = Path(__file__).resolve().parent.parent / "docs"
PLOTS = DOCS / "performance"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kib / 1024 / 1024:.1f} GiB of memory"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {load:.1f} when written"
    )


def _plot_planner(figures: list[PlannerFigure]) -> list[str]:
    PLOTS.mkdir(parents=True, exist_ok=True)
    sizes = [f.count for f in figures]
    timed = [(f.count, f.raw_seconds - f.generate_seconds) for f in figures if f.raw_seconds]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(sizes, [f.ours_seconds - f.generate_seconds for f in figures], "o-", label="planner")
    if timed:
        ax.loglog(*zip(*timed, strict=True), "s--", label="bare dict diff")
    ax.set_xlabel("source records")
    ax.set_ylabel("CPU seconds")
    ax.set_title("Planning time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOTS / "planner_time.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(sizes, [f.ours_peak_mib for f in figures], "o-", label="planner (streamed)")
    peaks = [(f.count, f.raw_peak_mib) for f in figures if f.raw_peak_mib]
    if peaks:
        ax.semilogx(*zip(*peaks, strict=True), "s--", label="bare dict diff (both sides held)")
    ax.axhline(MEMORY_GOAL_MIB, color="red", linestyle=":", label=f"goal {MEMORY_GOAL_MIB} MiB")
    ax.set_xlabel("source records")
    ax.set_ylabel("peak resident MiB")
    ax.set_title("Peak memory while planning")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOTS / "planner_memory.png", dpi=100)
    plt.close(fig)
    return ["performance/planner_time.png", "performance/planner_memory.png"]


def _durations(durations: list[tuple[str, float]]) -> list[str]:
    if not durations:
        return []
    rows = [f"| {name} | {seconds:.0f} |" for name, seconds in durations]
    total = sum(seconds for _, seconds in durations)
    return [
        "## How long each benchmark took",
        "",
        "Wall time in this run (`BENCH_ONLY=<name>` runs one), to budget `make bench`:",
        "",
        "| benchmark | seconds |",
        "| --- | ---: |",
        *rows,
        f"| all of them | {total:.0f} |",
        "",
    ]


def _growth(figures: list[PlannerFigure]) -> list[str]:
    lines = []
    for smaller, larger in itertools.pairwise(figures):
        factor = larger.count / smaller.count
        ours = (larger.ours_seconds - larger.generate_seconds) / max(
            smaller.ours_seconds - smaller.generate_seconds, 1e-9
        )
        memory = larger.ours_peak_mib / max(smaller.ours_peak_mib, 1e-9)
        lines.append(
            f"- {smaller.count:,} → {larger.count:,} records (x{factor:.0f}): planning time "
            f"x{ours:.1f}, peak memory x{memory:.2f}"
        )
    return lines


@dataclass(frozen=True)
class Section:
    """A benchmark's own part of the page: what it measures (fixed text), then what this run
    found besides its lines (load costs, query plans)."""

    title: str
    about: list[str]
    notes: list[str]

    def markdown(self) -> list[str]:
        return [f"## {self.title}", "", *self.about, "", "This run:", "", *self.notes, ""]


def write(
    figures: list[PlannerFigure],
    other_lines: list[str],
    sections: list[Section] | None = None,
    durations: list[tuple[str, float]] | None = None,
) -> Path:
    plots = _plot_planner(figures) if figures else []
    rows = []
    for f in figures:
        ours = f.ours_seconds - f.generate_seconds
        raw = (
            "not run (would not fit)"
            if f.raw_seconds is None
            else f"{f.raw_seconds - f.generate_seconds:.2f}"
        )
        speed = "-" if f.speed is None else f"{f.speed:.2f}"
        raw_peak = "-" if f.raw_peak_mib is None else f"{f.raw_peak_mib:.0f}"
        memory_ok = "yes" if f.ours_peak_mib <= MEMORY_GOAL_MIB else "**no**"
        speed_ok = "-" if f.speed is None else ("yes" if f.speed >= SPEED_GOAL else "**no**")
        rows.append(
            f"| {f.count:,} | {ours:.2f} | {raw} | {speed} ({speed_ok}) | "
            f"{f.ours_peak_mib:.0f} ({memory_ok}) | {raw_peak} |"
        )
    text = [
        "# Performance",
        "",
        "Written by `make bench` (`scripts/bench.sh`); do not edit by hand, run it again. "
        "The notes on what the figures mean and what remains are in "
        "[engine.md](engine.md#planning-in-bounded-memory).",
        "",
        f"- Written: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- MongoDB server: `{os.environ.get('MONGO_URI', 'none')}` "
        "(SecantusDB unless it names a real mongod)",
        "",
        "## Planner",
        "",
        "Source records against a target of 90% of them: 10% creations, 10% updates, 5% "
        "deletions. Each side runs in a fresh interpreter: *CPU seconds* (user + system, so a "
        "neighbour's load on the shared machine is not counted) with the making of the data "
        "taken off both, and the process's *peak resident memory* (`VmHWM`). `make bench` runs "
        "the planner before it starts any server. Both sides freeze what their imports made "
        "out of the cyclic collector's reach first, as the runner does once started. Up to "
        "100,000 records each figure is the median of 5 fresh interpreters (`BENCH_PLANNER_RUNS`), "
        "each running the work once untimed and then 3 times (the median counts), with the "
        "highest peak of them; above, one run each. The planner "
        "pauses the cyclic garbage collector while it works, and makes its collections rarer "
        "from its first piece until it is closed, as in the runner; the dict diff runs as "
        "plain Python does. The planner plans as the runner does: both sides "
        "handed to `StreamedPlanner` (its default bound) in lists of 5,000 records, the plan "
        "digested as it is made and read back once as it would be stored. The "
        "baseline holds both sides as dicts of tuples and compares them; it is run up to "
        "1,000,000 records.",
        "",
        f"Goals: speed ≥ {SPEED_GOAL} of the dict diff's, peak ≤ {MEMORY_GOAL_MIB} MiB.",
        "",
        "| source records | planner s | dict diff s | speed of dict diff (goal) | "
        "planner peak MiB (goal) | dict diff peak MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "How it grows:",
        "",
        *_growth(figures),
        "",
        *[f"![{Path(p).stem}]({p})" for p in plots],
        "",
        "## Every benchmark line of this run",
        "",
        "```",
        *(f.line() for f in figures),
        *other_lines,
        "```",
        "",
        *(line for section in sections or [] for line in section.markdown()),
        *_durations(durations or []),
    ]
    if not figures:  # the planner was not run (BENCH_ONLY): no empty section for it
        del text[text.index("## Planner") : text.index("## Every benchmark line of this run")]
    path = DOCS / "performance.md"
    path.write_text("\n".join(text))
    return path
