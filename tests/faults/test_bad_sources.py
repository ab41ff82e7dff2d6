"""Source files as they come from the field: malformed rows, wrong encodings, duplicate and
missing keys. Each such job fails with a reason that names the line, writes nothing, and
leaves the runner free for the next job; a well-formed file next to them loads exactly."""

import json
import uuid
from typing import Any

import pytest

from tests.faults.conftest import Figures
from tests.faults.scoring import count_applied_twice, count_stalled, count_target, settle
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

# A key of 1.2 MB, duplicated: the failure reason must not quote it whole (issue 8, defect 4).
HUGE_KEY = "k" * 1_200_000

# name: (file name, content, what the failure reason must say)
BAD_SOURCES: dict[str, tuple[str, bytes, str]] = {
    "csv row with a missing field": (
        "people.csv",
        b"uid,mail\nu1,u1@x\nu2,u2@x\nu3\nu4,u4@x\n",
        "line 4: expected 2 fields, found 1",
    ),
    "csv row with an unterminated quote": (
        "people.csv",
        b'uid,mail\nu1,u1@x\nu2,"u2@x\n',
        "line 3",
    ),
    "csv in Latin-1": (
        "people.csv",
        "uid,cn\nu1,Ren\u00e9e\n".encode("latin-1"),
        "not UTF-8",
    ),
    "csv in UTF-16": ("people.csv", "uid,cn\nu1,Ann\n".encode("utf-16"), "UTF-8"),
    "empty csv": ("people.csv", b"", "header row"),
    "csv with a duplicate key": (
        "people.csv",
        b"uid,mail\nu1,a@x\nu2,b@x\nu3,c@x\nu1,d@x\n",
        "duplicate key uid='u1' at lines 2 and 5",
    ),
    "csv with an empty key": (
        "people.csv",
        b"uid,mail\nu1,a@x\n,b@x\n",
        "line 3: the key attribute 'uid' is missing or empty",
    ),
    "csv without the key column": (
        "people.csv",
        b"mail\na@x\n",
        "line 2: the key attribute 'uid' is missing or empty",
    ),
    "jsonl with invalid JSON": (
        "people.jsonl",
        b'{"uid": "u1"}\n{"uid": "u2"}\n{"uid": \n',
        "line 3",
    ),
    "jsonl line that is not an object": (
        "people.jsonl",
        b'{"uid": "u1"}\n[1, 2]\n',
        "line 2",
    ),
    "jsonl with a key that is not a string": (
        "people.jsonl",
        b'{"uid": "u1"}\n{"uid": {"$ne": null}}\n',
        "line 2: the key attribute 'uid' must be a string or an integer",
    ),
    "jsonl with a duplicated 1.2 MB key": (
        "people.jsonl",
        (json.dumps({"uid": HUGE_KEY}) + "\n" + json.dumps({"uid": HUGE_KEY}) + "\n").encode(),
        "duplicate key uid=",
    ),
}

# Longest reason a failure may carry: enough to name the line and the value's start.
REASON_LIMIT = 4096


def definition(name: str, path: str) -> dict[str, Any]:
    kind = "jsonl" if path.endswith(".jsonl") else "csv"
    return {
        "id": name,
        "name": name,
        "sequences": [
            {
                "name": "people",
                "source": {"type": kind, "path": path},
                "target": {"type": "mongo", "collection": name},
                "key": "uid",
                "thresholds": {"create": {"count": 100}},
            }
        ],
    }


def test_bad_source_files(own_stack: Stack, figures: Figures) -> None:
    """Source files with malformed rows, wrong encodings, duplicate, missing and huge keys"""
    stack = own_stack
    run = uuid.uuid4().hex[:8]
    jobs: dict[str, tuple[str, str, str]] = {}
    for number, (case, (file_name, content, says)) in enumerate(BAD_SOURCES.items()):
        name = f"bad-{run}-{number}"
        path = stack.write_source(f"{name}/{file_name}", content)
        stack.define(definition(name, path))
        jobs[stack.submit(name)] = (case, name, says)
    # A good file among them: a byte-order mark, quoted commas and a quoted line break.
    good = f"good-{run}"
    path = stack.write_source(
        f"{good}/people.csv",
        '\ufeffuid,cn,note\nu1,"Doe, Jane","two\nlines"\nu2,Ren\u00e9e,\n',
    )
    stack.define(definition(good, path))
    good_job = stack.submit(good)

    expected = {job_id: "FAILED" for job_id in jobs} | {good_job: "COMPLETED"}
    statuses = settle(stack, expected, figures, timeout=45)
    count_target(stack, good, 2, figures)
    count_applied_twice(stack, list(expected), figures)
    count_stalled(stack, figures)
    reasons: dict[str, str] = {}
    written: dict[str, int] = {}
    for job_id, (case, name, _) in jobs.items():
        shown = stack.job(job_id) or {}
        reasons[case] = str((shown.get("sequences") or [{}])[0].get("failure"))
        written[case] = stack.count(name)
    figures.notes.append(
        f"{len(jobs)} bad files, each failed with: "
        + "; ".join(f"{case}: {reason[:120]}" for case, reason in reasons.items())
    )

    assert statuses == expected
    assert written == dict.fromkeys(BAD_SOURCES, 0), "a failed source wrote records"
    for case, _, says in jobs.values():
        assert says in reasons[case], f"{case}: {reasons[case][:300]}"
        assert len(reasons[case]) <= REASON_LIMIT, f"{case}: a reason of {len(reasons[case])}"
    assert {d["_id"]: d for d in stack.target[good].find({})} == {
        "u1": {"_id": "u1", "uid": "u1", "cn": "Doe, Jane", "note": "two\nlines"},
        "u2": {"_id": "u2", "uid": "u2", "cn": "Ren\u00e9e", "note": ""},
    }
    assert figures.partitions_stalled == 0, figures.notes


def test_a_wrong_encoding_is_reported_at_its_line(own_stack: Stack, figures: Figures) -> None:
    """A csv whose third line is Latin-1: the reason names that line, not the file's start"""
    stack = own_stack
    name = f"latin-{uuid.uuid4().hex[:8]}"
    content = "uid,cn\nu1,Ann\nu2,Ren\u00e9e\nu3,Bob\n".encode("latin-1")
    stack.define(definition(name, stack.write_source(f"{name}/people.csv", content)))
    job_id = stack.submit(name)
    statuses = settle(stack, {job_id: "FAILED"}, figures, timeout=60)
    shown = stack.job(job_id) or {}
    reason = str((shown.get("sequences") or [{}])[0].get("failure"))
    figures.notes.append(f"reason: {reason}")

    assert statuses == {job_id: "FAILED"}
    assert stack.count(name) == 0
    assert "not UTF-8" in reason
    assert "line 3" in reason, reason
