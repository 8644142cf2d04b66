"""Cold start without retraining: new items and new users scored by the trained GNN, beside
content baselines, on the same splits, in one run.

    python benchmarks/cold_start.py                                  # ML-100K + Last.fm, model defaults
    python benchmarks/cold_start.py --datasets ml100k --epochs 20 --threads 1
    python benchmarks/cold_start.py --quick                          # 10 epochs, smaller timing samples
    python benchmarks/cold_start.py --throughput-only --threads 1    # only the add_items / items-per-second lines
    python benchmarks/cold_start.py --opt cold_item_weight=0 --opt id_dropout=0.5   # TrainConfig overrides

Protocols (seed 0 throughout)
-----------------------------
``cold_items``: ``kg.split("cold_items", test=0.2, seed=0)`` holds out 20% of the items with all
their interactions. The held-out items are then *removed as nodes* from the training graph
(their rows, every triple that names them, their text features, and entities that only they
referenced), so the model has never seen them. A further random 10% of the remaining (warm)
interactions per user is held out as the *warm test* (for the warm-stability check); every
model trains on the other 90%. After ``Recommender.fit``, the held-out items come back through
``rec.add_items(items, triples=...)`` with their rows from the full graph (``item_id``,
``name``, ``text``) and every triple of the full graph that names them (attributes, tags, KG
links). Metrics on the held-out items' interactions, users with at least one of them:
    (a) ranking among all items the user did not interact with in training (warm + cold);
    (b) ranking among the cold items only (``candidates=`` the cold ids).

``cold_users``: ``kg.split("cold_users", test=0.2, seed=0)``; the held-out users are removed
as nodes the same way (their rows, their attribute and friend triples), the model trains on
the rest, and the users come back through ``rec.add_users`` given
    (i)   only their attributes (ML-100K: age, gender, occupation, zip). HetRec Last.fm has no
          user attributes; its row uses the users' friend links (FRIEND_OF triples) instead;
    (ii)  only their first 3 interactions (by timestamp; Last.fm has none: file order);
    (iii) both.
Every row is scored on the same targets: each user's interactions after the first 3, with
those 3 excluded from the ranking (users with fewer than 4 interactions are dropped, counted).
The row ``kgrec: item bias alone`` ranks by the trained model's item bias only (its popularity
prior, the part of every score that does not depend on the user): a variant below it gains
nothing from what the new user brings.

Baselines (same splits, same :func:`kgrec.evaluation.evaluate`)
----------------------------------------------------------------
- ``text-kNN`` (:class:`kgrec.baselines.TextKNN`): user profile = mean L2-normalised LM
  embedding of the items the user interacted with in training, cosine to every candidate
  item's LM embedding (the same all-MiniLM-L6-v2 features kgrec reads). A user with no
  interactions (cold users, variant i) falls back to their own text embedding.
- ``popularity``: training interaction counts. Every cold item has count 0, so among cold
  items it carries no information: ties are broken by a seeded random permutation, i.e. in
  mode (b) it *is* a random ranking (it is the row to beat for "better than nothing").
- ``linmap``: a LinMap/DeepMusic-style content baseline: ridge regression from the warm items'
  LM features to kgrec's own trained warm item representations, applied to the cold items'
  features (users keep kgrec's representations), with no calibration factor. kgrec's own new
  items average such a map (fitted on its warm items minus its calibration items) with the
  GNN's inductive pass (text + edges to known nodes); this row is the map alone, on all warm
  items. A DropoutNet-style baseline
  proper (a second network trained with input dropout) is not run: kgrec's own ID dropout is
  that idea inside the model, and a separate network would double the training time.
- kgrec ablations at add time (same trained model): ``text only`` (the new items' triples are
  not given), ``edges only`` (zero text features), ``no calibration (s=1)`` (the cold-item
  factor of :func:`kgrec.train.calibration.calibrate_cold_items` undone) and ``no content map`` (the
  ridge map of :func:`kgrec.train.calibration.fit_content_map` left out, same factor). The
  calibration line also gives Recall@20 on the warm and cold test interactions together, new
  items ranked, with and without it: the trade between new items' and existing items' slots in
  one number (it weighs new items heavily: they have all their interactions in the test).

Warm stability: warm-test Recall@20 of the warm users before ``add_items``, after it with the
new items excluded from the candidates (must be identical: existing representations do not
change), and after it with the new items competing in the ranking (reported; it can only go
down, by how much the cold items push warm test items out of the top 20).

Throughput: ``add_items`` end to end (validation, cached text lookup, GNN, bookkeeping); the
GNN inductive pass alone (:func:`kgrec.cold_start.placement.embed_new_nodes` with precomputed text features) plus
the top-20 of every user over all items (warm + new, seen items masked) -- the target's
"cold items per second" -- on the real cold batch and on a batch of ``--scale`` replicated
cold items (new ids) to show thousands at once; and the LM text encoding speed (texts/s,
the encoder's cache bypassed) apart.

Output: one table per data set and protocol, the warm and throughput lines, and the targets
(PASS/MISS) at the end; ``--json`` also writes every number.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import kgrec  # noqa: E402
from kgrec.settings import data_dir  # noqa: E402
from kgrec.cold_start.placement import NewNodeInputs, embed_new_nodes  # noqa: E402
from kgrec.cold_start.protocol import (both_modes, cold_share, first_interactions, item_counts, node_triples,  # noqa: E402
                                       pairs, popularity_scorer, ranking_metrics, remove_nodes)
from kgrec.evaluation import metrics_from_topk  # noqa: E402
from kgrec.knowledge_graph import KnowledgeGraph  # noqa: E402

K = 20
SEED = 0
TEST_FRACTION = 0.2
WARM_TEST_FRACTION = 0.1
FIRST_N = 3
DATASETS = ("ml100k", "lastfm")


# ---------------------------------------------------------------------- data and timing
def load_dataset(name: str, root: Path) -> KnowledgeGraph:
    if name == "ml100k":
        return kgrec.loaders.movielens(root / "ml-100k")
    if name == "lastfm":
        # without the users' tagged artists (user -> item triples, which kgrec reads as interactions):
        # a new node brings only what the protocol above says, and a new artist no users
        return kgrec.loaders.hetrec_lastfm(root / "hetrec2011-lastfm-2k", kg_dir=root / "lastfm-kgcn",
                                           tagged_artists=False)
    raise ValueError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})")


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


# ---------------------------------------------------------------------- models
def fit_kgrec(train: KnowledgeGraph, opts: dict[str, Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    rec = kgrec.Recommender(device="cpu", progress=sys.stderr.isatty(), **opts).fit(train)
    return rec, time.perf_counter() - t0


def fit_record(rec: Any, fit_s: float) -> dict[str, Any]:
    """What a kgrec fit did: its wall seconds, the early-stopped run's epochs and best epoch, the
    refit's epochs (0 without one) and the kept model's seconds per epoch."""
    stop, hist = rec.early_stopping_, rec.trained_.history
    return {"seconds": fit_s, "epochs_run": len(stop["history"]) if stop else len(hist),
            "best_epoch": stop["best_epoch"] if stop else rec.trained_.best_epoch,
            "refit_epochs": len(hist) if stop and stop["refit"] else 0,
            "s_per_epoch": float(np.mean([h["seconds"] for h in hist])) if hist else float("nan")}


def fit_text(fit: dict[str, Any]) -> str:
    refit = f", refit {fit['refit_epochs']} on all of train" if fit["refit_epochs"] else ""
    return (f"kgrec fit {fit['seconds']:.0f}s, {fit['epochs_run']} epochs (best {fit['best_epoch']}){refit}, "
            f"{fit['s_per_epoch']:.2f} s/epoch")


def linmap(feat_warm: np.ndarray, emb_warm: torch.Tensor, feat_new: np.ndarray, ridge: float = 1.0) -> torch.Tensor:
    """Ridge map from LM features to trained representations, applied to new items (L2-normalised)."""
    x = torch.as_tensor(feat_warm, dtype=torch.float64)
    y = emb_warm.double()
    w = torch.linalg.solve(x.T @ x + ridge * torch.eye(x.shape[1], dtype=torch.float64), x.T @ y)
    return torch.nn.functional.normalize((torch.as_tensor(feat_new, dtype=torch.float64) @ w).float(), dim=1)


# ---------------------------------------------------------------------- cold items
def run_cold_items(name: str, kg: KnowledgeGraph, opts: dict[str, Any], args, encoder) -> dict[str, Any]:
    """The cold_items protocol on ``kg``: accuracy rows, warm stability and throughput, or only
    the add_items and throughput lines with ``args.throughput_only`` (same split and model)."""
    from kgrec.cold_start.validation import prepare_new_nodes

    out: dict[str, Any] = {"dataset": name, "protocol": "cold_items"}
    split_train, split_test = kg.split("cold_items", test=TEST_FRACTION, seed=SEED)
    cold = sorted(split_train.cold_items)
    cold_set = set(cold)
    warm_graph = remove_nodes(split_train, "item", cold_set)
    fit_graph, warm_test = warm_graph.split("random", test=WARM_TEST_FRACTION, seed=SEED)
    fit_graph.features = warm_graph.features
    train_df = fit_graph.interactions
    cold_test = split_test.interactions
    out["counts"] = {"items": kg.num_items, "cold_items": len(cold), "warm_items": warm_graph.num_items,
                     "entities_removed": len(kg.entities) - len(warm_graph.entities),
                     "train_interactions": len(train_df), "warm_test_interactions": len(warm_test.interactions),
                     "cold_test_interactions": len(cold_test),
                     "cold_test_users": int(cold_test["user_id"].nunique())}
    print(f"# {name} cold_items: {len(cold):,} of {kg.num_items:,} items held out and removed as nodes "
          f"({out['counts']['entities_removed']:,} entities went with them); {len(train_df):,} train / "
          f"{len(warm_test.interactions):,} warm-test / {len(cold_test):,} cold-test interactions", flush=True)

    rec, fit_s = fit_kgrec(fit_graph, opts)
    out["fit"] = {**fit_record(rec, fit_s), "options": opts}
    print(f"# {name} cold_items: {fit_text(out['fit'])}", flush=True)
    warm_ids = rec.item_ids()
    n_warm = len(warm_ids)
    if not args.throughput_only:
        warm_before = rec.evaluate(warm_test, k=(K,))
        user_before, item_before = rec.user_emb_.clone(), rec.item_emb_.clone()

    items_table = kg.items[kg.items["item_id"].isin(cold_set)][["item_id", "name", "text"]].reset_index(drop=True)
    cold_trip = node_triples(kg, "item", cold_set)
    batch = prepare_new_nodes(rec.graph_, "item", items_table, triples=cold_trip)  # validation only, no change
    t0 = time.perf_counter()
    rec.add_items(items_table, triples=cold_trip)
    add_s = time.perf_counter() - t0
    report = {k: v for k, v in rec.graph_.report.items() if k.startswith("added_")}
    # again, on a copy, with every text cached and the LM loaded (update=True: the same rows again)
    again = copy.copy(rec)  # adding nodes replaces what it changes, so the copy's batch leaves rec alone
    add2_s, _ = median_time(lambda: again.add_items(items_table, triples=cold_trip, update=True), 1)
    update_change = float((again.item_emb_[n_warm:] - rec.item_emb_[n_warm:]).abs().max())
    out["add_items"] = {"seconds": add_s, "items": len(cold), "items_per_s": len(cold) / add_s,
                        "warm_seconds": add2_s, "warm_items_per_s": len(cold) / add2_s, "report": report,
                        "update_same_rows_max_change": update_change}
    if update_change > 0:
        print(f"# NOTE {name}: add_items(update=True) with the same rows changed the new items' embeddings by up to "
              f"{update_change:.3g}", flush=True)

    # the inductive pass alone, on precomputed text features (what the ablations and the throughput time)
    item_row = pd.Index(kg.items["item_id"].astype(str))
    x_cold = np.asarray(kg.features["item"])[item_row.get_indexer(batch.ids)]
    _, ent_batch = batch.inputs(encoder)

    def embed(x_items, use_edges=True, ids=None, triples=batch.triples):
        res = embed_new_nodes(rec.trained_, items=NewNodeInputs(ids or batch.ids, x_items),
                              entities=ent_batch if use_edges else None, triples=triples if use_edges else None)
        return res.items.detach().float().cpu()

    out["embed_matches_add_items"] = bool(torch.allclose(embed(x_cold), rec.item_emb_[n_warm:], atol=1e-5))
    if not args.throughput_only:
        drift = float((rec.item_emb_[:n_warm] - item_before).abs().max()) if n_warm else 0.0
        drift = max(drift, float((rec.user_emb_ - user_before).abs().max()))
        out["warm"] = {"before": warm_before, "after_new_excluded": rec.evaluate(warm_test, k=(K,), candidates=warm_ids),
                       "after_new_included": rec.evaluate(warm_test, k=(K,)),
                       "max_abs_change_of_existing_embeddings": drift}
        out.update(cold_items_accuracy(name, kg, rec, split_train, train_df, cold_test, warm_test.interactions,
                                       cold, warm_ids, batch.ids, x_cold, embed))
    out["throughput"] = cold_items_throughput(rec, batch, cold, x_cold, embed, items_table, encoder, args)
    return out


def cold_items_accuracy(name: str, kg: KnowledgeGraph, rec, split_train: KnowledgeGraph, train_df: pd.DataFrame,
                        cold_test: pd.DataFrame, warm_test: pd.DataFrame, cold: list[str], warm_ids: list[str],
                        batch_ids: list[str], x_cold: np.ndarray, embed: Callable[..., torch.Tensor]) -> dict[str, Any]:
    """kgrec (public API, cross-checked from recommend() lists), add-time ablations and the
    baselines in modes (a) and (b), and the cold-item calibration against none (factor 1):
    ``{"rows": ..., "recommend_check": ..., "calibration": ...}``."""
    from kgrec.baselines import TextKNN

    kg_rows: dict[str, dict] = {}
    kg_rows["kgrec"] = {"all": rec.evaluate(cold_test, k=(K,)), "cold": rec.evaluate(cold_test, k=(K,), candidates=cold)}
    kg_rows["kgrec"]["all"]["cold_share@20"] = cold_share(rec.user_emb_, rec.item_emb_, rec.user_index_, rec.item_index_,
                                                          train_df, sorted(set(cold_test["user_id"].astype(str))), cold)
    users_eval = sorted(set(cold_test["user_id"].astype(str)) & set(rec.user_ids()))
    check = {}
    for mode, cand in (("all", None), ("cold", cold)):
        top = rec.recommend(users_eval, k=K, candidates=cand)
        check[mode] = metrics_from_topk(top, pairs(cold_test)[lambda d: d["user_id"].isin(users_eval)], k=K)
    for m in ("all", "cold"):
        a, b = kg_rows["kgrec"][m]["recall@20"], check[m]["recall@20"]
        if abs(a - b) > 1e-6:  # ties: items with identical text and edges (ML-100K has duplicate titles)
            print(f"# NOTE {name}: evaluate() and recommend()+metrics_from_topk differ in mode {m} by {abs(a - b):.1e} "
                  f"({a:.5f} vs {b:.5f}); cold items with identical text and edges tie and are broken differently",
                  flush=True)

    n_warm = len(warm_ids)
    user_emb, user_ids = rec.user_emb_, rec.user_index_
    warm_item_emb = rec.item_emb_[:n_warm]

    def rows_for(cold_emb: torch.Tensor) -> dict[str, dict]:
        item_emb = torch.cat([warm_item_emb, cold_emb])
        ids = pd.Index(list(warm_ids) + list(batch_ids))
        return both_modes(user_emb, item_emb, user_ids, ids, train_df, cold_test, cold)

    # the calibration factor undone: new items at the inductive path's own scale
    factor = float(rec.trained_.model.cold_item_scale())
    new_emb = rec.item_emb_[n_warm:]
    d = rec.trained_.model.dim  # the vectors end with the item bias (not scaled by s)
    unscaled = torch.cat([new_emb[:, :d] / factor, new_emb[:, d:]], 1)
    kg_rows["kgrec: no calibration (s=1)"] = rows_for(unscaled)
    if rec.trained_.model.use_text:  # the content map undone (same s): the GNN inductive path alone
        content_map = rec.trained_.model.cold_item_map.clone()
        rec.trained_.model.cold_item_map.zero_()
        try:
            kg_rows["kgrec: no content map"] = rows_for(embed(x_cold))
        finally:
            rec.trained_.model.cold_item_map.copy_(content_map)
    all_ids = pd.Index(list(warm_ids) + list(batch_ids))
    both_tests = pd.concat([pairs(warm_test), pairs(cold_test)], ignore_index=True)
    overall = {label: ranking_metrics(user_emb, torch.cat([warm_item_emb, emb]), user_ids, all_ids, train_df,
                                      both_tests)["recall@20"]
               for label, emb in (("calibrated", new_emb), ("s=1", unscaled))}
    # ablations at add time: same model, less input
    if rec.trained_.model.use_text:
        kg_rows["kgrec: text only at add"] = rows_for(embed(x_cold, use_edges=False))
        kg_rows["kgrec: edges only at add"] = rows_for(embed(np.zeros_like(x_cold)))
    item_row = pd.Index(kg.items["item_id"].astype(str))
    warm_feat = np.asarray(kg.features["item"])[item_row.get_indexer(list(warm_ids))]
    kg_rows["linmap (text->kgrec emb)"] = rows_for(linmap(warm_feat, warm_item_emb, x_cold))

    # baselines on the same id space: every item node, cold ones without interactions
    base_graph = replace(split_train, interactions=train_df.reset_index(drop=True), features=kg.features)
    tk = TextKNN(device="cpu").fit(base_graph)
    kg_rows["text-kNN"] = both_modes(tk.user_emb_, tk.item_emb_, tk.user_index_, tk.item_index_, train_df, cold_test, cold)
    pop_items = pd.Index(kg.items["item_id"].astype(str))
    pop = popularity_scorer(item_counts(pop_items, train_df))
    kg_rows["popularity (cold: random)"] = both_modes(None, None, user_ids, pop_items, train_df, cold_test, cold,
                                                      scorer=pop)
    return {"rows": kg_rows,
            "recommend_check": {m: {"recall@20": check[m]["recall@20"], "ndcg@20": check[m]["ndcg@20"]} for m in check},
            "calibration": {"factor": factor, "all_test_recall@20": overall}}


def cold_items_throughput(rec, batch, cold: list[str], x_cold: np.ndarray, embed: Callable[..., torch.Tensor],
                          items_table: pd.DataFrame, encoder, args) -> dict[str, Any]:
    """Cold items per second: the GNN inductive pass (precomputed text features) plus the
    top-20 of every user over all items, seen masked; on the real cold batch and on
    ``args.scale`` replicated cold items (new ids); the LM text encoding speed apart."""
    from kgrec.ranking import topk
    from kgrec.text_features import measure_throughput

    user_emb = rec.user_emb_
    n_warm = len(rec.item_ids()) - len(cold)
    users_all = torch.arange(len(rec.user_index_))
    t_embed, _ = median_time(lambda: embed(x_cold), args.repeats)
    seen = rec.seen_items()

    def top20(items: torch.Tensor, candidates: torch.Tensor | None = None):
        pool_t = (items if candidates is None else items[candidates]).T.contiguous()
        return topk(lambda u: user_emb[u] @ pool_t, users_all, K, len(items), seen=seen, candidates=candidates)

    t_topk, _ = median_time(lambda: top20(rec.item_emb_), args.repeats)
    cand_pos = torch.as_tensor(rec.item_index_.get_indexer(cold), dtype=torch.long)
    t_topk_cold, _ = median_time(lambda: top20(rec.item_emb_, cand_pos), args.repeats)
    thr = {"batch": len(cold), "embed_s": t_embed, "topk_all_users_s": t_topk, "topk_all_users_cold_only_s": t_topk_cold,
           "cold_items_per_s": len(cold) / (t_embed + t_topk), "users": len(users_all)}
    if args.scale > 0:  # a large batch: the cold items replicated under new ids (features, triples, entities shared)
        reps = max(1, int(np.ceil(args.scale / len(cold))))
        n_big = reps * len(cold)
        big_ids = [f"{i}#r{j}" for j in range(reps) for i in batch.ids]
        tr = batch.triples
        cold_set = set(cold)
        is_head = (tr["head_type"] == "item") & tr["head"].isin(cold_set)
        is_tail = (tr["tail_type"] == "item") & tr["tail"].isin(cold_set)
        big_trip = pd.concat([tr.assign(head=np.where(is_head, tr["head"] + f"#r{j}", tr["head"]),
                                        tail=np.where(is_tail, tr["tail"] + f"#r{j}", tr["tail"]))
                              for j in range(reps)], ignore_index=True)
        x_big = np.tile(x_cold, (reps, 1))
        t_big, big = median_time(lambda: embed(x_big, ids=big_ids, triples=big_trip), args.repeats)
        big_items = torch.cat([rec.item_emb_[:n_warm], big])
        t_big_topk, _ = median_time(lambda: top20(big_items), args.repeats)
        thr.update({"scaled_batch": n_big, "scaled_embed_s": t_big, "scaled_topk_all_users_s": t_big_topk,
                    "scaled_cold_items_per_s": n_big / (t_big + t_big_topk)})
    texts = items_table["text"].astype(str).tolist()[: args.text_sample]
    encoder.progress = False
    t_text = len(texts) / measure_throughput(encoder, texts) if texts else float("nan")
    thr.update({"text_sample": len(texts), "text_s": t_text, "texts_per_s": len(texts) / t_text if texts else float("nan")})
    thr["load_average"] = os.getloadavg()
    return thr


# ---------------------------------------------------------------------- cold users
def run_cold_users(name: str, kg: KnowledgeGraph, opts: dict[str, Any], args) -> dict[str, Any]:
    from kgrec.baselines import TextKNN

    out: dict[str, Any] = {"dataset": name, "protocol": "cold_users"}
    split_train, split_test = kg.split("cold_users", test=TEST_FRACTION, seed=SEED)
    cold = sorted(split_train.cold_users)
    cold_set = set(cold)
    graph = remove_nodes(split_train, "user", cold_set)
    held = split_test.interactions
    given, rest, order_used = first_interactions(held, FIRST_N)
    n_eval_users = rest["user_id"].nunique()
    out["counts"] = {"users": kg.num_users, "cold_users": len(cold), "cold_users_evaluated": int(n_eval_users),
                     "cold_users_dropped_too_few": len(cold) - int(n_eval_users),
                     "train_interactions": len(graph.interactions), "given": len(given), "targets": len(rest),
                     "first_by": order_used}
    print(f"# {name} cold_users: {len(cold):,} of {kg.num_users:,} users held out and removed as nodes; "
          f"given their first {FIRST_N} ({order_used}), {len(rest):,} target interactions of {n_eval_users:,} users",
          flush=True)
    rec, fit_s = fit_kgrec(graph, opts)
    out["fit"] = fit_record(rec, fit_s)
    print(f"# {name} cold_users: {fit_text(out['fit'])}", flush=True)

    users_table = kg.users[kg.users["user_id"].isin(cold_set)][["user_id", "name", "text"]].reset_index(drop=True)
    user_trip = node_triples(kg, "user", cold_set)
    has_attr = bool(((user_trip["head_type"] == "user") & (user_trip["tail_type"] == "entity")).any())
    side = "attributes" if has_attr else ("friend links (no user attributes in this data set)"
                                          if len(user_trip) else "nothing (no user attributes)")
    out["side_information"] = side
    eval_train = pd.concat([pairs(graph.interactions), pairs(given)], ignore_index=True)
    bare = users_table[["user_id"]]
    variants = {
        f"(i) {'attributes' if has_attr else 'friends'} only": dict(users=users_table, triples=user_trip),
        f"(ii) first {FIRST_N} interactions only": dict(users=bare, interactions=given),
        f"(iii) {'attributes' if has_attr else 'friends'} + first {FIRST_N}": dict(users=users_table, triples=user_trip,
                                                                                interactions=given),
    }
    rows: dict[str, dict] = {}
    for label, kw in variants.items():
        if kw.get("triples") is not None and len(kw["triples"]) == 0 and "interactions" not in kw:
            rows[f"kgrec {label}"] = {"skipped": "no side information"}
            continue
        r = copy.copy(rec)
        t0 = time.perf_counter()
        r.add_users(**kw)
        secs = time.perf_counter() - t0
        m = ranking_metrics(r.user_emb_, r.item_emb_, r.user_index_, r.item_index_, eval_train, rest)
        rows[f"kgrec {label}"] = {"all": m, "add_s": secs}
    if rec.trained_.model.item_bias is not None:
        # the new users' scores without their vectors: the item bias alone, the prior every user shares
        prior = rec.item_emb_[:, -1]
        rows["kgrec: item bias alone (no user vector)"] = {"all": ranking_metrics(
            None, None, pd.Index(cold), rec.item_index_, eval_train, rest, scorer=lambda u: prior.expand(len(u), -1))}
    # baselines
    all_nodes = replace(split_train, features=kg.features)
    tk_attr = TextKNN(device="cpu").fit(replace(all_nodes, interactions=graph.interactions.reset_index(drop=True)))
    rows["text-kNN (i) own text only"] = {"all": ranking_metrics(tk_attr.user_emb_, tk_attr.item_emb_, tk_attr.user_index_,
                                                                 tk_attr.item_index_, eval_train, rest)}
    tk_given = TextKNN(device="cpu").fit(replace(all_nodes, interactions=pd.concat(
        [graph.interactions, given], ignore_index=True)))
    rows[f"text-kNN (ii) first {FIRST_N}"] = {"all": ranking_metrics(tk_given.user_emb_, tk_given.item_emb_,
                                                                     tk_given.user_index_, tk_given.item_index_, eval_train, rest)}
    items = pd.Index(kg.items["item_id"].astype(str))
    pop = popularity_scorer(item_counts(items, graph.interactions))
    rows["popularity"] = {"all": ranking_metrics(None, None, pd.Index(cold), items, eval_train, rest, scorer=pop)}
    out["rows"] = rows
    return out


# ---------------------------------------------------------------------- printing
def _f(v: float | None, spec: str = "7.4f") -> str:
    width = int(spec.split(".")[0])
    return "-".rjust(width) if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def throughput_lines(res: dict[str, Any]) -> list[str]:
    """The add_items, inductive-pass throughput and text-encoding lines of a cold_items result."""
    lines = []
    t = res["throughput"]
    a = res["add_items"]
    lines.append(f"add_items end to end (validation, text lookup/encoding, GNN, bookkeeping): {a['items']:,} items in "
                 f"{a['seconds']:.2f}s = {a['items_per_s']:,.0f} items/s first call (LM load + new entity texts), "
                 f"{a['warm_seconds']:.2f}s = {a['warm_items_per_s']:,.0f} items/s again (all texts cached)")
    lines.append(f"GNN inductive pass + top-{K} of all {t['users']:,} users: {t['batch']:,} items in "
                 f"{t['embed_s'] * 1e3:.1f} + {t['topk_all_users_s'] * 1e3:.1f} ms = {t['cold_items_per_s']:,.0f} cold items/s"
                 f" (top-{K} among cold only: {t['topk_all_users_cold_only_s'] * 1e3:.1f} ms)")
    if "scaled_batch" in t:
        lines.append(f"  batch of {t['scaled_batch']:,} (cold items replicated under new ids): {t['scaled_embed_s'] * 1e3:.0f}"
                     f" + {t['scaled_topk_all_users_s'] * 1e3:.0f} ms = {t['scaled_cold_items_per_s']:,.0f} cold items/s")
    lines.append(f"text encoding (all-MiniLM-L6-v2, cache bypassed): {t['text_sample']:,} item texts in {t['text_s']:.1f}s = "
                 f"{t['texts_per_s']:,.0f} texts/s")
    load = ", ".join(f"{x:.2f}" for x in t["load_average"])
    lines.append(f"load average when measured: {load} ({os.cpu_count()} cores)")
    return lines


def print_cold_items(res: dict[str, Any]) -> list[str]:
    rows = res["rows"]
    ref = rows["text-kNN"]
    c = res["counts"]
    lines = [f"== {res['dataset']}: cold items ({c['cold_items']:,} of {c['items']:,} items held out, seed {SEED}; "
             f"{c['cold_test_interactions']:,} held-out interactions of "
             f"{rows['kgrec']['all']['users_evaluated']:,} users) ==",
             f"{'model':<28} | {'(a) all unseen items':^41} | {'(b) cold items only':^30}",
             f"{'':<28} | {'Recall@20':>9} {'NDCG@20':>8} {'R/tkNN':>10} {'cold@20':>10} | {'Recall@20':>9} {'NDCG@20':>8} "
             f"{'R/tkNN':>10}"]
    lines.append("-" * len(lines[-1]))
    for label, r in rows.items():
        cells = []
        for mode in ("all", "cold"):
            m = r[mode]
            ratio = m["recall@20"] / ref[mode]["recall@20"] if ref[mode]["recall@20"] > 0 else float("nan")
            share = f" {m['cold_share@20'] * 100:>9.1f}%" if mode == "all" else ""
            cells.append(f"{m['recall@20']:>9.4f} {m['ndcg@20']:>8.4f} {_f(ratio, '9.2f')}x{share}")
        lines.append(f"{label:<28} | {cells[0]} | {cells[1]}")
    lines.append(f"cold@20 = share of the top-20 slots in (a) taken by cold items; cold items are "
                 f"{c['cold_items'] / c['items'] * 100:.1f}% of the catalogue and took "
                 f"{c['cold_test_interactions'] / (c['cold_test_interactions'] + c['train_interactions'] + c['warm_test_interactions']) * 100:.1f}"
                 f"% of all interactions")
    w = res["warm"]
    lines.append(f"warm test Recall@20 ({c['warm_test_interactions']:,} interactions): before add_items "
                 f"{w['before']['recall@20']:.4f}; after, new items excluded {w['after_new_excluded']['recall@20']:.4f}; "
                 f"after, new items ranked too {w['after_new_included']['recall@20']:.4f} "
                 f"({(w['after_new_included']['recall@20'] / max(w['before']['recall@20'], 1e-12) - 1) * 100:+.2f}%); "
                 f"max change of existing embeddings {w['max_abs_change_of_existing_embeddings']:.2e}")
    cal = res["calibration"]
    lines.append(f"cold-item calibration factor s = {cal['factor']:.3f}; Recall@20 on warm + cold test interactions "
                 f"together, new items ranked: {cal['all_test_recall@20']['calibrated']:.4f} calibrated, "
                 f"{cal['all_test_recall@20']['s=1']:.4f} with s=1")
    lines += throughput_lines(res)
    lines.append(f"{fit_text(res['fit'])}, options {res['fit']['options']}")
    return lines


def print_cold_users(res: dict[str, Any]) -> list[str]:
    rows = res["rows"]
    c = res["counts"]
    ref = rows.get(f"text-kNN (ii) first {FIRST_N}")
    lines = [f"== {res['dataset']}: cold users ({c['cold_users']:,} of {c['users']:,} users held out, seed {SEED}; "
             f"{c['targets']:,} target interactions of {c['cold_users_evaluated']:,} users; first {FIRST_N} by "
             f"{c['first_by']}; side information: {res['side_information']}) ==",
             f"{'model (what the new user brings)':<40} {'Recall@20':>9} {'NDCG@20':>8} {'R/tkNN(ii)':>10}"]
    lines.append("-" * len(lines[-1]))
    for label, r in rows.items():
        if "skipped" in r:
            lines.append(f"{label:<40} skipped: {r['skipped']}")
            continue
        m = r["all"]
        ratio = m["recall@20"] / ref["all"]["recall@20"] if ref and ref["all"]["recall@20"] > 0 else float("nan")
        lines.append(f"{label:<40} {m['recall@20']:>9.4f} {m['ndcg@20']:>8.4f} {_f(ratio, '9.2f')}x")
    return lines


def targets(results: list[dict[str, Any]]) -> list[str]:
    lines = ["== targets =="]
    for res in results:
        if res["protocol"] != "cold_items":
            continue
        rows = res.get("rows", {})
        for mode, label in (("all", "(a) all unseen"), ("cold", "(b) cold only")) if rows else ():
            ratio = rows["kgrec"][mode]["recall@20"] / max(rows["text-kNN"][mode]["recall@20"], 1e-12)
            lines.append(f"{'PASS' if ratio >= 1.5 else 'MISS'}  {res['dataset']}: cold-item Recall@20 {label} = "
                         f"{ratio:.2f} x text-kNN (target >= 1.5)")
        w = res.get("warm")
        if w:
            # the target: no change beyond the new items entering the ranking; with them ranked, the
            # warm test items lose the slots new items take (reported, not a target)
            ch = w["after_new_excluded"]["recall@20"] / max(w["before"]["recall@20"], 1e-12) - 1
            lines.append(f"{'PASS' if abs(ch) <= 0.01 else 'MISS'}  {res['dataset']}: warm Recall@20 after add_items "
                         f"(new items excluded) changed {ch * 100:+.2f}% (target within 1%)")
            ch = w["after_new_included"]["recall@20"] / max(w["before"]["recall@20"], 1e-12) - 1
            share = rows["kgrec"]["all"]["cold_share@20"] * 100 if rows else float("nan")
            lines.append(f"INFO  {res['dataset']}: warm Recall@20 after add_items with the new items ranked too changed "
                         f"{ch * 100:+.2f}% (they take {share:.1f}% of the top-20 slots; not a target)")
        t = res["throughput"]
        best = t.get("scaled_cold_items_per_s", t["cold_items_per_s"])
        lines.append(f"{'PASS' if min(t['cold_items_per_s'], best) >= 5000 else 'MISS'}  {res['dataset']}: "
                     f"{t['cold_items_per_s']:,.0f} cold items/s at its batch of {t['batch']:,}"
                     + (f", {best:,.0f} at {t['scaled_batch']:,}" if "scaled_batch" in t else "")
                     + " (GNN + top-20 for all users, text encoding excluded; target >= 5,000)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: ml100k,lastfm")
    ap.add_argument("--protocols", default="cold_items,cold_users", help="comma-separated: cold_items,cold_users")
    ap.add_argument("--epochs", type=int, default=None, help="kgrec max epochs (default: the model's default; "
                    "early stopping on a validation split carved from train)")
    ap.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                    help="extra kgrec.Recommender / TrainConfig option, e.g. cold_item_weight=0 (repeatable)")
    ap.add_argument("--quick", action="store_true", help="10 epochs (unless --epochs), smaller timing samples")
    ap.add_argument("--throughput-only", action="store_true",
                    help="cold_items split, fit and add_items as usual, then only the add_items / throughput / text "
                         "lines (no accuracy rows, baselines or cold_users); with no --epochs, trains 1 epoch "
                         "(speed does not depend on it)")
    ap.add_argument("--scale", type=int, default=20000, help="replicated cold batch size for the throughput line (0: off)")
    ap.add_argument("--text-sample", type=int, default=1000, help="item texts encoded for the texts/s line")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default kgrec.settings.data_dir())")
    ap.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.throughput_only and args.epochs is None:
        args.epochs = 1
    if args.quick:
        args.epochs = args.epochs or 10
        args.text_sample = min(args.text_sample, 300)
    opts: dict[str, Any] = {}
    for kv in args.opt:
        k, _, v = kv.partition("=")
        try:
            opts[k] = json.loads(v)
        except json.JSONDecodeError:
            opts[k] = v
    if args.epochs is not None:
        opts["epochs"] = args.epochs
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    root = args.data or data_dir()
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except OSError:
        rev = "?"
    print(f"# kgrec {kgrec.__version__} ({rev}), torch {torch.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} cores, threads {torch.get_num_threads()}, cpu; kgrec options {opts or 'defaults'}",
          flush=True)
    from kgrec.text_features import TextEncoder, encode_graph

    encoder = TextEncoder(progress=sys.stderr.isatty())
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    for name in datasets:
        t0 = time.perf_counter()
        kg = load_dataset(name, root)
        kg.features = encode_graph(kg, encoder)
        print(f"# {name}: loaded and text features attached in {time.perf_counter() - t0:.1f}s "
              f"(disk-cached after the first run)", flush=True)
        if "cold_items" in protocols:
            res = run_cold_items(name, kg, opts, args, encoder)
            results.append(res)
            part = throughput_lines(res) if args.throughput_only else print_cold_items(res)
            print("\n".join(part), flush=True)
            lines += part + [""]
        if "cold_users" in protocols and not args.throughput_only:
            res = run_cold_users(name, kg, opts, args)
            results.append(res)
            part = print_cold_users(res)
            print("\n".join(part), flush=True)
            lines += part + [""]
    lines += targets(results)
    print()
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=lambda o: float(o) if np.isscalar(o) else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
