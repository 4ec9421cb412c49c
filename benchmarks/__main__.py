"""python -m benchmarks [--quick] [--held-out] [--only train,overhead,tracking,parallel,search,fidelity,memory]

Prints a markdown table and writes outputs/bench/latest.json. The search and fidelity parts run
their tuning seeds, or with --held-out the seeds no policy or default was chosen on (what the
docs report); each also writes every seed's value to outputs/bench/<part>_<seeds>.json. A full
(not --quick) run also rewrites docs/performance.md and README.md's headline rows from what it
measured (benchmarks/page.py; --no-page: not; --page: only that, measuring nothing)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import fidelity, page, search, sweeps, train_step
from benchmarks.stats import shown

# part: measure(quick, held_out); only the search and fidelity parts have seed sets
PARTS: dict[str, Callable[[bool, bool], dict[str, Any]]] = {
    "train": lambda quick, _: train_step.measure(quick),
    "overhead": lambda quick, _: sweeps.sweep_overhead(quick),
    "tracking": lambda quick, _: sweeps.tracking_share(quick),
    "parallel": lambda quick, _: sweeps.parallel_speedup(quick),
    "search": lambda quick, held_out: search.measure(
        quick, search.HELD_OUT_SEEDS if held_out else search.TUNING_SEEDS),
    "fidelity": lambda quick, held_out: fidelity.measure(
        quick, fidelity.HELD_OUT_SEEDS if held_out else fidelity.TUNING_SEEDS),
    "memory": lambda quick, _: sweeps.memory(quick),
}
SEED_FILES = ("search", "fidelity")  # parts that write every seed's value beside latest.json
TARGETS = {  # key: (target text, passes)
    "train_speedup_vs_torch": (">= 2x PyTorch", lambda v: v >= 2.0),
    "sweep_overhead_ratio": ("<= 1.3x Hydra's", lambda v: v <= 1.3),
    "tracking_share": ("<= 15% of a trial", lambda v: v <= 0.15),
    "parallel_speedup": (">= 1.8x on 2 cores", lambda v: v >= 1.8),
}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
            "platform": platform.platform()}


def table(results: dict[str, Any], quick: bool) -> str:
    def fmt(v: Any, pct: bool = False) -> str:
        if v is None:
            return "n/a"
        return f"{v:.1%}" if pct else (f"{v:.3g}" if isinstance(v, float) else str(v))

    rows = ["| measure | value: median (min-max, n=repeats) | target | met by the median? |",
            "| --- | --- | --- | --- |"]
    r = results
    if r.get("train_steps_per_s") is not None:
        rows.append("| training steps/s (64-256-256-10, BN, batch 64, float32, 1 thread) | "
                    f"{shown(r.get('train_steps_per_s_spread'), fmt)} ({fmt(r['train_gflops'])} GFLOP/s) | | |")
        rows.append(f"| PyTorch steps/s, same network and data order | {shown(r.get('torch_steps_per_s_spread'), fmt)}"
                    " | | |")
    for key, label, pct in (("train_speedup_vs_torch", "speed-up vs PyTorch", False),
                            ("sweep_overhead_ratio", "sweep overhead per trial / Hydra's per job", False),
                            ("tracking_share", "tracking share of a default trial", True),
                            ("parallel_speedup", "joblib (2 workers) vs basic launcher", False)):
        if r.get(key) is not None:
            target, ok = TARGETS[key]
            verdict = "" if quick or r[key] is None else ("met" if ok(r[key]) else "**not met**")
            unit = (lambda v: fmt(v, True)) if pct else (lambda v: fmt(v) + "x")
            value = shown(r.get(f"{key}_spread"), unit) if r.get(f"{key}_spread") else unit(r[key])
            rows.append(f"| {label} | {value} | {target} | {verdict} |")
    if r.get("sweep_overhead_per_trial_s") is not None:
        ours = shown(r.get("sweep_overhead_per_trial_s_spread"), fmt)
        rows.append(f"| sweep overhead per trial; Hydra per job (s) | {ours}"
                    f"; {shown(r.get('hydra_overhead_per_job_s_spread'), fmt)} (one-time {fmt(r['sweep_one_time_s'])})"
                    " | | |")
    if r.get("mlflow_import_s") is not None:
        rows.append(f"| trial with / without MLflow (s); one-time import | {fmt(r['trial_s_tracking_on'])} / "
                    f"{fmt(r['trial_s_tracking_off'])}; {fmt(r['mlflow_import_s'])} | | |")
    if r.get("tracking_additions"):
        steps = "; ".join(f"{name} {fmt(t)}" for name, t in r["tracking_additions"].items())
        rows.append(f"| trial time (s) as tracking grew: {steps}; all on {fmt(r['trial_s_tracking_on'])} | | | |")
    if r.get("parallel_speedups") is not None:
        target = r.get("parallel_trial_target_s")
        length = shown(r.get("parallel_trial_s_spread"), fmt) if r.get("parallel_trial_s_spread") else fmt(
            r["parallel_trial_s"])
        within = "" if quick or not target else (
            "met" if abs(r["parallel_trial_s"] / target - 1) <= sweeps.TRIAL_TOLERANCE else "**not met**")
        rows.append(f"| parallel trials as launched (basic launcher; joblib's {fmt(r.get('parallel_trial_s_joblib'))}),"
                    f" {r['parallel_trials']} trials of {r['parallel_epochs']} epochs | {length} s | "
                    f"{fmt(target)} s +- {sweeps.TRIAL_TOLERANCE:.0%} | {within} |")
        pairs = ", ".join(fmt(x) + "x" for x in r["parallel_speedups"])
        rows.append(f"| joblib vs basic: wall (s); each pair | {fmt(r['joblib_wall_s'])} vs {fmt(r['basic_wall_s'])}; "
                    f"{pairs} | | |")
    if r.get("peak_rss_mb") is not None:
        growth = r["rss_growth_kb_per_trial"]
        rows.append(f"| memory of a {r['memory_trials']}-trial search in one process (MLflow on): peak MB; then "
                    f"KB/trial over trials {r['memory_trials']}-{r['memory_trials_total']} | "
                    f"{shown(r.get('peak_rss_mb_spread'), fmt)}; {shown(r.get('rss_growth_kb_per_trial_spread'), fmt)}"
                    f" | flat (<= 20 KB/trial) | {'' if quick else ('met' if growth <= 20 else '**not met**')} |")
    if r.get("search") is not None:
        seeds = "held-out" if r.get("seed_set") == "held_out" else "tuning"
        rows.append(f"\nSearch quality on the {seeds} seeds (benchmarks/search.py):\n")
        rows.append(search.report(r))
    if r.get("fidelity") is not None:
        rows.append("\n" + fidelity.report(r))
    return "\n".join(rows)


def headline_rows(r: dict[str, Any]) -> list[str]:
    """README's few rows: each target's median and verdict, and the search verdict's count."""
    rows = []
    for key, label in (("train_speedup_vs_torch", "training speed vs PyTorch"),
                       ("sweep_overhead_ratio", "sweep overhead per trial vs Hydra's per job"),
                       ("tracking_share", "MLflow's share of a trial"),
                       ("parallel_speedup", "2 joblib workers vs 1 process")):
        if r.get(key) is not None:
            target, ok = TARGETS[key]
            value = f"{r[key]:.1%}" if key == "tracking_share" else f"{r[key]:.2f}x"
            rows.append(f"| {label} | {value} | {target} | {'met' if ok(r[key]) else '**not met**'} |")
    if r.get("search") is not None:
        _, verdicts = search.default_verdicts(r)
        met = sum(bool(v.get("target")) for v in verdicts)
        rows.append(f"| search: the default's median and worst seed at or below the best TPE variant's "
                    f"(held-out seeds) | {met} of {len(verdicts)} problems x budgets | all | "
                    f"{'met' if met == len(verdicts) else '**not met**'} |")
    return ["| measure | median | target | |", "| --- | --- | --- | --- |", *rows] if rows else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of under a minute (no targets judged)")
    parser.add_argument("--held-out", action="store_true",
                        help="search and fidelity on their held-out seeds instead of the tuning seeds")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {list(PARTS)}")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "bench" / "latest.json")
    parser.add_argument("--no-page", action="store_true", help="leave docs/performance.md and README.md as they are")
    parser.add_argument("--page", action="store_true",
                        help="only rewrite docs/performance.md and README.md from docs/performance.json")
    args = parser.parse_args(argv)
    if args.page:
        page.write(page.stored(), table, headline_rows)
        print(f"written: {page.PAGE} and the headline rows of {page.README}")
        return 0
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {list(PARTS)}")
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    seed_set = "held_out" if args.held_out else "tuning"
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(), "command": command,
                               "seed_set": seed_set}
    by_part: dict[str, dict[str, Any]] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for part in parts:
        start = time.perf_counter()
        print(f"[{part}] ...", file=sys.stderr, flush=True)
        measured = PARTS[part](args.quick, args.held_out)
        by_part[part] = {**measured, **({"seed_set": seed_set} if part in SEED_FILES else {})}
        results.update(measured)
        results.setdefault("seconds", {})[part] = round(time.perf_counter() - start, 1)
        if part in SEED_FILES and not args.quick:  # the same file python -m benchmarks.<part> writes
            seeds = args.out.parent / f"{part}_{seed_set}.json"
            seeds.write_text(json.dumps(measured, default=str))
    for key in ("train_steps_per_s", "torch_steps_per_s", "train_speedup_vs_torch", "sweep_overhead_ratio",
                "tracking_share", "parallel_speedup", "search", "peak_rss_mb"):
        results.setdefault(key, None)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    print(table(results, args.quick))
    print(f"\n{results['machine']['cpu']}, {results['machine']['cores']} cores; written to {args.out}")
    if not args.quick and not args.no_page:
        run = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": command,
               "machine": results["machine"], "seed_set": seed_set}
        page.write(page.update(by_part, run), table, headline_rows)
        print(f"and to {page.PAGE} and the headline rows of {page.README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
