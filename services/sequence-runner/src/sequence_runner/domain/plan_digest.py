"""A plan's content as one digest, so an approval covers the records an operator saw, not only
how many there were."""

import hashlib
import json
import json.encoder
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice, repeat
from operator import itemgetter
from typing import Any

from provisioning_common.events import Approval

from sequence_runner.domain.records import ChangeAction, Key, PlannedChange

DIGEST_PREFIX = "sha256:"

# One encoder for every change: `json.dumps` with options builds a new encoder per call, which
# was most of the digest's time on a plan of a million changes. The same text as before, so an
# approval recorded earlier still matches its plan.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def _one_encoder() -> Callable[[Any], str]:
    """`_ENCODER.encode`, minus what it redoes per call: `encode` makes a new C encoder for
    every value it is given. This is that C encoder, made once, with the same options (the
    circular check left out: a plan's values come from a file or a repository, never from a
    cycle); the Python encoder where the interpreter has no C one. Both give the same text."""
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    encode = make(None, repr, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    join = "".join
    return lambda content: join(encode(content, 0))


_encode = _one_encoder()
_HASH_DIGEST: Callable[[Any], bytes] = type(hashlib.sha256()).digest
_FIRST_BYTE = itemgetter(0)
_HASH_SIZE = 32


def _change_line(change: PlannedChange) -> bytes:
    # What the change writes: its action, the record's key and the values written. Type-exact
    # ("7" is not 7, true is not 1) because the target stores them apart; attribute order is not
    # part of the content.
    content: list[Any] = [change.action, change.key, change.after]
    if change.dn is not None:
        # Where a directory change is written is part of what the operator approved; only
        # there, so the digests of other targets' plans are what they were.
        content.append(change.dn)
    return _encode(content).encode()


_encode_text: Callable[[Any], str] = json.encoder.encode_basestring


def _written_lines(
    action: ChangeAction, keys: list[Key], afters: list[Any], names: tuple[str, ...]
) -> list[str] | None:
    """The changes' lines, each the text `_encode` makes of `[action, key, after]`, made column
    by column from one template when every key and every written value is text and every
    `after` holds just `names` (or every `after` is None): each value is quoted by the JSON
    encoder's own C function, and no encoder walks a list and a dict per change. None
    otherwise (a number, a null, another attribute), for `_encode`."""
    if not keys:
        return []
    quoted = _encode_text(action).replace("%", "%%")
    try:
        columns = [list(map(_encode_text, keys))]  # TypeError: a key that is not text
        if afters.count(None) == len(afters):
            template = f"[{quoted},%s,null]"
        elif set(map(type, afters)) == {dict} and set(map(len, afters)) == {len(names)}:
            ordered = sorted(names)  # the encoder's sort_keys
            body = ",".join(_encode_text(name).replace("%", "%%") + ":%s" for name in ordered)
            template = f"[{quoted},%s,{{{body}}}]"
            for name in ordered:
                # KeyError: an after without that name; TypeError: a value that is not text.
                columns.append(list(map(_encode_text, map(itemgetter(name), afters))))
        else:
            return None
    except (KeyError, TypeError):
        return None
    return list(map(template.__mod__, zip(*columns, strict=True)))


class PlanDigester:
    """A plan's digest made as its changes are made, in any order and in batches, holding 32
    bytes per change (not the changes): the planner digests each partition's changes while it
    has them, so the plan need not be read back for it.

    The digest is the SHA-256 of the changes' own SHA-256s in sorted order. They are kept by
    their first byte in 256 byte strings; at the end each is cut into its hashes and sorted,
    so the sort holds 1/256 of them as objects at a time."""

    def __init__(self) -> None:
        self._by_first_byte = [bytearray() for _ in range(256)]

    def add(self, changes: Iterable[PlannedChange]) -> None:
        self._keep(list(map(hashlib.sha256, map(_change_line, changes))))

    def add_written(
        self,
        action: ChangeAction,
        keys: Iterable[Key],
        afters: Iterable[Any],
        names: tuple[str, ...] | None = None,
    ) -> None:
        """Changes of one action given as their keys and the values they write (no directory
        DN: a located change is digested with `add`). `names`: the attributes every `after`
        holds, when the caller knows them (a plan with a mapping), for `_written_lines`; without
        them, the first `after`'s names are tried."""
        keys, afters = list(keys), list(afters)
        if names is None and afters and type(afters[0]) is dict:
            # The first after's names (a target that stores records its own way, a directory):
            # `_written_lines` takes them only if every after holds just these.
            names = tuple(afters[0])
        lines = _written_lines(action, keys, afters, names) if names is not None else None
        if lines is None:
            lines = list(map(_encode, zip(repeat(action), keys, afters)))
        self._keep(list(map(hashlib.sha256, map(str.encode, lines))))

    def _keep(self, hashes: list[Any]) -> None:
        digests = list(map(_HASH_DIGEST, hashes))
        buckets = map(self._by_first_byte.__getitem__, map(_FIRST_BYTE, digests))
        # Each hash appended to its bucket by the interpreter's C code: this is per change.
        deque(map(bytearray.__iadd__, buckets, digests), maxlen=0)

    def digest(self) -> str:
        whole = hashlib.sha256()
        for bucket in self._by_first_byte:
            ends = range(_HASH_SIZE, len(bucket) + _HASH_SIZE, _HASH_SIZE)
            cut = map(slice, range(0, len(bucket), _HASH_SIZE), ends)
            whole.update(b"".join(sorted(map(bucket.__getitem__, cut))))
        return DIGEST_PREFIX + whole.hexdigest()


def plan_digest(changes: Iterable[PlannedChange]) -> str:
    """The same for two plans that make the same changes, in whatever order they list them."""
    digester = PlanDigester()
    deque(digesting(changes, digester), maxlen=0)
    return digester.digest()


def digesting(changes: Iterable[PlannedChange], digester: PlanDigester) -> Iterator[PlannedChange]:
    """`changes`, each handed to `digester` as it passes (a thousand at a time): a plan digested
    in the pass that stores it."""
    changes = iter(changes)
    while batch := list(islice(changes, 1000)):
        digester.add(batch)
        yield from batch


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
