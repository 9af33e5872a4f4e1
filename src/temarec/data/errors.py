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
        super().__init__(f"{where}:{what} {message}")


def not_utf8(path: str | Path) -> DataFormatError | None:
    """The error for a text file that is not UTF-8, naming the line (1-based, as an editor counts) of the
    first byte that does not decode, or None for a UTF-8 file. Only for the error path: it reads the
    whole file. UTF-16 is named as such: with a byte-order mark it is not UTF-8, and without one its
    ASCII decodes as UTF-8 with a NUL after every letter, so NULs in the first line give it away."""
    data = Path(path).read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return DataFormatError(path, 1, None, "the file is UTF-16 text; save it as UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return DataFormatError(
            path, line, None, f"not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8"
        )
    if b"\x00" in data[: data.find(b"\n") if b"\n" in data else len(data)]:
        return DataFormatError(
            path, 1, None, "NUL bytes in the first line: the file looks like UTF-16 text; save it as UTF-8"
        )
    return None


class DatasetNotFoundError(FileNotFoundError):
    """A dataset name or path that resolves to nothing loadable."""
