"""The hot loop below lexeme boundaries: walk sub-tries of the token trie for several lexing branches.

The root walk of one terminal DFA is ``corral.masks.trie_walk.walk_trie_with_dfa``. Below a node
where a lexeme may end inside a token, the rest of those tokens is walked for every lexing branch of
the successor parser state: ``walk_subtries_groups`` visits, in pre-order, the descendants of each
root node with each branch's DFA (all terminals packed in one transition table), pruning a subtree
at its first dead byte through the skip pointer. Tokens whose every byte keeps a branch alive get
their bit set; nodes where a branch *accepts* and the trie goes on are returned with the branch
index, for the caller to continue with the parser state after that lexeme.

``walk_subtries_reference`` is the plain-Python specification the tests compare against.
"""
from __future__ import annotations

import numpy as np
from numba import njit


def walk_subtries_reference(trie, transitions, accepting, start_state, roots, vocab_size):
    """Plain-Python specification: (set of allowed token ids, sorted list of boundary nodes)."""
    allowed: set[int] = set()
    boundaries: list[int] = []

    def visit(node: int, state: int) -> None:
        child = node + 1
        while child < trie.node_skip[node]:
            ns = int(transitions[state, trie.node_byte[child]])
            if ns >= 0:
                allowed.update(int(t) for t in trie.tok_ids[trie.node_tok_start[child]:trie.node_tok_end[child]])
                if accepting[ns] and trie.node_skip[child] > child + 1:
                    boundaries.append(child)
                visit(child, ns)
            child = int(trie.node_skip[child])

    for r in roots:
        visit(int(r), int(start_state))
    return allowed, sorted(boundaries)


@njit(cache=True, nogil=True)
def walk_subtries_groups(
    node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids,
    transitions, accepting, entry_states, entry_offsets, roots, root_offsets, out_bits, max_depth,
):
    """Sub-walks for several parser states in one call: group ``g`` walks its roots
    ``roots[root_offsets[g]:root_offsets[g+1]]`` with each of its lexing branches
    ``entry_states[entry_offsets[g]:entry_offsets[g+1]]`` (start states in the packed transition
    table of every terminal). Returns (boundary nodes, global index of their branch), sorted by
    branch index. One call per round of the mask's worklist keeps numba dispatch and numpy
    bookkeeping out of the per-parser-state cost."""
    stack = np.empty(max_depth + 2, dtype=np.int32)
    capacity = 0
    for g in range(entry_offsets.shape[0] - 1):
        nodes = 0
        for r_i in range(root_offsets[g], root_offsets[g + 1]):
            nodes += node_skip[roots[r_i]] - roots[r_i]
        capacity += nodes * (entry_offsets[g + 1] - entry_offsets[g])
    b_nodes = np.empty(capacity, dtype=np.int32)
    b_entries = np.empty(capacity, dtype=np.int32)
    n_b = 0
    for g in range(entry_offsets.shape[0] - 1):
        for e in range(entry_offsets[g], entry_offsets[g + 1]):
            for r_i in range(root_offsets[g], root_offsets[g + 1]):
                root = roots[r_i]
                base = node_depth[root]
                stack[0] = entry_states[e]
                i = root + 1
                end = node_skip[root]
                while i < end:
                    d = node_depth[i] - base
                    ns = transitions[stack[d - 1], node_byte[i]]
                    if ns < 0:
                        i = node_skip[i]
                        continue
                    stack[d] = ns
                    for k in range(node_tok_start[i], node_tok_end[i]):
                        tok = tok_ids[k]
                        out_bits[tok >> 5] |= np.uint32(1) << np.uint32(tok & 31)
                    if accepting[ns] and node_skip[i] > i + 1:
                        b_nodes[n_b] = i
                        b_entries[n_b] = e
                        n_b += 1
                    i += 1
    return b_nodes[:n_b].copy(), b_entries[:n_b].copy()


def walk_subtries_multi(node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids,
                        transitions, accepting, entry_states, roots, out_bits, max_depth):
    """One group of ``walk_subtries_groups``: every branch in ``entry_states`` over every root."""
    entry_offsets = np.array([0, len(entry_states)], dtype=np.int64)
    root_offsets = np.array([0, len(roots)], dtype=np.int64)
    return walk_subtries_groups(node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids,
                                transitions, accepting, np.asarray(entry_states, dtype=np.int32), entry_offsets,
                                np.asarray(roots, dtype=np.int32), root_offsets, out_bits, max_depth)


@njit(cache=True, nogil=True)
def subtree_node_count(node_skip, roots) -> int:
    """Trie nodes below ``roots`` (``sum(node_skip[roots] - roots)``): decides whether a sub-walk
    is big enough to memoize. Numpy's three calls took ~7 µs for the usual handful of roots, a few
    times per first-visit mask; this takes ~1 µs."""
    n = 0
    for r in roots:
        n += node_skip[r] - r
    return n


@njit(cache=True, nogil=True)
def run_bounds(values):
    """Offsets of the runs of equal values in ``values`` plus its length: [0, ..., len]
    (``[0] + list(flatnonzero(v[1:] != v[:-1]) + 1) + [len]`` in numpy, ~8 µs per call there)."""
    out = np.empty(values.shape[0] + 2, dtype=np.int64)
    out[0] = 0
    k = 1
    for i in range(1, values.shape[0]):
        if values[i] != values[i - 1]:
            out[k] = i
            k += 1
    out[k] = values.shape[0]
    return out[:k + 1]


# -- sets of trie nodes as sorted int32 arrays ------------------------------------------------
# The roots of a sub-walk must be distinct (nested roots would otherwise emit their boundary nodes
# once per root above them, and the copies multiply round after round), and a parser state reached
# twice in one mask walks only the roots it has not walked yet. np.unique / setdiff1d / union1d
# did this by hashing or sorting every time; boundary lists of identifier-like terminals have
# ~10^5 nodes and are almost always sorted already, so a linear check comes first (bench.engine's
# sql_select grammar spent 80% of its first-visit mask time in np.unique).

def sorted_unique_nodes_reference(nodes) -> np.ndarray:
    return np.unique(np.asarray(nodes)).astype(np.int32)


@njit(cache=True, nogil=True)
def sorted_unique_nodes(nodes):
    """``nodes`` as a sorted array of distinct int32 (linear when already strictly increasing)."""
    n = nodes.shape[0]
    out = np.empty(n, dtype=np.int32)
    increasing = True
    for i in range(1, n):
        if nodes[i] <= nodes[i - 1]:
            increasing = False
            break
    if increasing:
        for i in range(n):
            out[i] = nodes[i]
        return out
    s = np.sort(nodes)
    k = 0
    for i in range(n):
        if k == 0 or s[i] != out[k - 1]:
            out[k] = s[i]
            k += 1
    return out[:k]


@njit(cache=True, nogil=True)
def unique_roots_and_subtree_size(nodes, node_skip):
    """(``sorted_unique_nodes(nodes)``, trie nodes below them): one call per parser state of a
    mask's worklist instead of two (a first-visit mask may walk a chain of ~190 new states)."""
    roots = sorted_unique_nodes(nodes)
    return roots, subtree_node_count(node_skip, roots)


@njit(cache=True, nogil=True)
def sorted_difference_and_union(new, seen):
    """(new \\ seen, new ∪ seen) of two sorted arrays of distinct int32, by one merge."""
    diff = np.empty(new.shape[0], dtype=np.int32)
    union = np.empty(new.shape[0] + seen.shape[0], dtype=np.int32)
    i = j = nd = nu = 0
    while i < new.shape[0] or j < seen.shape[0]:
        if j >= seen.shape[0] or (i < new.shape[0] and new[i] < seen[j]):
            diff[nd] = new[i]
            nd += 1
            union[nu] = new[i]
            i += 1
        elif i >= new.shape[0] or seen[j] < new[i]:
            union[nu] = seen[j]
            j += 1
        else:
            union[nu] = seen[j]
            i += 1
            j += 1
        nu += 1
    return diff[:nd], union[:nu]
