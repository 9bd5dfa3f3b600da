"""Stage reference: Inception statistics of the real test images of each domain, computed once
and reused by every variant's evaluation, and the two lines every translation is read against.

Writes data/reference/{A,B}.npz (statistics and features of test A / test B), meta.json, and
lines.json: per direction, ``fid_identity`` / ``kid_identity`` (doing nothing: the untranslated
source test images against the target test set) and ``fid_floor`` / ``kid_floor`` (real against
real at the same sample size: the target test set against an equal-size draw of the target
train set), each with its bootstrap 95 % CI, and ``eval_precision`` (fp32 on every device)."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    import numpy as np

    from cyclelab import config, paths
    from cyclelab.data.dataset import image_files, load_folder
    from cyclelab.directions import DIRECTIONS
    from cyclelab.io import atomic_dir, write_json
    from cyclelab.metrics import extract_features, load_inception, reference_stats, save_stats
    from cyclelab.metrics.translation import as_line, distribution_scores, eval_runtime
    from cyclelab.runtime import seed_everything
    from cyclelab.tracking import stage_run

    seed_everything(cfg.seed)
    runtime = eval_runtime(cfg.device)  # fp32 whatever train.precision
    net = load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256, runtime.device)
    meta = {"weights_sha256": net.sha256, "weights_path": str(net.path),
            "eval_precision": runtime.precision, "domains": {}}
    stats, train_features = {}, {}
    with stage_run("reference", config.flatten({"eval": cfg.eval}),
                   description="Inception statistics of the real test images") as run, \
            atomic_dir(paths.REFERENCE) as out:
        for domain in ("A", "B"):
            images = load_folder(paths.PREPARED / f"test{domain}", limit=cfg.eval.max_images)
            features = extract_features(net, images, batch_size=cfg.eval.batch_size)
            stats[domain] = reference_stats(features, net.sha256)
            save_stats(out / f"{domain}.npz", stats[domain])
            # The floor's real side: as many train images as test images, drawn with the seed.
            files = image_files(paths.PREPARED / f"train{domain}")
            draw = np.random.default_rng(cfg.seed).permutation(len(files))[:len(features)]
            train = load_folder(paths.PREPARED / f"train{domain}", indices=sorted(draw))
            train_features[domain] = extract_features(net, train, batch_size=cfg.eval.batch_size)
            meta["domains"][domain] = {"n": len(features), "n_floor": len(train)}
            run.log_metrics({f"n_test_{domain}": len(features)})
        lines = {}
        for direction, _, _, source, target, *_ in DIRECTIONS:
            identity = distribution_scores(stats[source]["features"], stats[target], cfg.eval,
                                           cfg.seed, net.sha256)
            floor = distribution_scores(train_features[target], stats[target], cfg.eval,
                                        cfg.seed, net.sha256)
            lines[direction] = {**as_line(identity, "identity"), **as_line(floor, "floor"),
                                "eval_precision": runtime.precision}
            run.log_metrics({f"{direction}.{k}": v for k, v in lines[direction].items()
                             if isinstance(v, float)})
        write_json(out / "meta.json", meta)
        write_json(out / "lines.json", lines)
        run.set_tags({"fid_weights_sha256": net.sha256})
    print(f"reference: statistics of {meta['domains']} test images "
          f"(weights sha256 {net.sha256[:12]}…); lines: " + "; ".join(
              f"{d} " + ", ".join(f"{k}={v:.4g}" for k, v in line.items() if isinstance(v, float))
              for d, line in lines.items()))


if __name__ == "__main__":
    raise SystemExit(run_stage("reference", main, __doc__))
