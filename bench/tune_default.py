"""Tune the default study on the validation split: one configuration, several seeds.

    python bench/tune_default.py NAME [--set key=value ...] [--seeds 0 1 2] [--work DIR]
                                 [--preset STUDY] [--score-only]

Builds a work folder once (the real download, prepare and classifier stages on the repo's
params.yaml, so the validation split is prepare's: ``data.val_fraction`` of train, seeded),
then per seed runs the real train stage for a variant named NAME with the ``--set`` overrides
(``model.*`` and ``train.*`` keys; values are YAML: ``--set train.diffaugment=[color,cutout]``)
and scores its generators on valA/valB: label accuracy of the other domain's classifier on the
translations (labelled sets), FID and KID, beside doing nothing (the untranslated images). The
test split is never read. ``--preset STUDY`` starts from studies/STUDY.yaml instead of
params.yaml (``--preset seed000``: apple2orange at 32 px, the real32 search of
docs/studies/beyond-seed000.md; give a fresh ``--work`` per base).
One JSON line per seed goes to ``bench/results/tune_default.jsonl`` (name, overrides, seed,
val label accuracy, FID and KID both ways beside doing nothing's, train seconds; rows before
2026-12-06 have label accuracy only), and a sample grid of the first seed to
``bench/results/tune/<NAME>.png``; docs/default-study.md tabulates them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def _stage(work: Path, script: str, *args: str) -> float:
    """Run ``pipeline/<script>.py`` in ``work``; its wall time in seconds."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    for name in ("DVC_ROOT", "DVC_EXP_NAME", "CYCLELAB_GROUP"):
        env.pop(name, None)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "pipeline" / f"{script}.py"),
                           "--params", str(work / "params.yaml"), *args], cwd=work, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{script} {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def _params(name: str, overrides: dict, seed: int, preset: str | None = None) -> dict:
    if preset:
        from cyclelab import presets

        raw = presets.load(preset, REPO).params
    else:
        raw = yaml.safe_load((REPO / "params.yaml").read_text())
    variant: dict = {"init": "random"}
    for key, value in overrides.items():
        section, _, leaf = key.partition(".")
        if section not in ("model", "train") or not leaf:
            raise SystemExit(f"--set {key}: only model.* and train.* keys are tuned here")
        variant.setdefault(section, {})[leaf] = value
    raw["variants"] = {name: variant}
    raw["finetunes"] = {}
    raw["study"] = {"seeds": [seed]}
    return raw


def _score(work: Path, name: str, seed: int, grid_path: Path | None) -> dict:
    """Label accuracy on the validation split, both ways, and doing nothing's."""
    os.chdir(work)
    import torch

    from cyclelab import config, paths
    from cyclelab.data.dataset import load_folder
    from cyclelab.inference import load_generator, translate_batch
    from cyclelab.metrics.semantic import accuracy, folder_labels, load_classifier
    from cyclelab.runtime import make_runtime

    cfg = config.load(work / "params.yaml")
    _, model_cfg, _ = cfg.variant(name)
    runtime = make_runtime("cpu", "fp32")
    out: dict = {}
    shown = []
    labelled = (paths.PREPARED / "labels.csv").is_file()
    for direction, source, target in (("A_to_B", "A", "B"), ("B_to_A", "B", "A")):
        folder = f"val{source}"
        images = load_folder(paths.PREPARED / folder)
        net = load_generator(model_cfg, name, seed, direction.replace("_to_", "to"),
                             image_size=cfg.data.image_size)
        with torch.no_grad():
            fakes = torch.cat([translate_batch(net, images[i:i + 64])
                               for i in range(0, len(images), 64)])
        out[direction] = {"n": len(images)}
        if labelled:
            _, labels = folder_labels(paths.PREPARED, folder)
            classifier, _ = load_classifier(paths.CLASSIFIER / target, runtime)
            out[direction] |= {"label_accuracy": accuracy(classifier, fakes, labels, runtime),
                               "label_accuracy_identity": accuracy(classifier, images, labels,
                                                                   runtime)}
        shown += [images[:8], fakes[:8]]
    # FID and KID on the same validation images (40 against 40 per direction: biased upwards
    # at this N, comparable between configurations), and doing nothing's.
    from cyclelab.metrics import load_inception
    from cyclelab.metrics.translation import CurveScorer

    val = {d: load_folder(paths.PREPARED / f"val{d}") for d in "AB"}
    scorer = CurveScorer(load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256,
                                        runtime.device), val["A"], val["B"], cfg.eval, seed,
                         ["fid", "kid"])
    generators = [load_generator(model_cfg, name, seed, key, image_size=cfg.data.image_size)
                  for key in ("AtoB", "BtoA")]
    for label, nets in (("", generators), ("_identity", [torch.nn.Identity()] * 2)):
        for key, value in scorer(*nets, runtime).items():
            metric, _, direction = key.partition("_")
            out[direction][f"{metric}{label}"] = value
    if grid_path is not None:
        from cyclelab.report.grids import grid, save_png

        grid_path.parent.mkdir(parents=True, exist_ok=True)
        save_png(grid(shown, scale=3), grid_path)
    return out


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cyclelab-tune"))
    parser.add_argument("--out", type=Path, default=RESULTS / "tune_default.jsonl")
    parser.add_argument("--preset", help="base params: studies/PRESET.yaml (default: params.yaml)")
    parser.add_argument("--score-only", action="store_true",
                        help="score the trained models in --work again (no training); the row "
                             "has no train_seconds")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected key=value")
        overrides[key] = yaml.safe_load(value)
    work, args.out = args.work.resolve(), args.out.resolve()  # _score changes directory
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "data" / "classifier" / "B" / "meta.json").is_file():
        (work / "params.yaml").write_text(yaml.safe_dump(
            _params(args.name, overrides, 0, args.preset)))
        for script, extra in (("download", ()), ("prepare", ()), ("classifier", ("--domain", "A")),
                              ("classifier", ("--domain", "B"))):
            print(f"{script} {' '.join(extra)}: {_stage(work, script, *extra):.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(args.seeds):
        (work / "params.yaml").write_text(yaml.safe_dump(
            _params(args.name, overrides, seed, args.preset)))
        # A fresh run each time, so that its time is the whole training's (not a resumed rest).
        if args.score_only:
            seconds = None
        else:
            (work / "data" / "checkpoints" / args.name / f"s{seed}.pt").unlink(missing_ok=True)
            seconds = _stage(work, "train", "--variant", args.name, "--seed", str(seed))
        grid = RESULTS / "tune" / f"{args.name}.png" if i == 0 else None
        scores = _score(work, args.name, seed, grid)
        row = {"name": args.name, "preset": args.preset, "overrides": overrides, "seed": seed,
               "train_seconds": None if seconds is None else round(seconds, 1), **scores}
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        ab, ba = scores["A_to_B"], scores["B_to_A"]
        took = "scored only" if seconds is None else f"{seconds:.0f} s"
        labels = (f", label accuracy {ab['label_accuracy']:.3f} / {ba['label_accuracy']:.3f} "
                  f"(doing nothing {ab['label_accuracy_identity']:.3f} / "
                  f"{ba['label_accuracy_identity']:.3f})" if "label_accuracy" in ab else "")
        print(f"{args.name} seed {seed}: FID A->B {ab['fid']:.1f}, B->A {ba['fid']:.1f} (doing "
              f"nothing {ab['fid_identity']:.1f} / {ba['fid_identity']:.1f}){labels}, {took}",
              flush=True)


if __name__ == "__main__":
    main()
