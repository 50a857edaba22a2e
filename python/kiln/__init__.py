"""Kiln from Python: predict with an exported servable, analyze data, train in-process.

The C++ core (kiln._kiln) is the one the `kiln` binary runs: the same Transformer, model code and
trainer, so predictions are the bits `kiln serve` answers. See docs/python.md.
"""
from kiln._kiln import KilnError
from kiln.analysis import TransformState, analyze
from kiln.servable import Servable
from kiln.training import train

__all__ = ["KilnError", "Servable", "TransformState", "analyze", "train"]
