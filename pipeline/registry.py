"""The one place plugins are built: ``_target_`` + ``hydra.utils.instantiate``.

Errors from a plugin's constructor become a :class:`ConfigError` naming the config key, so a
bad value is reported as ``normalization.momentum=1.5: ...`` before anything is trained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError


def build(node: DictConfig | Mapping[str, Any], group: str, *, objects: Mapping[str, Any] | None = None,
          **kwargs: Any) -> Any:
    """Instantiate the config ``node`` of config group ``group`` with extra ``kwargs``.

    ``objects`` are passed to the constructor untouched: ``instantiate`` would copy containers
    into its config (an optimizer must receive the layers' own parameter dicts)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if not isinstance(node, DictConfig):
        node = OmegaConf.create(dict(node))
    target = node.get("_target_")
    if not target:
        raise ConfigError(f"{group}._target_", target, "missing: the config must name the class to build")
    try:
        if objects:
            factory = instantiate(node, _partial_=True, **kwargs)
            try:
                return factory(**objects)
            except ConfigError:
                raise
            except (ValueError, TypeError) as exc:
                raise _as_config_error(node, group, exc) from None
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ConfigError):  # already names its key
            raise cause from None
        if isinstance(cause, ImportError) or cause is None:
            raise ConfigError(f"{group}._target_", target, f"cannot import it ({cause or exc})") from None
        raise _as_config_error(node, group, cause) from None


def _as_config_error(node: DictConfig, group: str, cause: BaseException) -> ConfigError:
    """Name the offending key when the plugin's message starts with one of its parameters."""
    text = str(cause)
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
    if unexpected:
        key = unexpected.group(1)
        return ConfigError(f"{group}.{key}", node.get(key), f"not a parameter of {node._target_}")
    first = text.split(" ", 1)[0]
    if first in node:
        return ConfigError(f"{group}.{first}", node[first], text)
    mistyped = _mistyped(node, group)
    if mistyped is not None:
        return mistyped
    return ConfigError(group, node.get("_target_"), f"{type(cause).__name__}: {text}")


def _mistyped(node: DictConfig, group: str) -> ConfigError | None:
    """The first value given as text where the constructor's default is a number or a bool
    (``optimizer.momentum=abc``): what a plugin's ``TypeError`` on comparing it means."""
    import inspect

    from hydra.utils import get_class

    try:
        parameters = inspect.signature(get_class(str(node._target_))).parameters
    except Exception:  # not importable as a class, or no signature: keep the plugin's message
        return None
    for key, value in node.items():
        default = parameters[key].default if key in parameters else inspect.Parameter.empty
        if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
            return ConfigError(f"{group}.{key}", value, "expected a number")
        if isinstance(value, str) and isinstance(default, bool):
            return ConfigError(f"{group}.{key}", value, "expected true or false")
    return None


def resolve_callable(path: str | None, key: str) -> Any:
    """The function at dotted ``path`` (``None`` when unset); a :class:`ConfigError` naming
    ``key`` when it cannot be imported."""
    if not path:
        return None
    import importlib

    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(key, path, f"cannot import it ({exc})") from None
