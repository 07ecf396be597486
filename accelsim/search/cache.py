"""The compression-point cache: each (workload, recipe) is compressed, evaluated and lowered once.

Entries live in memory and, when a folder is given, as one JSON file per key in it (accuracy,
info and the lowered Graph), written atomically. A resumed search, or a second search over the
same workload into the same ``--out``, reads them instead of compressing again. Only the search
driver touches the cache, so a Ray cluster needs no shared file system for it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from accelsim._io import write_text_atomic
from accelsim.search.objective import CompressedPoint

log = logging.getLogger(__name__)


class CompressionCache:
    """Memory + optional on-disk cache of :class:`CompressedPoint` by recipe key.

    Args:
        folder: where entries are stored (created on first write); ``None`` keeps them in memory only.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._memory: dict[str, CompressedPoint] = {}
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{key}.json"

    def get(self, key: str) -> CompressedPoint | None:
        """The entry of ``key``, from memory or disk; ``None`` (a miss) when absent or unreadable."""
        point = self._memory.get(key)
        if point is None and self.folder is not None and self._path(key).exists():
            try:
                point = CompressedPoint.from_dict(json.loads(self._path(key).read_text()))
            except (OSError, ValueError, KeyError, TypeError) as e:
                # a torn or stale file is recomputed, not fatal: the cache is only an accelerator
                log.warning("ignoring unreadable cache entry %s: %s", self._path(key), e)
                point = None
            if point is not None:
                self._memory[key] = point
        if point is None:
            self.misses += 1
        else:
            self.hits += 1
        return point

    def put(self, key: str, point: CompressedPoint, recipe: dict[str, object] | None = None) -> None:
        """Store ``point`` (and, on disk, the recipe it came from, for people reading the folder)."""
        self._memory[key] = point
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"key": key, "recipe": recipe, **point.to_dict()}
        # atomic: a killed run leaves no half-written entry
        write_text_atomic(self._path(key), json.dumps(data, separators=(",", ":")))

    def __contains__(self, key: str) -> bool:
        return key in self._memory or (self.folder is not None and self._path(key).exists())

    def __len__(self) -> int:
        return len(self._memory)


__all__ = ["CompressionCache"]
