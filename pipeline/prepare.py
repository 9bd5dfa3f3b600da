"""Stage prepare: data/raw/{trainA,trainB,testA,testB} as delivered -> data/prepared/<split>/*.png
at data.image_size (RGB, data.resize policy, optional rembg background removal), with
data.val_fraction of each domain's training images held out as valA/valB (what training chooses
by) and training copies of validation or test images dropped (data.drop_duplicates);
data/prepared/manifest.csv (one row per input file: split, status ok / skipped / duplicate,
reason) and data/prepared/summary.json (counts; duplicates.dropped_from_train).
Custom rembg models (data.rembg_model: u2net_custom) read their ONNX file from
data.rembg_model_path or $CYCLELAB_REMBG_MODEL_PATH."""

from __future__ import annotations

from cyclelab.stage import run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.data.prepare import format_summary, prepare_dataset
    from cyclelab.tracking import stage_run

    with stage_run("prepare", config.flatten({"data": cfg.data}),
                   description="decode, convert, resize and deduplicate the raw images") as run:
        summary = prepare_dataset(paths.RAW, paths.PREPARED, cfg.data,
                                  rembg_model_path=cfg.data.rembg_model_path or None)
        run.log_metrics({f"n_{split}": n for split, n in summary["outputs"].items()})
        run.log_metrics({"n_skipped": sum(summary["skipped"].values()),
                         "n_duplicates": summary["duplicates"]["found"],
                         "n_dropped_from_train": summary["duplicates"]["dropped_from_train"]})
        run.log_artifact(paths.MANIFEST)
        run.log_artifact(paths.PREPARE_SUMMARY)
    print("prepare: " + format_summary(summary).replace("\n", "\nprepare: "))


if __name__ == "__main__":
    raise SystemExit(run_stage("prepare", main, __doc__))
