"""The benchmarks' own arithmetic and data: a p95 that is a sample, a goal judged the right way
round, and read-model documents the store and the API would take as their own."""

from datetime import UTC, datetime

from job_api.domain.job_instance import JobInstance
from job_api.views import JobInstanceQuery
from provisioning_common.statuses import JobStatus

from bench import bench_listing, bench_planner
from bench.bench_listing import job_instance
from bench.bench_plan_apply import CHANGED, person
from bench.bench_planner import Measured
from bench.timing import percentile, report_goal

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_percentiles_are_nearest_rank_samples() -> None:
    samples = [0.5, 0.1, 0.3, 0.2, 0.4]
    assert percentile(samples, 0.5) == 0.3
    assert percentile(samples, 0.95) == 0.5  # with five samples p95 is the worst
    assert percentile([float(i) for i in range(1, 201)], 0.99) == 198.0


def test_a_ratio_goal_is_an_upper_bound_and_a_speed_goal_a_lower_one() -> None:
    assert report_goal("within", 1.1, 1.0, "raw", goal=1.2).endswith("goal ≤ 1.2 (yes)")
    assert report_goal("above", 1.3, 1.0, "raw", goal=1.2).endswith("goal ≤ 1.2 (NO)")
    slow = report_goal("slow", 4.0, 1.0, "raw", goal=0.5, speed=True)
    assert "speed  0.25x" in slow
    assert slow.endswith("goal ≥ 0.5 (NO)")
    assert report_goal("fast", 1.5, 1.0, "raw", goal=0.5, speed=True).endswith("(yes)")


def test_the_listing_documents_are_the_read_models_own() -> None:
    docs = [job_instance(i, START) for i in range(1_000)]
    for doc in docs[:50]:
        assert JobInstance.from_document(doc).to_document() == doc
    failed = JobInstanceQuery(statuses=(JobStatus.FAILED,)).mongo_filter()
    matching = [d for d in docs if d["status"] == "FAILED" and not d["archived"]]
    assert failed["status"] == {"$in": ["FAILED"]}
    assert 40 <= len(matching) <= 60  # the filtered listing reads about 5%
    assert len({d["_id"] for d in docs}) == len(docs)


def test_the_second_plan_apply_run_changes_one_record_in_ten() -> None:
    changed = [i for i in range(1_000) if person(i, True) != person(i, False)]
    assert changed == list(range(0, 1_000, CHANGED))


def test_the_planner_figure_is_the_median_run_with_the_highest_peak() -> None:
    runs = [
        Measured(0.9, 150.0, {}),
        Measured(0.5, 170.0, {}),
        Measured(0.6, 140.0, {}),
    ]
    figure = bench_planner._median(runs)
    # The median time (a slow outlier does not move it), but the memory bound is held against
    # every run's peak.
    assert (figure.seconds, figure.peak_mib) == (0.6, 170.0)


def test_a_listing_request_secantusdb_cannot_hold_in_memory_is_not_sent() -> None:
    gib = 2**30
    # The raw first page at 1,000,000 job instances: ~19 GiB held, on the 24 GiB machine.
    reason = bench_listing.unaffordable(980_000, 22 * gib)
    assert reason is not None
    assert "980,000 documents" in reason
    assert "22 GiB free" in reason
    # The filtered pages (50,000 jobs) and the API's windows fit.
    assert bench_listing.unaffordable(50_000, 22 * gib) is None
    assert bench_listing.unaffordable(bench_listing.WINDOW_HOLDS, 22 * gib) is None
