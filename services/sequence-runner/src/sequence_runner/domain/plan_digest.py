"""A plan's content as one digest, so an approval covers the records an operator saw, not only
how many there were."""

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from provisioning_common.events import Approval

from sequence_runner.domain.records import PlannedChange

DIGEST_PREFIX = "sha256:"

# One encoder for every change: `json.dumps` with options builds a new encoder per call, which
# was most of the digest's time on a plan of a million changes. The same text as before, so an
# approval recorded earlier still matches its plan.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def _change_line(change: PlannedChange) -> bytes:
    # What the change writes: its action, the record's key and the values written. Type-exact
    # ("7" is not 7, true is not 1) because the target stores them apart; attribute order is not
    # part of the content.
    content: list[Any] = [change.action, change.key, change.after]
    if change.dn is not None:
        # Where a directory change is written is part of what the operator approved; only
        # there, so the digests of other targets' plans are what they were.
        content.append(change.dn)
    return _ENCODER.encode(content).encode()


def plan_digest(changes: Iterable[PlannedChange]) -> str:
    """The same for two plans that make the same changes, in whatever order they list them."""
    sha256 = hashlib.sha256
    each = [sha256(_change_line(change)).digest() for change in changes]
    each.sort()  # in place: a sorted copy would hold the hashes' pointers twice
    whole = hashlib.sha256()
    for one in each:
        whole.update(one)
    return DIGEST_PREFIX + whole.hexdigest()


def approval_covers(approval: Approval | None, digest: str | None) -> bool:
    """Whether an operator's approval is about this very plan's changes.

    An approval without a digest (given before approvals recorded one) covers nothing: which
    records it was about can no longer be told."""
    return (
        approval is not None
        and approval.digest is not None
        and digest is not None
        and approval.digest == digest
    )
