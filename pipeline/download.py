"""Stage download: data.dataset (or data.source) -> data/raw/{trainA,trainB,testA,testB}/ as
delivered, plus data/raw/SOURCE.json (URLs, sha256 and bytes of every archive, file counts).

Archives are kept in .cache/downloads/ (outside data/raw, git-ignored), so a rerun does not
download again and an interrupted download resumes. CYCLELAB_MIRROR replaces the catalogue's
base URL.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cyclelab.stage import run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D103
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where downloads are kept (default: <repo>/.cache/downloads)")


def main(cfg, args: argparse.Namespace) -> None:  # noqa: D103
    from cyclelab import config, paths
    from cyclelab.data.download import download_dataset
    from cyclelab.tracking import stage_run

    with stage_run("download", config.flatten({"seed": cfg.seed, "data": cfg.data}),
                   description=f"dataset {cfg.data.source or cfg.data.dataset}") as run:
        record = download_dataset(cfg.data, paths.RAW, seed=cfg.seed, cache_dir=args.cache_dir,
                                  max_per_domain=cfg.data.max_per_domain)
        run.log_metrics({f"n_{split}": n for split, n in record["splits"].items()})
        run.set_tags({"source_url": str(record.get("url") or record.get("source") or ""),
                      "source_sha256": str(record.get("sha256") or "")})
        run.log_artifact(paths.RAW / "SOURCE.json")
    counts = ", ".join(f"{split} {n}" for split, n in record["splits"].items())
    print(f"download: {record['dataset']} -> {paths.RAW}: {counts} ({record['files']} files)")


if __name__ == "__main__":
    raise SystemExit(run_stage("download", main, __doc__, add_arguments))
