"""``python -m cyclelab``: use a trained model outside the pipeline.

    python -m cyclelab translate --variant baseline --direction AtoB photos/ out/
    python -m cyclelab export --variant baseline --direction AtoB --format onnx g_ab.onnx
    python -m cyclelab study --list
    python -m cyclelab study seed000 [--smoke]

translate and export read ``params.yaml`` (validated, as every stage does) to rebuild the
variant's generator and find its weights in ``data/models/<variant>/s<seed>/``; study runs a
preset of ``studies/`` (:mod:`cyclelab.presets`). Run them from the project root. A user mistake
prints one line and exits with code 2, as a stage does; bugs keep their tracebacks.
"""

from __future__ import annotations

import argparse
import functools

from cyclelab import config as config_mod
from cyclelab.directions import BY_CLI
from cyclelab.stage import guarded, run_seed


def _translate(cfg: config_mod.Config, args: argparse.Namespace) -> None:
    from cyclelab import inference
    from cyclelab.runtime import pick_device

    seed = run_seed(cfg, args.seed)
    todo = inference.plan(args.input, args.output)
    _, model_cfg, _ = cfg.variant(args.variant)
    net = inference.load_generator(model_cfg, args.variant, seed, args.direction,
                                   image_size=cfg.data.image_size)
    net = net.to(pick_device(cfg.device))
    written = inference.translate_files(net, todo, cfg.data,
                                        domain=BY_CLI[args.direction].source,
                                        batch_size=args.batch_size)
    where = todo.targets[0] if len(todo.targets) == 1 else todo.targets[0].parent
    line = (f"translate: {written} image(s) {args.direction} with {args.variant} seed {seed} "
            f"-> {where}")
    if todo.skipped:
        line += "; " + inference.describe_skipped(todo.skipped)
    print(line)


def _export(cfg: config_mod.Config, args: argparse.Namespace) -> None:
    from cyclelab import inference

    seed = run_seed(cfg, args.seed)
    _, model_cfg, _ = cfg.variant(args.variant)
    net = inference.load_generator(model_cfg, args.variant, seed, args.direction,
                                   image_size=cfg.data.image_size)
    size = cfg.data.image_size
    out = inference.export(net, args.format, args.output, size)
    print(f"export: {args.variant} seed {seed} {args.direction} -> {out} ({args.format}; input "
          f"and output float N×3×{size}×{size} in [-1, 1])")


def _study(args: argparse.Namespace) -> int:
    from cyclelab import presets

    if args.list:
        print(presets.listing())
        return 0
    if not args.name:
        raise config_mod.ConfigError("study: name a preset (python -m cyclelab study --list)")
    return presets.run(args.name, smoke=args.smoke, dry_run=args.dry_run,
                       dvc_args=("--force",) if args.force else ())


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=config_mod.PARAMS_FILE,
                        help="params file (default: %(default)s)")
    parser.add_argument("--variant", required=True,
                        help="a name under variants: or finetunes: in params.yaml")
    parser.add_argument("--seed", type=int, default=None,
                        help="replicate seed, one of study.seeds (default: the first)")
    parser.add_argument("--direction", required=True, choices=tuple(BY_CLI),
                        help="AtoB uses the generator G_ab, BtoA G_ba")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m cyclelab`` parser: one sub-command per use."""
    parser = argparse.ArgumentParser(prog="python -m cyclelab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    translate = commands.add_parser(
        "translate", help="translate an image file or a folder of images",
        description="Translate images: each is decoded, converted to RGB and resized to "
                    "data.image_size as the prepare stage does, then written as the "
                    "generator's output at that size.")
    _common(translate)
    translate.add_argument("--batch-size", type=int, default=16, help="default: %(default)s")
    translate.add_argument("input", help="an image file or a folder of images")
    translate.add_argument("output", help="an image file (for one input file) or a folder")
    translate.set_defaults(run=_translate)
    export = commands.add_parser(
        "export", help="write a generator as ONNX or TorchScript",
        description="Export one generator. Input and output: float N×3×S×S images in [-1, 1] "
                    "(img / 127.5 − 1), S = data.image_size.")
    _common(export)
    export.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    export.add_argument("output", help="the file to write (e.g. g_ab.onnx, g_ab.pt)")
    export.set_defaults(run=_export)
    study = commands.add_parser(
        "study", help="run a study preset (studies/NAME.yaml: a seed report's, or ours) as a "
                      "DVC experiment",
        description="Write studies/NAME.yaml to params.yaml and run `dvc exp run -n NAME`; "
                    "every MLflow run of it is tagged study=NAME. Refuses to overwrite "
                    "uncommitted edits of params.yaml; `git checkout params.yaml` returns to "
                    "the default study afterwards.")
    study.add_argument("name", nargs="?", help="the preset (studies/NAME.yaml)")
    study.add_argument("--list", action="store_true",
                       help="list the presets: report, dataset, networks, budget, times")
    study.add_argument("--smoke", action="store_true",
                       help="merge studies/smoke.yaml: embedded digits, tiny networks, one "
                            "epoch (the whole DAG in about a minute; experiment NAME-smoke)")
    study.add_argument("--dry-run", action="store_true",
                       help="print the params it would write and the command, run nothing")
    study.add_argument("--force", action="store_true",
                       help="dvc exp run --force: rerun every stage and replace an experiment "
                            "of the same name")
    study.set_defaults(run=_study, needs_params=False)
    return parser


def _checked_run(args: argparse.Namespace) -> int | None:
    if getattr(args, "batch_size", 1) < 1:
        raise config_mod.ConfigError(f"--batch-size: got {args.batch_size}, must be >= 1")
    if not getattr(args, "needs_params", True):
        return args.run(args)
    return args.run(config_mod.load(args.params), args)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit code (the stages' policy: :func:`guarded`)."""
    args = build_parser().parse_args(argv)
    return guarded(f"cyclelab {args.command}", functools.partial(_checked_run, args))
