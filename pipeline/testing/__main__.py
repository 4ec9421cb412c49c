"""``python -m pipeline.testing {normalization,sampler} [YAML or folder ...] [-- pytest options]``:
run a plugin contract suite against the plugins the YAML files name."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.testing import GROUPS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the contract suite of a plugin group against the given YAML files (each names its
    plugin with _target_), or against this project's own plugins when none is given. Exits with
    pytest's code: 0 when every contract test passed."""
    args = list(sys.argv[1:] if argv is None else argv)
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    parser = argparse.ArgumentParser(prog="python -m pipeline.testing", description=main.__doc__)
    parser.add_argument("group", choices=sorted(GROUPS), help="which plugin contract")
    parser.add_argument("configs", nargs="*", type=Path, help="the plugins' YAML files, or folders of them")
    parsed = parser.parse_args(args)
    missing = [str(p) for p in parsed.configs if not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")
    try:
        import pytest
    except ImportError:
        print("Error: the contract suites run on pytest: pip install pytest (or this project's dev extra)",
              file=sys.stderr)
        return 2
    if parsed.configs:
        os.environ[GROUPS[parsed.group]] = os.pathsep.join(str(p.resolve()) for p in parsed.configs)
    sys.path.insert(0, os.getcwd())  # the plugin's own module, beside its YAML as the docs show
    quiet = [] if extra else ["-q"]  # options after -- are the user's pytest options, -v among them
    return int(pytest.main([*quiet, "-p", "no:cacheprovider", "--pyargs", f"pipeline.testing.{parsed.group}", *extra]))


if __name__ == "__main__":
    sys.exit(main())
