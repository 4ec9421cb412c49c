"""``python -m pipeline.zoom SWEEP_DIR``: the zoom stage on its own over a sweep directory: the
next round's space from its results and trials, printed (or written to a new file)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.search.objective import Direction, Objective
from pipeline.search.space import SearchSpace, parse
from pipeline.search.trial import Trial
from pipeline.search.zoom import MODES, ZoomPolicy, space_text, zoom
from pipeline.sweep.files import RESULTS_FILE, TRIALS_FILE


def zoom_directory(directory: Path, **overrides: Any) -> tuple[SearchSpace, str]:
    """Run the zoom stage on its own over a finished (or interrupted) search directory: read its
    ``optimization_results.yaml`` and ``trials.yaml`` and zoom the last round's space onto the
    best trials so far, with the policy the sweep recorded (``settings``) and any of its settings
    replaced by ``overrides`` (``shrink=0.5``, ...; None: as recorded). Returns the space and a
    header naming where it comes from; writes nothing (the sweep's ``zoom/`` files are its record)."""
    import yaml

    directory = Path(directory)
    results_path, trials_path = directory / RESULTS_FILE, directory / TRIALS_FILE
    for path in (results_path, trials_path):
        if not path.is_file():
            hint = " (a crossed sweep keeps one per combo_<i>/ folder)" if (directory / "combo_0").is_dir() else ""
            raise FileNotFoundError(f"{path} not found: is {directory} a zoom sweep directory?{hint}")
    results = yaml.safe_load(results_path.read_text())
    trials = yaml.safe_load(trials_path.read_text()) or []
    rounds = results["rounds"]
    original, current = parse(rounds[0]["space"]), parse(rounds[-1]["space"])
    recorded = results.get("settings", {})
    policy = ZoomPolicy.from_params({**recorded, **{k: v for k, v in overrides.items() if v is not None}})
    scales = results.get("scales", {})
    objective = Objective(Direction(results.get("direction", Objective.direction.value)))
    best = objective.top([Trial(t["round"], t["index"], t["params"], t["value"], t.get("error")) for t in trials],
                         policy.top_count(rounds[-1]["trials"]))
    space = zoom(current, original, [t.params for t in best], policy=policy,
                 scale_of=lambda d: scales.get(d.key) or d.scale or "linear")
    return space, f"zoomed on its own after round {len(rounds)} of {directory.resolve()}"


def main(argv: Sequence[str] | None = None) -> int:
    """python -m pipeline.zoom SWEEP_DIR [--out FILE]: the zoom stage over a finished (or
    interrupted) sweep directory. Prints the next space as hydra.sweeper.params; the sweep
    directory is only read. --out writes it to FILE too (a file under <dir>/zoom/ of a
    --config-dir loads with +zoom=<name>)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.zoom", description=main.__doc__)
    parser.add_argument("directory", type=Path, help="a sweep directory (or one of its combo_<i>/ folders)")
    parser.add_argument("--top-k", type=int, default=None, help="zoom onto this many best trials")
    parser.add_argument("--margin", type=float, default=None, help="widen by this share of the width")
    parser.add_argument("--min-width", type=float, default=None, help="floor, as a share of the original width")
    parser.add_argument("--mode", choices=MODES, default=None, help="span of the top trials, or trust region")
    parser.add_argument("--shrink", type=float, default=None, help="trust mode: share of the current width kept")
    parser.add_argument("--out", type=Path, default=None, help="also write the space to this YAML file (new)")
    args = parser.parse_args(argv)
    try:
        space, header = zoom_directory(args.directory, top_k=args.top_k, margin=args.margin,
                                       min_width=args.min_width, zoom=args.mode, shrink=args.shrink)
        if args.out is not None and args.out.exists():
            raise ValueError(f"--out {args.out}: exists; name a new file (the sweep's own files stay as they are)")
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    text = space_text(space, header=header)
    print(text, end="")
    if args.out is not None:
        from pipeline.atomic import write_text_atomic

        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, text)
        print(f"# written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
