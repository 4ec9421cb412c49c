"""The command line's own checks around Hydra: malformed overrides and configs Hydra cannot
compose become this project's one line naming the key and value (exit 2), not a traceback."""

from __future__ import annotations

import sys

from pipeline.errors import ConfigError

# Hydra flags that take the next argument as their value (not an override).
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package", "-p",
                "--cfg", "-c", "--info", "-i", "--experimental-rerun"}


def check_overrides(argv: list[str]) -> None:
    """Parse the command-line overrides with Hydra's own parser before Hydra does, so a
    malformed one gets this project's one-line error naming its key and value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):
            skip = arg in _VALUE_FLAGS
            continue
        if "=" not in arg:
            continue
        try:
            parser.parse_override(arg)
        except HydraException as exc:
            key, _, value = arg.partition("=")
            reason = " ".join(str(exc).split("\n")[1:2]).strip() or str(exc).splitlines()[0]
            reason = reason.removeprefix("ValueError while evaluating ")
            print(f"Error: {ConfigError(key, value, f'malformed override: {reason}')}", file=sys.stderr)
            sys.exit(2)


def report_config_errors_in_one_line() -> None:
    """Hydra reports a config it cannot compose (a value of the wrong type for pipeline.app.schema, in
    an override or a YAML file) in several lines and exits 1, after nothing was written; report
    it as this project's one line naming the key and value, exit 2. Hydra runs ``main`` through
    ``hydra._internal.utils.run_and_report``: wrap what it runs, let everything else through."""
    from hydra._internal import utils as hydra_utils

    from pipeline.errors import as_config_error

    report = hydra_utils.run_and_report

    def run_and_report(func):  # noqa: ANN001, ANN202 - Hydra's signature
        def guarded():  # noqa: ANN202
            try:
                return func()
            except Exception as exc:
                error = as_config_error(exc) or _malformed_yaml(exc)
                if error is None:
                    raise
                print(f"Error: {error}", file=sys.stderr)
                sys.exit(2)

        return report(guarded)

    hydra_utils.run_and_report = run_and_report


def _malformed_yaml(exc: BaseException) -> str | None:
    """``<file>:<line>:<column>: malformed YAML: <problem>`` for a config file YAML cannot parse
    (the exception or one it was raised from), else ``None``."""
    import yaml

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, yaml.YAMLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    mark = getattr(cause, "problem_mark", None)
    where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
    problem = getattr(cause, "problem", None) or str(cause).splitlines()[0]
    return f"{where}malformed YAML: {problem}"


