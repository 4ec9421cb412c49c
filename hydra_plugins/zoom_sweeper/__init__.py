"""The coarse-to-fine zoom sweeper for Hydra (``hydra/sweeper=zoom``).

Only this package has an ``__init__.py``; the top-level ``hydra_plugins`` is a namespace package
shared with every other installed Hydra plugin. Modules here stay light: Hydra imports them at
start-up, and the heavy code lives in ``_impl`` (not imported until a sweep starts).
"""
