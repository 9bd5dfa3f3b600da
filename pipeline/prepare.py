"""Stage prepare: data/raw/{trainA,trainB,testA,testB} as delivered -> data/prepared/<split>/*.png
at data.image_size (RGB, data.resize policy, optional rembg background removal) and
data/prepared/manifest.csv (one row per input file: status ok / skipped / duplicate, reason).
Custom rembg models (data.rembg_model: u2net_custom) read their ONNX file from
data.rembg_model_path or $CYCLELAB_REMBG_MODEL_PATH."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.data.prepare import SPLITS, format_summary, prepare_dataset
    from cyclelab.tracking import stage_run

    with stage_run("prepare", config.flatten({"data": cfg.data}),
                   description="decode, convert, resize and deduplicate the raw images") as run:
        summary = prepare_dataset(paths.RAW, paths.PREPARED, cfg.data,
                                  rembg_model_path=cfg.data.rembg_model_path or None)
        run.log_metrics({f"n_{split}": summary["outputs"][split] for split in SPLITS})
        run.log_metrics({"n_skipped": sum(summary["skipped"].values()),
                         "n_duplicates": summary["duplicates"]["found"]})
        run.log_artifact(paths.MANIFEST)
    print("prepare: " + format_summary(summary).replace("\n", "\nprepare: "))


if __name__ == "__main__":
    raise SystemExit(run_stage("prepare", main, __doc__))
