"""The three shared datasets load with the counts their README gives; malformed files fail precisely."""

import json

import numpy as np
import pytest

from temarec.data.errors import DataFormatError
from temarec.data.loaders import load_abxi, load_llmcdsr, load_urllm
from temarec.data.registry import load_dataset


def test_amazon_food_kitchen_counts(afk):
    st = afk.stats()
    assert st["all"] == {
        "items": 28095,
        "items_with_title": 23357,
        "users": 7144,
        "interactions": 173548,
        "users_in_both_domains": 7144,
    }
    assert st["domains"]["Food"]["items"] == 11837 and st["domains"]["Food"]["items_with_title"] == 7601
    assert (
        st["domains"]["Kitchen"]["items"] == 16258 and st["domains"]["Kitchen"]["items_with_title"] == 15756
    )
    info = afk.info()
    assert info.domain_offset == (1, 11838) and info.domain_size == (11837, 16258)
    assert (np.diff(afk.sequences.lengths) != 0).any() and afk.sequences.lengths.max() <= 50
    # every user has at least 5 interactions in each domain
    dom = afk.item_domain[afk.sequences.values]
    per = np.zeros((afk.n_users, 2), dtype=int)
    np.add.at(per, (afk.sequences.row_ids(), dom), 1)
    assert per.min() >= 5


def test_timestamps_sorted_and_ties_keep_file_order(afk):
    ts = afk.timestamps
    same_user = np.diff(ts.row_ids()) == 0
    assert (np.diff(ts.values)[same_user] >= 0).all()
    assert afk.sequences.row(0)[:3].tolist() == [821, 1860, 2986]  # first line of interactions.txt


def test_amazon_art_office_counts(need_real):
    ds = load_urllm(need_real("amazon-art-office"))
    st = ds.stats()
    assert st["domains"]["Art"]["items"] == 18639 and st["domains"]["Office"]["items"] == 19757
    assert st["users_per_file"] == {"train": 8000, "valid": 577, "test": 1000}
    assert st["all"]["users"] == 9577
    sp = ds.published_split
    assert len(sp.train) == 16000 and len(sp.valid) == 1154 and len(sp.test) == 2000
    # two lines (two targets) per evaluated user, sharing one history
    assert (np.bincount(sp.test.users)[sp.test.users] == 2).all()
    assert np.bincount(sp.test.target_domain).tolist() == [1050, 950]
    assert ds.items.loc[1, "description"].startswith("arts crafts sewing")


def test_llmcdsr_counts(need_real):
    ds = load_llmcdsr(need_real("llmcdsr-food-kitchen"))
    st = ds.stats()
    assert st["domains"]["Food"]["items"] == 8661 and st["domains"]["Kitchen"]["items"] == 27637
    assert st["users_per_file"] == {
        "train_A": 5472,
        "train_B": 38191,
        "train_overlap": 7501,
        "valid": 960,
        "test": 937,
    }
    sp = ds.published_split
    assert len(sp.valid) == 960 and len(sp.test) == 937
    assert ds.items["title"].notna().all()


def test_registry_finds_by_name_and_path(need_real):
    folder = need_real("amazon-food-kitchen")
    assert load_dataset("amazon-food-kitchen").domains == ("Food", "Kitchen")
    assert load_dataset(str(folder)).n_items == 28095
    with pytest.raises(FileNotFoundError, match="not found"):
        load_dataset("no-such-dataset")


# ---- malformed ABXI files ---------------------------------------------------------------------------
def _abxi(tmp_path, lines: str, item_map=None):
    (tmp_path / "item_map.json").write_text(json.dumps(item_map or {"a": [1, 0], "b": [2, 0], "c": [3, 1]}))
    (tmp_path / "interactions.txt").write_text(lines)
    return tmp_path


@pytest.mark.parametrize(
    ("lines", "line", "field"),
    [
        ("0 1|10 3|20\n1 2|5 1-7\n", 2, "item|timestamp"),  # a bad token
        ("0 1|10 3|20\n1 2|5 9|7\n", 2, "item"),  # unknown item id
        ("0 1|10 3|20\n\n2 2|5 3|later\n", 3, "timestamp"),  # non-numeric timestamp
        ("x 1|10\n", 1, "uid"),
    ],
)
def test_malformed_abxi_names_file_line_field(tmp_path, lines, line, field):
    folder = _abxi(tmp_path, lines)
    with pytest.raises(DataFormatError) as err:
        load_abxi(folder)
    e = err.value
    assert e.path.endswith("interactions.txt") and e.line == line and e.field == field
    assert f"interactions.txt:{line}" in str(e) and field in str(e)


def test_empty_file_is_an_error(tmp_path):
    folder = _abxi(tmp_path, "")
    with pytest.raises(DataFormatError, match="interactions.txt.*empty"):
        load_abxi(folder)


def test_bad_item_map_is_an_error(tmp_path):
    folder = _abxi(tmp_path, "0 1|1\n", item_map={"a": [1, 1], "b": [2, 0]})
    with pytest.raises(DataFormatError, match="item_map.json"):
        load_abxi(folder)


def test_malformed_c2dsr_line(tmp_path, need_real):
    import shutil

    src = need_real("amazon-art-office")
    for f in ("item_listA_F.csv", "item_listO_AA_F.csv", "valid_F2.txt", "test_F2.txt"):
        shutil.copy(src / f, tmp_path / f)
    (tmp_path / "train_F2.txt").write_text("0\t2\t0|0|0\t1|1|1\t5|2|2\n0\t3\t0|0|0\t1|1|1\t5|2|2\n")
    with pytest.raises(DataFormatError) as err:
        load_urllm(tmp_path)
    assert err.value.line == 2 and err.value.field == "n" and "train_F2.txt:2" in str(err.value)


# ---- text rules shared with the canonical format ----------------------------------------------------
def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("temarec.data")]


def _urllm(tmp_path, train: str = "0\t1\t0|0|0\t2|1|1\n"):
    """A tiny URLLM folder: items 0-1 in domain A, 2-3 in B; one user line per file."""
    head = "idBefore,item_title,idAfter,item_attribute\n"
    (tmp_path / "item_listA_F.csv").write_text(head + "x0,Tea,0,food\nx1,Jam,1,food\n", encoding="utf-8")
    (tmp_path / "item_listO_AA_F.csv").write_text(head + "y0,Pan,2,pots\ny1,Pot,3,pots\n", encoding="utf-8")
    (tmp_path / "train_F2.txt").write_text(train, encoding="utf-8")
    (tmp_path / "valid_F2.txt").write_text("1\t1\t1|0|0\t3|1|1\n", encoding="utf-8")
    (tmp_path / "test_F2.txt").write_text("2\t1\t0|0|0\t3|1|1\n", encoding="utf-8")
    return tmp_path


def _llmcdsr(tmp_path, valid: str = "3\t0,2\n"):
    """A tiny LLMCDSR folder: two items per domain, one user per file."""
    (tmp_path / "num.txt").write_text("2\n2\n")
    (tmp_path / "item_set_A.json").write_text(json.dumps({"a0": 0, "a1": 1}))
    (tmp_path / "item_set_B.json").write_text(json.dumps({"b0": 0, "b1": 1}))
    for name, line in [("train_A", "0\t0,1\n"), ("train_B", "1\t2,3\n"), ("train_overlap", "2\t0,3\n")]:
        (tmp_path / f"{name}.txt").write_text(line)
    (tmp_path / "valid.txt").write_text(valid)
    (tmp_path / "test.txt").write_text("4\t1,3\n")
    return tmp_path


def test_tiny_urllm_and_llmcdsr_folders_load(tmp_path, caplog):
    """The folders the tests below break load as they are, without a warning."""
    (tmp_path / "u").mkdir()
    (tmp_path / "l").mkdir()
    with caplog.at_level("WARNING"):
        assert load_urllm(_urllm(tmp_path / "u")).n_items == 4
        assert load_llmcdsr(_llmcdsr(tmp_path / "l")).n_users == 5
    assert _messages(caplog) == []


def test_text_files_that_are_not_utf8_name_the_line(tmp_path):
    folder = _abxi(tmp_path, "0 1|10\n1 2|5\n")
    (folder / "interactions.txt").write_bytes("0 1|10\n1 2|5 caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataFormatError) as err:
        load_abxi(folder)
    assert (
        str(err.value)
        == f"{folder / 'interactions.txt'}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )
    assert err.value.line == 2

    (folder / "interactions.txt").write_text("0 1|10\n")
    (folder / "item_map.json").write_bytes('{"a": [1, 0],\n "\u00e9": [2, 1]}'.encode("latin-1"))
    with pytest.raises(DataFormatError) as err:
        load_abxi(folder)
    assert (
        str(err.value) == f"{folder / 'item_map.json'}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


def test_a_utf16_text_file_without_a_byte_order_mark_is_named(tmp_path):
    folder = _llmcdsr(tmp_path)
    (folder / "num.txt").write_bytes((folder / "num.txt").read_text().encode("utf-16-le"))
    with pytest.raises(
        DataFormatError, match="num.txt:1: NUL bytes in the first line: the file looks like UTF-16"
    ):
        load_llmcdsr(folder)


def test_a_urllm_item_list_that_is_not_utf8_names_the_line(tmp_path):
    folder = _urllm(tmp_path)
    path = folder / "item_listO_AA_F.csv"
    path.write_bytes(path.read_text().replace("Pot", "Po\u00eale").encode("latin-1"))
    with pytest.raises(DataFormatError) as err:
        load_urllm(folder)
    assert str(err.value) == f"{path}:3: not UTF-8 text (byte 0xea); save the file as UTF-8"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("b ", "'b ' has whitespace at its start or end; item keys are matched exactly, so remove it"),
        ("b\x00", "'b\\x00' contains the control character U+0000; item keys must be printable text"),
    ],
)
def test_abxi_item_keys_follow_the_canonical_rules(tmp_path, key, reason):
    folder = _abxi(tmp_path, "0 1|10 3|20\n", item_map={"a": [1, 0], key: [2, 0], "c": [3, 1]})
    with pytest.raises(DataFormatError) as err:
        load_abxi(folder)
    assert str(err.value) == f"{folder / 'item_map.json'}: item key {reason}"


def test_llmcdsr_item_keys_follow_the_canonical_rules(tmp_path):
    folder = _llmcdsr(tmp_path)
    (folder / "item_set_B.json").write_text(json.dumps({"b0": 0, "\tb1": 1}))
    with pytest.raises(DataFormatError) as err:
        load_llmcdsr(folder)
    assert str(err.value) == (
        f"{folder / 'item_set_B.json'}: item key '\\tb1' contains the control character U+0009; "
        "item keys must be printable text"
    )


def test_user_ids_with_spaces_around_them_are_refused(tmp_path):
    """URLLM and LLMCDSR keep a user id as written: ' 5' and '5' would be two users."""
    (tmp_path / "u").mkdir()
    folder = _urllm(tmp_path / "u", train="0\t1\t0|0|0\t2|1|1\n 0\t1\t0|0|0\t3|1|1\n")
    with pytest.raises(DataFormatError) as err:
        load_urllm(folder)
    assert str(err.value) == (
        f"{folder / 'train_F2.txt'}:2: field 'uid' value ' 0' has whitespace at its start or end; "
        "user ids are matched exactly, so remove it"
    )
    (tmp_path / "l").mkdir()
    folder = _llmcdsr(tmp_path / "l", valid="3 \t0,2\n")
    with pytest.raises(DataFormatError) as err:
        load_llmcdsr(folder)
    assert (err.value.line, err.value.field) == (1, "uid")
    assert str(err.value).startswith(f"{folder / 'valid.txt'}:1: field 'uid' value '3 ' has whitespace")


def test_nul_in_titles_is_removed_with_a_warning(tmp_path, caplog):
    folder = _abxi(tmp_path, "0 1|10 3|20\n")
    (folder / "item_titles.json").write_text(json.dumps({"a": "Te\u0000a", "c": "Pan"}))
    with caplog.at_level("WARNING", logger="temarec.data.loaders"):
        ds = load_abxi(folder)
    assert ds.items["title"].tolist()[:1] == ["Tea"] and ds.items["title"].tolist()[2] == "Pan"
    assert _messages(caplog) == [
        f"{folder / 'item_titles.json'}: 'title' has NUL characters (1 value, first for item 'a'); "
        "they are removed"
    ]


def test_negative_abxi_timestamps_warn(tmp_path, caplog):
    folder = _abxi(tmp_path, "0 1|10 3|20\n1 2|5 3|-1 1|-3\n")
    with caplog.at_level("WARNING", logger="temarec.data.loaders"):
        ds = load_abxi(folder)
    assert ds.timestamps.tolist() == [[10, 20], [-3, -1, 5]]
    assert _messages(caplog) == [
        f"{folder / 'interactions.txt'}: negative timestamps: 2 (first at line 2: -3); a time before 1970 "
        "is usually a missing-time marker or a sign error, and histories are ordered by the raw numbers, so "
        "these come first"
    ]


@pytest.mark.parametrize(
    ("name", "loader"),
    [
        ("amazon-food-kitchen", load_abxi),
        ("amazon-art-office", load_urllm),
        ("llmcdsr-food-kitchen", load_llmcdsr),
    ],
)
def test_the_shared_datasets_load_without_warnings(need_real, caplog, name, loader):
    with caplog.at_level("WARNING"):
        loader(need_real(name))
    assert _messages(caplog) == []
