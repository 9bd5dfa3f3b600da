"""Stage evaluate@<variant>-<seed>: translate the test images both ways and score them.

Runs in fp32 on every device, whatever train.precision (``eval_precision`` beside the scores).
Writes reports/seeds/<variant>/s<seed>.json (DVC metrics per direction: FID and KID with
bootstrap 95 % CIs, the identity and floor lines of the reference stage, SSIM, PSNR, ...),
reports/eval/<variant>/s<seed>.csv (per image) and data/translated/<variant>/s<seed>/
{A_to_B,B_to_A}/*.png with features.npz (Inception features of the translations, which the
report resamples to test differences between variants). The work is
cyclelab.evaluation.evaluate_run."""

from __future__ import annotations

from cyclelab.stage import add_run_arguments, run_seed, run_stage


def main(cfg, args) -> None:  # noqa: D103
    cfg.variant(args.variant)  # a one-line error for an unknown name
    seed = run_seed(cfg, args.seed)
    from cyclelab.evaluation import evaluate_run

    metrics = evaluate_run(cfg, args.variant, seed)
    print(f"evaluate@{args.variant}-{seed}: " + "; ".join(
        f"{d}: " + ", ".join(f"{k}={v:.4g}" for k, v in s.items() if isinstance(v, int | float))
        for d, s in metrics.items()))


if __name__ == "__main__":
    raise SystemExit(run_stage("evaluate", main, __doc__, add_run_arguments))
