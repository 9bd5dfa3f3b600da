"""The entry point shared by every ``pipeline/*.py`` stage script.

It parses the command line, validates the whole params file and checks that the tracking
store answers before any heavy import or work, runs the stage, and turns a user mistake
(:class:`UserError`) into one line on stderr with exit code 2. Bugs keep their tracebacks.

SIGTERM (``kill``, a scheduler, ``dvc queue kill``) is handled like Ctrl-C: the stage unwinds,
so temporary outputs are removed (``cyclelab.io.atomic_dir``) and its MLflow run ends KILLED;
the exit code is 128 + the signal number, as a shell reports it.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from cyclelab import config as config_mod
from cyclelab.errors import UserError

EXIT_USER_ERROR = 2


class StageInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT: unwinds the stage like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise StageInterrupted(signum)


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
    return guarded(name, functools.partial(_validated_main, main, args))


def _validated_main(main: Callable[[config_mod.Config, argparse.Namespace], None],
                    args: argparse.Namespace) -> None:
    cfg = config_mod.load(args.params)
    from cyclelab import tracking

    tracking.check_store()
    main(cfg, args)


def guarded(name: str, work: Callable[[], int | None]) -> int:
    """Run ``work()`` as the entry point ``name`` (a stage or a ``python -m cyclelab`` command).

    The one exit policy of every entry point: the code ``work`` returns (None is 0); a
    :class:`UserError` prints one line ``<name>: error: ...`` and gives
    :data:`EXIT_USER_ERROR`; SIGINT and SIGTERM (turned
    into :class:`StageInterrupted` while it runs, so ``finally`` blocks clean up) print one line
    and give 128 + the signal number, as a shell reports it.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach only that one
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = work()
    except UserError as exc:
        # One line, whatever the message holds (a key or a name with a newline in it).
        print(f"{name}: error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"{name}: interrupted ({signal.Signals(signum).name}); complete outputs were "
              "left as they were, partial ones removed", file=sys.stderr)
        return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code or 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--variant`` and ``--seed``: one replicate of one variant (train, evaluate)."""
    parser.add_argument("--variant", required=True,
                        help="a name under variants: or finetunes: in params.yaml")
    parser.add_argument("--seed", type=int, default=None,
                        help="replicate seed, one of study.seeds (default: the first)")


def run_seed(cfg: config_mod.Config, seed: int | None) -> int:
    """The replicate seed ``--seed`` names, checked against ``study.seeds``."""
    if seed is None:
        return cfg.study.seeds[0]
    if seed not in cfg.study.seeds:
        raise config_mod.ConfigError(f"--seed {seed}: not in study.seeds {cfg.study.seeds}; "
                                     "add it there (dvc.yaml runs one stage per listed seed)")
    return seed


def run_seeds(cfg: config_mod.Config, seed: int | None, all_seeds: bool) -> list[int]:
    """``--seed`` (one replicate, checked) or ``--all-seeds`` (every one of ``study.seeds``: the
    finetune stage, which declares ``study.seeds``; a per-seed stage must not)."""
    if all_seeds and seed is not None:
        raise config_mod.ConfigError(f"--seed {seed} and --all-seeds: give one of them")
    return list(cfg.study.seeds) if all_seeds else [run_seed(cfg, seed)]
