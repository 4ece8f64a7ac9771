"""Progress bars that stay quiet where nobody watches them (the trainer's and the simulated
crowd's).

Imports the standard library alone (tqdm optionally), so both the trainer, which imports torch
and numpy alone, and the crowd, which imports no torch, use it. A bar is shown only on an
interactive terminal, never when the ``CI`` environment variable is set, and never when the
project's logger is set above INFO (a quiet logging configuration). Without tqdm the bars are
silent no-ops.
"""

from __future__ import annotations

import logging
import os
import sys

try:  # tqdm is a soft dependency
    from tqdm import tqdm as _tqdm
except ImportError:  # pragma: no cover - exercised only where tqdm is absent
    _tqdm = None

PROJECT_LOGGER = "soft_label_audit"


def progress_enabled(setting: bool | str | None = "auto") -> bool:
    """``True``/``False`` force the choice; ``"auto"`` (or None) applies the rules above."""
    if isinstance(setting, bool):
        return setting and _tqdm is not None
    if setting not in (None, "auto"):
        raise ValueError(f"progress must be true, false or 'auto', got {setting!r}")
    if _tqdm is None or os.environ.get("CI"):
        return False
    if logging.getLogger(PROJECT_LOGGER).getEffectiveLevel() > logging.INFO:
        return False
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool, position: int = 0, leave: bool = True):
    """A tqdm bar when enabled, else an object with the same (silent) methods."""
    if not enabled or _tqdm is None:
        return _NoBar()
    return _tqdm(total=total, desc=desc, position=position, leave=leave, dynamic_ncols=True)
