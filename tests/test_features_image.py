"""Visual features: a tiny random CLIP saved to a temp folder, and precomputed vector files (bad ones too)."""

from __future__ import annotations

import numpy as np
import pytest

from temarec.config import FeaturesConfig
from temarec.data.dataset import CDDataset, make_items_frame
from temarec.data.ragged import Ragged
from temarec.features import image as fi
from temarec.features.build import build_item_features
from temarec.features.image import ImageFeatureError, load_precomputed

IMG_ONLY = dict(use_text=False, use_tags=False, progress=False, device="cpu")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised CLIP (32-d towers, 2 layers, 32 px images, 16-d projection) on disk."""
    pytest.importorskip("PIL", reason="CLIP image features need pillow ([vision] extra)")
    transformers = pytest.importorskip("transformers", reason="CLIP image features need transformers")
    import torch

    tc = transformers.CLIPTextConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=99,
        max_position_embeddings=16,
    )
    vc = transformers.CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    cfg = transformers.CLIPConfig(text_config=tc.to_dict(), vision_config=vc.to_dict(), projection_dim=16)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-clip")
    transformers.CLIPModel(cfg).save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


def _dataset(folder, images: list) -> CDDataset:
    n = len(images)
    items = make_items_frame(
        [f"k{i}" for i in range(1, n + 1)],
        np.array([0] * (n // 2) + [1] * (n - n // 2)),
        titles=[f"item {i}" for i in range(1, n + 1)],
        images=images,
    )
    seqs = Ragged.from_lists([[1, n], [2, n - 1]])
    return CDDataset("imgs", ("A", "B"), items, np.array(["u1", "u2"]), seqs, source=str(folder))


@pytest.fixture
def img_dataset(tmp_path):
    """Items 1-3 and 7 have PNGs (7 a copy of 1), 4 a missing file, 5 a corrupt file, 6 none, 8 a URL."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    for i, size in zip((1, 2, 3), ((40, 50), (32, 32), (64, 20)), strict=True):
        arr = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / "img" / f"{i}.png")
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png at all")
    images = [
        "img/1.png",
        str(tmp_path / "img" / "2.png"),  # absolute
        "img/3.png",
        "img/missing.png",
        "img/broken.png",
        None,
        "img/1.png",
        "https://example.com/x.jpg",
    ]
    return _dataset(tmp_path, images)


def test_clip_features_shapes_mask_cache_and_determinism(tiny_clip, img_dataset, monkeypatch, tmp_path):
    cfg = FeaturesConfig(image_model=str(tiny_clip), tags=None)
    feats, rep = build_item_features(img_dataset, cfg, **IMG_ONLY)
    assert feats.image.shape == (9, 16) and feats.image.dtype == np.float32
    assert feats.image_mask.tolist() == [False, True, True, True, False, False, False, True, False]
    np.testing.assert_allclose(np.linalg.norm(feats.image[feats.image_mask], axis=1), 1.0, atol=1e-5)
    assert np.all(feats.image[~feats.image_mask] == 0)
    np.testing.assert_array_equal(feats.image[7], feats.image[1])  # same bytes, same vector
    assert not np.allclose(feats.image[1], feats.image[2])
    info = rep.modalities["image"]
    assert info["missing_file"] == 1 and info["unreadable"] == 1
    assert info["no_image_field"] == 1 and info["url_not_fetched"] == 1
    assert info["computed"] == 3 and info["cached"] == 0 and info["items"] == 4
    assert feats.source.startswith("image=clip:tiny-clip")

    # the vectors are CLIP's own projected image embeddings
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(tiny_clip).eval()
    proc = CLIPImageProcessor.from_pretrained(tiny_clip)
    import torch

    with torch.no_grad():
        out = model.get_image_features(
            **proc(images=[Image.open(tmp_path / "img/3.png")], return_tensors="pt")
        )
    ref = (out if torch.is_tensor(out) else out.pooler_output)[0].numpy()
    np.testing.assert_allclose(feats.image[3], ref / np.linalg.norm(ref), atol=1e-5)

    # a rebuild reads hashes from the cache and loads no model
    def no_model(*a, **k):
        raise AssertionError("the CLIP model must not be loaded on a cache hit")

    monkeypatch.setattr(fi, "ClipImageEncoder", no_model)
    again, rep2 = build_item_features(img_dataset, cfg, **IMG_ONLY)
    assert rep2.modalities["image"]["cached"] == 4 and rep2.modalities["image"]["computed"] == 0
    np.testing.assert_array_equal(again.image, feats.image)
    np.testing.assert_array_equal(again.image_mask, feats.image_mask)


def test_clip_recompute_is_deterministic(tiny_clip, img_dataset, monkeypatch, tmp_path):
    cfg = FeaturesConfig(image_model=str(tiny_clip), tags=None)
    first, _ = build_item_features(img_dataset, cfg, **IMG_ONLY)
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(tmp_path / "fresh"))  # empty cache: computed again
    second, rep = build_item_features(img_dataset, cfg, **IMG_ONLY)
    assert rep.modalities["image"]["computed"] == 3
    np.testing.assert_allclose(second.image, first.image, atol=1e-6)


def test_clip_errors_name_the_folder(tmp_path, img_dataset):
    cfg = FeaturesConfig(image_model=str(tmp_path / "nope"), tags=None)
    with pytest.raises(ImageFeatureError, match="not a local folder"):
        build_item_features(img_dataset, cfg, **IMG_ONLY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageFeatureError, match="no config.json"):
        fi.ClipImageEncoder(tmp_path / "empty")


def test_no_image_source_turns_the_modality_off(img_dataset):
    feats, rep = build_item_features(img_dataset, FeaturesConfig(tags=None), **IMG_ONLY)
    assert feats.image is None and "off" in rep.modalities["image"]["notes"][0]
    both = FeaturesConfig(tags=None, image_model="x", image_features="y.npy")
    with pytest.raises(ValueError, match="not both"):
        build_item_features(img_dataset, both, **IMG_ONLY)


# ---- precomputed files ------------------------------------------------------------------------------
def test_precomputed_npy_rows_zero_rows_and_normalisation(tmp_path, img_dataset):
    n = img_dataset.n_items
    vecs = np.arange(n * 3, dtype=np.float64).reshape(n, 3) + 1
    vecs[5] = 0  # item 6: no image
    np.save(tmp_path / "v.npy", vecs)
    feats, rep = build_item_features(
        img_dataset, FeaturesConfig(tags=None, image_features=str(tmp_path / "v.npy")), **IMG_ONLY
    )
    assert feats.image.shape == (n + 1, 3) and feats.image_mask.sum() == n - 1 and not feats.image_mask[6]
    np.testing.assert_allclose(feats.image[2], vecs[1] / np.linalg.norm(vecs[1]), rtol=1e-6)
    assert (
        feats.source.startswith("image=file:v.npy@") and rep.modalities["image"]["items_without_image"] == 1
    )
    np.save(tmp_path / "p.npy", np.vstack([np.full((1, 3), 9.0), vecs]))  # with a padding row 0
    arr, mask, _, _ = load_precomputed(tmp_path / "p.npy", img_dataset)
    np.testing.assert_array_equal(arr, feats.image)
    assert not mask[0]


def test_precomputed_malformed_files_fail_clearly(tmp_path, img_dataset):
    n = img_dataset.n_items
    np.save(tmp_path / "rows.npy", np.ones((n - 1, 4), np.float32))
    with pytest.raises(ImageFeatureError, match=rf"rows\.npy.*has {n - 1} rows.*{n} items"):
        load_precomputed(tmp_path / "rows.npy", img_dataset)
    bad = np.ones((n, 4), np.float32)
    bad[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ImageFeatureError, match=r"nan\.npy: 1 rows .* NaN .*rows \[2\]"):
        load_precomputed(tmp_path / "nan.npy", img_dataset)
    np.save(tmp_path / "flat.npy", np.ones(n, np.float32))
    with pytest.raises(ImageFeatureError, match="flat.npy.*2-d"):
        load_precomputed(tmp_path / "flat.npy", img_dataset)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * n, dtype=object), allow_pickle=True)
    with pytest.raises(ImageFeatureError, match="obj.npy: cannot read"):  # never unpickled
        load_precomputed(tmp_path / "obj.npy", img_dataset)
    (tmp_path / "v.csv").write_text("1,2\n")
    with pytest.raises(ImageFeatureError, match=r"\.npy, \.npz or \.safetensors"):
        load_precomputed(tmp_path / "v.csv", img_dataset)
    with pytest.raises(ImageFeatureError, match="not found"):
        load_precomputed(tmp_path / "absent.npy", img_dataset)


def test_precomputed_npz_mapping_by_item_key(tmp_path, img_dataset):
    keys = np.array(["k3", "k1", "zzz"])
    np.savez(tmp_path / "m.npz", keys=keys, vectors=np.eye(3, 5, dtype=np.float32) * 2)
    arr, mask, _, info = load_precomputed(tmp_path / "m.npz", img_dataset)
    assert np.flatnonzero(mask).tolist() == [1, 3] and info["unknown_keys"] == 1
    np.testing.assert_array_equal(arr[3], np.eye(5)[0])
    np.testing.assert_array_equal(arr[1], np.eye(5)[1])
    np.savez(tmp_path / "none.npz", keys=np.array(["x", "y"]), vectors=np.ones((2, 5)))
    with pytest.raises(ImageFeatureError, match="none of its 2 keys"):
        load_precomputed(tmp_path / "none.npz", img_dataset)
    np.savez(tmp_path / "dup.npz", keys=np.array(["k1", "k1"]), vectors=np.ones((2, 5)))
    with pytest.raises(ImageFeatureError, match="duplicate"):
        load_precomputed(tmp_path / "dup.npz", img_dataset)
    # keys from a pandas column are often dtype=object: refused (never unpickled), with the fix named
    np.savez(tmp_path / "obj.npz", keys=np.array(["k1"], dtype=object), vectors=np.ones((1, 5)))
    with pytest.raises(ImageFeatureError, match=r"obj\.npz: cannot read.*\.astype\(str\)"):
        load_precomputed(tmp_path / "obj.npz", img_dataset)


def test_precomputed_safetensors_with_mask(tmp_path, img_dataset):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    n = img_dataset.n_items
    mask = torch.ones(n, dtype=torch.bool)
    mask[0] = False
    save_file({"image": torch.ones(n, 6, dtype=torch.float16), "mask": mask}, str(tmp_path / "v.safetensors"))
    arr, m, src, _ = load_precomputed(tmp_path / "v.safetensors", img_dataset)
    assert arr.shape == (n + 1, 6) and arr.dtype == np.float32 and m.tolist() == [False, False] + [True] * 7
    assert src.startswith("file:v.safetensors@")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ImageFeatureError, match="junk.safetensors: cannot read"):
        load_precomputed(tmp_path / "junk.safetensors", img_dataset)
