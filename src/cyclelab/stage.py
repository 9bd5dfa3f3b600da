"""The entry point shared by every ``pipeline/*.py`` stage script.

It parses the command line, validates the whole params file before any heavy import or work,
seeds everything, runs the stage, and turns a user mistake (:class:`UserError`) into one line on
stderr with exit code 2. Bugs keep their tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from cyclelab import config as config_mod
from cyclelab.errors import UserError

EXIT_USER_ERROR = 2


def run_stage(
    name: str,
    main: Callable[[config_mod.Config, argparse.Namespace], None],
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> int:
    """Run stage ``name``: ``main(cfg, args)`` after validation; return the process exit code."""
    parser = argparse.ArgumentParser(
        prog=f"pipeline/{name}.py",
        description=description,
        epilog="Params (params.yaml, validated before any work):\n" + config_mod.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default=config_mod.PARAMS_FILE,
                        help="params file (default: %(default)s)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_mod.load(args.params)
        main(cfg, args)
    except UserError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted; outputs were left as they were", file=sys.stderr)
        return 130
    return 0
