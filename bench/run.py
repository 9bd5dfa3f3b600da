"""The benchmark suite behind ``make bench``: JSON lines, a short table, ``bench/RESULTS.md``.

    .venv/bin/python bench/run.py             # quick: seconds to a minute
    .venv/bin/python bench/run.py --full      # every config, FID at 32 and 256 px, pipeline
    .venv/bin/python bench/run.py --full --study   # and the default study's wall time by stage

Sections: the machine's peak (matmul and 3x3 convolutions), the training step (ours against the
plain reference step, interleaved), the step's convolutions replayed alone (the MFU ceiling
with torch's kernels, ``bench_kernels.py``), FID feature extraction (ours against clean-fid),
and with ``--full`` the pipeline (no-op ``dvc repro``, stage start-ups, train's peak RSS at
256 px) and the time limits unit tests used to assert (``bench_limits.py``).
The table between the markers in ``bench/RESULTS.md`` is replaced; the notes around it are
kept. ``--no-write`` leaves the file alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TARGET_MFU = {32: 0.70, 256: 0.90}  # issue 8: our step's MFU at 32 px and 256 px
TARGET_VS_REFERENCE = 2.0  # at 32-64 px
TARGET_FID = 1.2


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _verdict(value: float, target: float) -> str:
    return "met" if value >= target else f"missed ({value / target:.2f}× of target)"


def table(records: list[dict]) -> str:
    """Markdown tables of ``records`` with each target's verdict."""
    lines = []
    peaks = [r for r in records if r["bench"] == "peak"]
    if peaks:
        info = peaks[0]
        lines += [f"Machine: {info['cpu']}, {info.get('gpu', 'no GPU')}, {info['cores']} cores, "
                  f"{info['threads']} threads, torch {info['torch']}, {info['date']}, load "
                  f"average (1 min) at start {info['load_1min']:.1f}."]
        for peak in peaks:
            lines.append(f"Peak ({peak.get('device', 'cpu')}, {peak.get('precision', 'fp32')}): "
                         f"**{peak['peak_gflops']:.1f} GFLOP/s** ({peak['peak_source']}, best of "
                         "a matmul and 3×3 convolutions, same run).")
        lines.append("")
    steps = [r for r in records if r["bench"] == "train_step"]
    if steps:
        lines += ["| config | px | batch | device, ours | GFLOP/iter | ours s/iter | ours img/s "
                  "| ours MFU | reference s/iter | reference MFU | ours ÷ reference | target |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        by_config: dict[tuple, dict] = {}
        for r in steps:
            key = (r["config"], r.get("device", "cpu"), r.get("mode", "fp32"))
            by_config.setdefault(key, {})[r["impl"]] = r
        for (name, device, precision), pair in by_config.items():
            ours, ref = pair["ours"], pair["reference"]
            on_cpu = device == "cpu"
            targets = []
            if ours["size"] in TARGET_MFU and on_cpu:
                targets.append(f"MFU ≥ {_pct(TARGET_MFU[ours['size']])}: "
                               f"{_verdict(ours['mfu'], TARGET_MFU[ours['size']])}")
            if ours["size"] <= 64 and ours["batch"] == 1 and on_cpu:
                targets.append(f"≥ {TARGET_VS_REFERENCE:g}× reference: "
                               f"{_verdict(ours['vs_reference'], TARGET_VS_REFERENCE)}")
            lines.append(
                f"| {name} | {ours['size']} | {ours['batch']} | {device}, {precision} "
                f"| {ours['gflop_per_iter']:.1f} "
                f"| {ours['s_per_iter']:.3f} | {ours['images_per_s']:.2f} | {_pct(ours['mfu'])} "
                f"| {ref['s_per_iter']:.3f} | {_pct(ref['mfu'])} | {ours['vs_reference']:.2f}× "
                f"| {'; '.join(targets) or '–'} |")
        lines.append("")
    kernels = [r for r in records if r["bench"] == "kernels"]
    if kernels:
        lines += ["| step's convolutions alone | px | batch | ours s/iter | convolutions alone s "
                  "| share of the step | ours MFU | MFU ceiling with these kernels | MFU target |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in kernels:
            target = TARGET_MFU.get(r["size"])
            verdict = (f"≥ {_pct(target)}: " + ("reachable" if r["mfu_ceiling"] >= target else
                       f"above the ceiling by {_pct(target - r['mfu_ceiling'])}")
                       if target else "–")
            lines.append(f"| {r['config']} | {r['size']} | {r['batch']} | {r['step_s']:.3f} "
                         f"| {r['conv_alone_s']:.3f} | {_pct(r['conv_share'])} "
                         f"| {_pct(r['mfu'])} | {_pct(r['mfu_ceiling'])} | {verdict} |")
        lines.append("")
    fid = [r for r in records if r["bench"] == "fid_features"]
    if fid:
        lines += ["| FID features | px | images | ours img/s | clean-fid img/s | ours ÷ clean-fid "
                  "| max feature diff | target ≥ 1.2× |", "|---|---|---|---|---|---|---|---|"]
        for size in sorted({r["size"] for r in fid}):
            rows = {r["impl"]: r for r in fid if r["size"] == size}
            ours, clean = rows.get("ours"), rows.get("clean-fid", {})
            if "skipped" in clean or not clean:
                lines.append(f"| | {size} | {ours['images']} | {ours['images_per_s']:.2f} | "
                             f"skipped: {clean.get('skipped', '?')} | | | |")
                continue
            lines.append(f"| | {size} | {ours['images']} | {ours['images_per_s']:.2f} "
                         f"| {clean['images_per_s']:.2f} | {ours['vs_clean_fid']:.2f}× "
                         f"| {ours['max_feature_diff']:.1e} "
                         f"| {_verdict(ours['vs_clean_fid'], TARGET_FID)} |")
        lines.append("")
    pipe = [r for r in records if r["bench"] in ("pipeline", "study")]
    if pipe:
        lines += ["| pipeline | seconds | target |", "|---|---|---|"]
        for r in pipe:
            what = r.get("what", "study")
            if what == "stage_startup" and "skipped" in r:
                lines.append(f"| start-up of {r['stage']} | – | skipped: {r['skipped']} |")
            elif what == "stage_startup":
                verdict = ("met" if r["beyond_import_torch_s"] <= r["target_beyond_s"]
                           else f"missed by {r['beyond_import_torch_s'] - 3:.1f} s")
                lines.append(f"| start-up of {r['stage']} (beyond import torch: "
                             f"{r['beyond_import_torch_s']:.2f} s) | {r['seconds']:.2f} "
                             f"| ≤ 3 s beyond import torch: {verdict} |")
            elif what == "train_peak_rss":
                lines.append(f"| train peak RSS at {r['size']} px | {r['peak_rss_mib']:.0f} MiB "
                             "| – |")
            elif "target_s" in r:
                name = "no-op dvc repro" if what == "dvc_repro_noop" else f"study: {r['stage']}"
                verdict = "met" if r["seconds"] <= r["target_s"] else "missed"
                lines.append(f"| {name} | {r['seconds']:.2f} | ≤ {r['target_s']:g} s: "
                             f"{verdict} |")
            else:
                name = r.get("stage") and f"study: {r['stage']}" or what.replace("_", " ")
                lines.append(f"| {name} | {r['seconds']:.2f} | – |")
        lines.append("")
    limits = [r for r in records if r["bench"] == "limit"]
    if limits:
        lines += ["| time limit (was a unit-test assertion) | seconds | target |", "|---|---|---|"]
        lines += [f"| {r['what'].replace('_', ' ')} | {r['seconds']:.2f} | ≤ {r['target_s']:g} s: "
                  f"{'met' if r['seconds'] <= r['target_s'] else 'missed'} |" for r in limits]
        lines.append("")
    return "\n".join(lines)


def write_results(text: str, path: Path = RESULTS) -> None:
    """Replace the generated block of ``path`` with ``text`` (the notes around it stay)."""
    block = f"{BEGIN}\n{text}\n{END}"
    old = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + block + rest.split(END, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="everything but the study")
    parser.add_argument("--study", action="store_true", help="also the default study")
    parser.add_argument("--only", nargs="+",
                        choices=["train_step", "kernels", "fid", "pipeline", "limits"],
                        help="run these sections only")
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    parser.add_argument("--jsonl", type=Path, help="also write the records here")
    parser.add_argument("--table-from", type=Path, metavar="JSONL",
                        help="only print the table of these records (gpu_check.sh)")
    parser.add_argument("--merge", type=Path, nargs="+", default=[], metavar="JSONL",
                        help="add the records of earlier runs (--jsonl) to this run's table")
    args = parser.parse_args(argv)
    if args.table_from:
        print(table([json.loads(line) for line in args.table_from.read_text().splitlines()
                     if line.strip()]))
        return
    # Imported here: printing a table (gpu_check.sh) needs neither torch nor the benchmarks.
    from bench import bench_fid, bench_kernels, bench_limits, bench_pipeline, bench_train_step
    from bench.common import RECORDS, emit, machine, measure_peak, set_threads

    set_threads(args.threads)
    sections = args.only or ["train_step", "kernels", "fid",
                             *(["pipeline"] if args.full else [])]
    if sections in (["pipeline"], ["limits"]):
        RECORDS.append({"bench": "machine", **machine()})
    else:
        emit({"bench": "peak", **measure_peak(quick=not args.full), **machine()})
        peak = RECORDS[-1]
    if "train_step" in sections:
        bench_train_step.run(args.full, peak=peak)
    if "kernels" in sections:
        bench_kernels.run(args.full, peak=peak)
    if "fid" in sections:
        bench_fid.run(args.full)
    if "pipeline" in sections or args.study:
        bench_pipeline.run(full=args.full, study=args.study)
    if "limits" in sections or args.full:
        bench_limits.run()
    for path in args.merge:
        RECORDS.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    text = table(RECORDS)
    print("\n" + text)
    if args.jsonl:
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    if not args.no_write:
        write_results(text)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
