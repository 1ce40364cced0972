"""Subset construction of the code-point NFAs of ``cpdfa`` (Thompson style, over atom ids) in numba.

Subsets are numbered as ``cpdfa._subsets_reference`` numbers them (breadth first; within a subset,
atoms in ascending order; the empty subset is a state like any other), so the tables are equal,
which the tests check. A subset is the sorted array of its NFA states, kept in one flat buffer and
found again through an open-addressing hash table. Per subset, each atom's targets are gathered in
one counting pass over the subset's edges; an atom whose targets repeat the previous atom's (runs
of letters, digits) reuses its successor without a closure.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = -1


@njit(cache=True, nogil=True, inline="always")
def _hash(items: np.ndarray, lo: int, hi: int) -> np.int64:
    h = np.int64(-3750763034362895579)  # FNV-1a over the state ids, wrapping
    for i in range(lo, hi):
        h = (h ^ np.int64(items[i])) * np.int64(1099511628211)
    return h


@njit(cache=True, nogil=True)
def subset_construction(eps_start, eps_to, edge_start, edge_class, edge_to, cls_start, cls_atoms,
                        n_atoms, s0, end, max_states):
    """(trans [m, n_atoms] int64, accept [m] bool, m); m = -1 when a subset beyond ``max_states``
    would be needed. CSR inputs: ``eps_to[eps_start[s]:eps_start[s + 1]]`` are the epsilon moves of
    NFA state s, ``edge_class``/``edge_to`` its labelled edges, ``cls_atoms`` each class's atoms."""
    n = len(eps_start) - 1
    mark = np.zeros(n, dtype=np.int64)
    stamp = 0
    stack = np.empty(n, dtype=np.int64)
    scratch = np.empty(n, dtype=np.int64)
    # subsets: items[starts[k]:starts[k + 1]]
    items = np.empty(max(64, n), dtype=np.int64)
    starts = np.zeros(65, dtype=np.int64)
    m = 0
    slots = np.full(1024, _EMPTY, dtype=np.int64)
    trans = np.empty((64, n_atoms), dtype=np.int64)
    accept = np.zeros(64, dtype=np.bool_)
    count = np.zeros(n_atoms + 1, dtype=np.int64)
    bucket = np.empty(64, dtype=np.int64)
    seeds = np.empty(1, dtype=np.int64)
    seeds[0] = s0
    k = 0  # the subset being expanded
    first = True
    while first or k < m:
        # ---- gather each atom's targets (or the start seed) and find/insert their closures
        if first:
            n_rows = 1
        else:
            n_rows = n_atoms
            count[:] = 0
            for j in range(starts[k], starts[k + 1]):
                s = items[j]
                for e in range(edge_start[s], edge_start[s + 1]):
                    c = edge_class[e]
                    for x in range(cls_start[c], cls_start[c + 1]):
                        count[cls_atoms[x] + 1] += 1
            for a in range(n_atoms):
                count[a + 1] += count[a]
            total = count[n_atoms]
            if total > len(bucket):
                bucket = np.empty(2 * total, dtype=np.int64)
            fill = count[:n_atoms].copy()
            for j in range(starts[k], starts[k + 1]):
                s = items[j]
                for e in range(edge_start[s], edge_start[s + 1]):
                    c = edge_class[e]
                    t = edge_to[e]
                    for x in range(cls_start[c], cls_start[c + 1]):
                        a = cls_atoms[x]
                        bucket[fill[a]] = t
                        fill[a] += 1
        for a in range(n_rows):
            if first:
                lo_b, hi_b = 0, 1
                src = seeds
            else:
                lo_b, hi_b = count[a], count[a + 1]
                src = bucket
                if a > 0 and hi_b - lo_b == count[a] - count[a - 1]:
                    same = True
                    for j in range(hi_b - lo_b):
                        if bucket[lo_b + j] != bucket[count[a - 1] + j]:
                            same = False
                            break
                    if same:
                        trans[k, a] = trans[k, a - 1]
                        continue
            # closure of the seeds (depth first, marks by stamp)
            stamp += 1
            size = 0
            top = 0
            for j in range(lo_b, hi_b):
                s = src[j]
                if mark[s] != stamp:
                    mark[s] = stamp
                    scratch[size] = s
                    size += 1
                    stack[top] = s
                    top += 1
            while top > 0:
                top -= 1
                s = stack[top]
                for j in range(eps_start[s], eps_start[s + 1]):
                    t = eps_to[j]
                    if mark[t] != stamp:
                        mark[t] = stamp
                        scratch[size] = t
                        size += 1
                        stack[top] = t
                        top += 1
            closed = np.sort(scratch[:size])
            h = _hash(closed, 0, size)
            mask = len(slots) - 1
            slot = h & mask
            found = -1
            while slots[slot] != _EMPTY:
                cand = slots[slot]
                lo_c, hi_c = starts[cand], starts[cand + 1]
                if hi_c - lo_c == size:
                    equal = True
                    for j in range(size):
                        if items[lo_c + j] != closed[j]:
                            equal = False
                            break
                    if equal:
                        found = cand
                        break
                slot = (slot + 1) & mask
            if found < 0:
                if m >= max_states:
                    return np.empty((0, n_atoms), dtype=np.int64), np.empty(0, dtype=np.bool_), -1
                found = m
                # append the subset
                if starts[m] + size > len(items):
                    grown = np.empty(2 * (starts[m] + size), dtype=np.int64)
                    grown[:starts[m]] = items[:starts[m]]
                    items = grown
                items[starts[m]:starts[m] + size] = closed
                if m + 2 > len(starts):
                    grown_starts = np.zeros(2 * len(starts), dtype=np.int64)
                    grown_starts[:m + 1] = starts[:m + 1]
                    starts = grown_starts
                starts[m + 1] = starts[m] + size
                if m >= len(accept):
                    grown_trans = np.empty((2 * len(accept), n_atoms), dtype=np.int64)
                    grown_trans[:m] = trans[:m]
                    trans = grown_trans
                    grown_accept = np.zeros(2 * len(accept), dtype=np.bool_)
                    grown_accept[:m] = accept[:m]
                    accept = grown_accept
                hit_end = False
                for j in range(size):
                    if closed[j] == end:
                        hit_end = True
                        break
                accept[m] = hit_end
                slots[slot] = m
                m += 1
                if 2 * m > len(slots):  # rehash at half load
                    slots = np.full(2 * len(slots), _EMPTY, dtype=np.int64)
                    mask = len(slots) - 1
                    for q in range(m):
                        sl = _hash(items, starts[q], starts[q + 1]) & mask
                        while slots[sl] != _EMPTY:
                            sl = (sl + 1) & mask
                        slots[sl] = q
            if not first:
                trans[k, a] = found
        if first:
            first = False
        else:
            k += 1
    return trans[:m].copy(), accept[:m].copy(), m
