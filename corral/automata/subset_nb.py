"""Subset construction over Glushkov positions in numba, the co-reachability pass of trimming, and
the ASCII columns of a code point DFA's byte table.

``dfa._subset_construction`` / ``dfa._subset_construction_sparse`` / ``dfa._coreachable`` are the
plain-Python references (tests compare). In Python the subset construction of a large key
alternation (JSON Schema object keys with every ``\\uXXXX`` spelling) took ~40 ms and was, with
Hopcroft, most of the first-visit mask latency on JSON Schema grammars (docs/automata.md).

A DFA state is a sorted array of positions kept in one pool; states are interned in an
open-addressing hash table. Successors of a state are gathered as ``class * n_pos + position``
keys, sorted, and cut into one candidate state per class.
"""
from __future__ import annotations

import numpy as np
from numba import njit

STATE_BUDGET = -1
WORK_BUDGET = -2


@njit(cache=True, nogil=True, inline="always")
def _hash_positions(buf, lo, hi):
    h = np.uint64(0xCBF29CE484222325)
    for i in range(lo, hi):
        h ^= np.uint64(buf[i] + 1)
        h *= np.uint64(0x100000001B3)
        h ^= h >> np.uint64(31)
    return h


@njit(cache=True, nogil=True)
def subset_construction(fol_start, fol, cls_start, cls_of, n_classes, max_states, max_work):
    """Returns (status, trans [n, n_classes] int64 with -1 for none, state_offsets, pool):
    status is the state count, or STATE_BUDGET / WORK_BUDGET when a budget ran out. State 0 is
    {position 0} (the virtual start); state i is ``pool[state_offsets[i]:state_offsets[i+1]]``."""
    n_pos = fol_start.shape[0] - 1
    k = n_classes
    pool = np.empty(1024, dtype=np.int64)
    offsets = np.empty(257, dtype=np.int64)
    trans = np.full((256, k), -1, dtype=np.int64)
    pool[0] = 0
    offsets[0] = 0
    offsets[1] = 1
    n_states = 1
    table_bits = 10
    table = np.full(1 << table_bits, -1, dtype=np.int64)
    hashes = np.empty(256, dtype=np.uint64)
    h0 = _hash_positions(pool, 0, 1)
    hashes[0] = h0
    table[h0 & np.uint64((1 << table_bits) - 1)] = 0
    keys = np.empty(1024, dtype=np.int64)
    cand = np.empty(1024, dtype=np.int64)
    work = 0
    i = 0
    while i < n_states:
        # successor keys of state i
        m = 0
        for a in range(offsets[i], offsets[i + 1]):
            p = pool[a]
            for b in range(fol_start[p], fol_start[p + 1]):
                q = fol[b]
                for c in range(cls_start[q], cls_start[q + 1]):
                    if m == keys.shape[0]:
                        grown = np.empty(2 * m, dtype=np.int64)
                        grown[:m] = keys
                        keys = grown
                    keys[m] = cls_of[c] * n_pos + q
                    m += 1
        work += m + offsets[i + 1] - offsets[i]
        if work > max_work:
            return WORK_BUDGET, trans[:n_states], offsets[:n_states + 1], pool[:offsets[n_states]]
        sorted_keys = np.sort(keys[:m])
        g = 0
        while g < m:
            cls = sorted_keys[g] // n_pos
            n_cand = 0
            prev = -1
            while g < m and sorted_keys[g] // n_pos == cls:
                q = sorted_keys[g] - cls * n_pos
                g += 1
                if q != prev:
                    if n_cand == cand.shape[0]:
                        grown = np.empty(2 * n_cand, dtype=np.int64)
                        grown[:n_cand] = cand
                        cand = grown
                    cand[n_cand] = q
                    n_cand += 1
                    prev = q
            h = _hash_positions(cand, 0, n_cand)
            mask = np.uint64((1 << table_bits) - 1)
            slot = h & mask
            found = -1
            while True:
                sid = table[slot]
                if sid < 0:
                    break
                if hashes[sid] == h and offsets[sid + 1] - offsets[sid] == n_cand:
                    same = True
                    base = offsets[sid]
                    for t in range(n_cand):
                        if pool[base + t] != cand[t]:
                            same = False
                            break
                    if same:
                        found = sid
                        break
                slot = (slot + np.uint64(1)) & mask
            if found < 0:
                if n_states >= max_states:
                    return STATE_BUDGET, trans[:n_states], offsets[:n_states + 1], pool[:offsets[n_states]]
                found = n_states
                # grow the per-state arrays
                if n_states + 1 >= offsets.shape[0] - 1:
                    cap = 2 * offsets.shape[0]
                    g_off = np.empty(cap, dtype=np.int64)
                    g_off[:n_states + 1] = offsets[:n_states + 1]
                    offsets = g_off
                    g_tr = np.full((cap, k), -1, dtype=np.int64)
                    g_tr[:n_states] = trans[:n_states]
                    trans = g_tr
                    g_h = np.empty(cap, dtype=np.uint64)
                    g_h[:n_states] = hashes[:n_states]
                    hashes = g_h
                end = offsets[n_states]
                while end + n_cand > pool.shape[0]:
                    g_pool = np.empty(2 * pool.shape[0], dtype=np.int64)
                    g_pool[:end] = pool[:end]
                    pool = g_pool
                pool[end:end + n_cand] = cand[:n_cand]
                offsets[n_states + 1] = end + n_cand
                hashes[n_states] = h
                table[slot] = n_states
                n_states += 1
                if 2 * n_states > table.shape[0]:  # rehash at load 1/2
                    table_bits += 1
                    table = np.full(1 << table_bits, -1, dtype=np.int64)
                    mask = np.uint64((1 << table_bits) - 1)
                    for s in range(n_states):
                        sl = hashes[s] & mask
                        while table[sl] >= 0:
                            sl = (sl + np.uint64(1)) & mask
                        table[sl] = s
            trans[i, cls] = found
        i += 1
    return n_states, trans[:n_states], offsets[:n_states + 1], pool[:offsets[n_states]]


@njit(cache=True, nogil=True)
def coreachable(trans, accepting):
    """bool [n]: states from which an accepting state is reachable (-1 entries are no edge)."""
    n, k = trans.shape
    counts = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        for c in range(k):
            t = trans[s, c]
            if t >= 0:
                counts[t + 1] += 1
    for t in range(n):
        counts[t + 1] += counts[t]
    preds = np.empty(counts[n], dtype=np.int64)
    fill = counts[:n].copy()
    for s in range(n):
        for c in range(k):
            t = trans[s, c]
            if t >= 0:
                preds[fill[t]] = s
                fill[t] += 1
    live = accepting.copy()
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for s in range(n):
        if live[s]:
            stack[top] = s
            top += 1
    while top > 0:
        top -= 1
        s = stack[top]
        for j in range(counts[s], counts[s + 1]):
            p = preds[j]
            if not live[p]:
                live[p] = True
                stack[top] = p
                top += 1
    return live


@njit(cache=True, nogil=True)
def ascii_columns(trans, spans, table):
    """``table[s, b] = trans[s, c]`` for every ASCII byte b in class c (``spans`` rows: lo, hi, c;
    disjoint ranges), -1 for the bytes in no class. ``dfa._ascii_columns_reference`` is the spec."""
    class_of = np.full(128, -1, dtype=np.int64)
    for r in range(spans.shape[0]):
        for b in range(spans[r, 0], min(spans[r, 1], 0x7F) + 1):
            class_of[b] = spans[r, 2]
    for s in range(trans.shape[0]):
        for b in range(128):
            c = class_of[b]
            table[s, b] = trans[s, c] if c >= 0 else -1
