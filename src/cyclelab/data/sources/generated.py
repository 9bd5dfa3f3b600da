"""The embedded digits generator as a builder: no network, same files for the same seed."""

from __future__ import annotations

from cyclelab.catalogue import DatasetEntry
from cyclelab.data.sources.context import BuildContext, Built


def build_digits(entry: DatasetEntry, ctx: BuildContext) -> Built:
    """The embedded generator: no network, same files for the same seed."""
    from cyclelab.data.digits import generate_digits  # draws with PIL fonts: import on use

    summary = generate_digits(ctx.out_dir, seed=ctx.seed, image_size=ctx.cfg.image_size,
                              train_per_domain=ctx.cfg.digits.train_per_domain,
                              test_per_domain=ctx.cfg.digits.test_per_domain,
                              palette=ctx.cfg.digits.palette)
    return Built([], {"generator": summary})


__all__ = ["build_digits"]
