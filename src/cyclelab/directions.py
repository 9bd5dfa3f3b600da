"""The two translation directions, named once for every module.

Results and metric keys say ``A_to_B`` (``reports/metrics/*.json``, ``fid_A_to_B``), tables and
plots ``A→B``, the command line ``AtoB``; ``G_ab`` is the generator that maps A to B and
``G_ba`` the one back. Everything that needs one of these spellings reads it from here.
"""

from __future__ import annotations

from typing import NamedTuple


class Direction(NamedTuple):
    """One direction of translation and every name it goes by."""

    key: str        # "A_to_B": result and metric keys
    label: str      # "A→B": tables, plots, printed lines
    cli: str        # "AtoB": python -m cyclelab ... --direction
    source: str     # "A": the domain translated from
    target: str     # "B": the domain translated to
    generator: str  # "G_ab": maps source to target
    backward: str   # "G_ba": maps target back to source (the cycle)


A_TO_B = Direction("A_to_B", "A→B", "AtoB", "A", "B", "G_ab", "G_ba")
B_TO_A = Direction("B_to_A", "B→A", "BtoA", "B", "A", "G_ba", "G_ab")
DIRECTIONS = (A_TO_B, B_TO_A)
KEYS = tuple(d.key for d in DIRECTIONS)             # ("A_to_B", "B_to_A")
GENERATORS = tuple(d.generator for d in DIRECTIONS)  # ("G_ab", "G_ba")
BY_KEY = {d.key: d for d in DIRECTIONS}
BY_CLI = {d.cli: d for d in DIRECTIONS}
# The row labels of every sample grid: per direction the real images, their translations and
# the round trips ("real A", "A→B", "A→B→A", "real B", ...).
GRID_ROWS = tuple(row for d in DIRECTIONS
                  for row in (f"real {d.source}", d.label, f"{d.label}→{d.source}"))
