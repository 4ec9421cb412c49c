"""The architecture of docs/architecture.md, checked: the import rules (import-linter, configured in
pyproject.toml), the size limits, an import of the package that changes nothing, and the old
module paths that users may have written still working."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = [ROOT / "pipeline", ROOT / "hydra_plugins"]
MAX_CLASS, MAX_FUNCTION, MAX_HYDRA_SIDE = 250, 50, 400
# Where a longer one reads better, and why (none today: add an entry with its reason).
LONGER: dict[str, str] = {}


def test_the_import_rules_hold() -> None:
    """lint-imports over the contracts in pyproject.toml ([tool.importlinter]); the output names
    every broken rule and the import that breaks it."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.argv = ['lint-imports', '--no-cache']; sys.exit(lint_imports_command())"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _definitions() -> list[tuple[str, str, int]]:
    out = []
    for root in CODE:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    where = f"{path.relative_to(ROOT)}:{node.name}"
                    limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                    out.append((where, type(node).__name__, node.end_lineno - node.lineno + 1 - limit))
    return out


def test_no_class_over_250_lines_and_no_function_over_50() -> None:
    over = [f"{where} ({kind}): {excess} lines over" for where, kind, excess in _definitions()
            if excess > 0 and where not in LONGER]
    assert not over, "split them, or say in LONGER why the longer one reads better:\n" + "\n".join(over)


def test_the_hydra_side_stays_thin() -> None:
    """hydra_plugins/ wires Hydra's settings and objects to the Hydra-free sweep; what it can do
    without Hydra lives in pipeline/sweep/."""
    lines = sum(len(p.read_text().splitlines()) for p in (ROOT / "hydra_plugins").rglob("*.py"))
    assert lines < MAX_HYDRA_SIDE, f"hydra_plugins/ has {lines} lines"


def test_importing_the_package_changes_nothing_around_it() -> None:
    """No environment variable, no OmegaConf resolver, no Hydra ConfigStore entry, no numpy: the
    entry point (pipeline.__main__) and pipeline.app.resolvers.register do those on purpose."""
    probe = ("import os, sys; before = dict(os.environ); import pipeline; "
             "from omegaconf import OmegaConf; from hydra.core.config_store import ConfigStore; "
             "print(dict(os.environ) == before, OmegaConf.has_resolver('pipeline.tracking_uri'), "
             "'pipeline_schema' in ConfigStore.instance().list('/'), 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["True", "False", "False", "False"]


@pytest.mark.parametrize(("old", "new"), [
    ("pipeline.data", "pipeline.train.data"), ("pipeline.optim", "pipeline.train.optim"),
    ("pipeline.normalization", "pipeline.train.normalization"), ("pipeline.sampler", "pipeline.search.sampler"),
    ("pipeline.trial", "pipeline.search.trial"), ("pipeline.export", "pipeline.app.export"),
    ("pipeline.callbacks", "pipeline.app.callbacks"),
])
def test_an_old_module_path_is_the_new_module_and_says_where_it_went(old: str, new: str) -> None:
    import importlib

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert any(issubclass(w.category, DeprecationWarning) and f"moved to {new}" in str(w.message) for w in seen)


def test_old_targets_in_a_users_config_still_build() -> None:
    """``_target_: pipeline.data.digits`` / ``pipeline.optim.SGD`` / ``pipeline.train.check`` as a
    config written before the split names them."""
    from hydra.utils import get_method

    from pipeline.train.data import digits
    from pipeline.train.stage import check

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert get_method("pipeline.data.digits") is digits
        assert get_method("pipeline.train.check") is check
        assert get_method("pipeline.search.parse").__module__ == "pipeline.search.space"
