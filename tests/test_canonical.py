"""The canonical folder format: round trips, ordering rules, and errors that point at the bad line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from temarec.data.canonical import load_canonical, write_canonical
from temarec.data.dataset import CDDataset, make_items_frame
from temarec.data.errors import DataFormatError, DatasetNotFoundError
from temarec.data.ragged import Ragged

ITEMS = """item_id,domain,title,description,image
b1,Books,"Dune, the novel",A desert planet,http://x/b1.jpg
m1,Movies,Alien,,
b2,Books,,,
m2,Movies,"Heat
(1995)",Two men,
"""

INTERACTIONS = """user_id,item_id,timestamp
u2,m1,50
u1,b1,30
u1,m2,10
u2,b2,50
u1,m1,30
u1,b2,20
"""


def _folder(
    tmp_path: Path, items: str = ITEMS, interactions: str = INTERACTIONS, meta: dict | None = None
) -> Path:
    folder = tmp_path / "ds"
    folder.mkdir(exist_ok=True)
    (folder / "items.csv").write_text(items, encoding="utf-8")
    (folder / "interactions.csv").write_text(interactions, encoding="utf-8")
    if meta is not None:
        (folder / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dataset() -> CDDataset:
    items = make_items_frame(
        ["a1", "a2", "0042", "b1", "b2"],
        np.array([0, 0, 0, 1, 1]),
        titles=["First, with comma", None, 'Quote "q"', "Line\nbreak", None],
        descriptions=[None, "desc", None, None, "d, e"],
        images=["http://img/1", None, None, None, None],
    )
    seqs = Ragged.from_lists([[1, 4, 2, 5], [3, 3], [5]])
    ts = Ragged.from_lists([[10, 10, 20, 30], [5, 5], [1_700_000_000]])
    return CDDataset("toy", ("Art", "Office"), items, np.array(["x", "007", "z"], dtype=object), seqs, ts)


def _vals(s: pd.Series) -> list:
    """Values with any missing marker (None, NaN, NA) as None: pandas picks the marker by dtype."""
    return [None if pd.isna(v) else v for v in s]


def _assert_same(a: CDDataset, b: CDDataset) -> None:
    assert a.domains == b.domains
    assert a.name == b.name
    cols = ["key", "domain", "title", "description", "image"]
    pd.testing.assert_frame_equal(
        a.items[cols].astype(object), b.items[cols].astype(object), check_names=False, check_index_type=False
    )
    assert [str(u) for u in a.user_keys] == [str(u) for u in b.user_keys]
    assert a.sequences.tolist() == b.sequences.tolist()
    assert a.timestamps is not None and b.timestamps is not None
    assert a.timestamps.tolist() == b.timestamps.tolist()


# ---- loading ---------------------------------------------------------------------------------------
def test_load_orders_items_users_and_time(tmp_path: Path) -> None:
    ds = load_canonical(_folder(tmp_path))
    assert ds.name == "ds"
    assert ds.domains == ("Books", "Movies")  # first appearance in items.csv
    assert ds.items["key"].tolist() == ["b1", "b2", "m1", "m2"]  # A first, file order within a domain
    assert ds.items["domain"].tolist() == [0, 0, 1, 1]
    assert _vals(ds.items["title"]) == ["Dune, the novel", None, "Alien", "Heat\n(1995)"]
    assert _vals(ds.items["description"]) == ["A desert planet", None, None, "Two men"]
    assert _vals(ds.items["image"]) == ["http://x/b1.jpg", None, None, None]
    assert list(ds.user_keys) == ["u2", "u1"]  # first appearance in interactions.csv
    # u1: m2@10, b2@20, then b1@30 before m1@30 (tie keeps file order)
    assert ds.sequences.tolist() == [[3, 2], [4, 2, 1, 3]]
    assert ds.timestamps is not None
    assert ds.timestamps.tolist() == [[50, 50], [10, 20, 30, 30]]


def test_dataset_json_fixes_domain_order_and_name(tmp_path: Path) -> None:
    ds = load_canonical(_folder(tmp_path, meta={"name": "films-books", "domains": ["Movies", "Books"]}))
    assert ds.name == "films-books"
    assert ds.domains == ("Movies", "Books")
    assert ds.items["key"].tolist() == ["m1", "m2", "b1", "b2"]
    assert load_canonical(tmp_path / "ds", name="override").name == "override"


def test_items_without_text_and_unused_items_are_kept(tmp_path: Path) -> None:
    items = "item_id,domain\na,X\nb,Y\nc,Y\n"
    ds = load_canonical(_folder(tmp_path, items, "user_id,item_id,timestamp\nu,a,1\nu,b,2\n"))
    assert ds.n_items == 3  # c has no interaction but stays in the catalogue
    assert ds.items["title"].isna().all()
    assert ds.items["description"].isna().all()
    assert ds.stats()["all"]["items_with_title"] == 0
    assert ds.sequences.tolist() == [[1, 2]]


def test_ids_stay_strings(tmp_path: Path) -> None:
    items = "item_id,domain\n007,X\nNA,Y\n"
    ds = load_canonical(_folder(tmp_path, items, "user_id,item_id,timestamp\n0001,007,1\n0001,NA,2\n"))
    assert ds.items["key"].tolist() == ["007", "NA"]
    assert list(ds.user_keys) == ["0001"]


# ---- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip(tmp_path: Path, fmt: str) -> None:
    ds = _dataset()
    out = tmp_path / "out"
    write_canonical(ds, out, fmt=fmt)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"items.{fmt}", f"interactions.{fmt}", "dataset.json"]
    )
    back = load_canonical(out)
    _assert_same(ds, back)
    # and once more through the other format
    other = "parquet" if fmt == "csv" else "csv"
    write_canonical(back, out, fmt=other)
    assert not (out / f"items.{fmt}").exists()  # no ambiguous leftovers
    _assert_same(ds, load_canonical(out))


def test_round_trip_of_a_loaded_folder(tmp_path: Path) -> None:
    ds = load_canonical(_folder(tmp_path))
    write_canonical(ds, tmp_path / "copy")
    back = load_canonical(tmp_path / "copy")
    back.name = ds.name
    _assert_same(ds, back)


def test_write_without_timestamps_writes_positions(tmp_path: Path) -> None:
    ds = _dataset()
    ds.timestamps = None
    write_canonical(ds, tmp_path / "out")
    back = load_canonical(tmp_path / "out")
    assert back.sequences.tolist() == ds.sequences.tolist()
    assert back.timestamps is not None
    assert back.timestamps.tolist() == [[0, 1, 2, 3], [0, 1], [0]]


def test_failed_write_leaves_previous_files_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_canonical(_dataset(), out)
    before = _snapshot(out)

    def boom(self: pd.DataFrame, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_canonical(_dataset(), out)
    assert _snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


# ---- errors ----------------------------------------------------------------------------------------
H = "user_id,item_id,timestamp\n"  # interactions header
BAD_CASES = {
    # name: (items, interactions, file, line, field)
    "too many fields": (ITEMS, H + "u1,b1,1\nu1,b2,2,extra\n", "interactions.csv", 3, None),
    "too few fields": (ITEMS, H + "u1,b1,1\n\nu1,b2\n", "interactions.csv", 4, None),
    # the multi-line title occupies lines 5-6, so the bad row is on line 7
    "wrong width after quoted newline": (ITEMS + "m3,Movies\n", INTERACTIONS, "items.csv", 7, None),
    "unknown item id": (ITEMS, H + "u1,b1,1\nu1,b1,2\nu1,zz,3\n", "interactions.csv", 4, "item_id"),
    "non-numeric timestamp": (ITEMS, H + "u1,b1,1\nu1,b2,soon\n", "interactions.csv", 3, "timestamp"),
    "fractional timestamp": (ITEMS, H + "u1,b1,1.5\n", "interactions.csv", 2, "timestamp"),
    "empty timestamp": (ITEMS, H + "u1,b1,1\nu1,b2,\n", "interactions.csv", 3, "timestamp"),
    "empty items file": ("", INTERACTIONS, "items.csv", 1, None),
    "header only": (ITEMS, H, "interactions.csv", 2, None),
    "missing column": (ITEMS, "user_id,item_id\nu1,b1\n", "interactions.csv", 1, "timestamp"),
    "missing domain column": ("item_id,title\na,A\n", INTERACTIONS, "items.csv", 1, "domain"),
    "three domains": ("item_id,domain\na,X\nb,Y\nc,X\nd,Z\n", INTERACTIONS, "items.csv", 5, "domain"),
    "a rare third domain": (
        "item_id,domain\na,X\nb,Z\nc,Y\nd,Y\ne,X\n",
        INTERACTIONS,
        "items.csv",
        3,
        "domain",
    ),
    "plus-signed timestamp overflow": (
        ITEMS,
        H + "u1,b1,+1\nu1,b2,9999999999999999999\n",
        "interactions.csv",
        3,
        "timestamp",
    ),
    "one domain": ("item_id,domain\na,X\nb,X\n", H + "u,a,1\n", "items.csv", None, "domain"),
    "duplicate item id": ("item_id,domain\na,X\nb,Y\na,Y\n", INTERACTIONS, "items.csv", 4, "item_id"),
    "empty item id": ("item_id,domain\na,X\n,Y\n", INTERACTIONS, "items.csv", 3, "item_id"),
    "empty user id": (ITEMS, H + "u1,b1,1\n,b2,2\n", "interactions.csv", 3, "user_id"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_malformed_files_name_file_line_and_field(tmp_path: Path, case: str) -> None:
    items, interactions, fname, line, field = BAD_CASES[case]
    folder = _folder(tmp_path, items, interactions)
    before = _snapshot(folder)
    with pytest.raises(DataFormatError) as err:
        load_canonical(folder)
    msg = str(err.value)
    assert fname in msg
    assert Path(err.value.path).name == fname
    assert err.value.line == line
    if line is not None:
        assert f"{fname}:{line}:" in msg
    assert err.value.field == field
    if field is not None:
        assert f"'{field}'" in msg
    assert _snapshot(folder) == before  # a failing load touches nothing


def test_domain_not_in_dataset_json(tmp_path: Path) -> None:
    folder = _folder(tmp_path, meta={"domains": ["Books", "Music"]})
    with pytest.raises(DataFormatError) as err:
        load_canonical(folder)
    assert err.value.line == 3 and err.value.field == "domain"
    assert "Movies" in str(err.value) and "items.csv:3" in str(err.value)


def test_bad_dataset_json(tmp_path: Path) -> None:
    folder = _folder(tmp_path, meta={"domains": ["Books"]})
    with pytest.raises(DataFormatError, match="dataset.json.*'domains'"):
        load_canonical(folder)
    folder = _folder(tmp_path, meta={"domains": [" Books", "Movies"]})  # the items file could not match it
    with pytest.raises(DataFormatError, match="dataset.json: field 'domains' value ' Books' has whitespace"):
        load_canonical(folder)
    (folder / "dataset.json").write_text('{"name": "x",\n "domains": [}', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"dataset.json:2"):
        load_canonical(folder)


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"item_id": ["a", "b"], "domain": ["X", "Y"]}).to_parquet(folder / "items.parquet")
    pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3]}).to_parquet(
        folder / "interactions.parquet"
    )
    with pytest.raises(DataFormatError) as err:
        load_canonical(folder)
    assert err.value.line == 3 and err.value.field == "item_id"
    msg = str(err.value)[len(err.value.path) :]  # the tmp path may hold a 3 of its own
    assert msg.startswith(": row 3: field 'item_id'") and msg.count("3") == 1

    pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": [1.0, np.nan]}).to_parquet(
        folder / "interactions.parquet"
    )
    with pytest.raises(DataFormatError) as err:
        load_canonical(folder)
    assert err.value.line == 2 and err.value.field == "timestamp"


def test_parquet_with_integer_timestamps_and_null_text(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"item_id": ["a", "b"], "domain": ["X", "Y"], "title": [None, "B"]}).to_parquet(
        folder / "items.parquet"
    )
    pd.DataFrame({"user_id": ["u", "u"], "item_id": ["b", "a"], "timestamp": [5, 4]}).to_parquet(
        folder / "interactions.parquet"
    )
    ds = load_canonical(folder)
    assert _vals(ds.items["title"]) == [None, "B"]
    assert ds.sequences.tolist() == [[1, 2]]


def test_missing_or_ambiguous_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        load_canonical(tmp_path / "nope")
    folder = _folder(tmp_path)
    (folder / "interactions.csv").unlink()
    with pytest.raises(DataFormatError, match="interactions"):
        load_canonical(folder)
    _folder(tmp_path)
    pd.DataFrame({"item_id": ["a"], "domain": ["X"]}).to_parquet(folder / "items.parquet")
    with pytest.raises(DataFormatError, match="keep only one"):
        load_canonical(folder)


def test_signed_timestamps_and_unsigned_parquet(tmp_path: Path) -> None:
    """'+30' is 30 (the check allowed it and Arrow's cast refused it); a uint64 beyond int64 is refused
    at its row instead of wrapping to a negative time."""
    ds = load_canonical(_folder(tmp_path, interactions=INTERACTIONS.replace("u1,b1,30", "u1,b1, +30 ")))
    assert (
        ds.timestamps is not None
        and ds.timestamps.tolist() == load_canonical(_folder(tmp_path)).timestamps.tolist()
    )
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"item_id": ["a", "b"], "domain": ["X", "Y"]}).to_parquet(folder / "items.parquet")
    ts = np.array([1, 2**64 - 1], dtype=np.uint64)
    pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": ts}).to_parquet(
        folder / "interactions.parquet"
    )
    with pytest.raises(DataFormatError, match="64-bit range") as err:
        load_canonical(folder)
    assert (err.value.line, err.value.field) == (2, "timestamp")


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/abs", "..", "a\\b", " ", "tab\there"])
def test_dataset_name_must_be_a_plain_name(tmp_path: Path, name: str) -> None:
    """The name keys artifact folders (tags, candidate sets), so it may not be a path."""
    folder = _folder(tmp_path, meta={"name": name, "domains": ["Books", "Movies"]})
    with pytest.raises(DataFormatError, match="plain name") as err:
        load_canonical(folder)
    assert err.value.field == "name"


def test_write_names_the_copy(tmp_path: Path) -> None:
    write_canonical(_dataset(), tmp_path / "copy", name="my-copy")
    assert load_canonical(tmp_path / "copy").name == "my-copy"


def test_a_column_named_twice_is_refused_not_renamed(tmp_path: Path) -> None:
    """pandas would read the second `item_id` as `item_id.1` and the catalogue would lose its titles."""
    header, rest = ITEMS.split("\n", 1)
    folder = _folder(tmp_path, items=header.replace("title", "item_id") + "\n" + rest)
    with pytest.raises(DataFormatError, match=r"items.csv:1: field 'item_id' this column is named twice"):
        load_canonical(folder)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    lines = (folder / "items.csv").read_bytes().split(b"\n")
    lines[2] += "caf\u00e9".encode("latin-1")
    (folder / "items.csv").write_bytes(b"\n".join(lines))
    with pytest.raises(DataFormatError, match=r"items.csv:3: not UTF-8 text \(byte 0xe9\)"):
        load_canonical(folder)


def test_timestamps_mixing_seconds_and_milliseconds_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Valid, so not an error; but a file in two units orders histories wrongly, so it is named."""
    mixed = INTERACTIONS.replace("u1,b1,30", "u1,b1,1700000000000").replace("u2,m1,50", "u2,m1,1700000000")
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        load_canonical(_folder(tmp_path, interactions=mixed))
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "interactions.csv: timestamps mix units: 1 look like milliseconds (line 3: 1700000000000)" in msg
    assert "and 5 like seconds (line 2: 1700000000)" in msg
    caplog.clear()
    in_ms = "user_id,item_id,timestamp\nu1,b1,1700000000000\nu1,m1,1700000001000\n"
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        load_canonical(_folder(tmp_path, interactions=in_ms))  # one unit, any unit: fine
    assert not caplog.records


# ---- text rules: position once, encoding, columns named twice, control characters, whitespace, -------
# ---- negative times ---------------------------------------------------------------------------------
def _error(folder: Path) -> DataFormatError:
    """The error loading `folder` raises; the folder is left as it was."""
    before = _snapshot(folder)
    with pytest.raises(DataFormatError) as err:
        load_canonical(folder)
    assert _snapshot(folder) == before
    return err.value


def _pq_folder(tmp_path: Path, items: dict, interactions: dict) -> Path:
    folder = tmp_path / "pq"
    folder.mkdir(exist_ok=True)
    pd.DataFrame(items).to_parquet(folder / "items.parquet")
    pd.DataFrame(interactions).to_parquet(folder / "interactions.parquet")
    return folder


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("temarec.data")]


@pytest.mark.parametrize(
    ("line", "field", "row", "text"),
    [
        (3, "x", False, "f.csv:3: field 'x' bad"),
        (3, "x", True, "f.parquet: row 3: field 'x' bad"),
        (1, None, False, "f.csv:1: bad"),
        (None, "x", False, "f.csv: field 'x' bad"),
        (None, None, True, "f.parquet: bad"),
    ],
)
def test_error_text_names_the_position_once(
    line: int | None, field: str | None, row: bool, text: str
) -> None:
    e = DataFormatError(text.split(":")[0], line, field, "bad", row=row)
    assert str(e) == text
    assert (e.line, e.field, e.reason) == (line, field, "bad")


def test_parquet_error_names_its_row_once_like_a_csv_names_its_line(tmp_path: Path) -> None:
    csv_folder = _folder(tmp_path, "item_id,domain\na,X\nb,Y\n", H + "u,a,1\nu,b,2\nu,c,3\n")
    e = _error(csv_folder)
    assert str(e) == (
        f"{csv_folder / 'interactions.csv'}:4: field 'item_id' unknown item_id 'c' (not in items.csv)"
    )
    pq_folder = _pq_folder(
        tmp_path,
        {"item_id": ["a", "b"], "domain": ["X", "Y"]},
        {"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3]},
    )
    e = _error(pq_folder)
    assert str(e) == (
        f"{pq_folder / 'interactions.parquet'}: row 3: field 'item_id' "
        "unknown item_id 'c' (not in items.parquet)"
    )
    assert (e.line, e.field) == (3, "item_id")


LATIN1_ITEMS = ITEMS.replace("Alien", "Ali\u00e9n").encode("latin-1")  # m1 is on line 3
UTF8_BAD = "not UTF-8 text (byte 0x{:02x}); save the file as UTF-8"
UTF16 = "the file is UTF-16 text; save it as UTF-8"
UTF16_NO_BOM = "NUL bytes in the first line: the file looks like UTF-16 text; save it as UTF-8"
NOT_UTF8_CASES = {
    # name: (file, bytes, line of the message, reason)
    "latin-1 in a data line": ("items.csv", LATIN1_ITEMS, 3, UTF8_BAD.format(0xE9)),
    "latin-1 in the header": (
        "interactions.csv",
        ("us\u00e9r_id" + INTERACTIONS[7:]).encode("latin-1"),
        1,
        UTF8_BAD.format(0xE9),
    ),
    # the record of m2 starts on line 5; the bad byte is on its second physical line
    "latin-1 in a quoted value's second line": (
        "items.csv",
        ITEMS.replace("(1995)", "(1995) caf\u00e9").encode("latin-1"),
        6,
        UTF8_BAD.format(0xE9),
    ),
    "UTF-16 with a byte-order mark": ("items.csv", ITEMS.encode("utf-16"), 1, UTF16),
    "UTF-16 without one": ("items.csv", ITEMS.encode("utf-16-le"), 1, UTF16_NO_BOM),
}


@pytest.mark.parametrize("case", sorted(NOT_UTF8_CASES))
def test_a_csv_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path: Path, case: str) -> None:
    fname, data, line, reason = NOT_UTF8_CASES[case]
    folder = _folder(tmp_path)
    (folder / fname).write_bytes(data)
    e = _error(folder)
    assert str(e) == f"{folder / fname}:{line}: {reason}"
    assert (e.line, e.field) == (line, None)


def test_a_column_named_twice_is_refused_in_csv_and_parquet(tmp_path: Path) -> None:
    """Spaces around a CSV column name are ignored, so ` user_id` is `user_id` a second time."""
    folder = _folder(tmp_path, interactions="user_id,item_id,timestamp, user_id\nu1,b1,1,u2\n")
    e = _error(folder)
    assert (
        str(e) == f"{folder / 'interactions.csv'}:1: field 'user_id' this column is named twice in the header"
    )
    assert (e.line, e.field) == (1, "user_id")

    pq_folder = _pq_folder(
        tmp_path,
        {"item_id": ["a", "b"], "domain": ["X", "Y"]},
        {"user_id": ["u"], "item_id": ["a"], "timestamp": [1]},
    )
    table = pa.table([["a", "b"], ["X", "Y"], ["t", "u"]], names=["item_id", "domain", "item_id"])
    pq.write_table(table, pq_folder / "items.parquet")
    e = _error(pq_folder)  # pandas would fail with a many-line schema dump
    twice = "field 'item_id' this column is named twice among the file's columns"
    assert str(e) == f"{pq_folder / 'items.parquet'}: {twice}"
    assert (e.line, e.field) == (None, "item_id")


CONTROL = "contains the control character U+{:04X}; {} must be printable text"
SPACES = "has whitespace at its start or end; ids are matched exactly, so remove it"
BAD_TEXT_CASES = {
    # name: (items, interactions, file, line, field, message after "field '...' ")
    "NUL in an item id": (
        "item_id,domain\na,X\nb\x00,Y\n",
        H + "u,a,1\n",
        "items.csv",
        3,
        "item_id",
        "value 'b\\x00' " + CONTROL.format(0, "ids"),
    ),
    "escape in a user id": (
        "item_id,domain\na,X\nb,Y\n",
        H + "u,a,1\nu\x1b[0m,b,2\n",
        "interactions.csv",
        3,
        "user_id",
        "value 'u\\x1b[0m' " + CONTROL.format(0x1B, "ids"),
    ),
    "quoted tab in an item id": (
        'item_id,domain\n"a\tb",X\nb,Y\n',
        H + "u,b,1\n",
        "items.csv",
        2,
        "item_id",
        "value 'a\\tb' " + CONTROL.format(9, "ids"),
    ),
    # refused as a bad id, not reported as an unknown one
    "NUL in an interaction's item id": (
        "item_id,domain\na,X\nb,Y\n",
        H + "u,a,1\nu,b,2\nv,a\x00,3\n",
        "interactions.csv",
        4,
        "item_id",
        "value 'a\\x00' " + CONTROL.format(0, "ids"),
    ),
    "C1 control in a domain": (
        "item_id,domain\na,X\nb,Y\x85\n",
        H + "u,a,1\n",
        "items.csv",
        3,
        "domain",
        "value 'Y\\x85' " + CONTROL.format(0x85, "domain names"),
    ),
    "NUL in an image": (
        "item_id,domain,image\na,X,a\x00.jpg\nb,Y,\n",
        H + "u,a,1\n",
        "items.csv",
        2,
        "image",
        "value 'a\\x00.jpg' " + CONTROL.format(0, "image references"),
    ),
    "leading space in an item id": (
        "item_id,domain\na,X\n b,Y\n",
        H + "u,a,1\n",
        "items.csv",
        3,
        "item_id",
        "value ' b' " + SPACES,
    ),
    "trailing space in a user id": (
        "item_id,domain\na,X\nb,Y\n",
        H + "u,a,1\nu ,b,2\n",
        "interactions.csv",
        3,
        "user_id",
        "value 'u ' " + SPACES,
    ),
    "quoted space in a user id": (
        "item_id,domain\na,X\nb,Y\n",
        H + '" u",a,1\n',
        "interactions.csv",
        2,
        "user_id",
        "value ' u' " + SPACES,
    ),
    "no-break space in a user id": (
        "item_id,domain\na,X\nb,Y\n",
        H + "u\u00a0,a,1\n",
        "interactions.csv",
        2,
        "user_id",
        "value 'u\\xa0' " + SPACES,  # the message escapes it, as it is invisible
    ),
    # 'b ' would have been an unknown item id; it is named as what it is
    "space in an interaction's item id": (
        "item_id,domain\na,X\nb,Y\n",
        H + "u,a,1\nu,b ,2\n",
        "interactions.csv",
        3,
        "item_id",
        "value 'b ' " + SPACES,
    ),
    "space around a domain": (
        "item_id,domain\na,X\nb, Y\n",
        H + "u,a,1\n",
        "items.csv",
        3,
        "domain",
        "value ' Y' " + SPACES.replace("ids are", "domain names are"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TEXT_CASES))
def test_ids_with_control_characters_or_edge_whitespace_are_refused(tmp_path: Path, case: str) -> None:
    """Ids are matched exactly against the other file and every artifact keyed by them, so they are
    refused rather than silently cleaned (which could merge two ids)."""
    items, interactions, fname, line, field, message = BAD_TEXT_CASES[case]
    folder = _folder(tmp_path, items, interactions)
    e = _error(folder)
    assert str(e) == f"{folder / fname}:{line}: field '{field}' {message}"
    assert (e.line, e.field) == (line, field)
    assert "\n" not in str(e) and str(e).isprintable()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("item_id", " a", "value ' a' " + SPACES),
        ("item_id", "a\x00", "value 'a\\x00' " + CONTROL.format(0, "ids")),
        ("user_id", "u\t", "value 'u\\t' " + CONTROL.format(9, "ids")),
        ("user_id", "u ", "value 'u ' " + SPACES),
    ],
)
def test_parquet_ids_follow_the_csv_rules(tmp_path: Path, field: str, value: str, reason: str) -> None:
    items = {"item_id": ["a", "b"], "domain": ["X", "Y"]}
    interactions = {"user_id": ["u", "u"], "item_id": ["b", "a"], "timestamp": [1, 2]}
    if field == "item_id":
        items["item_id"] = ["b", value]  # the second row of items.parquet
    else:
        interactions["user_id"] = ["u", value]  # the second row of interactions.parquet
    folder = _pq_folder(tmp_path, items, interactions)
    e = _error(folder)
    fname = "items.parquet" if field == "item_id" else "interactions.parquet"
    assert str(e) == f"{folder / fname}: row 2: field '{field}' {reason}"
    assert (e.line, e.field, e.reason) == (2, field, reason)
    # the same value in a CSV: the same reason, at its line
    csv_folder = _folder(
        tmp_path,
        "item_id,domain\n"
        + "".join(f'"{k}",{d}\n' for k, d in zip(items["item_id"], items["domain"], strict=True)),
        H + "".join(f'"{u}",{i},{t}\n' for u, i, t in zip(*interactions.values(), strict=True)),
    )
    assert _error(csv_folder).reason == reason


def test_nul_in_titles_and_descriptions_is_removed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A NUL in free text is removed, not refused: see `canonical._strip_nul` for why."""
    items = (
        'item_id,domain,title,description\na,X,Du\x00ne,ok\nb,Y,\x00,"d\x00e\x00"\nc,Y,Alien,"tab\there"\n'
    )
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        ds = load_canonical(_folder(tmp_path, items, H + "u,a,1\n"))
    assert _vals(ds.items["title"]) == ["Dune", None, "Alien"]  # a title of only NULs is no title
    assert _vals(ds.items["description"]) == ["ok", "de", "tab\there"]  # other control characters stay
    path = tmp_path / "ds" / "items.csv"
    assert _warnings(caplog) == [
        f"{path}: 'title' has NUL characters (2 values, first at line 2); they are removed",
        f"{path}: 'description' has NUL characters (1 value, first at line 3); they are removed",
    ]
    caplog.clear()
    folder = _pq_folder(
        tmp_path,
        {"item_id": ["a", "b"], "domain": ["X", "Y"], "title": ["A", "B\x00"]},
        {"user_id": ["u"], "item_id": ["a"], "timestamp": [1]},
    )
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        ds = load_canonical(folder)
    assert _vals(ds.items["title"]) == ["A", "B"]
    assert _warnings(caplog) == [
        f"{folder / 'items.parquet'}: 'title' has NUL characters (1 value, first at row 2); they are removed"
    ]


NEGATIVE = (
    "{}: negative timestamps: {} (first at {}: {}); a time before 1970 is usually a missing-time marker "
    "or a sign error, and histories are ordered by the raw numbers, so these come first"
)


def test_negative_timestamps_load_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    interactions = H + "u,a,10\nu,b,-5\nv,a,-1\n"
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        ds = load_canonical(_folder(tmp_path, "item_id,domain\na,X\nb,Y\n", interactions))
    assert ds.timestamps is not None and ds.timestamps.tolist() == [[-5, 10], [-1]]  # loaded, ordered
    assert _warnings(caplog) == [NEGATIVE.format(tmp_path / "ds" / "interactions.csv", 2, "line 3", -5)]
    caplog.clear()
    folder = _pq_folder(
        tmp_path,
        {"item_id": ["a", "b"], "domain": ["X", "Y"]},
        {"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": [0, -7]},
    )
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        load_canonical(folder)
    assert _warnings(caplog) == [NEGATIVE.format(folder / "interactions.parquet", 1, "row 2", -7)]
    caplog.clear()
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        load_canonical(_folder(tmp_path))  # 0 and up: no warning
    assert _warnings(caplog) == []


def test_exact_duplicate_rows_load_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    interactions = H + "u,a,1\nu,b,2\nu,a,1\nu,a,3\nv,a,1\n"  # line 4 repeats line 2; u,a,3 is a repeat buy
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        ds = load_canonical(_folder(tmp_path, "item_id,domain\na,X\nb,Y\n", interactions))
    assert ds.sequences.tolist() == [[1, 1, 2, 1], [1]]  # kept
    path = tmp_path / "ds" / "interactions.csv"
    assert _warnings(caplog) == [
        f"{path}: 1 row(s) repeat an earlier row's user_id, item_id and timestamp (first at line 4); "
        "they are kept, as repeated interactions"
    ]


def _with_key(ds: CDDataset, *, item: str | None = None, user: str | None = None) -> CDDataset:
    items = ds.items.copy()
    if item is not None:
        items.loc[items.index[0], "key"] = item
    users = ds.user_keys.copy()
    if user is not None:
        users[0] = user
    return CDDataset(ds.name, ds.domains, items, users, ds.sequences, ds.timestamps)


@pytest.mark.parametrize(
    ("item", "user", "message"),
    [
        (
            "a1 ",
            None,
            "toy: item key 'a1 ' has whitespace at its start or end; item keys are matched exactly",
        ),
        ("a\x001", None, "toy: item key 'a\\x001' contains the control character U+0000; item keys must"),
        (None, "\tx", "toy: user key '\\tx' contains the control character U+0009; user keys must be"),
        (None, " x", "toy: user key ' x' has whitespace at its start or end; user keys are matched"),
        (None, "", "toy: user keys must be non-empty to be written"),
    ],
)
def test_write_refuses_what_load_would_refuse_and_writes_nothing(
    tmp_path: Path, item: str | None, user: str | None, message: str
) -> None:
    """A folder is only ever replaced by one that loads: the previous files stay untouched."""
    out = tmp_path / "out"
    write_canonical(_dataset(), out)
    before = _snapshot(out)
    with pytest.raises(ValueError) as err:
        write_canonical(_with_key(_dataset(), item=item, user=user), out)
    assert str(err.value).startswith(message)
    if user != "":
        assert str(err.value).endswith("(load_canonical refuses it); nothing was written")
    assert _snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_write_removes_nul_from_text_and_refuses_it_in_an_image(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = _dataset()
    ds.items.loc[ds.items.index[0], "title"] = "First\x00"
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        write_canonical(ds, tmp_path / "out")
    assert _warnings(caplog) == ["toy: 'title' has NUL characters (1 value); they are removed"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="temarec.data.canonical"):
        back = load_canonical(tmp_path / "out")  # the written folder is clean
    assert [w for w in _warnings(caplog) if "NUL" in w] == []  # (the toy repeats a row on purpose)
    assert back.items["title"].iloc[0] == "First"
    ds.items.loc[ds.items.index[0], "image"] = "http://img/\x00"
    with pytest.raises(ValueError) as err:
        write_canonical(ds, tmp_path / "out2")
    assert str(err.value) == (
        "toy: image of item 'a1' 'http://img/\\x00' contains the control character U+0000; image references "
        "must be printable text (load_canonical refuses it); nothing was written"
    )
    assert not (tmp_path / "out2" / "items.csv").exists()
