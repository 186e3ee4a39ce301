"""`{data_root}` in config paths: one setting names where a study's data lives.

A config such as configs/study.yaml writes every input as `{data_root}/...`, so the same
file runs wherever the data is (`make study DATA=/data/xlm` passes `--config
data_root=/data/xlm`). The placeholder is replaced in every string value at start-up,
before the config is checked, so the checks and the rules see real paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xlm.errors import UserError

PLACEHOLDER = "{data_root}"


def _uses(value: Any, key: str) -> Iterator[str]:
    """Dotted keys whose string value names the placeholder."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _uses(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _uses(item, f"{key}[{index}]")
    elif isinstance(value, str) and PLACEHOLDER in value:
        yield key


def _replace(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {name: _replace(item, root) for name, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, root) for item in value]
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, root)
    return value


def expand_data_root(config: dict[str, Any], source: str = "config") -> None:
    """Replace `{data_root}` in every string of `config` (in place) by its `data_root`.

    A config that names the placeholder without a `data_root`, or with one that is not a
    folder, stops with one line naming the key and the fix.
    """
    uses = [key for key in _uses({k: v for k, v in config.items() if k != "data_root"}, "")]
    if not uses:
        return
    root = config.get("data_root")
    if not root or not isinstance(root, str):
        raise UserError(f"{source}: key '{uses[0]}' names {PLACEHOLDER} but 'data_root' is not "
                        "set; give the data folder, e.g. `make study DATA=../shared/data` or "
                        "`snakemake --config data_root=../shared/data`")
    if not Path(root).is_dir():
        raise UserError(f"{source}: key 'data_root': {root} is not a folder (from "
                        f"{Path.cwd()}); point it at the data, e.g. "
                        "`make study DATA=../shared/data`")
    root = root.rstrip("/") or "/"
    for name, value in list(config.items()):
        if name != "data_root":
            config[name] = _replace(value, root)
