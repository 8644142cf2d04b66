"""The command line's privacy commands: ``kgrec keygen`` (a pseudonymisation key) and
``kgrec forget`` (erase users from a model directory and a store); :mod:`kgrec.cli` registers
them. What they guarantee is in ``docs/privacy.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_io import console, counts_frame, frame_table
from .errors import KgrecError

KeyOpt = Annotated[Optional[Path], typer.Option(
    "--key", help="Key file the store was published with (--pseudonymize): raw user ids are looked up by their "
                  "pseudonyms.")]


def keygen(
    keyfile: Annotated[Path, typer.Argument(help="File to create (never overwritten); keep it out of the store "
                                                 "and out of version control.")],
) -> None:
    """Create a key for `kgrec publish --pseudonymize KEYFILE`: 64 random hex digits, readable by
    you only. The same key gives the same pseudonyms; without it they cannot be traced back."""
    from .privacy import write_key_file

    path = write_key_file(keyfile)
    console.print(f"wrote a new key to {path} (mode 600). Publish with: kgrec publish MODEL --pseudonymize {path}",
                  markup=False, highlight=False)


def forget(
    model: Annotated[Path, typer.Argument(help="Model directory to erase the users from (rewritten in place, "
                                               "atomically).")],
    users: Annotated[Path, typer.Option("--users", help="Table (CSV/TSV/Parquet) with a user_id column: the users "
                                                        "to forget.")],
    store: Annotated[Optional[str], typer.Option(
        "--store", help="Also erase them from this graph store (file path or bolt://host:7687).")] = None,
    key: KeyOpt = None,
) -> None:
    """Erase users: their node, interactions, edges, recommendations and explanations, from the
    model directory and (--store) the store. Ids not found are skipped with a warning, so an
    interrupted forget can be run again. The trained weights keep the users' past influence
    until the next training (docs/privacy.md)."""
    from .privacy import pseudonym, read_key
    from .recommender.forget import forget_in_model_dir, read_user_ids

    ids = read_user_ids(users)
    if not ids:
        raise KgrecError(f"{users}: the user_id column names no user. Fix: list the users to forget, one per row")
    secret = read_key(key) if key is not None else None  # a bad key file fails before anything changes
    if store is not None and not str(store).startswith(("bolt://", "neo4j://", "bolt+s://", "neo4j+s://")) \
            and not Path(store).exists():
        raise KgrecError(f"store {store} does not exist. Fix: pass the store the model was published to")
    _, gone = forget_in_model_dir(model, ids)
    console.print(f"{model}: forgot {len(gone)} of {len(ids)} user(s)", markup=False, highlight=False)
    if store is not None:
        from .store import open_store

        stored = [pseudonym(u, secret) for u in ids] if secret is not None else ids
        with open_store(store) as st:
            removed = st.forget_users(stored)
        console.print(frame_table(counts_frame(removed), f"removed from {store}"))
