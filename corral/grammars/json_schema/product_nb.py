"""The breadth-first product of two code-point DFAs in numba (``cpdfa.Dfa.product``'s search).

Level by level, as the numpy version it replaced: a level's successor pairs (code ``p * n2 + q``)
are sorted, and the new ones numbered in ascending code, so states come out in the same order.
Deep products (a pattern against a length bound: one level per character) paid several numpy calls
per level there: 12 of 77 s of MaskBench's 40 slowest compiles. ``cpdfa.Dfa._product_reference``
(pair by pair) is the specification the tests compare both with.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict


@njit(cache=True, nogil=True)
def product_levels(t1: np.ndarray, t2: np.ndarray, max_states: int):
    """(table [m, k] of state ids, pair codes [m]) of the pairs reachable from (0, 0); m = -1 (empty
    arrays) when more than ``max_states`` pairs are reachable."""
    n2 = t2.shape[0]
    k = t1.shape[1]
    index = Dict.empty(key_type=types.int64, value_type=types.int64)
    index[0] = 0
    codes = np.empty(64, dtype=np.int64)
    codes[0] = 0
    table = np.empty((64, k), dtype=np.int64)
    m = 1
    start, end = 0, 1
    while start < end:
        level = np.empty((end - start) * k, dtype=np.int64)
        for i in range(start, end):
            p = codes[i] // n2
            q = codes[i] % n2
            for a in range(k):
                level[(i - start) * k + a] = t1[p, a] * n2 + t2[q, a]
        for code in np.unique(level):
            if code not in index:
                if m >= max_states:
                    return np.empty((0, k), dtype=np.int64), np.empty(0, dtype=np.int64), -1
                if m == len(codes):
                    grown = np.empty(2 * m, dtype=np.int64)
                    grown[:m] = codes
                    codes = grown
                index[code] = m
                codes[m] = code
                m += 1
        if m > table.shape[0]:
            grown_table = np.empty((max(m, 2 * table.shape[0]), k), dtype=np.int64)
            grown_table[:end] = table[:end]
            table = grown_table
        for i in range(start, end):
            for a in range(k):
                table[i, a] = index[level[(i - start) * k + a]]
        start, end = end, m
    return table[:m].copy(), codes[:m].copy(), m
