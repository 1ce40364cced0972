"""Bitmask rows for the mask path's memos, from memory already faulted in.

A first-visit mask keeps a few vocabulary-wide bitmasks (16 KB each on Llama-3): the mask itself,
the OR of its root walks, each root walk's token bits. Allocated one by one, each lands on heap
pages the process has never touched, and the first write into a page is a page fault: ~3-20 us a
4 KB page on the 2-core VMs we measure on, so ~7 faults cost more than the walk itself
(bench.engine on Llama-3: masks that faulted took 231 of 239 ms of mask time). A pool hands out
rows of slabs written once ahead of time (``reserve``, at warm-up), so the memos grow into memory
that is already mapped. Rows are never reused: a row lives as long as whoever holds it (numpy
views keep their slab alive), so a memo may hand its arrays out without copying them. Past the
reserve, rows are plain arrays, freed one by one: a row of a shared slab would keep the whole slab
resident after the memos evicted the rest of it, so the memory a reserve can pin is the reserve.
"""
from __future__ import annotations

import threading

import numpy as np


class RowPool:
    """Zeroed uint32 rows of ``n_words`` words, thread-safe."""

    def __init__(self, n_words: int):
        self.n_words = n_words
        self._lock = threading.Lock()
        self._slabs: list[np.ndarray] = []  # reserved slabs with rows left, handed out front to back
        self._next = 0  # next free row of self._slabs[0]
        self.rows_reserved = 0
        self.rows_taken = 0

    def reserve(self, n_rows: int) -> None:
        """Add ``n_rows`` rows whose pages are faulted in now (a write to every page)."""
        if n_rows <= 0:
            return
        slab = np.zeros((n_rows, self.n_words), dtype=np.uint32)
        slab.fill(0)  # calloc'd pages map the shared zero page until written: write them
        with self._lock:
            self._slabs.append(slab)
            self.rows_reserved += n_rows

    def zeros(self) -> np.ndarray:
        """A zeroed row (never handed out before)."""
        row = self._reserved_row()
        return np.zeros(self.n_words, dtype=np.uint32) if row is None else row

    def copy_of(self, src: np.ndarray) -> np.ndarray:
        """A row holding a copy of ``src`` (uint32[n_words])."""
        row = self._reserved_row()
        if row is None:
            return src.copy()
        np.copyto(row, src)
        return row

    def adopt(self, arr: np.ndarray) -> np.ndarray:
        """``arr`` (uint32[n_words], owned by the caller) moved into a reserved row when one is
        left, else ``arr`` itself: for a scratch array the caller is about to keep."""
        row = self._reserved_row()
        if row is None:
            return arr
        np.copyto(row, arr)
        return row

    def _reserved_row(self) -> "np.ndarray | None":
        with self._lock:
            if not self._slabs:
                return None
            slab = self._slabs[0]
            row = slab[self._next]
            self._next += 1
            self.rows_taken += 1
            if self._next == len(slab):
                self._slabs.pop(0)
                self._next = 0
        return row


def row_pool(vocab) -> RowPool:
    """The vocabulary's pool of bitmask rows (one per vocabulary, shared by its grammars)."""
    pool = vocab.cache.get("corral.row_pool")
    if pool is None:
        pool = vocab.cache.setdefault("corral.row_pool", RowPool((vocab.size + 31) // 32))
    return pool
