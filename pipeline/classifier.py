"""Stage classifier@<domain>: the small CNN behind label_accuracy, on one domain's real images.

Trains on data/prepared/train<domain> with the labels of data/prepared/labels.csv (digits,
mnist2svhn, mnist2colored_mnist) and scores it on data/prepared/test<domain>: that accuracy is
the ceiling of label_accuracy. Writes data/classifier/<domain>/model.pt (state_dict) and
meta.json; for a dataset without labels only meta.json, saying so (no training)."""

from __future__ import annotations

import argparse
import time

from cyclelab.stage import run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D103
    parser.add_argument("--domain", required=True, choices=("A", "B"))


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.io import atomic_dir
    from cyclelab.metrics.semantic import save_classifier
    from cyclelab.runtime import make_runtime
    from cyclelab.tracking import stage_run
    from cyclelab.training.classifier import fit_domain

    domain = args.domain
    runtime = make_runtime(cfg.device)
    params = config.flatten({"seed": cfg.seed, "classifier": cfg.classifier})
    with stage_run("classifier", params, domain=domain,
                   description=f"digit classifier of domain {domain} (label_accuracy)") as run:
        started = time.perf_counter()
        model, meta = fit_domain(paths.PREPARED, domain, cfg.classifier, runtime, seed=cfg.seed)
        seconds = time.perf_counter() - started
        with atomic_dir(paths.CLASSIFIER / domain) as out:
            save_classifier(model, meta, out)
        if meta["labels"]:
            run.log_metrics({"seconds": seconds, **{key: meta[key] for key in (
                "test_accuracy", "train_accuracy", "chance", "n_train", "n_test")}})
    if meta["labels"]:
        print(f"classifier@{domain}: test accuracy {meta['test_accuracy']:.3f} (the ceiling of "
              f"label_accuracy; chance {meta['chance']:.2f}), {meta['n_train']} training "
              f"images, {meta['epochs']} epochs in {seconds:.1f} s")
    else:
        print(f"classifier@{domain}: no labels, nothing trained ({meta['reason']})")


if __name__ == "__main__":
    raise SystemExit(run_stage("classifier", main, __doc__, add_arguments))
