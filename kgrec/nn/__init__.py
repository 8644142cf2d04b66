"""The model's forward passes (:class:`KGRecModel`) and the sparse products they share with the
baselines."""

from .model import KGRecModel

__all__ = ["KGRecModel"]
