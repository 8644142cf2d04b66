"""Errors raised by kgrec.

Every error a user can cause says *where* (file or table, row, column) and *how to fix it*,
so that the CLI can print it as one line and exit with code 2.
"""

from __future__ import annotations


class KgrecError(Exception):
    """Base class of every error kgrec raises on purpose."""


class DataError(KgrecError, ValueError):
    """Input data is malformed: names the source, the row (1-based line in the file where
    there is a file, else the 0-based DataFrame index) and the fix.

    ``DataError("interactions.csv", 17, "item_id is empty", "fill it in or drop the row")``
    reads ``interactions.csv row 17: item_id is empty. Fix: fill it in or drop the row``.
    """

    def __init__(self, source: str, row: int | None, problem: str, fix: str | None = None):
        self.source = source
        self.row = row
        self.problem = problem
        self.fix = fix
        where = f"{source} row {row}" if row is not None else source
        msg = f"{where}: {problem}"
        if fix:
            msg += f". Fix: {fix}"
        super().__init__(msg)


class SchemaError(KgrecError, ValueError):
    """A table lacks a required column or has one of the wrong type."""


class StoreError(KgrecError):
    """The graph store cannot be opened, written or queried."""


class ReadOnlyQueryError(StoreError):
    """A Cypher query tried to write through the read-only ``query`` entry point."""


class ModelError(KgrecError):
    """A model is used before ``fit``, or a model directory is corrupt or mismatched."""


class UnknownIdError(KgrecError, KeyError):
    """A user or item id the model has never seen."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(ModelError):
    """The training loss became NaN or infinite."""


class UnknownEntityWarning(UserWarning):
    """A batch of new items or users names entities the trained graph does not have: they become
    new nodes (text, no trained ID). Often a spelling of a known one (``Sci-Fi`` for
    ``genre:Sci-Fi``); ``strict=True`` makes it an error."""



class UnknownUserWarning(UserWarning):
    """Users to forget that the model or store does not hold: they are skipped (forgetting twice
    is the same as once, so an interrupted ``forget`` can be run again)."""
