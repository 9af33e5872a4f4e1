"""The canonical folder format: round trips, ordering rules, and errors that point at the bad line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
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
    assert "interactions.parquet: row 3: field 'item_id'" in str(err.value) and str(err.value).count("3") == 1

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
