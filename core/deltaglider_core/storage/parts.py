"""What the store's write path and read path share: the collaborators the store owns, and the disk check.

:class:`DeltaStore` (store.py) makes these; :class:`WritePath` (write_path.py) and :class:`ReadPath`
(read_path.py) use them. Declared once here so each half states what it relies on.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deltaglider_core import __version__
from deltaglider_core.codec.xdelta3 import Codec
from deltaglider_core.errors import StorageError
from deltaglider_core.storage.forms import Forms
from deltaglider_core.storage.references import References
from deltaglider_core.transport.s3 import S3

TOOL = f"deltaglider/airflow-provider-{__version__}"
SPACE_MARGIN = 64 << 20  # head room kept free on the temp filesystem beyond what an operation needs


class StoreParts:
    """The store's collaborators and settings, as the write and read paths see them."""

    s3: S3
    refs: References
    forms: Forms
    codec: Codec
    log: logging.Logger
    max_ratio: float
    delta_extensions: frozenset[str]
    rebase: bool
    deltaglider_compatible: bool
    strict: bool  # refuse reads of objects that record no SHA-256
    window: int  # the xdelta3 source window the memory budget allows
    memory_budget: int
    _side: ThreadPoolExecutor
    _work: Path

    def _require_space(self, needed: int, what: str) -> None:
        """Refuse before starting when the work directory's filesystem lacks ``needed`` bytes."""
        free = shutil.disk_usage(self._work).free
        if free < needed + SPACE_MARGIN:
            raise StorageError(
                f"Not enough temporary disk space for {what}: it needs about {(needed + SPACE_MARGIN) >> 20} MB "
                f"in {self._work.parent} ({free >> 20} MB free). Nothing was written. Point TMPDIR at a larger disk "
                "or free some space."
            )
