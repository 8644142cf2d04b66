"""The ``kgrec`` command line: the Python API, one command per job.

Every user error prints one line (``error: <file> row <n>: <problem>. Fix: <fix>``) and exits
with code 2; ``--debug`` (or KGREC_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .cli_privacy import KeyOpt, forget, keygen
from .cli_io import (attribute_columns, console, counts_frame, emit, frame_table, id_list, metrics_table, paste,
                     shell_arg, typed_params)
from .errors import KgrecError

app = typer.Typer(
    name="kgrec",
    help="Knowledge-graph-augmented recommendation: train on interactions + a knowledge graph, "
         "rank items, inspect the results with Cypher.\n\nStart with:  kgrec quickstart --data path/to/ml-100k",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text as written: "[rating, timestamp]" is not markup
)
err_console = Console(stderr=True)

DataArg = Annotated[Optional[Path], typer.Option("--data", help="Data set folder (MovieLens, HetRec Last.fm or KGAT); "
                                                 "the format is detected from its files.")]
KgDirOpt = Annotated[Optional[Path], typer.Option("--kg-dir", help="KGCN-format KG folder (kg.txt, item_index2entity_id.txt) to join with Last.fm.")]
InterOpt = Annotated[Optional[Path], typer.Option("--interactions", help="Generic table: one row per (user, item) [rating, timestamp]. CSV/TSV/Parquet.")]
ItemsOpt = Annotated[Optional[Path], typer.Option("--items", help="Generic table: one row per item.")]
UsersOpt = Annotated[Optional[Path], typer.Option("--users", help="Generic table: one row per user.")]
TriplesOpt = Annotated[Optional[Path], typer.Option("--triples", help="Generic table: knowledge triples head,relation,tail.")]
ItemTextOpt = Annotated[Optional[str], typer.Option("--item-text", help="Comma-separated item columns that form the item's text, e.g. title,genres.")]
UserColOpt = Annotated[str, typer.Option("--user-col", help="User id column of the interactions/users tables.")]
ItemColOpt = Annotated[str, typer.Option("--item-col", help="Item id column of the interactions/items tables.")]
AttrOpt = Annotated[Optional[str], typer.Option("--attributes", help="Columns that become attribute nodes, as "
                                                 "column=kind pairs: genres=genre,director=person. Cells may hold several values split by |.")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of the generic tables, e.g. "
                                                    "latin-1 (default: UTF-8).")]
MinRatingOpt = Annotated[Optional[float], typer.Option(
    "--min-rating", help="Interactions rated below this are not positives and are dropped (default: every "
                         "interaction counts, whatever its rating).")]
StoreOpt = Annotated[str, typer.Option("--store", help="Graph store: a file path (embedded) or bolt://host:7687 (Neo4j).")]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"kgrec {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="Print kgrec's version and exit.")] = False) -> None:
    """Knowledge-graph-augmented recommendation: train on interactions + a knowledge graph, rank
    items, inspect the results with Cypher. Start with:  kgrec quickstart --data path/to/ml-100k"""


def _load(data: Path | None, kg_dir: Path | None = None, interactions: Path | None = None, items: Path | None = None,
          users: Path | None = None, triples: Path | None = None, item_text: str | None = None,
          user_col: str = "user_id", item_col: str = "item_id", attributes: str | None = None,
          encoding: str | None = None):
    from .datasets import load_dataset

    options = {"user_col": user_col, "item_col": item_col, "item_attributes": attribute_columns(attributes)} \
        if interactions else {}
    if interactions and encoding:
        options["encoding"] = encoding
    with console.status("loading data"):
        return load_dataset(data, kg_dir=kg_dir, interactions=str(interactions) if interactions else None,
                            items=str(items) if items else None, users=str(users) if users else None,
                            triples=str(triples) if triples else None,
                            item_text=item_text.split(",") if item_text else None, **options)


@app.command()
def quickstart(
    data: DataArg = None,
    store: StoreOpt = "kgrec.db",
    model_dir: Annotated[Path, typer.Option(help="Where to save the trained model.")] = Path("kgrec-model"),
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (default: the model's default).")] = None,
    k: Annotated[int, typer.Option(help="Recommendations per user to publish.")] = 20,
    min_rating: MinRatingOpt = None,
) -> None:
    """Train on MovieLens-100K end to end: load, split 80/20, train, evaluate, publish to the
    embedded store, and show one user's top-10 with reasons and the Cypher to try next."""
    from . import loaders
    from .settings import data_dir
    from .recommender import Recommender
    from .store import open_store

    t0 = time.perf_counter()
    path = data
    if path is None:
        local = data_dir() / "ml-100k"
        path = local if (local / "u.data").exists() else None
    if path is None:
        console.print("no --data given and no local copy: downloading MovieLens-100K")
        path = loaders.download_movielens("ml-100k")
    kg = _load(path).with_min_rating(min_rating)
    console.print(str(kg.summary()), markup=False, highlight=False)
    train, test = kg.split("random", test=0.2, seed=0)
    rec = Recommender(**({"epochs": epochs} if epochs is not None else {}))
    rec.fit(train)
    rec.holdout_ = test.interactions[["user_id", "item_id"]]  # `kgrec evaluate MODEL` scores it
    metrics = rec.evaluate(test, k=(10, 20))
    console.print(metrics_table("MovieLens-100K, random 80/20 split (seed 0)", metrics))
    rec.save(model_dir)
    with open_store(store) as st:
        console.print(f"publishing the graph and top-{k} recommendations to {store}", markup=False,
                      highlight=False)
        rec.publish(st, k=k)
    user = str(train.interactions["user_id"].iloc[0])
    top = rec.recommend([user], k=10)
    reasons = [rec.reason(user, item) for item in top["item_id"]]
    names = rec.item_names(top["item_id"])
    shown = top.assign(title=names, reason=reasons)[["rank", "item_id", "title", "score", "reason"]]
    console.print(frame_table(shown, f"top-10 for user {user}"))
    console.print(f"model saved to {model_dir}; graph and recommendations in {store} "
                  f"({time.perf_counter() - t0:.0f} s end to end). Try:", markup=False, highlight=False)
    item, db, md = top["item_id"].iloc[0], shell_arg(str(store)), shell_arg(str(model_dir))
    recommended = (f"MATCH (u:User {{id: '{user}'}})-[r:RECOMMENDED]->(i:Item) "
                   "RETURN i.name, r.score ORDER BY r.score DESC LIMIT 10")
    explains = (f"MATCH (u:User {{id: '{user}'}})-[e:EXPLAINS]->(n) "
                "RETURN e.item, e.path, e.weight ORDER BY e.item, e.rank LIMIT 20")
    paste(f"kgrec cypher {shell_arg(recommended)} --store {db}")
    paste(f"kgrec cypher {shell_arg(explains)} --store {db}")
    paste(f"kgrec cypher --query why_recommended -p user={user} -p item={item} --store {db}")
    paste(f"kgrec explain {md} {user} {item}")
    paste(f"kgrec evaluate {md}")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    data: DataArg = None, kg_dir: KgDirOpt = None, interactions: InterOpt = None, items: ItemsOpt = None,
    users: UsersOpt = None, triples: TriplesOpt = None, item_text: ItemTextOpt = None,
    user_col: UserColOpt = "user_id", item_col: ItemColOpt = "item_id", attributes: AttrOpt = None,
    encoding: EncodingOpt = None, min_rating: MinRatingOpt = None,
    test: Annotated[float, typer.Option(help="Fraction held out for `kgrec evaluate` (0 trains on everything).")] = 0.2,
    split: Annotated[str, typer.Option(help="random, temporal, cold_items or cold_users.")] = "random",
    seed: Annotated[int, typer.Option(help="Seed of the split and of training.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (at most, with early stopping).")] = None,
    refit: Annotated[bool, typer.Option(help="After early stopping on 10% of the training interactions, train "
                                             "again on all of them for the best number of epochs.")] = True,
    batch_size: Annotated[Optional[int], typer.Option(help="Training pairs per step, over all processes under "
                                                           "torchrun (default: the model's).")] = None,
    training_mode: Annotated[str, typer.Option(help="full_graph, subgraph (memory bounded by the batch) or auto "
                                                    "(docs/large_graphs.md).")] = "auto",
) -> None:
    """Train a model and save it. With --test > 0 the held-out part is remembered so that
    `kgrec evaluate MODEL` scores exactly it.

    Under torchrun (`torchrun --nproc_per_node N -m kgrec train ...`) training is data-parallel over
    the N processes (NCCL on GPUs, gloo on the CPU; docs/distributed.md); rank 0 alone evaluates and
    writes --out."""
    from .recommender import Recommender
    from .train import TrainConfig
    from .train.distributed import init_from_env, is_main, shutdown

    TrainConfig(training_mode=training_mode).validate()  # type: ignore[arg-type]  (before the data loads)
    device = init_from_env()
    try:
        kg = _load(data, kg_dir, interactions, items, users, triples, item_text, user_col, item_col, attributes,
                   encoding).with_min_rating(min_rating)
        train_kg, test_kg = kg.split(split, test=test, seed=seed) if test > 0 else (kg, None)
        sizes = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
        rec = Recommender(device=device, seed=seed, refit=refit, progress=is_main(), training_mode=training_mode,
                          **sizes).fit(train_kg)
        if not is_main():
            return
        if test_kg is not None:
            rec.holdout_ = test_kg.interactions[["user_id", "item_id"]]
            console.print(metrics_table(f"held-out {split} {test:.0%}", rec.evaluate(test_kg, k=(10, 20))))
        rec.save(out)
        console.print(f"saved {out}")
    finally:
        shutdown()


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model directory from `kgrec train`.")],
    k: Annotated[str, typer.Option(help="Cut-offs, comma-separated.")] = "10,20",
    test_file: Annotated[Optional[Path], typer.Option("--test", help="Test interactions (user_id,item_id) "
                                                      "instead of the hold-out saved at training.")] = None,
) -> None:
    """Full-ranking Recall / NDCG / Precision / HitRate / MRR @k on the held-out interactions."""
    from .recommender import Recommender
    from .tables import read_table

    rec = Recommender.load(model)
    cuts = tuple(int(x) for x in k.split(","))
    if test_file is not None:
        df, _ = read_table(test_file, required=["user_id", "item_id"])
        metrics = rec.evaluate(df[["user_id", "item_id"]], k=cuts)
    else:
        metrics = rec.evaluate(None, k=cuts)
    console.print(metrics_table(str(model), metrics))


@app.command()
def recommend(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    users: Annotated[str, typer.Option(help="Comma-separated user ids, or @file with one id per line.")],
    k: Annotated[int, typer.Option(help="Items per user.")] = 20,
    candidates: Annotated[Optional[Path], typer.Option(help="File with candidate item ids, one per line.")] = None,
    include_seen: Annotated[bool, typer.Option(help="Also rank items the user already interacted with.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Write CSV here instead of printing.")] = None,
) -> None:
    """Top-k items for the given users, in your ids."""
    from .recommender import Recommender

    ids = id_list(users)
    if not ids:
        raise KgrecError(f"--users '{users}' names no user. Fix: pass ids like --users 1,2 or @file with one per line")
    rec = Recommender.load(model)
    cands = id_list("@" + str(candidates)) if candidates else None
    df = rec.recommend(ids, k=k, candidates=cands, exclude_seen=not include_seen)
    emit(df, out, f"top-{k}")


@app.command()
def publish(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    store: StoreOpt = "kgrec.db",
    k: Annotated[int, typer.Option(help="Recommendations per user.")] = 20,
    explanations: Annotated[int, typer.Option(help="Explanation paths per recommendation (0: none).")] = 3,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another writer of the store to finish "
                                             "(0: fail at once, naming it).")] = 0.0,
    pseudonymize: Annotated[Optional[Path], typer.Option(
        help="Key file (kgrec keygen): write user ids as keyed pseudonyms, without user text, demographics, "
             "timestamps or other users' ids in explanations.")] = None,
    keep_user_text: Annotated[bool, typer.Option(help="With --pseudonymize: keep users' names, texts and "
                                                      "their text embeddings.")] = False,
    keep_demographics: Annotated[bool, typer.Option(help="With --pseudonymize: keep users' attribute edges "
                                                         "(age, gender, occupation, zip).")] = False,
    keep_timestamps: Annotated[bool, typer.Option(help="With --pseudonymize: keep interaction timestamps.")] = False,
) -> None:
    """Write the graph, its features, every user's top-k (RECOMMENDED) and their explanation
    paths (EXPLAINS) into the store, as one publication: readers see the old one or the new one.
    Re-publishing replaces this model's edges only.
    --pseudonymize writes the private form (docs/privacy.md)."""
    from .recommender import Recommender
    from .store import open_store
    from .store.tables import MAX_NAME_CHARS, MAX_PATH_CHARS, MAX_TEXT_CHARS

    rec = Recommender.load(model)
    with open_store(store, timeout=wait) as st:
        console.print(f"publishing the graph, every user's top-{k} and {explanations} explanation path(s) per "
                      f"recommendation to {store}", markup=False, highlight=False)
        written = rec.publish(st, k=k, explanations=explanations, pseudonymize=pseudonymize,
                              keep_user_text=keep_user_text, keep_demographics=keep_demographics,
                              keep_timestamps=keep_timestamps)
        counts = st.counts()
    console.print(frame_table(counts_frame(counts), f"published to {store}"))
    if written["texts_cut"]:
        console.print(f"{written['texts_cut']} names, texts or explanation paths were longer than the store keeps "
                      f"({MAX_NAME_CHARS} / {MAX_TEXT_CHARS} / {MAX_PATH_CHARS} characters) and were cut there; "
                      "the model saw the full texts", markup=False, highlight=False)


@app.command()
def explain(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    user: Annotated[str, typer.Argument(help="User id.")],
    item: Annotated[str, typer.Argument(help="Item id.")],
    top: Annotated[int, typer.Option(help="Paths to show.")] = 10,
) -> None:
    """The paths that connect USER and ITEM, ranked by their share of the model's score."""
    from .recommender import Recommender

    rec = Recommender.load(model)
    emit(rec.explain(user, item, top=top), None, f"why {item} for user {user}")


@app.command()
def cypher(
    query: Annotated[Optional[str], typer.Argument(help="A read-only Cypher query, e.g. \"MATCH (i:Item) RETURN "
                                                        "i.id LIMIT 5\". Leave it out with --query.")] = None,
    store: StoreOpt = "kgrec.db",
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", "-p", help="Query parameter name=value (repeatable). Values are strings (ids are strings), "
                              "numbers where the query uses them in LIMIT / SKIP; name:int=5, name:float=0.5, "
                              "name:bool=true or name:str=42 say the type.")] = None,
    named: Annotated[Optional[str], typer.Option(
        "--query", "-q", help="Run a packaged report or query by name instead of QUERY, e.g. why_recommended -p "
                              "user=1 -p item=50. Reports: why_recommended, user_recommendations, "
                              "shared_attributes, similar_users, user_item_triples, kg_paths, explanation_paths, "
                              "top_recommended, recommendation_coverage; queries: the names of "
                              "kgrec/queries/*.cypher.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write CSV here instead of printing.")] = None,
    key: KeyOpt = None,
) -> None:
    """Run a read-only Cypher query (or a packaged one by name) against the embedded store or
    Neo4j and print a table. Writes, file access (LOAD FROM / LOAD CSV / COPY TO), extensions and
    procedures outside a read-only allow-list are refused (docs/security.md). With --key, the
    parameter `user` is a raw id, looked up by its pseudonym."""
    from . import inspection
    from .store import open_store

    if (query is None) == (named is None):
        raise KgrecError("give either a Cypher QUERY or --query NAME. Fix: e.g. kgrec cypher --query "
                         f"why_recommended -p user=1 -p item=50; the names are {', '.join(inspection.NAMED)}")
    if named is not None and named not in inspection.NAMED:
        raise KgrecError(f"no packaged query named '{named}'. Fix: use one of {', '.join(inspection.NAMED)}")
    text = query if named is None else inspection.query_text(named)
    params = typed_params(param or [], text)
    if key is not None and "user" in params:
        params["user"] = inspection.user_key(params["user"], key)
    if not str(store).startswith(("bolt://", "neo4j://", "bolt+s://", "neo4j+s://")) and not Path(store).exists():
        raise KgrecError(f"store {store} does not exist. Fix: run `kgrec quickstart` or `kgrec publish` first, "
                         f"or pass --store")
    with open_store(store, read_only=True) as st:
        try:
            df = st.query(query, **params) if named is None else inspection.run_named(st, named, **params)
        except TypeError as exc:  # a packaged query's parameter missing or unknown
            raise KgrecError(f"--query {named}: {exc}. Fix: pass its parameters with -p name=value") from None
    emit(df, out, None)


app.command()(keygen)
app.command()(forget)


@app.command("cold-start")
def cold_start(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of recommendations to write.")],
    items: ItemsOpt = None,
    triples: TriplesOpt = None,
    users: UsersOpt = None,
    interactions: InterOpt = None,
    item_text: ItemTextOpt = None,
    attributes: AttrOpt = None,
    user_col: UserColOpt = "user_id", item_col: ItemColOpt = "item_id",
    update: Annotated[bool, typer.Option(help="Replace items/users whose ids already exist instead of refusing.")] = False,
    strict: Annotated[bool, typer.Option(help="Refuse triples that name entities the model does not know "
                                              "(by default they become new entities, with a warning).")] = False,
    k: Annotated[int, typer.Option(help="Items per user.")] = 20,
    store: Annotated[Optional[str], typer.Option(help="Also publish the new nodes and recommendations here.")] = None,
    save: Annotated[bool, typer.Option(help="Save the model with the new nodes added.")] = False,
) -> None:
    """Score new items and/or users (text + attributes, no history) without retraining.

    New items are ranked for every known user among the new items (the output lists each
    user's top-k new items); new users get their top-k among all items."""
    from .recommender import Recommender

    if items is None and users is None:
        raise KgrecError("nothing to add. Fix: pass --items new_items.csv and/or --users new_users.csv")
    rec = Recommender.load(model)
    frames = []
    if items is not None:
        with console.status(f"embedding new items from {items}"):
            rec.add_items(items=items, triples=triples, item_text=item_text.split(",") if item_text else None,
                          attributes=attribute_columns(attributes), item_col=item_col, update=update, strict=strict)
        new_ids = rec.added_items_
        frames.append(rec.recommend(rec.user_ids(), k=k, candidates=new_ids))
        console.print(f"added {len(new_ids)} items")
    if users is not None:
        with console.status(f"embedding new users from {users}"):
            rec.add_users(users=users, interactions=interactions, attributes=attribute_columns(attributes),
                          user_col=user_col, update=update, strict=strict)
        new_users = rec.added_users_
        frames.append(rec.recommend(new_users, k=k))
        console.print(f"added {len(new_users)} users")
    import pandas as pd

    df = pd.concat(frames, ignore_index=True)
    df.to_csv(out, index=False)
    console.print(f"wrote {len(df):,} rows to {out}")
    if save:
        rec.save(model)
    if store:
        from .store import open_store

        with open_store(store) as st:
            rec.publish(st, k=k)


@app.command()
def summary(
    data: DataArg = None, kg_dir: KgDirOpt = None, interactions: InterOpt = None, items: ItemsOpt = None,
    users: UsersOpt = None, triples: TriplesOpt = None, item_text: ItemTextOpt = None,
    user_col: UserColOpt = "user_id", item_col: ItemColOpt = "item_id", attributes: AttrOpt = None,
    encoding: EncodingOpt = None, min_rating: MinRatingOpt = None,
) -> None:
    """Load a data set and print its counts (nodes, edges, density, cold nodes, what is done
    with ratings, input policies)."""
    kg = _load(data, kg_dir, interactions, items, users, triples, item_text, user_col, item_col, attributes,
               encoding).with_min_rating(min_rating)
    console.print(str(kg.summary()), markup=False, highlight=False)


def main() -> None:
    """Entry point: run the app, turning kgrec errors into one line and exit code 2."""
    debug = "--debug" in sys.argv or os.environ.get("KGREC_DEBUG") == "1"
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    if not debug:  # library deprecation notices are not the user's business; kgrec's own warnings are
        import warnings

        from .errors import UnknownEntityWarning, UnknownUserWarning

        warnings.simplefilter("ignore")
        warnings.simplefilter("always", UnknownEntityWarning)
        warnings.simplefilter("always", UnknownUserWarning)
        warnings.showwarning = lambda message, *args, **kwargs: err_console.print(
            f"warning: {message}", markup=False, highlight=False, soft_wrap=True)
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KgrecError, FileNotFoundError, PermissionError, ValueError) as exc:
        if debug:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected: one line, never a traceback
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's (or typer's own click's) usage errors
            exc.show()
            sys.exit(exc.exit_code)
        if exc.__class__.__name__ == "Abort":
            sys.exit(1)
        if debug:
            raise
        err_console.print(f"error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)",
                          markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
