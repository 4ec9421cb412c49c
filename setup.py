"""The one thing pyproject.toml cannot say: the wheel carries the top-level ``conf/`` (the app's
configs, the one copy in git) as ``pipeline/conf``, where an installed ``python -m pipeline``
finds it. An editable install reads ``conf/`` in the checkout and needs no copy."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConf(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source, target = Path(__file__).parent / "conf", Path(self.build_lib) / "pipeline" / "conf"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildPyWithConf})
