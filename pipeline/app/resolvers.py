"""What this app's configs need registered before Hydra composes them: the
``pipeline.tracking_uri`` resolver and the typed schema (pipeline.app.schema)."""

from __future__ import annotations


def tracking_uri(enabled: bool, uri: str | None) -> str | None:
    """``${pipeline.tracking_uri:${tracking.enabled},${tracking.uri}}``: this app's store as the
    sweeper's ``tracking.uri`` (the default SQLite file for null), or null when tracking is off.
    Checked later, where a bad URI is reported as one line (pipeline.sweep.plan)."""
    from pipeline.tracking.store import DEFAULT_DB

    if not enabled:
        return None
    return uri if uri else f"sqlite:///{DEFAULT_DB.resolve()}"


def register() -> None:
    """Register the resolver and the schema (once per process; ``python -m pipeline`` does it
    before Hydra starts; code that composes conf/ with Hydra's compose API calls it first)."""
    from omegaconf import OmegaConf

    from pipeline.app import schema

    if not OmegaConf.has_resolver("pipeline.tracking_uri"):
        OmegaConf.register_new_resolver("pipeline.tracking_uri", tracking_uri)
    schema.register()
