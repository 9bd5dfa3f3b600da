"""Stage compare@<variant>: one variant's scores over its replicate seeds (study.seeds).

Reads reports/seeds/<variant>/s<seed>.json of every seed and writes reports/metrics/<variant>.json
(DVC metrics): per direction the mean of every score under its own key, ``<key>_std``,
``<key>_seeds`` (per-seed values), ``<key>_ci95`` (t-interval over seeds with two or more seeds,
else the bootstrap CI over test images), the identity and floor lines, and
``worse_than_identity``."""

from __future__ import annotations

import argparse

from cyclelab.stage import run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: D103
    parser.add_argument("--variant", required=True,
                        help="a name under variants: or finetunes: in params.yaml")


def main(cfg, args) -> None:  # noqa: D103
    cfg.variant(args.variant)  # a one-line error for an unknown name

    from cyclelab import config, paths
    from cyclelab.directions import KEYS
    from cyclelab.io import read_json, write_json
    from cyclelab.report.aggregate import aggregate
    from cyclelab.tracking import stage_run

    per_seed = {seed: read_json(paths.seed_metrics(args.variant, seed),
                                f"dvc repro evaluate@{args.variant}-{seed}")
                for seed in cfg.study.seeds}
    result = aggregate(per_seed)
    with stage_run("compare", config.flatten({"variant": args.variant, "study": cfg.study}),
                   variant=args.variant,
                   description=f"{args.variant} over seeds {cfg.study.seeds}") as run:
        write_json(paths.METRICS / f"{args.variant}.json", result)
        for direction in KEYS:
            run.log_metrics({f"{direction}.{k}": v for k, v in result.get(direction, {}).items()
                             if isinstance(v, int | float) and not isinstance(v, bool)})
    for direction in KEYS:
        scores = result.get(direction, {})
        if "fid" in scores:
            flag = "  WORSE THAN DOING NOTHING" if scores.get("worse_than_identity") else ""
            ci = scores.get("fid_ci95")
            ci = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "none"
            print(f"compare@{args.variant} {direction}: FID {scores['fid']:.4g} "
                  f"(95 % CI {ci}, {result['n_seeds']} seed(s)); identity "
                  f"{scores.get('fid_identity', float('nan')):.4g}, floor "
                  f"{scores.get('fid_floor', float('nan')):.4g}{flag}")
    if "avg_gms" in result:  # seeds/004's Avg GMS: the two directions' GMS averaged
        print(f"compare@{args.variant}: Avg GMS {result['avg_gms']:.4g} "
              f"(± {result['avg_gms_std']:.2g} over {result['n_seeds']} seed(s))")


if __name__ == "__main__":
    raise SystemExit(run_stage("compare", main, __doc__, add_arguments))
