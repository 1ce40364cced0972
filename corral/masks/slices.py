"""Token slices: per-vocabulary token sets a trie walk can take whole (see docs/engine.md).

The slice here is the set of tokens whose bytes are a non-empty string of the characters JSON allows
raw inside a string (no quote, no backslash, no control character): ~85% of Llama-3's tokens. From a
DFA state q where *every* such string keeps the DFA alive and never accepting (decided on the product
of the DFA with the slice's own automaton, never by looking at tokens), every slice token is allowed
and none ends a lexeme. The walk then ORs the slice's precomputed bitmask and skips each trie subtree
made of slice tokens only, visiting the few nodes that lead to other tokens (quotes, escapes,
partial UTF-8). Those states are the slow, nearly full masks: the inside of a string value, of a key
name in an object that allows undeclared keys, of a string with a pattern like ``^https?://.*``.
The idea is llguidance's "slicer", done here as a product of automata plus a skip flag per node.

``slice_safe`` is numba; ``slice_safe_reference`` is the plain-Python oracle the tests compare with.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit

from corral.automata.dfa import regex_to_dfa
from corral.grammars import regex_ast as rx

__all__ = ["TokenSlice", "string_slice", "slice_safe", "slice_safe_reference", "slice_safe_length",
           "slice_safe_length_reference"]

# code points JSON writes raw inside a string
JSON_RAW_CHARS = rx.negate(rx.chars([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]))
_LOCK = threading.Lock()


class TokenSlice:
    """Tokens (of one vocabulary) whose bytes are in ``C+`` for a code point class C.

    ``bits``: uint32 bitmask of those tokens; ``node_full[i]``: every token in trie node i's subtree
    is one of them; ``c_transitions``/``c_accepting``: the byte DFA of ``C*``."""

    def __init__(self, vocab, char_class: rx.Regex):
        trie = vocab.trie
        dfa = regex_to_dfa(rx.star(char_class))
        self.c_transitions = np.ascontiguousarray(dfa.transitions, dtype=np.int32)
        self.c_accepting = np.ascontiguousarray(dfa.accepting, dtype=np.bool_)
        state = _node_states(trie.node_byte, trie.node_depth, self.c_transitions)
        node_in = (state >= 0) & self.c_accepting[np.maximum(state, 0)]
        node_in[0] = False
        in_slice = np.zeros(vocab.size, dtype=np.bool_)
        in_slice[trie.tok_ids] = _tokens_at_flagged_nodes(trie, node_in)
        self.bits = np.zeros((vocab.size + 31) // 32, dtype=np.uint32)
        ids = np.flatnonzero(in_slice)
        np.bitwise_or.at(self.bits, ids >> 5, (np.uint32(1) << (ids & 31).astype(np.uint32)))
        # a subtree's tokens are one run of tok_ids: count the others by prefix sums
        bad = np.concatenate([[0], np.cumsum(~in_slice[trie.tok_ids])]).astype(np.int64)
        first = trie.node_tok_start.astype(np.int64)
        after = np.append(first, len(trie.tok_ids))[trie.node_skip.astype(np.int64)]
        self.node_full = np.ascontiguousarray(bad[after] - bad[first] == 0)
        self.node_full[0] = False  # never skip the whole trie from the root
        self.n_tokens = int(in_slice.sum())
        self.max_len = int(trie.node_depth[node_in].max()) if node_in.any() else 0
        # skip_len[i]: the longest token below node i when all of them are slice tokens, else "never":
        # a walk that knows every slice string of up to L bytes is allowed skips the nodes with
        # skip_len <= L (L < max_len inside a string whose remaining length is bounded)
        longest = _longest_below(trie.node_depth, trie.node_skip)
        self.skip_len = np.ascontiguousarray(np.where(self.node_full, longest, NEVER_SKIP).astype(np.int32))
        # row L: the slice tokens of at most L bytes (all rows at once, ~2 MB on Llama-3: computing
        # a row on demand took ~2 ms inside the first mask at each new remaining length)
        token_len = np.zeros(vocab.size, dtype=np.int64)
        counts = (trie.node_tok_end - trie.node_tok_start).astype(np.int64)
        token_len[trie.tok_ids] = np.repeat(trie.node_depth.astype(np.int64), counts)
        self._bits_upto = np.zeros((self.max_len + 1, len(self.bits)), dtype=np.uint32)
        np.bitwise_or.at(self._bits_upto, (token_len[ids], ids >> 5), np.uint32(1) << (ids & 31).astype(np.uint32))
        np.bitwise_or.accumulate(self._bits_upto, axis=0, out=self._bits_upto)

    def safe(self, transitions: np.ndarray, accepting: np.ndarray, state: int) -> bool:
        return self.safe_length(transitions, accepting, state) >= self.max_len

    def safe_length(self, transitions: np.ndarray, accepting: np.ndarray, state: int) -> int:
        """The largest L <= max_len such that every slice string of 1..L bytes, read from ``state``,
        keeps the DFA alive and passes no accepting state (0: not even one byte)."""
        return int(slice_safe_length(transitions, accepting, np.int32(state), self.c_transitions,
                                     np.int32(self.max_len)))

    def bits_upto(self, length: int) -> np.ndarray:
        """Bitmask of the slice tokens of at most ``length`` bytes (a shared row: do not mutate)."""
        return self._bits_upto[max(0, min(int(length), self.max_len))]


def _tokens_at_flagged_nodes(trie, node_flag: np.ndarray) -> np.ndarray:
    """bool per tok_ids entry: the token ends at a flagged node."""
    counts = (trie.node_tok_end - trie.node_tok_start).astype(np.int64)
    per_entry = np.zeros(len(trie.tok_ids), dtype=np.bool_)
    starts = trie.node_tok_start.astype(np.int64)
    flagged = np.flatnonzero(node_flag & (counts > 0))
    for_entries = np.repeat(starts[flagged], counts[flagged]) + (
        np.arange(int(counts[flagged].sum())) - np.repeat(np.cumsum(counts[flagged]) - counts[flagged], counts[flagged]))
    per_entry[for_entries] = True
    return per_entry


@njit(cache=True, nogil=True)
def _node_states(node_byte, node_depth, transitions):  # pragma: no cover - numba
    """DFA state (-1: dead) after each trie node's bytes, from state 0, in one pre-order pass."""
    n = node_byte.shape[0]
    out = np.full(n, -1, np.int32)
    out[0] = 0
    max_depth = 0
    for i in range(n):
        if node_depth[i] > max_depth:
            max_depth = node_depth[i]
    state_at = np.full(max_depth + 1, -1, np.int32)
    state_at[0] = 0
    for i in range(1, n):
        parent = state_at[node_depth[i] - 1]
        st = transitions[parent, node_byte[i]] if parent >= 0 else -1
        state_at[node_depth[i]] = st
        out[i] = st
    return out


NEVER_SKIP = np.iinfo(np.int32).max


@njit(cache=True, nogil=True)
def _longest_below(node_depth, node_skip):  # pragma: no cover - numba
    """Per trie node, the depth of the deepest node of its subtree (its longest token's length)."""
    n = node_depth.shape[0]
    out = node_depth.astype(np.int32)
    for i in range(n - 1, -1, -1):
        j = i + 1
        while j < node_skip[i]:
            if out[j] > out[i]:
                out[i] = out[j]
            j = node_skip[j]
    return out


def string_slice(vocab) -> TokenSlice:
    """The JSON-string-characters slice of ``vocab`` (built once, ~0.3 s on Llama-3; cached on it)."""
    got = vocab.cache.get("corral.string_slice")
    if got is None:
        with _LOCK:
            got = vocab.cache.get("corral.string_slice")
            if got is None:
                got = vocab.cache["corral.string_slice"] = TokenSlice(vocab, JSON_RAW_CHARS)
    return got


@njit(cache=True, nogil=True)
def slice_safe(transitions, accepting, state, c_transitions, c_accepting, max_len):  # pragma: no cover - numba
    """True when every string of the slice DFA's language of 1..``max_len`` bytes (the longest
    slice token), read from ``state``, keeps the DFA alive and passes no accepting state. Breadth
    first over (DFA state, slice state) pairs: each pair is expanded once, at its smallest depth,
    which leaves it the most bytes to fail in (so a length-bounded string qualifies while its
    remaining length exceeds the longest token)."""
    n_q = transitions.shape[0]
    n_c = c_transitions.shape[0]
    seen = np.zeros(n_q * n_c, np.bool_)
    queue = np.empty(n_q * n_c, np.int64)
    depth = np.empty(n_q * n_c, np.int32)
    head = 0
    tail = 1
    queue[0] = state * n_c
    depth[0] = 0
    seen[state * n_c] = True
    while head < tail:
        pair = queue[head]
        d = depth[head]
        head += 1
        if d >= max_len:
            continue
        q = pair // n_c
        c = pair % n_c
        for b in range(256):
            c2 = c_transitions[c, b]
            if c2 < 0:
                continue
            q2 = transitions[q, b]
            if q2 < 0 or accepting[q2]:
                return False
            nxt = q2 * n_c + c2
            if not seen[nxt]:
                seen[nxt] = True
                queue[tail] = nxt
                depth[tail] = d + 1
                tail += 1
    return True


@njit(cache=True, nogil=True)
def slice_safe_length(transitions, accepting, state, c_transitions, max_len):  # pragma: no cover - numba
    """The largest L <= ``max_len`` such that every string of the slice DFA's language of 1..L
    bytes, read from ``state``, keeps the DFA alive and passes no accepting state. Breadth first
    over (DFA state, slice state) pairs as in ``slice_safe``: the first failing byte is found from a
    pair at the smallest depth d where one exists, so L = d."""
    n_q = transitions.shape[0]
    n_c = c_transitions.shape[0]
    seen = np.zeros(n_q * n_c, np.bool_)
    queue = np.empty(n_q * n_c, np.int64)
    depth = np.empty(n_q * n_c, np.int32)
    head = 0
    tail = 1
    queue[0] = state * n_c
    depth[0] = 0
    seen[state * n_c] = True
    while head < tail:
        pair = queue[head]
        d = depth[head]
        head += 1
        if d >= max_len:
            continue
        q = pair // n_c
        c = pair % n_c
        for b in range(256):
            c2 = c_transitions[c, b]
            if c2 < 0:
                continue
            q2 = transitions[q, b]
            if q2 < 0 or accepting[q2]:
                return d
            nxt = q2 * n_c + c2
            if not seen[nxt]:
                seen[nxt] = True
                queue[tail] = nxt
                depth[tail] = d + 1
                tail += 1
    return max_len


def slice_safe_length_reference(transitions, accepting, state, c_transitions, max_len) -> int:
    """Plain-Python oracle of ``slice_safe_length``: byte strings enumerated by length as sets of
    (DFA state, slice state) pairs; the length before the first one that dies or accepts."""
    frontier = {(int(state), 0)}
    for length in range(int(max_len)):
        nxt = set()
        for q, c in frontier:
            for b in range(256):
                c2 = int(c_transitions[c][b])
                if c2 < 0:
                    continue
                q2 = int(transitions[q][b])
                if q2 < 0 or accepting[q2]:
                    return length
                nxt.add((q2, c2))
        if not nxt:
            break
        frontier = nxt
    return int(max_len)


def slice_safe_reference(transitions, accepting, state, c_transitions, c_accepting, max_len) -> bool:
    """Plain-Python oracle of ``slice_safe``: every byte string of 1..max_len bytes in the slice DFA's
    language, enumerated by depth as sets of (DFA state, slice state) pairs."""
    frontier = {(int(state), 0)}
    for _ in range(int(max_len)):
        nxt = set()
        for q, c in frontier:
            for b in range(256):
                c2 = int(c_transitions[c][b])
                if c2 < 0:
                    continue
                q2 = int(transitions[q][b])
                if q2 < 0 or accepting[q2]:
                    return False
                nxt.add((q2, c2))
        if not nxt:
            break
        frontier = nxt
    return True
