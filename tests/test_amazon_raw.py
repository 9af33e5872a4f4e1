"""Importing raw Amazon dumps: 2014 dict-literal metadata, 2018 JSON, k-core, ordering, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from temarec.data.amazon_raw import AmazonSource, import_amazon
from temarec.data.errors import DataFormatError

# Domain A, "Books" (2014 schema). Hand-computed 2-core with >= 1 interaction per domain:
#  - u1 reviews a1 twice: the earliest (100) is kept.
#  - a3 and b3 have one review each -> removed; then u4 has no Books and u5 has one review -> removed;
#  - then b2 has only u3 -> removed; then u3 has no Movies -> removed. a1 and a2 keep 2 reviews each.
# Result: u1 = a1@100, b1@200, a2@300 (Books file), b4@300 (tie: Books file first)
#         u2 = b4@10, a2@150, a1@150 (tie: file order), b1@260
REVIEWS_A = [
    {"reviewerID": "u1", "asin": "a1", "unixReviewTime": 100, "overall": 5.0},
    {"reviewerID": "u1", "asin": "a2", "unixReviewTime": 300},
    {"reviewerID": "u2", "asin": "a2", "unixReviewTime": 150},
    {"reviewerID": "u2", "asin": "a1", "unixReviewTime": 150},
    {"reviewerID": "u3", "asin": "a1", "unixReviewTime": 120},
    {"reviewerID": "u1", "asin": "a1", "unixReviewTime": 500},
    {"reviewerID": "u4", "asin": "a3", "unixReviewTime": 100},
    {"reviewerID": "u5", "asin": "a1", "unixReviewTime": 90},
]
REVIEWS_B = [
    {"reviewerID": "u1", "asin": "b1", "unixReviewTime": 200},
    {"reviewerID": "u2", "asin": "b1", "unixReviewTime": 260},
    {"reviewerID": "u3", "asin": "b2", "unixReviewTime": 50},
    {"reviewerID": "u4", "asin": "b1", "unixReviewTime": 300},
    {"reviewerID": "u4", "asin": "b2", "unixReviewTime": 310},
    {"reviewerID": "u5", "asin": "b3", "unixReviewTime": 95},
    {"reviewerID": "u1", "asin": "b4", "unixReviewTime": 300},
    {"reviewerID": "u2", "asin": "b4", "unixReviewTime": 10},
    {"reviewerID": "u2", "asin": "b1", "unixReviewTime": 400},
]
# 2014 metadata: Python dict literals, not JSON.
META_A_2014 = [
    """{'asin': 'a1', 'title': "Dune's Child", 'description': 'A desert book', """
    """'categories': [['Books', 'Fiction']], 'imUrl': 'http://img/a1.jpg', 'salesRank': {'Books': 3}}""",
    "{'asin': 'a2', 'categories': [['Books']]}",
    "{'asin': 'a3', 'title': 'Gone', 'categories': [['Books']]}",
]
META_B_2018 = [
    {
        "asin": "b1",
        "title": "Heat",
        "description": ["Two men.", "One city."],
        "category": ["Movies & TV", "Drama"],
        "imageURL": ["http://small/b1"],
        "imageURLHighRes": ["http://big/b1"],
    },
    {"asin": "b2", "title": "Gone too", "description": [], "category": ["Movies & TV"], "imageURL": []},
]


def _write_lines(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _sources(tmp_path: Path) -> tuple[AmazonSource, AmazonSource]:
    a = AmazonSource(
        "Books",
        _write_lines(tmp_path / "reviews_Books_5.json.gz", [json.dumps(r) for r in REVIEWS_A], gz=True),
        _write_lines(tmp_path / "meta_Books.json.gz", META_A_2014, gz=True),
    )
    b = AmazonSource(
        "Movies",
        _write_lines(tmp_path / "Movies_and_TV.json", [json.dumps(r) for r in REVIEWS_B]),
        _write_lines(tmp_path / "meta_Movies_and_TV.json", [json.dumps(m) for m in META_B_2018]),
    )
    return a, b


def _vals(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


def test_k_core_both_domains_time_order_and_text(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    ds = import_amazon(a, b, k_core=2, min_per_domain=1, name="books-movies")
    assert ds.name == "books-movies"
    assert ds.domains == ("Books", "Movies")
    assert ds.items["key"].tolist() == ["a1", "a2", "b1", "b4"]  # A then B, by ASIN
    assert ds.items["domain"].tolist() == [0, 0, 1, 1]
    assert list(ds.user_keys) == ["u1", "u2"]
    assert ds.sequences.tolist() == [[1, 3, 2, 4], [4, 2, 1, 3]]
    assert ds.timestamps is not None
    assert ds.timestamps.tolist() == [[100, 200, 300, 300], [10, 150, 150, 260]]
    assert _vals(ds.items["title"]) == ["Dune's Child", None, "Heat", None]
    assert _vals(ds.items["description"]) == ["A desert book", None, "Two men. One city.", None]
    assert _vals(ds.items["image"]) == ["http://img/a1.jpg", None, "http://big/b1", None]
    assert ds.notes["import"]["k_core"] == 2
    st = ds.stats()
    assert st["all"]["users_in_both_domains"] == 2


def test_users_need_both_domains_only_when_asked(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    ds = import_amazon(a, b, k_core=2, min_per_domain=0)
    # u4 keeps b1, b2 (2 reviews, Movies only), so b2 keeps u3 too; u5 still has a single review.
    assert list(ds.user_keys) == ["u1", "u2", "u3", "u4"]
    assert ds.items["key"].tolist() == ["a1", "a2", "b1", "b2", "b4"]
    by_user = dict(zip(ds.user_keys, ds.sequences.tolist(), strict=True))
    assert by_user["u4"] == [3, 4]
    assert by_user["u3"] == [4, 1]  # b2@50, a1@120
    dom = ds.item_domain
    for u in ds.user_keys[:3]:
        assert set(dom[by_user[u]]) == {0, 1}


def test_no_filter_keeps_every_deduplicated_review(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    ds = import_amazon(a, b, k_core=0, min_per_domain=0)
    assert len(ds.sequences.values) == len(REVIEWS_A) + len(REVIEWS_B) - 2  # two repeats dropped
    assert ds.n_users == 5
    assert ds.notes["import"]["deduplicated_interactions"] == 15


def test_max_len_keeps_the_latest(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    ds = import_amazon(a, b, k_core=2, max_len=3)
    assert ds.sequences.tolist() == [[3, 2, 4], [2, 1, 3]]
    assert ds.timestamps is not None
    assert ds.timestamps.tolist() == [[200, 300, 300], [150, 150, 260]]


def test_one_metadata_file_serves_two_categories(tmp_path: Path) -> None:
    reviews = [
        {"reviewerID": "u1", "asin": "p1", "unixReviewTime": 3},
        {"reviewerID": "u1", "asin": "m1", "unixReviewTime": 1},
        {"reviewerID": "u1", "asin": "x1", "unixReviewTime": 2},  # Music: in neither domain
        {"reviewerID": "u1", "asin": "nometa", "unixReviewTime": 2},  # unknown category: dropped
        {"reviewerID": "u1", "asin": "both", "unixReviewTime": 4},  # in both categories: domain A
        {"reviewerID": "u2", "asin": "p1", "unixReviewTime": 1},  # u2 has no Movies: dropped
    ]
    meta = [
        "{'asin': 'p1', 'title': 'Paper', 'categories': [['Books', 'Poetry']]}",
        "{'asin': 'm1', 'title': 'Film', 'categories': [['Movies & TV', 'Drama'], ['Gifts']]}",
        "{'asin': 'x1', 'title': 'Song', 'categories': [['Music']]}",
        "{'asin': 'both', 'title': 'Box set', 'categories': [['Books'], ['Movies & TV']]}",
    ]
    rv = _write_lines(tmp_path / "reviews.json.gz", [json.dumps(r) for r in reviews], gz=True)
    mt = _write_lines(tmp_path / "metadata.json.gz", meta, gz=True)
    ds = import_amazon(
        AmazonSource("Books", rv, mt, category="Books"),
        AmazonSource("Movies", rv, mt, category="Movies & TV"),
        k_core=1,
    )
    assert ds.items["key"].tolist() == ["both", "p1", "m1"]
    assert ds.items["domain"].tolist() == [0, 0, 1]
    assert _vals(ds.items["title"]) == ["Box set", "Paper", "Film"]
    assert list(ds.user_keys) == ["u1"]
    assert ds.sequences.tolist() == [[3, 2, 1]]  # m1@1, p1@3, both@4
    assert ds.notes["import"]["items_in_both_sources"] == 1


def test_suspicious_imports_are_said(tmp_path: Path, caplog) -> None:
    """Swapped metadata files, an item reviewed in both sources, and one reviews file given twice."""
    a, b = _sources(tmp_path)
    with caplog.at_level("WARNING", logger="temarec.data.amazon_raw"):
        import_amazon(a, b, k_core=2)
    assert not caplog.records
    swapped_a, swapped_b = AmazonSource("Books", a.reviews, b.meta), AmazonSource("Movies", b.reviews, a.meta)
    with caplog.at_level("WARNING", logger="temarec.data.amazon_raw"):
        ds = import_amazon(swapped_a, swapped_b, k_core=2)
    assert ds.items["title"].isna().all()
    assert "domain 'Books': none of its 3 reviewed items is in its metadata file" in caplog.text
    assert "domain 'Movies': none of its 4 reviewed items" in caplog.text and "swapped?" in caplog.text
    caplog.clear()
    extra = _write_lines(tmp_path / "b2.json", [json.dumps(r) for r in [*REVIEWS_B, REVIEWS_A[0]]])
    with caplog.at_level("WARNING", logger="temarec.data.amazon_raw"):
        import_amazon(a, AmazonSource("Movies", extra, b.meta), k_core=2)
    assert "1 item(s) are reviewed in both sources (e.g. a1); each is kept in domain 'Books'" in caplog.text
    with pytest.raises(ValueError, match="'Movies' has no items \\(the same reviews file twice"):
        import_amazon(a, AmazonSource("Movies", a.reviews, b.meta), k_core=2)


def test_category_filter_needs_metadata(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    with pytest.raises(ValueError, match="metadata"):
        import_amazon(AmazonSource("Books", a.reviews, None, "Books"), b)


@pytest.mark.parametrize(
    ("line", "field", "gz"),
    [
        ('{"reviewerID": "u9", "unixReviewTime": 5}', "asin", False),
        ('{"reviewerID": "u9", "asin": "a1", "unixReviewTime": "soon"}', "unixReviewTime", True),
        ('{"asin": "a1", "unixReviewTime": 5}', "reviewerID", False),
        ('{"reviewerID": "u9", "asin": "a1", "unixReviewTime": 5', None, True),
        ('["u9", "a1", 5]', None, False),
        # numbers int() takes or Python holds but int64 cannot: each is named, none is a traceback
        ('{"reviewerID": "u9", "asin": "a1", "unixReviewTime": "+-5"}', "unixReviewTime", False),
        ('{"reviewerID": "u9", "asin": "a1", "unixReviewTime": "\u00b2"}', "unixReviewTime", False),
        (
            '{"reviewerID": "u9", "asin": "a1", "unixReviewTime": 1180591620717411303424}',
            "unixReviewTime",
            False,
        ),
        ('{"reviewerID": "u9", "asin": "a1", "unixReviewTime": 1e25}', "unixReviewTime", False),
        ('{"reviewerID": "u9", "asin": "a1", "unixReviewTime": ' + "9" * 5000 + "}", None, False),
        ("[" * 100_000 + "]" * 100_000, None, False),
        # ids are matched exactly: edge whitespace or a control character is named here, with its line
        ('{"reviewerID": "u9 ", "asin": "a1", "unixReviewTime": 5}', "reviewerID", False),
        ('{"reviewerID": "u9", "asin": "a\\u00001", "unixReviewTime": 5}', "asin", False),
    ],
)
def test_malformed_review_line(tmp_path: Path, line: str, field: str | None, gz: bool) -> None:
    a, b = _sources(tmp_path)
    good = [json.dumps(r) for r in REVIEWS_B[:3]]
    bad = _write_lines(tmp_path / "bad_reviews.json", [good[0], "", good[1], line, good[2]], gz=gz)
    with pytest.raises(DataFormatError) as err:
        import_amazon(a, AmazonSource("Movies", bad, b.meta))
    assert err.value.line == 4  # blank line 2 still counts
    assert err.value.field == field
    assert "bad_reviews.json:4:" in str(err.value)
    if field:
        assert f"'{field}'" in str(err.value)


def test_malformed_metadata_line(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    meta = _write_lines(tmp_path / "bad_meta.json.gz", [META_A_2014[0], "{'title': 'no asin'}"], gz=True)
    with pytest.raises(DataFormatError) as err:
        import_amazon(AmazonSource("Books", a.reviews, meta), b)
    assert (err.value.line, err.value.field) == (2, "asin")
    assert "bad_meta.json.gz:2:" in str(err.value)


def test_literal_eval_never_runs_code(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    marker = tmp_path / "pwned"
    meta = _write_lines(tmp_path / "evil.json", [f"__import__('pathlib').Path({str(marker)!r}).touch()"])
    with pytest.raises(DataFormatError) as err:
        import_amazon(AmazonSource("Books", a.reviews, meta), b)
    assert err.value.line == 1
    assert not marker.exists()


def test_signed_text_times_bom_and_odd_metadata(tmp_path: Path) -> None:
    """'+100' is a time, a byte-order mark is not part of the first record, and metadata values that
    are not text (a dict, inf) count as missing rather than becoming a title like "{'a': 1}"."""
    a, b = _sources(tmp_path)
    rows = [dict(r) for r in REVIEWS_B]
    rows[0]["unixReviewTime"] = " +200 "
    lines = [json.dumps(r) for r in rows]
    reviews = tmp_path / "bom.json"
    reviews.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode())
    meta = _write_lines(
        tmp_path / "odd_meta.json",
        [
            json.dumps({"asin": "b1", "title": {"a": 1}, "description": "ok"}),
            '{"asin": "b4", "title": 7, "description": Infinity}',
        ],
    )
    ds = import_amazon(a, AmazonSource("Movies", reviews, meta), k_core=2)
    titles = dict(zip(ds.items["key"], _vals(ds.items["title"]), strict=True))
    descs = dict(zip(ds.items["key"], _vals(ds.items["description"]), strict=True))
    assert (titles["b1"], descs["b1"]) == (None, "ok")
    assert (titles["b4"], descs["b4"]) == ("7", None)
    assert ds.timestamps is not None and ds.timestamps.tolist()[0] == [100, 200, 300, 300]


def test_empty_review_file_says_so(tmp_path: Path) -> None:
    a, b = _sources(tmp_path)
    empty = _write_lines(tmp_path / "empty.json", ["", "  "])
    with pytest.raises(DataFormatError, match=r"empty\.json: no reviews"):
        import_amazon(a, AmazonSource("Movies", empty, b.meta))
