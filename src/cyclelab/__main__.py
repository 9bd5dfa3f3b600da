"""``python -m cyclelab``: see :mod:`cyclelab.cli`."""

from cyclelab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
