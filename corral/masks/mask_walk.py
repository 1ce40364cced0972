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
from numba import njit, types
from numba.typed import Dict

from corral.masks.trie_walk import set_found_token_bits


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
    node_info, node_skip, node_tok, node_tok_start, node_tok_end, tok_ids,
    transitions, accepting, entry_states, entry_offsets, roots, root_offsets, out_bits, max_depth,
):
    """Sub-walks for several parser states in one call: group ``g`` walks its roots
    ``roots[root_offsets[g]:root_offsets[g+1]]`` with each of its lexing branches
    ``entry_states[entry_offsets[g]:entry_offsets[g+1]]`` (start states in the packed transition
    table of every terminal). Returns (boundary nodes, global index of their branch), sorted by
    branch index. One call per round of the mask's worklist keeps numba dispatch and numpy
    bookkeeping out of the per-parser-state cost. The trie comes packed
    (``corral.masks.trie_walk.packed_trie_arrays``: byte and depth in one word, single tokens direct;
    the token marking is written out in each loop: as an inlined helper it made the walks 2x slower;
    tokens are appended without a branch and their bits set after each root's walk)."""
    stack = np.empty(max_depth + 2, dtype=np.int32)
    capacity = 0
    for g in range(entry_offsets.shape[0] - 1):
        nodes = 0
        for r_i in range(root_offsets[g], root_offsets[g + 1]):
            nodes += node_skip[roots[r_i]] - roots[r_i]
        capacity += nodes * (entry_offsets[g + 1] - entry_offsets[g])
    b_nodes = np.empty(capacity + 1, dtype=np.int32)
    b_entries = np.empty(capacity + 1, dtype=np.int32)
    largest = 0
    for r_i in range(roots.shape[0]):
        largest = max(largest, node_skip[roots[r_i]] - roots[r_i])
    found = np.empty(largest, dtype=np.int32)
    n_b = 0
    for g in range(entry_offsets.shape[0] - 1):
        for e in range(entry_offsets[g], entry_offsets[g + 1]):
            for r_i in range(root_offsets[g], root_offsets[g + 1]):
                root = roots[r_i]
                base = node_info[root] >> 8
                stack[0] = entry_states[e]
                i = root + 1
                end = node_skip[root]
                n_tok = 0
                while i < end:
                    info = node_info[i]
                    d = (info >> 8) - base
                    ns = transitions[stack[d - 1], info & 255]
                    if ns < 0:
                        i = node_skip[i]
                        continue
                    stack[d] = ns
                    # appended without a branch, bits set after the walk (as walk_trie_packed)
                    found[n_tok] = i
                    n_tok += node_tok[i] != -1
                    b_nodes[n_b] = i
                    b_entries[n_b] = e
                    n_b += accepting[ns] & (node_skip[i] > i + 1)
                    i += 1
                set_found_token_bits(found, n_tok, node_tok, node_tok_start, node_tok_end, tok_ids, out_bits)
    return b_nodes[:n_b].copy(), b_entries[:n_b].copy()


def walk_subtries_multi(node_info, node_skip, node_tok, node_tok_start, node_tok_end, tok_ids,
                        transitions, accepting, entry_states, roots, out_bits, max_depth):
    """One group of ``walk_subtries_groups``: every branch in ``entry_states`` over every root."""
    entry_offsets = np.array([0, len(entry_states)], dtype=np.int64)
    root_offsets = np.array([0, len(roots)], dtype=np.int64)
    return walk_subtries_groups(node_info, node_skip, node_tok, node_tok_start, node_tok_end, tok_ids,
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

def shifted_rows_reference(src: np.ndarray, shift: int) -> np.ndarray:
    """Plain-Python specification of ``shift_rows_into``: ``src + shift`` where ``src >= 0``, else -1."""
    return np.where(src >= 0, src + shift, -1).astype(np.int32)


@njit(cache=True, nogil=True)
def shift_rows_into(src, shift, dst):
    """``dst[...] = src + shift`` where ``src >= 0``, else -1: a terminal DFA's table copied into
    the packed table, its targets moved to its row offset. One pass over the rows (numpy's add
    then masked fix-up made three, with a boolean temporary: ~0.85 us a 1 KiB state)."""
    n, k = src.shape
    for i in range(n):
        for j in range(k):
            t = src[i, j]
            dst[i, j] = t + shift if t >= 0 else -1


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


# -- push chains: sub-walks below boundaries without Python parser states ----------------------
# A parser state whose items all wait for a symbol that is not nullable (after an opening bracket,
# an operator, each level of a nesting chain) is, up to its items' origins, a function of its
# kernel's dotted positions: its lexing branches and the positions of the state after each of its
# terminals are too (``ParserTables.push_closure``). Such a position set is a *template*. Below a
# boundary reached from a push state, the walk follows template transitions here, in one numba
# call, and hands back to Python only where a terminal's successor completes an item (there the
# origins matter) or a template transition has not been computed yet.

CHAIN_SHIFT = 32  # keys: chain << 32 | branch, chain << 32 | trie node (both < 2^31)


@njit(cache=True, nogil=True)
def walk_push_chains(
    node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids,
    transitions, accepting, t_first, t_count, g_state, g_next,
    work_chain, work_template, work_node, first_new_chain, out_bits, max_depth,
):
    """Walk the trie below each work item ``(chain, template, root node)`` with every lexing branch
    of the template (``g_state[t_first[t]:t_first[t]+t_count[t]]``: packed DFA start states, one
    global branch index each). At a boundary node (the branch's DFA accepts and the trie goes on):
    ``g_next[branch] >= 0`` is the template after that terminal, walked from that node as the chain
    ``(chain, branch)`` (interned here, ids from ``first_new_chain``); ``-1`` means the state after
    the terminal completes an item, returned as an *exit* (node, chain, branch) for the Python
    parser; ``-2`` means the transition is not computed yet, returned as *suspended*. Each
    (chain, node) pair is walked once.

    Returns the new chains' (parent, branch) as int64 arrays, then the exits and the suspended
    boundaries, each grouped by (chain, branch): ``(keys, offsets, nodes)`` with ``keys`` the
    distinct ``chain << 32 | branch``, group i's nodes ``nodes[offsets[i]:offsets[i+1]]``."""
    stack = np.empty(max_depth + 2, dtype=np.int32)
    chain_of = Dict.empty(key_type=types.int64, value_type=types.int64)
    walked = Dict.empty(key_type=types.int64, value_type=types.int8)
    new_parent = [np.int64(0) for _ in range(0)]
    new_branch = [np.int64(0) for _ in range(0)]
    ex_node = [np.int64(0) for _ in range(0)]
    ex_chain = [np.int64(0) for _ in range(0)]
    ex_branch = [np.int64(0) for _ in range(0)]
    su_node = [np.int64(0) for _ in range(0)]
    su_chain = [np.int64(0) for _ in range(0)]
    su_branch = [np.int64(0) for _ in range(0)]
    w_chain = [np.int64(0) for _ in range(0)]
    w_template = [np.int64(0) for _ in range(0)]
    w_node = [np.int64(0) for _ in range(0)]
    for k in range(work_chain.shape[0]):
        wkey = (np.int64(work_chain[k]) << CHAIN_SHIFT) | work_node[k]
        if wkey not in walked:
            walked[wkey] = np.int8(1)
            w_chain.append(np.int64(work_chain[k]))
            w_template.append(np.int64(work_template[k]))
            w_node.append(np.int64(work_node[k]))
    while len(w_chain):
        chain = w_chain.pop()
        template = w_template.pop()
        root = w_node.pop()
        base = node_depth[root]
        for g in range(t_first[template], t_first[template] + t_count[template]):
            stack[0] = g_state[g]
            nxt = g_next[g]
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
                    if nxt >= 0:
                        key = (chain << CHAIN_SHIFT) | g
                        child = chain_of.get(key, -1)
                        if child < 0:
                            child = first_new_chain + len(new_parent)
                            chain_of[key] = child
                            new_parent.append(chain)
                            new_branch.append(np.int64(g))
                        wkey = (child << CHAIN_SHIFT) | i
                        if wkey not in walked:
                            walked[wkey] = np.int8(1)
                            w_chain.append(child)
                            w_template.append(np.int64(nxt))
                            w_node.append(np.int64(i))
                    elif nxt == -1:
                        ex_node.append(np.int64(i))
                        ex_chain.append(chain)
                        ex_branch.append(np.int64(g))
                    else:
                        su_node.append(np.int64(i))
                        su_chain.append(chain)
                        su_branch.append(np.int64(g))
                i += 1
    ex_keys, ex_offsets, ex_nodes = _grouped(ex_chain, ex_branch, ex_node)
    su_keys, su_offsets, su_nodes = _grouped(su_chain, su_branch, su_node)
    return (_int64_array(new_parent), _int64_array(new_branch), ex_keys, ex_offsets, ex_nodes,
            su_keys, su_offsets, su_nodes)


@njit(cache=True, nogil=True)
def _grouped(chains, branches, nodes):
    """Boundary records grouped by (chain, branch): (distinct keys, offsets, int32 nodes)."""
    n = len(chains)
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        keys[i] = (chains[i] << CHAIN_SHIFT) | branches[i]
    order = np.argsort(keys, kind="mergesort")
    out_nodes = np.empty(n, dtype=np.int32)
    out_keys = np.empty(n, dtype=np.int64)
    offsets = np.empty(n + 1, dtype=np.int64)
    k = 0
    for j in range(n):
        i = order[j]
        out_nodes[j] = nodes[i]
        if j == 0 or keys[i] != out_keys[k - 1]:
            out_keys[k] = keys[i]
            offsets[k] = j
            k += 1
    offsets[k] = n
    return out_keys[:k].copy(), offsets[:k + 1].copy(), out_nodes


@njit(cache=True, nogil=True)
def _int64_array(values):
    out = np.empty(len(values), dtype=np.int64)
    for i in range(len(values)):
        out[i] = values[i]
    return out


# -- sub-walks over many roots, entered by their first byte -----------------------------------
# Where an identifier-like terminal may end inside a token, its boundary nodes are ~10^5 trie
# nodes, and what may follow it starts with one of a few bytes (`.`, `,`, a space). Walking every
# child of every root only to find the first byte dead was most of such a mask. Indexed per
# vocabulary by (byte, parent), the walk visits only the children whose first byte some branch
# accepts, found by binary search among the roots.

def first_byte_index(trie):
    """(offsets[257], parents, children, child counts): the non-root trie nodes ordered by (byte,
    parent); those with byte b are ``children[offsets[b]:offsets[b+1]]``, their parents (ascending)
    alongside; and each node's number of children."""
    nodes = np.arange(1, trie.num_nodes, dtype=np.int64)
    order = np.lexsort((trie.node_parent[1:], trie.node_byte[1:]))
    children = nodes[order].astype(np.int32)
    parents = trie.node_parent[1:][order].astype(np.int32)
    offsets = np.searchsorted(trie.node_byte[1:][order], np.arange(257)).astype(np.int64)
    n_children = np.bincount(trie.node_parent[1:], minlength=trie.num_nodes).astype(np.int32)
    return offsets, np.ascontiguousarray(parents), np.ascontiguousarray(children), n_children


@njit(cache=True, nogil=True)
def walk_subtries_by_first_byte(
    node_info, node_skip, node_tok, node_tok_start, node_tok_end, tok_ids,
    transitions, accepting, entry_states, roots, byte_offsets, byte_parents, byte_children, n_children,
    out_bits, max_depth,
):
    """``walk_subtries_groups`` for one group (every branch over every root; ``roots`` sorted and
    distinct). Per branch, whichever is cheaper by count: scanning the roots' children, or reaching
    the children whose first byte the branch accepts through the first-byte index (a binary search
    each; measured ~10x faster for 23k identifier boundaries followed by `.` or `,`, ~5x slower
    when letters may follow). Returns (boundary nodes, branch index), by branch index ascending."""
    stack = np.empty(max_depth + 2, dtype=np.int32)
    n_roots = roots.shape[0]
    scan_cost = 0
    below = 0
    for r_i in range(n_roots):
        scan_cost += n_children[roots[r_i]]
        below += node_skip[roots[r_i]] - roots[r_i]
    # a boundary is a node below some root, found once per branch (roots are distinct, but a node
    # below two nested roots is found from each: bounded by the nodes below them all)
    b_nodes = np.empty(below * entry_states.shape[0] + 1, dtype=np.int32)
    b_entries = np.empty(below * entry_states.shape[0] + 1, dtype=np.int32)
    n_b = np.zeros(1, dtype=np.int64)
    largest = 0
    for r_i in range(n_roots):
        largest = max(largest, node_skip[roots[r_i]] - roots[r_i])
    found = np.empty(largest, dtype=np.int32)
    for e in range(entry_states.shape[0]):
        q = entry_states[e]
        lookups = 0
        for b in range(256):
            if transitions[q, b] >= 0:
                lookups += min(byte_offsets[b + 1] - byte_offsets[b], n_roots)
        if 8 * lookups >= scan_cost:
            for r_i in range(n_roots):  # the loop of walk_subtries_groups
                root = roots[r_i]
                base = node_info[root] >> 8
                stack[0] = q
                i = root + 1
                end = node_skip[root]
                n_tok = 0
                n_found = n_b[0]
                while i < end:
                    info = node_info[i]
                    d = (info >> 8) - base
                    ns = transitions[stack[d - 1], info & 255]
                    if ns < 0:
                        i = node_skip[i]
                        continue
                    stack[d] = ns
                    found[n_tok] = i
                    n_tok += node_tok[i] != -1
                    b_nodes[n_found] = i
                    b_entries[n_found] = e
                    n_found += accepting[ns] & (node_skip[i] > i + 1)
                    i += 1
                n_b[0] = n_found
                set_found_token_bits(found, n_tok, node_tok, node_tok_start, node_tok_end, tok_ids, out_bits)
            continue
        for b in range(256):
            first = transitions[q, b]
            if first < 0:
                continue
            lo = byte_offsets[b]
            hi = byte_offsets[b + 1]
            if hi == lo:
                continue
            if hi - lo <= n_roots:  # few nodes with this byte: look their parents up among the roots
                for k in range(lo, hi):
                    j = np.searchsorted(roots, byte_parents[k])
                    if j < n_roots and roots[j] == byte_parents[k]:
                        _walk_below(byte_children[k], first, e, node_info, node_skip, node_tok, node_tok_start,
                                    node_tok_end, tok_ids, transitions, accepting, out_bits, stack, b_nodes, b_entries, n_b,
                                    found)
            else:  # few roots: look each up among the parents of nodes with this byte
                segment = byte_parents[lo:hi]
                for r_i in range(n_roots):
                    j = np.searchsorted(segment, roots[r_i])
                    if j < hi - lo and segment[j] == roots[r_i]:
                        _walk_below(byte_children[lo + j], first, e, node_info, node_skip, node_tok,
                                    node_tok_start, node_tok_end, tok_ids, transitions, accepting, out_bits, stack,
                                    b_nodes, b_entries, n_b, found)
    return b_nodes[:n_b[0]].copy(), b_entries[:n_b[0]].copy()


@njit(cache=True, nogil=True, inline="always")
def _walk_below(child, state, e, node_info, node_skip, node_tok, node_tok_start, node_tok_end, tok_ids,
                transitions, accepting, out_bits, stack, b_nodes, b_entries, n_b, found):
    """The node ``child`` reached in DFA state ``state``, then its subtree (as walk_subtries_groups)."""
    t = node_tok[child]
    if t >= 0:
        out_bits[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    elif t == -2:
        for k in range(node_tok_start[child], node_tok_end[child]):
            tok = tok_ids[k]
            out_bits[tok >> 5] |= np.uint32(1) << np.uint32(tok & 31)
    n_found = n_b[0]
    if accepting[state] and node_skip[child] > child + 1:
        b_nodes[n_found] = child
        b_entries[n_found] = e
        n_found += 1
    base = node_info[child] >> 8
    stack[0] = state
    i = child + 1
    end = node_skip[child]
    n_tok = 0
    while i < end:
        info = node_info[i]
        d = (info >> 8) - base
        ns = transitions[stack[d - 1], info & 255]
        if ns < 0:
            i = node_skip[i]
            continue
        stack[d] = ns
        found[n_tok] = i
        n_tok += node_tok[i] != -1
        b_nodes[n_found] = i
        b_entries[n_found] = e
        n_found += accepting[ns] & (node_skip[i] > i + 1)
        i += 1
    n_b[0] = n_found
    set_found_token_bits(found, n_tok, node_tok, node_tok_start, node_tok_end, tok_ids, out_bits)
