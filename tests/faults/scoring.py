"""How a fault scenario is scored: the jobs accepted against the states they ended in, the
completions the topic holds against one per sequence, the target against the records
expected, each into the scenario's figures before anything is asserted."""

from collections import defaultdict

from provisioning_common.events import JobCompleted, SequenceCompleted

from tests.faults.conftest import Figures
from tests.support.stack import Stack


def settle(
    stack: Stack, expected: dict[str, str], figures: Figures, timeout: float = 120.0
) -> dict[str, str]:
    """Wait for every accepted job to settle; a job that settles in another state than
    `expected`, or never, is counted lost. Returns the statuses the API shows."""
    figures.jobs += len(expected)
    try:
        statuses = stack.wait_settled(list(expected), timeout=timeout)
    except AssertionError as error:
        figures.notes.append(str(error)[:500])
        statuses = {}
        for job_id in expected:
            runner, shown = stack.status_pair(job_id)
            statuses[job_id] = str(shown) if runner == shown else f"runner {runner}, API {shown}"
    wrong = {j: s for j, s in statuses.items() if s != expected[j]}
    figures.jobs_lost += len(wrong)
    if wrong:
        figures.notes.append(f"jobs not in their expected state: {wrong}"[:500])
    return statuses


def count_applied_twice(stack: Stack, job_ids: list[str], figures: Figures) -> int:
    """Sequences completed, or jobs completed, by more than one distinct event: a sequence
    whose apply was finished twice (a replayed event keeps its id and is not counted)."""
    wanted = set(job_ids)
    sequences: dict[tuple[str, int], set[str]] = defaultdict(set)
    jobs: dict[str, set[str]] = defaultdict(set)
    for event in stack.events():
        if event.subject not in wanted:
            continue
        if isinstance(event, SequenceCompleted):
            sequences[(event.subject, event.data.index)].add(event.id)
        elif isinstance(event, JobCompleted):
            jobs[event.subject].add(event.id)
    twice = sum(len(ids) - 1 for ids in sequences.values())
    twice += sum(len(ids) - 1 for ids in jobs.values())
    figures.applied_twice += twice
    return twice


def count_target(stack: Stack, collection: str, expected: int, figures: Figures) -> int:
    """Records in the target collection, counted in MongoDB; more than expected is a change
    applied twice in effect, fewer a change lost (the job is then counted lost)."""
    found = stack.count(collection)
    figures.records += expected
    if found > expected:
        figures.applied_twice += found - expected
    if found != expected:
        figures.notes.append(f"{collection}: {found} records, {expected} expected")
    return found


def count_blocked_writes(stack: Stack, collection: str, figures: Figures) -> int:
    """Records in the collection of a sequence that stopped at its threshold: must be none."""
    found = stack.count(collection)
    figures.writes_while_blocked += found
    return found


def count_stalled(stack: Stack, figures: Figures, timeout: float = 30.0) -> dict[str, list[str]]:
    behind = stack.stalled_partitions(timeout=timeout)
    figures.partitions_stalled += sum(len(p) for p in behind.values())
    if behind:
        figures.notes.append(f"partitions not consumed to the end: {behind}"[:500])
    return behind
