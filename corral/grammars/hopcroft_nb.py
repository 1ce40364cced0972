"""Hopcroft's partition refinement in numba: the minimization step of every terminal DFA
(``corral.automata.dfa``) and of the JSON Schema front-end's code-point DFAs (``cpdfa``), which is
why it lives in the lowest layer.

``dfa._hopcroft`` is the plain-Python reference (tests compare the two). Python Hopcroft cost
~10 ms per 500-state DFA and was the largest single item of first-visit mask latency on JSON
Schema grammars (key terminals carry bounded whitespace runs: deep chains that Moore rounds
converge on slowly); this version is ~100x faster (docs/automata.md).

Refinable partition (Valmari & Lehtinen): ``elems`` holds the states with every block contiguous
in ``[first[b], end[b])``; marking a state swaps it into the block's marked prefix
``[first[b], mid[b])``, and splitting cuts that prefix off as a new block.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def hopcroft_refine(trans: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Coarsest refinement of ``initial`` (block ids 0..m-1) stable under ``trans`` ([n, k] int64,
    -1 = the dead state, treated as an extra sink state in a block of its own). Returns dense
    block ids (numbered by first appearance in state order) for the n states."""
    n, k = trans.shape
    total = n + 1  # + sink
    sink = n
    # incoming edges in CSR by target, each group sorted by class
    n_edges = total * k
    src = np.empty(n_edges, dtype=np.int64)
    cls = np.empty(n_edges, dtype=np.int64)
    dst = np.empty(n_edges, dtype=np.int64)
    e = 0
    for s in range(total):
        for c in range(k):
            t = sink if s == sink else trans[s, c]
            if t < 0:
                t = sink
            src[e] = s
            cls[e] = c
            dst[e] = t
            e += 1
    key = dst * k + cls
    order = np.argsort(key, kind="mergesort")
    in_start = np.zeros(total + 1, dtype=np.int64)
    for i in range(n_edges):
        in_start[dst[i] + 1] += 1
    for t in range(total):
        in_start[t + 1] += in_start[t]
    in_src = src[order]
    in_cls = cls[order]

    n_initial = 0
    for s in range(n):
        if initial[s] + 1 > n_initial:
            n_initial = initial[s] + 1
    max_blocks = total + n_initial + 1  # initial ids may leave gaps
    first = np.zeros(max_blocks, dtype=np.int64)
    end = np.zeros(max_blocks, dtype=np.int64)
    mid = np.zeros(max_blocks, dtype=np.int64)
    blk = np.empty(total, dtype=np.int64)
    for s in range(n):
        blk[s] = initial[s]
    blk[sink] = n_initial
    n_blocks = n_initial + 1
    # counting sort of states by block
    sizes = np.zeros(n_blocks, dtype=np.int64)
    for s in range(total):
        sizes[blk[s]] += 1
    pos = 0
    for b in range(n_blocks):
        first[b] = pos
        mid[b] = pos
        pos += sizes[b]
        end[b] = pos
    elems = np.empty(total, dtype=np.int64)
    loc = np.empty(total, dtype=np.int64)
    fill = first[:n_blocks].copy()
    for s in range(total):
        b = blk[s]
        elems[fill[b]] = s
        loc[s] = fill[b]
        fill[b] += 1

    work = np.empty(max_blocks, dtype=np.int64)
    in_work = np.zeros(max_blocks, dtype=np.bool_)
    n_work = 0
    for b in range(n_blocks):
        if end[b] > first[b]:
            work[n_work] = b
            n_work += 1
            in_work[b] = True
    touched = np.empty(max_blocks, dtype=np.int64)
    snap = np.empty(total, dtype=np.int64)
    e_src = np.empty(n_edges, dtype=np.int64)
    e_cls = np.empty(n_edges, dtype=np.int64)
    by_cls = np.empty(n_edges, dtype=np.int64)
    cls_count = np.zeros(k, dtype=np.int64)
    cls_start = np.zeros(k, dtype=np.int64)
    used_cls = np.empty(k, dtype=np.int64)

    while n_work > 0:
        n_work -= 1
        splitter = work[n_work]
        in_work[splitter] = False
        # snapshot the splitter's states and gather their incoming edges, grouped by class
        m = 0
        for i in range(first[splitter], end[splitter]):
            snap[m] = elems[i]
            m += 1
        n_e = 0
        for i in range(m):
            t = snap[i]
            for j in range(in_start[t], in_start[t + 1]):
                e_src[n_e] = in_src[j]
                e_cls[n_e] = in_cls[j]
                n_e += 1
        if n_e == 0:
            continue
        # group the edges by class: a counting sort (k is small; an argsort per splitter
        # allocated and dominated on chain-like DFAs, one splitter per state)
        n_used = 0
        for i in range(n_e):
            c = e_cls[i]
            if cls_count[c] == 0:
                used_cls[n_used] = c
                n_used += 1
            cls_count[c] += 1
        acc = 0
        for u in range(n_used):
            c = used_cls[u]
            cls_start[c] = acc
            acc += cls_count[c]
            cls_count[c] = 0
        for i in range(n_e):
            c = e_cls[i]
            by_cls[cls_start[c] + cls_count[c]] = i
            cls_count[c] += 1
        for u in range(n_used):
            cls_count[used_cls[u]] = 0
        g = 0
        while g < n_e:
            c = e_cls[by_cls[g]]
            n_touched = 0
            while g < n_e and e_cls[by_cls[g]] == c:
                s = e_src[by_cls[g]]
                g += 1
                b = blk[s]
                i = loc[s]
                if i < mid[b]:
                    continue  # already marked for this class
                j = mid[b]
                other = elems[j]
                elems[j] = s
                loc[s] = j
                elems[i] = other
                loc[other] = i
                if mid[b] == first[b]:
                    touched[n_touched] = b
                    n_touched += 1
                mid[b] += 1
            for ti in range(n_touched):
                b = touched[ti]
                if mid[b] == end[b]:
                    mid[b] = first[b]  # every state hit: no split
                    continue
                nb = n_blocks
                n_blocks += 1
                first[nb] = first[b]
                end[nb] = mid[b]
                mid[nb] = first[nb]
                first[b] = mid[b]
                mid[b] = first[b]
                for i in range(first[nb], end[nb]):
                    blk[elems[i]] = nb
                if in_work[b]:
                    work[n_work] = nb
                    n_work += 1
                    in_work[nb] = True
                else:
                    add = nb if end[nb] - first[nb] <= end[b] - first[b] else b
                    work[n_work] = add
                    n_work += 1
                    in_work[add] = True
    dense = np.full(n_blocks, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    next_id = 0
    for s in range(n):
        b = blk[s]
        if dense[b] < 0:
            dense[b] = next_id
            next_id += 1
        out[s] = dense[b]
    return out
