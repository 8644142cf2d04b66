"""File reading that the loaders share.

Every problem is raised as :class:`kgrec.DataError` naming the file, the 1-based line and the
fix, never as a pandas traceback: a missing file, a directory where a file belongs, an empty or
header-only file, undecodable bytes, a wrong separator, a short or long row, an empty id or a
value that is not a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import DataError
from kgrec.knowledge_graph import isin


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path` that must be an existing directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(str(p), None, f"{what} folder not found",
                        f"check the path (relative paths start at {Path.cwd()}); "
                        "download the data set or pass --data / the folder that holds its files")
    if not p.is_dir():
        raise DataError(str(p), None, f"is a file, but the {what} loader needs the folder that holds the files",
                        f"pass {p.parent}")
    return p


def require_file(path: str | Path, what: str = "", fix: str | None = None) -> Path:
    """``path`` as a :class:`Path` that must be an existing, non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise DataError(str(p), None, f"file not found{f' ({what})' if what else ''}",
                        fix or f"check that {p.name} is in {p.parent}")
    if p.is_dir():
        raise DataError(str(p), None, "is a directory, not a file", f"pass the file {p.name} itself, not a folder")
    if p.stat().st_size == 0:
        raise DataError(str(p), None, "the file is empty", "re-download or re-export it; it has no rows")
    return p


def decode(path: Path, encoding: str, fallback: str | None = None) -> str:
    """The file's text. Bytes that are not valid ``encoding`` raise :class:`DataError` with the
    line of the first bad byte, unless ``fallback`` (e.g. ``'latin-1'``) is given."""
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if fallback:
            return raw.decode(fallback)
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(str(path), line, f"byte 0x{raw[exc.start]:02x} is not valid {encoding}",
                        "pass encoding='latin-1' (or the file's real encoding), "
                        "or re-save the file as UTF-8") from None


def sep_label(sep: str) -> str:
    return {"\t": "'\\t' (tab)", ",": "','", "|": "'|'", "::": "'::'", ";": "';'", " ": "' ' (space)"}.get(sep, repr(sep))


def read_delimited(
    path: Path,
    names: Sequence[str],
    *,
    sep: str,
    encoding: str = "utf-8",
    header: bool = False,
    quoted: bool = False,
    text: str | None = None,
    min_fields: int | None = None,
) -> pd.DataFrame:
    """Read a delimited file into a frame of strings with columns ``names``.

    ``header=True`` skips (and checks the field count of) the first line. Blank lines are
    dropped; every other row keeps its file line number in the index so that errors can name
    it (see :func:`line_of`). ``quoted`` enables CSV quoting (movies.csv); otherwise quote
    characters are data (u.item titles). A first line with fewer fields than ``names`` raises
    a wrong-separator error; a later long row raises with its line. Rows with fewer fields than
    ``min_fields`` (default: all) raise too; trailing optional columns may be empty.
    """
    if text is None and len(sep) > 1:
        text = decode(path, encoding)
    if text is not None:
        if not text.strip():
            raise DataError(str(path), None, "the file holds only blank lines", "re-download or re-export it")
        first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    else:  # read straight from the file: no copy of a big file in memory
        with open(path, "rb") as fh:
            head = fh.readline()
        try:
            first = head.decode(encoding).lstrip("\ufeff").rstrip("\r\n")
        except UnicodeDecodeError:
            decode(path, encoding)  # raises with the line
            raise
    n_first = len(_split_first(first, sep, quoted))
    need = min_fields or len(names)
    if n_first < need:
        found = _guess_sep(first, sep)
        hint = f"the file looks separated by {sep_label(found)}, not {sep_label(sep)}" if found else \
            f"this file needs {len(names)} fields ({', '.join(names)}) separated by {sep_label(sep)}"
        raise DataError(str(path), 1, f"expected {need} fields separated by {sep_label(sep)}, found {n_first}",
                        hint if not found else f"{hint}: pass the right file or sep")
    if text is not None and len(sep) > 1:  # '::' (MovieLens 1M/10M): numeric files only, so a plain replace is safe
        text = text.replace(sep, "\t")
        sep = "\t"
    source = io.StringIO(text.lstrip("\ufeff")) if text is not None else path
    enc = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig"}.get(encoding.lower(), encoding)
    try:
        df = pd.read_csv(source, sep=sep, header=None, names=list(names), dtype=str,
                         keep_default_na=False, na_values=[""], skip_blank_lines=False,
                         quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE, engine="c",
                         skiprows=1 if header else 0, index_col=False,
                         encoding=enc if text is None else None)
    except UnicodeDecodeError:
        decode(path, encoding)  # raises DataError with the line of the first bad byte
        raise
    except pd.errors.EmptyDataError:
        raise DataError(str(path), None, "the file holds only blank lines", "re-download or re-export it") from None
    except pd.errors.ParserError as exc:
        line = _parser_line(str(exc))
        raise DataError(str(path), line, f"malformed row ({_short(exc)})",
                        f"each row needs {len(names)} fields separated by {sep_label(sep)}"
                        + ("; check the quoting" if quoted else "")) from None
    df.index = np.arange(len(df)) + (2 if header else 1)  # 1-based file line numbers
    blank = df.isna().all(axis=1)
    if blank.any():
        df = df[~blank.to_numpy()]
    if len(df) == 0:
        raise DataError(str(path), None, "the file has a header but no data rows" if header else "the file has no rows",
                        "re-download or re-export it with its data")
    required = list(names[:need])
    cand = df[required[-1]].isna().to_numpy()
    if cand.any():  # an empty last field, or a row that is too short? Count the fields of those lines.
        lines = (text if text is not None else decode(path, encoding)).lstrip("\ufeff").split("\n")
        for line in df.index[cand]:
            raw = lines[int(line) - 1].rstrip("\r") if int(line) - 1 < len(lines) else ""
            n = len(_split_first(raw, sep, quoted))
            if n < need:
                raise DataError(str(path), int(line), f"the row has {n} field{'s' if n != 1 else ''}, expected {need}",
                                f"each row needs {', '.join(required)} separated by {sep_label(sep)}")
    return df


def _split_first(line: str, sep: str, quoted: bool) -> list[str]:
    if quoted and len(sep) == 1:
        return next(csv.reader([line], delimiter=sep), [])
    return line.split(sep)


def _guess_sep(line: str, expected: str) -> str | None:
    for cand in ("::", "\t", ",", "|", ";", " "):
        if cand != expected and cand in line and not (expected == "::" and cand == ":"):
            return cand
    return None


def _parser_line(msg: str) -> int | None:
    import re
    m = re.search(r"line (\d+)", msg)
    return int(m.group(1)) if m else None


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1][:200]


def line_of(df: pd.DataFrame, mask: np.ndarray | pd.Series) -> int:
    """File line of the first row where ``mask`` is true (the index holds line numbers)."""
    return int(df.index[np.flatnonzero(np.asarray(mask))[0]])


def ids(df: pd.DataFrame, col: str, path: Path | str, label: str | None = None) -> pd.Series:
    """Column ``col`` stripped, as strings; an empty cell raises with its line."""
    s = df[col].astype("string").str.strip()
    bad = s.isna() | (s == "")
    if bad.any():
        raise DataError(str(path), line_of(df, bad), f"{label or col} is empty ({int(bad.sum())} such rows)",
                        f"fill in {label or col} or delete those rows")
    return s


def numbers(df: pd.DataFrame, col: str, path: Path | str, *, label: str | None = None, integer: bool = False,
            allow_missing: bool = False) -> pd.Series:
    """Column ``col`` as float64 (or Int64); a value that is not a number raises with its line."""
    s = df[col]
    fast = _fast_numbers(s, integer=integer, allow_missing=allow_missing)
    if fast is not None:
        return fast
    num = pd.to_numeric(s, errors="coerce")
    text = s.astype("string").str.strip()
    empty = s.isna() | (text == "")
    bad = num.isna() & ~empty
    if not allow_missing:
        bad |= empty
    if integer:
        bad |= num.notna() & (np.floor(num.fillna(0)) != num.fillna(0))
    if np.isinf(num.to_numpy(dtype=float, na_value=np.nan)).any():
        bad |= np.isinf(num.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = np.flatnonzero(np.asarray(bad))[0]
        val = s.iloc[i]
        name = label or col
        what = "is empty" if pd.isna(val) or str(val).strip() == "" else \
            f"'{val}' is not {'an integer' if integer else 'a finite number'}"
        raise DataError(str(path), int(df.index[i]), f"{name} {what} ({int(np.asarray(bad).sum())} such rows)",
                        f"make every {name} {'an integer' if integer else 'a number'}"
                        + ("" if allow_missing else " or delete those rows"))
    return num.astype("Int64") if integer else num.astype("float64")


def _fast_numbers(s: pd.Series, *, integer: bool, allow_missing: bool) -> pd.Series | None:
    """pyarrow's string -> number cast (several times faster than ``pd.to_numeric``), or None when
    any value needs the careful path (not a number, empty, infinite, fractional integer)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pa.array(s.array, type=pa.string(), from_pandas=True)
        num = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        return None
    out = num.to_numpy(zero_copy_only=False)
    if (num.null_count and not allow_missing) or not np.isfinite(out[~np.isnan(out)]).all():
        return None
    if (not allow_missing or not num.null_count) and np.isnan(out).any():  # a literal 'nan'
        return None
    if integer:
        ok = ~np.isnan(out)
        if (np.floor(out[ok]) != out[ok]).any():
            return None
        return pd.Series(out, index=s.index).astype("Int64")
    return pd.Series(out, index=s.index, dtype="float64")


def check_known(values: pd.Series, known: Iterable[str] | pd.Index, df: pd.DataFrame, path: Path | str,
                what: str, table: str) -> None:
    """Raise at the first value that is not in ``known``."""
    known_idx = known if isinstance(known, pd.Index) else pd.Index(list(known))
    miss = ~isin(values, known_idx)
    if miss.any():
        raise DataError(str(path), line_of(df, miss),
                        f"{what} '{values[miss.to_numpy()].iloc[0]}' is not in {table} ({int(miss.sum())} such rows)",
                        f"add it to {table} or delete those rows")
