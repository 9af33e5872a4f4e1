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
