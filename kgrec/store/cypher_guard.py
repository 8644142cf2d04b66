"""Read-only Cypher guard: refuse inspection statements that could write, touch files, load
extensions or reach the network, before a store runs them.

Two layers, both fail closed (what they cannot classify is refused):

- :func:`check_read_only` reads the statement as the engine's lexer does: comments (``//``,
  ``/* */``), string literals and backtick-quoted names are masked first, so a keyword inside
  them neither counts nor hides; the rest is NFKC-normalised (full-width letters become ASCII),
  stripped of invisible format characters (zero-width spaces) and upper-cased. It refuses
  several statements, every clause keyword of :data:`REFUSED_KEYWORDS` wherever it stands, and a
  ``CALL`` of anything but a subquery or a procedure / table function of the store's allow-list
  (:data:`LADYBUG_CALLS`, :data:`NEO4J_PROCEDURES`). A word after ``.`` or ``$`` (a property
  key, a parameter) is a name, not a keyword; one that is a keyword elsewhere (``AS copy``)
  needs backticks.
- :func:`ladybug_plan_refusal` reads the physical plan that ladybug's ``EXPLAIN`` prints (the
  engine's own view of the statement): operators that copy out, install / load extensions,
  attach, export, import or change settings are refused, and every table function the plan
  calls must be a read-only one of :data:`LADYBUG_PLAN_FUNCTIONS` (``LOAD FROM`` a file plans as
  ``READ_CSV`` / ``READ_PARQUET`` ..., which are not).

Both raise or return messages that name the refused clause and the fix.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from ..errors import ReadOnlyQueryError

Dialect = Literal["ladybug", "neo4j"]

#: clause keywords no inspection statement may contain (writes, files, extensions, databases,
#: transactions, settings, administration)
REFUSED_KEYWORDS = frozenset({
    "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "FOREACH", "INSERT", "UPDATE",
    "TRUNCATE", "RENAME", "COPY", "LOAD", "INSTALL", "UNINSTALL", "ATTACH", "USE", "EXPORT", "IMPORT",
    "CHECKPOINT", "BEGIN", "COMMIT", "ROLLBACK", "COMMENT", "ANALYZE", "TERMINATE", "GRANT", "DENY", "REVOKE",
    "START", "STOP", "ENABLE", "DEALLOCATE", "REALLOCATE", "SHOW",
})

#: ladybug table functions a ``CALL`` may name: they read the catalog, nothing else
LADYBUG_CALLS = frozenset({"show_tables", "table_info", "show_connection", "db_version", "current_setting",
                           "show_functions"})

#: Neo4j procedures a ``CALL`` may name: they read the schema, nothing else
NEO4J_PROCEDURES = frozenset({"db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
                              "db.schema.nodetypeproperties", "db.schema.reltypeproperties"})

#: table functions a ladybug plan may call: the query's own intermediate results, and the catalog
LADYBUG_PLAN_FUNCTIONS = frozenset({"READ_FTABLE"} | {name.upper() for name in LADYBUG_CALLS})

#: ladybug plan operators that are never part of a read: copies, extensions, databases (attach,
#: use, export, import), settings (``STANDALONE_CALL``), macros, graph projections, writes
LADYBUG_REFUSED_OPERATOR = re.compile(
    r"COPY_\w+|\w+_EXTENSION|\w+_DATABASE|STANDALONE_CALL|CREATE_\w+|DROP\w*|ALTER|MERGE|INSERT|SET_\w+|"
    r"DELETE_\w+|TRANSACTION|CHECKPOINT|ANALYZE|\w*PROJECT\w*GRAPH\w*")

FIX = "inspect with MATCH ... RETURN (and the CALLs of docs/security.md); write through write_graph / " \
      "write_recommendations"

_WORD = re.compile(r"[A-Z_][A-Z0-9_]*")
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)")
_PLAN_OPERATOR = re.compile(r"([A-Z][A-Z0-9_]*)\[\d+\]")
_PLAN_FUNCTION = re.compile(r"Function:\s*([A-Za-z0-9_]+)")


def _refuse(where: str, what: str) -> ReadOnlyQueryError:
    return ReadOnlyQueryError(f"{where}: query() is read-only and refuses {what}. Fix: {FIX}")


def masked(cypher: str, where: str = "query") -> str:
    """``cypher`` with every comment and string literal replaced by one blank and every
    backtick-quoted name by ``_q``, as the engine's lexer separates them; an unterminated one
    raises :class:`ReadOnlyQueryError` (the statement cannot be classified)."""
    out: list[str] = []
    i, n = 0, len(cypher)
    while i < n:
        c = cypher[i]
        two = cypher[i:i + 2]
        if two == "//":
            end = cypher.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif two == "/*":
            end = cypher.find("*/", i + 2)
            if end < 0:
                raise _refuse(where, "a statement with an unterminated /* comment")
            i = end + 2
            out.append(" ")
        elif c in "'\"`":
            j = i + 1
            while j < n and cypher[j] != c:
                j += 2 if cypher[j] == "\\" and c != "`" else 1
            if j >= n:
                raise _refuse(where, f"a statement with an unterminated {c} quote")
            i = j + 1
            out.append(" _q " if c == "`" else " 0 ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def normalized(text: str) -> str:
    """``text`` NFKC-normalised, without format characters (zero-width spaces, joiners), upper-cased."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").upper()


def _previous_char(text: str, start: int) -> str:
    j = start - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    return text[j] if j >= 0 else ""


def check_read_only(cypher: str, dialect: Dialect, where: str = "query") -> None:
    """Raise :class:`ReadOnlyQueryError` (naming ``where`` and the refused clause) unless
    ``cypher`` is one statement made of read clauses only; see the module docstring."""
    if not isinstance(cypher, str) or not cypher.strip():
        raise _refuse(where, f"{cypher!r}: not a Cypher statement")
    text = normalized(masked(cypher, where))
    if len([part for part in text.split(";") if part.strip()]) > 1:
        raise _refuse(where, "several statements (';' between them)")
    allowed = LADYBUG_CALLS if dialect == "ladybug" else NEO4J_PROCEDURES
    for match in _WORD.finditer(text):
        word = match[0]
        if _previous_char(text, match.start()) in (".", "$"):
            continue  # a property key or a parameter, not a keyword
        if word in REFUSED_KEYWORDS:
            raise _refuse(where, f"the {word} clause")
        if word == "CALL":
            rest = text[match.end():].lstrip()
            if rest.startswith(("{", "(")):
                continue  # a subquery: its clauses are checked like the rest
            name = _NAME.match(text, match.end())
            called = re.sub(r"\s+", "", name[1]).lower() if name else rest[:20]
            if called not in allowed:
                raise _refuse(where, f"CALL {called} (only {', '.join(sorted(allowed))} may be called)")


def ladybug_plan_refusal(plan: str) -> str | None:
    """What a ladybug ``EXPLAIN`` plan (the text it returns) does that a read must not, or None
    when every operator reads and every table function is in :data:`LADYBUG_PLAN_FUNCTIONS`."""
    for op in _PLAN_OPERATOR.findall(plan):
        if LADYBUG_REFUSED_OPERATOR.fullmatch(op):
            return f"the plan operator {op}"
    for fn in _PLAN_FUNCTION.findall(plan):
        if fn.upper() not in LADYBUG_PLAN_FUNCTIONS:
            return f"the table function {fn} (LOAD FROM / CALL of a function that is not read-only)"
    if "TABLE_FUNCTION_CALL" in plan and not _PLAN_FUNCTION.search(plan):
        return "a table function the plan does not name"
    return None


__all__ = ["LADYBUG_CALLS", "NEO4J_PROCEDURES", "REFUSED_KEYWORDS", "check_read_only", "ladybug_plan_refusal",
           "masked", "normalized"]
