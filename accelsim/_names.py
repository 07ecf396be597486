"""Suggestions for a mistyped name (a model, a hardware config, a board, a config field).

Ranked by edit distance to the whole name or to a prefix that ends at a ``_`` or ``.`` boundary,
so that ``deit_tinyy`` finds ``deit_tiny_patch16_224`` (one edit from its ``deit_tiny`` prefix),
which :mod:`difflib`'s ratio misses among timm's 1,300 names. Standard library only: error paths
stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable

_BOUNDARIES = "_.-/"


def _distances(query: str, candidate: str, limit: int) -> tuple[int, int]:
    """(distance to the closest boundary prefix of ``candidate`` or to all of it, to all of it);
    ``limit + 1`` for both once no longer prefix can come within ``limit``."""
    prev = list(range(len(query) + 1))
    best = len(query)  # the empty prefix
    for j, ch in enumerate(candidate, 1):
        cur = [j]
        for i, qc in enumerate(query, 1):
            cur.append(min(prev[i] + 1, cur[i - 1] + 1, prev[i - 1] + (qc != ch)))
        prev = cur
        if j == len(candidate) or candidate[j] in _BOUNDARIES:
            best = min(best, cur[-1])
        elif best > limit and min(cur) > limit:  # a row's minimum never decreases
            return limit + 1, limit + 1
    return best, prev[-1]


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates within ``max(1, len(name) // 4)`` edits of ``name`` (or of one of
    their ``_``-bounded prefixes), closest first; ties go to the candidate closer as a whole.

    Examples:
        >>> suggest("deit_tinyy", ["deit_tiny_patch16_224", "deit_small_patch16_224", "davit_tiny"])
        ['deit_tiny_patch16_224']
        >>> suggest("zcu1O2", ["zcu102", "zcu104", "kv260"])
        ['zcu102']
    """
    query = name.lower()
    limit = max(1, len(query) // 4)
    scored = []
    for c in set(candidates):
        if abs(len(c) - len(query)) > limit and len(c) < len(query):
            continue  # shorter by more than the limit: too far whatever the letters
        prefix, whole = _distances(query, c.lower(), limit)
        if prefix <= limit:
            scored.append((prefix, whole, c))
    return [c for _, _, c in sorted(scored)[:n]]


def unknown(what: str, name: str, candidates: Iterable[str], n: int = 3) -> str:
    """``unknown <what> 'name'; did you mean 'a' or 'b'?``, or the known names when there are
    few and none is close (``(known: ...)``)."""
    names = sorted(set(candidates))
    close = suggest(name, names, n)
    if close:
        return f"unknown {what} {name!r}; did you mean {' or '.join(repr(c) for c in close)}?"
    if len(names) <= 30:
        return f"unknown {what} {name!r} (known: {', '.join(names)})"
    return f"unknown {what} {name!r} (no close name among {len(names):,})"


__all__ = ["suggest", "unknown"]
