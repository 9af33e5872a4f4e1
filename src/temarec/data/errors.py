"""Errors that point at the exact place in a bad input file."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file is malformed. The message names the file, the line (1-based) and the field."""

    def __init__(
        self, path: str | Path, line: int | None, field: str | None, message: str, *, row: bool = False
    ):
        """`row`: `line` counts data rows of a file without lines (Parquet), shown as `path: row N:`."""
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = self.path if line is None else f"{self.path}: row {line}" if row else f"{self.path}:{line}"
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {message}".replace(": ", ": ", 1))


class DatasetNotFoundError(FileNotFoundError):
    """A dataset name or path that resolves to nothing loadable."""
