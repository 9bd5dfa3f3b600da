"""Stage init@<variant>: the generators' starting weights of one variant, for train@ to load.

``init: ae`` (seeds/000) copies the pretrained autoencoders' generators (data/ae/<domain>/
generator.pt; ``ae.init_from`` says which domain starts which generator) to
data/init/<variant>/G_ab.pt and G_ba.pt; ``init: random`` writes only init.json. Every variant
has this stage, so train@ depends on data/init/<variant> and not on the autoencoders: an ae.*
edit reruns this step for a random-init variant, which writes the same init.json, and DVC then
skips that variant's training."""

from __future__ import annotations

from cyclelab.stage import add_run_arguments, run_stage


def main(cfg, args) -> None:  # noqa: D103
    from cyclelab import paths
    from cyclelab.models.init import write_init

    variant = cfg.variant(args.variant)[0]
    done = write_init(variant.init, cfg.ae.init_from, paths.init_dir(args.variant))
    print(f"init@{args.variant}: {done}")


if __name__ == "__main__":
    raise SystemExit(run_stage("init", main, __doc__, add_run_arguments))
