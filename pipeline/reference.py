"""Stage reference: Inception statistics of the real test images of each domain, computed once
and reused by every variant's evaluation. Writes data/reference/{A,B}.npz and meta.json."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.data.dataset import load_folder
    from cyclelab.io import atomic_dir, write_json
    from cyclelab.metrics import extract_features, load_inception, reference_stats, save_stats
    from cyclelab.tracking import stage_run
    from cyclelab.training.runtime import make_runtime, seed_everything

    seed_everything(cfg.seed)
    runtime = make_runtime(cfg.device)
    net = load_inception(cfg.eval.fid_weights, cfg.eval.fid_weights_sha256, runtime.device)
    meta = {"weights_sha256": net.sha256, "weights_path": str(net.path), "domains": {}}
    with stage_run("reference", config.flatten({"eval": cfg.eval}),
                   description="Inception statistics of the real test images") as run, \
            atomic_dir(paths.REFERENCE) as out:
        for domain in ("A", "B"):
            images = load_folder(paths.PREPARED / f"test{domain}", limit=cfg.eval.max_images)
            features = extract_features(net, images, batch_size=cfg.eval.batch_size)
            save_stats(out / f"{domain}.npz", reference_stats(features, net.sha256))
            meta["domains"][domain] = {"n": len(features)}
            run.log_metrics({f"n_test_{domain}": len(features)})
        write_json(out / "meta.json", meta)
        run.set_tags({"fid_weights_sha256": net.sha256})
    print(f"reference: statistics of {meta['domains']} test images "
          f"(weights sha256 {net.sha256[:12]}…)")


if __name__ == "__main__":
    raise SystemExit(run_stage("reference", main, __doc__))
