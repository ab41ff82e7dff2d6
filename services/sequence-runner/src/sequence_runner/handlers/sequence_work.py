"""Planning and applying one sequence: read source and target, store the plan, write it."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import partial
from typing import Any, Literal, TypeVar
from uuid import uuid4

from provisioning_common.definitions import SequenceDefinition
from provisioning_common.events import AppliedCounts
from provisioning_common.statuses import JobStatus, SequenceStatus

from sequence_runner.adapters.connectors.base import (
    ConnectorError,
    DescribedTarget,
    LocatingTarget,
    PiecedSource,
    PiecedTarget,
    SourceConnector,
    TargetConnector,
)
from sequence_runner.domain.plan_digest import PlanDigester
from sequence_runner.domain.planner import StreamedPlanner
from sequence_runner.domain.records import PlanError, SourceEntry
from sequence_runner.domain.run import Run
from sequence_runner.domain.transitions import (
    Moved,
    on_applied,
    on_batch_written,
    on_failed,
    on_planned,
)
from sequence_runner.handlers.engine_options import EngineOptions
from sequence_runner.handlers.ports import (
    Connectors,
    PlanRepository,
    RevertConflicts,
    StoredPlan,
    TargetClaims,
)
from sequence_runner.handlers.progress import ProgressReporter
from sequence_runner.handlers.revert_work import RevertWork
from sequence_runner.handlers.run_store import RunStore

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Records handed to the planner's thread at a time.
PLAN_PIECE = 5000
# Changes written per batch (one bulk write, one SQL transaction, one LDAP pipeline), unless
# the options or the target (`apply_batch_size`) say otherwise. Each batch is also one recorded
# step of the run in MongoDB (how far the apply got, whether it is still this runner's): at 500
# those steps took a third as long as the writes themselves (make bench, 100,000 records).
DEFAULT_APPLY_BATCH = 2000


class TargetBusyError(RuntimeError):
    """Another job plans or writes the target: this one waits its turn, it has not failed."""


def target_identity(definition: SequenceDefinition) -> str:
    """The target repository a sequence writes, as its definition names it."""
    return definition.target.model_dump_json()


class SequenceWork:
    """The work a run in phase `planning` or `applying` asks for, done once per call."""

    def __init__(
        self,
        store: RunStore,
        plans: PlanRepository,
        connectors: Connectors,
        options: EngineOptions,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        claims: TargetClaims | None = None,
        conflicts: RevertConflicts | None = None,
    ) -> None:
        self.reverts = RevertWork(store, connectors, options, clock, conflicts)
        self.store = store
        self.plans = plans
        self.connectors = connectors
        self.options = options
        self.claims = claims
        self._now = clock
        self._monotonic = monotonic
        # Wraps the read-only part of planning; the scheduler keeps it through a rebalance
        # (WorkScheduler.reading_only). Alone, nothing to hold.
        self.reading_only: Callable[[str], AbstractAsyncContextManager[None]] = lambda _: (
            contextlib.nullcontext()
        )

    async def fail(self, run: Run, index: int, reason: str) -> None:
        logger.warning("sequence %s failed: %s", index, reason)
        await self.store.step(
            run.job_id, lambda current: on_failed(current, index, run.attempt, reason, self._now())
        )
        await self._release_target(run, index)

    async def _claim_target(self, run: Run, index: int) -> None:
        """Hold the target from planning until the plan is written (or blocked, or failed):
        a plan computed while another job changes the target would be checked against a
        target that is no longer there when it is written."""
        if self.claims is None:
            return
        target = target_identity(run.sequence_definition(index))
        holder = await self.claims.claim(target, run.job_id)
        if holder is not None and not await self._works_on(holder, target):
            # Its job moved on (blocked, failed, canceled, or its runner crashed) without giving
            # the target up: the claim is stale.
            await self.claims.release(target, holder)
            holder = await self.claims.claim(target, run.job_id)
        if holder is not None:
            raise TargetBusyError(f"job {holder} is planning or writing the same target")

    async def _works_on(self, job_id: str, target: str) -> bool:
        stored = await self.store.load(job_id)
        if stored is None or stored.run.status is not JobStatus.RUNNING:
            return False
        return any(
            sequence.status is SequenceStatus.RUNNING
            and target_identity(stored.run.sequence_definition(sequence.index)) == target
            for sequence in stored.run.sequences
        )

    async def _release_target(self, run: Run, index: int) -> None:
        if self.claims is not None:
            await self.claims.release(target_identity(run.sequence_definition(index)), run.job_id)

    async def plan(self, run: Run, index: int) -> None:
        await self._claim_target(run, index)
        if run.reverts is not None:
            # A revert job reads no source: it plans the inverse of an applied plan.
            progress = self._progress(run.job_id, index, "planning")
            await self.reverts.plan(run, index, self.plans, progress, self.fail)
            return
        definition = run.sequence_definition(index)
        progress = self._progress(run.job_id, index, "planning")
        planner: StreamedPlanner | None = None
        try:
            try:
                # Nothing is written until the plan is computed: that much is kept through a
                # rebalance that leaves the job here, and what follows waits for its end.
                async with self.reading_only(run.job_id):
                    source = self.connectors.source(definition, run.inputs.get(definition.name))
                    target = self.connectors.target(definition)
                    # A target that places the changes (a directory's DN) has them digested as
                    # it places them; the planner then makes no digest of its own.
                    locate = target.locate if isinstance(target, LocatingTarget) else None
                    # Both sides are read as streams and handed to the planner in pieces: beyond
                    # its bound it sets them aside on local disk, so a million records plan in
                    # bounded memory.
                    planner = StreamedPlanner(
                        definition.key,
                        definition.mapping,
                        definition.delete_missing,
                        source.shown_as,
                        target.rules,
                        self.options.plan_bound,
                        check_free_ids=True,
                        digests=locate is None,
                    )
                    if isinstance(target, DescribedTarget):
                        await target.describe()
                    # Seconds of CPU for a large source: piece by piece in a thread, so the
                    # consumers keep their heartbeats and the other jobs keep moving. The target
                    # is not prepared here: preparing creates the collection and its index, a
                    # write that a plan about to be blocked must not make. The apply prepares it.
                    sources = _source_pieces(source, progress)
                    targets = _target_pieces(target)
                    if isinstance(source, PiecedSource):
                        # A file: parsed while the target's server answers (make bench).
                        await _read_together(planner, sources, targets)
                    else:
                        # A source on a server, maybe the target's own connection: one side
                        # after the other, as the connection's pool may hold one reader.
                        async for piece in sources:
                            await asyncio.to_thread(planner.add_source, piece)
                        async for target_piece in targets:
                            await asyncio.to_thread(planner.add_target, target_piece)
                    result = await asyncio.to_thread(planner.finish)
            except (ConnectorError, PlanError) as error:
                await self.fail(run, index, str(error))
                return
            await progress.finish(planner.records_read, planner.records_read)
            plan_id = str(uuid4())
            # The planner digested the changes as it made them. A target that places them (a
            # directory's DN, part of what the operator approves) has its placed changes
            # digested in the one pass that places and stores them.
            digest = await self.plans.save(
                StoredPlan(
                    plan_id=plan_id,
                    job_id=run.job_id,
                    index=index,
                    attempt=run.attempt,
                    counts=result.counts,
                    created_at=self._now(),
                    digest=result.digest if locate is None else None,
                ),
                result.changes() if locate is None else map(locate, result.changes()),
                None if locate is None else PlanDigester(),
            )
        finally:
            if planner is not None:
                planner.close()
        outcome = await self.store.step(
            run.job_id,
            lambda current: on_planned(
                current, index, run.attempt, plan_id, result.counts, self._now(), digest
            ),
        )
        if not isinstance(outcome, Moved):
            # The run moved on while we planned (a restart, another runner): nobody needs it.
            await self.plans.delete(plan_id)
        else:
            logger.info("sequence %s planned: %s", index, result.counts.model_dump())
            # The plans this one replaces (a restart plans again) go once it is the
            # sequence's plan, not before, so there is always a plan to look at. Nothing reads
            # a plan no sequence points to (the API pages the current plan, an approval keeps
            # its digest): its copies of the records go now, not with the job months later. A
            # crash before this leaves them to the job's deletion.
            await self.plans.delete_superseded(run.job_id, index, plan_id)

    async def apply(self, run: Run, index: int) -> None:
        if run.dry_run:
            # The transitions never lead a dry run here; this is the write site's own promise.
            await self.fail(run, index, "a dry run is planned only: its plans are never applied")
            return
        sequence = run.sequence(index)
        plan_id, planned = sequence.plan_id, sequence.planned
        assert plan_id is not None
        assert planned is not None
        total = planned.changes
        progress = self._progress(run.job_id, index, "applying")
        # Taken up again after a crash: what was recorded as written is not written again.
        done = sequence.written or 0
        try:
            target = self.connectors.target(run.sequence_definition(index))
            await target.prepare()
            size = self.options.apply_batch_size
            if size is None:
                size = int(getattr(target, "apply_batch_size", DEFAULT_APPLY_BATCH))
            # Whether the run is still ours to apply is read before the first batch; after it,
            # the recording of each batch (`on_batch_written`, the same test of the stored run)
            # answers it for the next one, without another read per batch.
            confirmed = False
            # The next batch is read from the plan store while this one is written: the two
            # round trips overlap (a read only; what is written is still checked batch by batch).
            reading = _read_ahead(self.plans.changes(plan_id, size, start=done))
            async with contextlib.aclosing(reading) as batches:
                async for batch in batches:
                    # Read back in order, each change once, no more than were checked.
                    seqs = [change.seq for change in batch]
                    if seqs != list(range(done, done + len(batch))) or done + len(batch) > total:
                        await self.fail(
                            run,
                            index,
                            f"the stored plan {plan_id} is not the plan that was checked ({total} "
                            f"changes): read back, changes {done} to {done + len(batch) - 1} are "
                            f"seq {_span(seqs)}",
                        )
                        return
                    if not confirmed and not await self._still_applying(run.job_id, index, plan_id):
                        # Another runner process took the job over and moved it on; writing the
                        # rest of this plan now could overwrite what it has written since.
                        logger.warning(
                            "plan %s of sequence %s is no longer applied here", plan_id, index
                        )
                        return
                    confirmed = True
                    await target.apply(batch)
                    done += len(batch)
                    if done < total:
                        # The last batch is recorded with the sequence's completion, in one write.
                        recorded = await self.store.step(
                            run.job_id,
                            partial(on_batch_written, index=index, plan_id=plan_id, written=done),
                        )
                        if not isinstance(recorded, Moved):
                            logger.warning(
                                "plan %s of sequence %s is no longer applied here", plan_id, index
                            )
                            return
                    await progress.tick(done, total)
        except ConnectorError as error:
            await self.fail(run, index, str(error))
            return
        if done != total:
            await self.fail(
                run, index, f"the stored plan {plan_id} holds {done} changes, {total} were planned"
            )
            return
        await progress.finish(done, total)
        applied = AppliedCounts(
            create=planned.create,
            update=planned.update,
            delete=planned.delete,
            disable=planned.disable,
        )
        await self.store.step(
            run.job_id,
            lambda current: on_applied(current, index, plan_id, done, applied, self._now()),
        )
        await self._release_target(run, index)
        logger.info("sequence %s applied: %s", index, applied.model_dump())

    async def _still_applying(self, job_id: str, index: int, plan_id: str) -> bool:
        stored = await self.store.load(job_id)
        return stored is not None and stored.run.is_applying(index, plan_id)

    def _progress(
        self, job_id: str, index: int, phase: Literal["planning", "applying"]
    ) -> ProgressReporter:
        return ProgressReporter(
            self.store.publisher,
            job_id=job_id,
            index=index,
            phase=phase,
            interval_seconds=self.options.progress_interval_seconds,
            monotonic=self._monotonic,
        )


async def _read_together(
    planner: StreamedPlanner,
    sources: AsyncGenerator[list[SourceEntry], None],
    targets: AsyncGenerator[list[dict[str, Any]], None],
) -> None:
    """Both sides read at the same time, the planner fed by one at a time. The source's error
    comes first, as when they are read in turn; the target's reading then stops."""
    turn = asyncio.Lock()

    async def feed(pieces: AsyncGenerator[list[Any], None], add: Callable[[Any], None]) -> None:
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                async with turn:
                    await _to_thread_to_the_end(add, piece)

    target_side = asyncio.create_task(feed(targets, planner.add_target))
    try:
        await feed(sources, planner.add_source)
    except BaseException:
        target_side.cancel()
        await asyncio.wait([target_side])
        if not target_side.cancelled():
            target_side.exception()  # the source's error is the one told
        raise
    await target_side


async def _to_thread_to_the_end(function: Callable[[Any], None], argument: Any) -> None:
    """`function(argument)` in a worker thread; when cancelled, the thread is waited for before
    the cancel goes on (the planner is closed after, never under a thread still in it)."""
    running = asyncio.ensure_future(asyncio.to_thread(function, argument))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise


async def _source_pieces(
    source: SourceConnector, progress: ProgressReporter
) -> AsyncGenerator[list[SourceEntry], None]:
    """The source's records in pieces for the planner, with the progress of the reading: a
    list at a time where the source reads them so (a file), without a step per record here,
    else record by record."""
    read = 0
    piece: list[SourceEntry] = []
    if isinstance(source, PiecedSource):
        async for more in source.read_pieces():
            piece += more
            read += len(more)
            await progress.tick(read)
            if len(piece) >= PLAN_PIECE:
                yield piece
                piece = []
    else:
        async for record in source.read():
            piece.append(record)
            read += 1
            await progress.tick(read)
            if len(piece) >= PLAN_PIECE:
                yield piece
                piece = []
    if piece:
        yield piece


def _target_pieces(target: TargetConnector) -> AsyncGenerator[list[dict[str, Any]], None]:
    if isinstance(target, PiecedTarget):
        return _joined(target.read_pieces())
    return _pieces(target.read_all())


async def _joined(
    lists: AsyncIterator[list[T]], size: int = PLAN_PIECE
) -> AsyncGenerator[list[T], None]:
    """Lists joined into pieces of at least `size` (the last one maybe less)."""
    piece: list[T] = []
    async for more in lists:
        piece += more
        if len(piece) >= size:
            yield piece
            piece = []
    if piece:
        yield piece


async def _pieces(
    records: AsyncIterator[T], size: int = PLAN_PIECE
) -> AsyncGenerator[list[T], None]:
    """A stream of records in lists of `size`, the unit handed to the planner's thread."""
    piece: list[T] = []
    async for record in records:
        piece.append(record)
        if len(piece) >= size:
            yield piece
            piece = []
    if piece:
        yield piece


async def _read_ahead(items: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """`items`, each yielded while the next is already being read."""
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(items))
    try:
        while True:
            try:
                item = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(items))
            yield item
    finally:
        # The read in flight, if any, is stopped and waited for; what it ended with is not
        # ours to raise here (the apply stopped for its own reason) nor to log as lost.
        if not pending.done():
            pending.cancel()
        await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


def _span(seqs: list[int]) -> str:
    shown = ", ".join(str(seq) for seq in seqs[:5])
    return f"{shown}, …" if len(seqs) > 5 else shown
