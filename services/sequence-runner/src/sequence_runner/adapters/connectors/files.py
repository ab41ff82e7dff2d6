"""Source files live in the data folder; a path that leaves it (even by a symlink) is refused."""

from pathlib import Path

from sequence_runner.adapters.connectors.base import SourceError


def resolve_in_data_folder(data_dir: Path, relative: str) -> Path:
    root = data_dir.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise SourceError(f"source path {relative!r} resolves outside the data folder; refused")
    if not candidate.is_file():
        raise SourceError(f"source file {relative!r} not found in the data folder")
    return candidate
