"""The digest of a plan's changes: what an approval covers."""

from datetime import UTC, date, datetime

from provisioning_common.events import Approval
from sequence_runner.domain.plan_digest import PlanDigester, approval_covers, plan_digest
from sequence_runner.domain.records import PlannedChange


def create(seq: int, key: str | int, **after: object) -> PlannedChange:
    return PlannedChange(seq=seq, action="create", key=key, before=None, after=dict(after))


def approval(digest: str | None) -> Approval:
    return Approval(
        create=2,
        update=0,
        delete=0,
        validated_by="alice",
        validated_at=datetime(2026, 3, 1, tzinfo=UTC),
        plan_id="p1",
        digest=digest,
    )


def test_the_same_changes_in_another_order_have_the_same_digest() -> None:
    one = [create(0, "a", uid="a", mail="a@x"), create(1, "b", uid="b")]
    other = [create(0, "b", uid="b"), create(1, "a", mail="a@x", uid="a")]
    assert plan_digest(one) == plan_digest(other)
    assert plan_digest(one).startswith("sha256:")


def test_another_record_value_action_or_value_type_changes_the_digest() -> None:
    base = plan_digest([create(0, "a", uid="a", n=1)])
    assert plan_digest([create(0, "c", uid="c", n=1)]) != base
    assert plan_digest([create(0, "a", uid="a", n=2)]) != base
    assert plan_digest([create(0, "a", uid="a", n="1")]) != base
    assert plan_digest([create(0, "a", uid="a", n=True)]) != base
    update = PlannedChange(seq=0, action="update", key="a", before={}, after={"uid": "a", "n": 1})
    assert plan_digest([update]) != base
    assert plan_digest([]) != base


def test_an_approval_covers_only_the_plan_with_its_digest() -> None:
    digest = plan_digest([create(0, "a", uid="a")])
    assert approval_covers(approval(digest), digest)
    assert not approval_covers(approval(digest), plan_digest([create(0, "b", uid="b")]))
    assert not approval_covers(approval(None), digest)  # given before digests were recorded
    assert not approval_covers(None, digest)
    assert not approval_covers(approval(digest), None)


def test_the_digest_of_a_plan_is_the_one_recorded_by_earlier_versions() -> None:
    # An approval stored before the digest was made faster must still cover its plan: the
    # digest of these changes was computed by the first version of plan_digest.
    changes = [
        create(
            0, "a", uid="a", n=1, f=1.5, b=True, z=None, l=[1, "é", {"x": float("nan")}], d={"y": 2}
        ),
        PlannedChange(
            seq=1,
            action="update",
            key=7,
            before={"n": 0},
            after={"uid": 7, "when": date(2026, 1, 2), "s": '\u2028"q\\'},
        ),
        PlannedChange(seq=2, action="delete", key="x", before={"uid": "x"}, after=None),
    ]
    assert plan_digest(changes) == (
        "sha256:03ef6c7b150e264b277fe0341fedaa8a5fa03dc9a7ebc23d5101baf342b81d2a"
    )


def test_changes_given_by_their_written_names_digest_as_the_changes_themselves() -> None:
    # The template made from the names quotes text as the JSON encoder does (quotes, escapes,
    # non-ASCII, a '%'), and gives the rest (a null, a number, an integer key, another
    # attribute) to the encoder.
    names = ("uid", "mail", "100%", "é")
    texts = ['a"b', "c\\d\n", "%s %d", "naïve ☃", "\x00\x1f", ""]
    groups: list[tuple[list[str | int], list[dict[str, object] | None]]] = [
        (
            [f"k{i}" for i in range(6)],
            [dict(zip(names, (texts[i:] + texts[:i])[:4], strict=True)) for i in range(6)],
        ),
        (["a", "b"], [dict(zip(names, ("a", None, "x", "y"), strict=True)), {"uid": "z"}]),
        (["a", 7], [dict.fromkeys(names, "v"), dict.fromkeys(names, "w")]),
        (["a"], [{"uid": "a", "mail": "m", "100%": "x", "other": "y"}]),
        (["a", "b"], [dict.fromkeys(names, 1), dict.fromkeys(names, "t")]),
        (["gone", 'q"uote'], [None, None]),
        ([], []),
    ]
    for action in ("create", "update", "delete"):
        for keys, afters in groups:
            given = PlanDigester()
            given.add_written(action, keys, afters, names)
            changes = [
                PlannedChange(seq=i, action=action, key=k, before=None, after=after)
                for i, (k, after) in enumerate(zip(keys, afters, strict=True))
            ]
            assert given.digest() == plan_digest(changes), (action, keys)
            # Without names (a directory's records): the first after's names are tried.
            unnamed = PlanDigester()
            unnamed.add_written(action, keys, afters)
            assert unnamed.digest() == plan_digest(changes), (action, keys)
