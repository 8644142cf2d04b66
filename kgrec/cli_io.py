"""How the command line reads its options and prints its results: typed query parameters,
id lists, attribute specs, tables sized for a terminal, and commands printed for pasting."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import KgrecError

console = Console()


def paste(command: str) -> None:
    """Print a command for the user to paste: verbatim, one line, no markup or wrapping."""
    print(f"  {command}", flush=True)


def shell_arg(text: str) -> str:
    """``text`` as one shell word: in double quotes where nothing in it is special there (Cypher's
    single quotes stay readable), else quoted by :func:`shlex.quote`."""
    if re.fullmatch(r"[\w./:@+-]+", text):
        return text
    if text and not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def attribute_columns(spec: str | None) -> dict[str, str] | None:
    """``genres=genre,tags`` -> ``{"genres": "genre", "tags": "tags"}``."""
    if not spec:
        return None
    out = {}
    for part in spec.split(","):
        col, _, kind = part.strip().partition("=")
        if not col:
            raise KgrecError(f"--attributes '{spec}' has an empty column name. Fix: write e.g. genres=genre")
        out[col] = kind.strip() or col
    return out


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    """One row per metric, one column per cutoff (``recall@10`` -> row ``recall``, column ``@10``):
    fits an 80-column terminal, where a column per metric@k would be cut to ``0.…``."""
    from .evaluation import METRIC_NAMES  # the CLI imports torch only when a command needs it

    ks = sorted({int(name.split("@")[1]) for name in metrics if "@" in name})
    order = {name: pos for pos, name in enumerate(METRIC_NAMES)}
    names = sorted({name.split("@")[0] for name in metrics if "@" in name},
                   key=lambda n: (order.get(n, len(order)), n))
    table = Table(title=title)
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k}", justify="right")
    for name in names:
        table.add_row(name, *[f"{metrics[f'{name}@{k}']:.4f}" if f"{name}@{k}" in metrics else "" for k in ks])
    return table


def frame_table(df, title: str) -> Table:
    table = Table(title=title)
    for c in df.columns:
        table.add_column(str(c), justify="right" if c in ("score", "rank", "weight") else "left")
    for row in df.itertuples(index=False):
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    return table


def boolean(value: str) -> bool:
    if value.strip().lower() in ("true", "1", "yes"):
        return True
    if value.strip().lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"'{value}' is not a boolean")


PARAM_TYPES = {"str": str, "int": int, "float": float, "bool": boolean}


def typed_params(specs: list[str], cypher_text: str) -> dict[str, Any]:
    """``name=value`` / ``name:type=value`` options as query parameters: strings unless typed, and
    integers where ``cypher_text`` uses the parameter as a ``LIMIT`` or ``SKIP`` count (which
    Cypher requires to be an integer)."""
    counts = set(re.findall(r"\b(?:LIMIT|SKIP)\s+\$([A-Za-z_]\w*)", cypher_text, flags=re.IGNORECASE))
    params: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise KgrecError(f"--param '{spec}' is not name=value. Fix: write e.g. --param user=42 or -p limit:int=5")
        name, _, kind = name.partition(":")
        kind = kind or ("int" if name in counts else "str")
        if kind not in PARAM_TYPES:
            raise KgrecError(f"--param '{spec}': unknown type '{kind}'. Fix: use one of {', '.join(PARAM_TYPES)}")
        try:
            params[name] = PARAM_TYPES[kind](value)
        except ValueError:
            raise KgrecError(f"--param '{spec}': '{value}' is not of type {kind}. Fix: pass a {kind} value or drop the type")
    return params


def id_list(spec: str) -> list[str]:
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.exists():
            raise KgrecError(f"{path}: file not found. Fix: check the path")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s.strip() for s in spec.split(",") if s.strip()]


def counts_frame(counts: dict):
    import pandas as pd

    return pd.DataFrame({"what": list(counts), "count": [str(v) for v in counts.values()]})


def emit(df, out: Path | None, title: str | None) -> None:
    if out is not None:
        df.to_csv(out, index=False)
        console.print(f"wrote {len(df):,} rows to {out}")
    else:
        console.print(frame_table(df, title or ""))
