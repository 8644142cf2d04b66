"""Generic tables -> KnowledgeGraph (``kgrec.from_tables``), and the careful file reader that
the loaders share: it names the file, the row and the fix for undecodable bytes, a wrong
separator, a missing column or a non-numeric value, instead of a pandas traceback."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, SchemaError
from .knowledge_graph import KnowledgeGraph

TableLike = pd.DataFrame | str | os.PathLike
SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".dat": "\t", ".txt": "\t"}


def read_table(
    source: TableLike,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    header: int | None = 0,
    names: Sequence[str] | None = None,
    required: Iterable[str] = (),
    dtype: str | None = "string",
) -> tuple[pd.DataFrame, str]:
    """Read a CSV/TSV/Parquet path (or pass a DataFrame through). Returns ``(frame, name)``
    where ``name`` is what errors call it (the file name, or ``'<DataFrame>'``).

    Line ends (LF/CRLF) are handled; bytes that do not decode raise :class:`DataError` with
    the line number and the ``encoding=`` fix; a ``required`` column that is missing raises
    with the columns found, and a hint when the header looks split by another separator."""
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), "<DataFrame>"
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise DataError(name, None, "file not found", "check the path (relative paths start at "
                            f"{Path.cwd()})")
        if path.is_dir():
            raise DataError(name, None, "is a directory, not a table file", "pass the CSV/Parquet file inside it")
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            try:
                df = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises many types for a bad file
                raise DataError(name, None, f"not a readable Parquet file ({exc.__class__.__name__}: {exc})",
                                "re-export the table as Parquet or CSV") from None
            if dtype == "string":
                df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
        else:
            if path.stat().st_size == 0:
                raise DataError(name, None, "the file is empty", "give a header row and at least one data row")
            sep = sep or SEPARATORS.get(suffix, ",")
            raw = path.read_bytes()
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                line = raw.count(b"\n", 0, exc.start) + 1
                raise DataError(name, line, f"byte 0x{raw[exc.start]:02x} is not valid {encoding}",
                                "pass encoding='latin-1' (on the command line: --encoding latin-1), or the file's real encoding") from None
            import io
            try:
                df = pd.read_csv(io.StringIO(text), sep=sep, header=header, names=names, dtype=dtype,
                                 keep_default_na=False, na_values=[""], engine="python" if len(sep) > 1 else "c",
                                 quoting=3 if sep == "\t" else 0)
            except pd.errors.ParserError as exc:
                raise DataError(name, _parser_line(str(exc)), f"malformed row ({exc})",
                                "check quoting and the separator (sep=...)") from None
            except pd.errors.EmptyDataError:
                raise DataError(name, None, "the file has no columns", "give a header row and data rows") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = f"pass the column names of your file ({list(df.columns)})"
        if name != "<DataFrame>" and all(_is_number(c) for c in df.columns):
            hint = (f"the file seems to have no header row (its first row, {list(df.columns)}, is all numbers): "
                    f"add a header row naming the columns, or read it with pandas.read_csv(..., names=[...]) "
                    f"and pass the DataFrame")
        elif len(df.columns) == 1:
            col = df.columns[0]
            for cand, label in ((",", "','"), ("\t", "'\\t'"), (";", "';'"), ("|", "'|'"), ("::", "'::'")):
                if cand in col and cand != sep:
                    hint = f"the header looks separated by {label}: pass sep={label}"
                    break
        raise DataError(name, 1 if name != "<DataFrame>" else None,
                        f"required column(s) {missing} not found", hint)
    return df, name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parser_line(msg: str) -> int | None:
    import re
    m = re.search(r"line (\d+)", msg)
    return int(m.group(1)) if m else None


def to_number(s: pd.Series, source: str, column: str, *, header_rows: int = 1, allow_missing: bool = False,
              integer: bool = False) -> pd.Series:
    """Convert a column to numbers or raise :class:`DataError` at the first bad row."""
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna() & (s.astype("string").str.strip() != "")
    if not allow_missing:
        bad |= s.isna() | (s.astype("string").str.strip() == "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        row = i + header_rows + 1 if source != "<DataFrame>" else i
        val = s.iloc[i]
        what = "is empty" if pd.isna(val) or str(val).strip() == "" else f"'{val}' is not a number"
        raise DataError(source, row, f"{column} {what} ({int(bad.sum())} such rows)",
                        f"make every {column} numeric" + ("" if allow_missing else f" or drop the {column} column"))
    if integer:
        return num.astype("Int64")
    return num.astype("float64")


TIMESTAMP_UNITS = {"s": 1, "ms": 10 ** 3, "us": 10 ** 6, "ns": 10 ** 9}
# unit "auto": numeric timestamps whose median passes these are read as ms, us, ns (1e11 s: the year 5138)
_AUTO_UNIT_FROM = (("ns", 1e17), ("us", 1e14), ("ms", 1e11))


def _unit_of(numbers: np.ndarray) -> str:
    """The unit their median says numeric Unix timestamps are in: seconds up to 1e11, then
    milliseconds, microseconds, nanoseconds."""
    finite = numbers[np.isfinite(numbers)]
    median = float(np.median(np.abs(finite))) if len(finite) else 0.0
    return next((name for name, low in _AUTO_UNIT_FROM if median >= low), "s")


def to_unix_seconds(s: pd.Series, source: str, column: str, *, header_rows: int = 1,
                    unit: str = "s") -> tuple[pd.Series, str]:
    """``(seconds, unit)``: timestamps as Unix seconds (Int64) and the unit their numbers were
    read in. Numbers in ``unit`` (``TIMESTAMP_UNITS``; ``"auto"``: the one their median says,
    seconds up to 1e11, then milliseconds, microseconds, nanoseconds) are divided down to seconds
    (fractions of a second are dropped), ISO 8601 dates / datetimes are converted (naive ones
    read as UTC), empty cells stay missing; anything else raises :class:`DataError` at its row."""
    if unit != "auto" and unit not in TIMESTAMP_UNITS:
        raise ValueError(f"timestamp_unit must be 'auto' or one of {list(TIMESTAMP_UNITS)} (got {unit!r})")
    if pd.api.types.is_datetime64_any_dtype(s):  # datetime columns of a DataFrame carry their own unit
        dt = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        secs = (dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        return pd.Series(secs.to_numpy(dtype=float, na_value=np.nan), index=s.index).astype("Int64"), "s"
    text = s.astype("string").str.strip()
    empty = (s.isna() | (text == "")).to_numpy()
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    unit = _unit_of(num) if unit == "auto" else unit
    out = pd.Series(np.floor(num / TIMESTAMP_UNITS[unit]), index=s.index)
    rest = np.isnan(out.to_numpy()) & ~empty
    if rest.any():
        dt = pd.to_datetime(text[rest], errors="coerce", utc=True, format="ISO8601")
        bad = dt.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(rest)[np.flatnonzero(bad)[0]])
            raise DataError(source, i + header_rows + 1 if source != "<DataFrame>" else i,
                            f"{column} '{s.iloc[i]}' is neither a number nor a date ({int(bad.sum())} such rows)",
                            "use Unix seconds or ISO 8601 dates (2024-05-01 or 2024-05-01T12:00:00Z)")
        secs = (dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        out[rest] = secs.to_numpy(dtype=float)
    if np.isinf(out.to_numpy()).any():
        i = int(np.flatnonzero(np.isinf(out.to_numpy()))[0])
        raise DataError(source, i + header_rows + 1 if source != "<DataFrame>" else i,
                        f"{column} '{s.iloc[i]}' is infinite", "use Unix seconds or ISO 8601 dates")
    return out.astype("Int64"), unit


def from_tables(
    interactions: TableLike,
    items: TableLike | None = None,
    users: TableLike | None = None,
    triples: TableLike | None = None,
    item_text: str | Sequence[str] | None = None,
    user_text: str | Sequence[str] | None = None,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str | None = "rating",
    timestamp_col: str | None = "timestamp",
    timestamp_unit: str = "auto",
    min_rating: float | None = None,
    weight_col: str | None = None,
    item_attributes: Mapping[str, str] | Sequence[str] | None = None,
    user_attributes: Mapping[str, str] | Sequence[str] | None = None,
    multi_value_sep: str = "|",
    triple_cols: tuple[str, str, str] = ("head", "relation", "tail"),
    sep: str | None = None,
    encoding: str = "utf-8",
    name: str = "",
) -> KnowledgeGraph:
    """Build a KnowledgeGraph from generic tables (DataFrames or CSV/TSV/Parquet paths).

    - ``interactions``: one row per (user, item) with optional rating / timestamp / weight.
      ``rating_col`` / ``timestamp_col`` are used when present in the table. Numeric timestamps
      are Unix time in ``timestamp_unit`` (``"s"``, ``"ms"``, ``"us"``, ``"ns"``); ``"auto"``
      reads them by their size (a median past 1e11, the year 5138 in seconds, means
      milliseconds, and so on) and the report counts those read as another unit than seconds.
      Every interaction is a positive unless ``min_rating`` is set: rows rated below it are then
      dropped and counted (rows without a rating stay).
    - ``items`` / ``users``: one row per node. ``item_text`` / ``user_text`` name the columns
      whose values, joined by ``". "``, are the node's text for the LM encoder (the first one
      is also its display name). Without them the text comes from the schema template.
    - ``item_attributes`` / ``user_attributes``: columns whose values become attribute
      entities (``{"genres": "genre"}`` maps a column to an entity kind; a list uses the
      column name). Multi-valued cells are split on ``multi_value_sep``.
    - ``triples``: knowledge edges ``head, relation, tail``; heads are items unless a
      ``head_type`` column says ``user``/``entity``; tails are entities unless ``tail_type`` says
      ``item``. Unknown items in triples are an error; unknown entities become nodes. A triple
      from a user to an item is a second behaviour (tagged, viewed): kgrec trains on it as on
      an interaction, but it never counts as seen (:func:`kgrec.graph.tensors.with_user_item_triples`).
    """
    rcols = [user_col, item_col]
    inter, src_i = read_table(interactions, sep=sep, encoding=encoding, required=rcols)
    report: dict[str, int] = {}
    frame = pd.DataFrame({"user_id": inter[user_col].astype("string").str.strip(),
                          "item_id": inter[item_col].astype("string").str.strip()})
    if rating_col and rating_col in inter.columns:
        frame["rating"] = to_number(inter[rating_col], src_i, rating_col)
    if weight_col:
        if weight_col not in inter.columns:
            raise DataError(src_i, 1, f"weight column '{weight_col}' not found", f"columns are {list(inter.columns)}")
        frame["weight"] = to_number(inter[weight_col], src_i, weight_col)
    if timestamp_col and timestamp_col in inter.columns:
        frame["timestamp"], unit = to_unix_seconds(inter[timestamp_col], src_i, timestamp_col, unit=timestamp_unit)
        if unit != "s":
            report[f"timestamps_read_as_{unit}"] = int(frame["timestamp"].notna().sum())
    sources = {"interactions": src_i}

    entities: list[pd.DataFrame] = []
    edge_frames: list[pd.DataFrame] = []
    items_df = users_df = None
    if items is not None:
        it, src_it = read_table(items, sep=sep, encoding=encoding, required=[item_col])
        sources["items"] = src_it
        items_df = node_frame(it, item_col, "item_id", item_text, src_it)
        ents, edges = attribute_edges(it, item_col, "item", item_attributes, multi_value_sep, src_it)
        entities.append(ents)
        edge_frames.append(edges)
    elif item_attributes:
        raise SchemaError("item_attributes names columns of the items table, but no items table was given")
    if users is not None:
        us, src_us = read_table(users, sep=sep, encoding=encoding, required=[user_col])
        sources["users"] = src_us
        users_df = node_frame(us, user_col, "user_id", user_text, src_us)
        ents, edges = attribute_edges(us, user_col, "user", user_attributes, multi_value_sep, src_us)
        entities.append(ents)
        edge_frames.append(edges)
    if triples is not None:
        tr, src_t = read_table(triples, sep=sep, encoding=encoding, required=list(triple_cols))
        sources["triples"] = src_t
        h, r, t = triple_cols
        tf = pd.DataFrame({
            "head_type": tr["head_type"].astype("string") if "head_type" in tr.columns else "item",
            "head": tr[h].astype("string").str.strip(),
            "relation": tr[r].astype("string").str.strip(),
            "tail_type": tr["tail_type"].astype("string") if "tail_type" in tr.columns else "entity",
            "tail": tr[t].astype("string").str.strip(),
        })
        edge_frames.append(tf)
    ent_df = pd.concat(entities, ignore_index=True).drop_duplicates("entity_id") if entities else None
    trip_df = pd.concat(edge_frames, ignore_index=True) if edge_frames else None
    kg = KnowledgeGraph.build(interactions=frame, users=users_df, items=items_df, entities=ent_df,
                              triples=trip_df, name=name, report=report, sources=sources)
    kg.text_recipe = text_recipe(item_text, item_attributes, user_text, user_attributes)
    return kg.with_min_rating(min_rating)


def text_recipe(item_text: str | Sequence[str] | None, item_attributes: Mapping[str, str] | Sequence[str] | None,
                user_text: str | Sequence[str] | None = None,
                user_attributes: Mapping[str, str] | Sequence[str] | None = None) -> dict[str, dict]:
    """How nodes were built from their tables, per node type: the ``text`` columns and the
    ``attributes`` columns (column -> entity kind), for the parts that were given."""
    out: dict[str, dict] = {}
    for node_type, text, attrs in (("item", item_text, item_attributes), ("user", user_text, user_attributes)):
        recipe: dict = {}
        if text:
            recipe["text"] = [text] if isinstance(text, str) else list(text)
        if attrs:
            recipe["attributes"] = dict(attrs) if isinstance(attrs, Mapping) else {c: c for c in attrs}
        if recipe:
            out[node_type] = recipe
    return out


def node_frame(df: pd.DataFrame, id_col: str, key: str, text_cols: str | Sequence[str] | None,
                source: str) -> pd.DataFrame:
    ids = df[id_col].astype("string").str.strip()
    out = pd.DataFrame({key: ids})
    if text_cols:
        cols = [text_cols] if isinstance(text_cols, str) else list(text_cols)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(source, 1 if source != "<DataFrame>" else None, f"text column(s) {missing} not found",
                            f"choose text columns among {list(df.columns)}")
        parts = df[cols].astype("string").fillna("")
        out["name"] = parts[cols[0]].to_numpy()
        text = parts[cols[0]]
        for c in cols[1:]:
            text = text.str.cat(parts[c], sep=". ")
        out["text"] = text.str.replace(r"(\. )+$", "", regex=True).str.strip().to_numpy()
    else:
        for c in ("name", "title"):
            if c in df.columns:
                out["name"] = df[c].astype("string").to_numpy()
                break
    return out


def attribute_edges(df: pd.DataFrame, id_col: str, node_type: str,
                     attrs: Mapping[str, str] | Sequence[str] | None, multi_sep: str,
                     source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attribute columns -> (entities, triples): ``genres="Action|Comedy"`` on item 1 gives
    entities ``genre:Action`` / ``genre:Comedy`` and edges ``(1, HAS_GENRE, genre:...)``."""
    if not attrs:
        return pd.DataFrame(columns=["entity_id", "kind", "name"]), pd.DataFrame(
            columns=["head_type", "head", "relation", "tail_type", "tail"])
    mapping = dict(attrs) if isinstance(attrs, Mapping) else {c: c for c in attrs}
    ents, edges = [], []
    for col, kind in mapping.items():
        if col not in df.columns:
            raise DataError(source, 1 if source != "<DataFrame>" else None, f"attribute column '{col}' not found",
                            f"choose attribute columns among {list(df.columns)}")
        vals = df[[id_col, col]].dropna()
        vals = vals.assign(**{col: vals[col].astype("string").str.split(multi_sep, regex=False)}).explode(col)
        vals[col] = vals[col].astype("string").str.strip()
        vals = vals[vals[col].notna() & (vals[col] != "")]
        eid = kind + ":" + vals[col]
        ents.append(pd.DataFrame({"entity_id": eid.to_numpy(), "kind": kind, "name": vals[col].to_numpy()}))
        edges.append(pd.DataFrame({"head_type": node_type, "head": vals[id_col].astype("string").str.strip().to_numpy(),
                                   "relation": "HAS_" + kind.upper().replace(" ", "_"), "tail_type": "entity",
                                   "tail": eid.to_numpy()}))
    return pd.concat(ents, ignore_index=True), pd.concat(edges, ignore_index=True)
