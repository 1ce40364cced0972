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
import weakref

import numpy as np
from numba import njit

from corral.automata.dfa import regex_to_dfa
from corral.grammars import regex_ast as rx

__all__ = ["TokenSlice", "string_slice", "ClassSlices", "class_slices", "repeatable_ascii_bytes", "slice_safe",
           "slice_safe_reference", "slice_safe_length", "slice_safe_length_chars", "slice_safe_length_exact_reference", "slice_safe_length_reference"]

# code points JSON writes raw inside a string
JSON_RAW_CHARS = rx.negate(rx.chars([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]))
_LOCK = threading.Lock()


class TokenSlice:
    """Tokens (of one vocabulary) whose bytes are in ``C+`` (or `` ?C+``) for a code point class C.

    ``bits``: uint32 bitmask of those tokens; ``node_full[i]``: every token in trie node i's subtree
    is one of them; ``skip_len[i]``: then its longest token (else ``NEVER_SKIP``);
    ``c_transitions``/``c_accepting``: the byte DFA of the slice language.

    With ``leading_space`` the tokens form two kinds, those spelled with the leading space and the
    others: in a run like `( [a-z]{1,10}){2,12}` the two reach different lengths, and a walk takes
    each kind up to its own (``safe_lengths``, ``bits_for``, ``skip_upto``)."""

    def __init__(self, vocab, char_class: rx.Regex, leading_space: bool = False, by_chars: bool = False):
        trie = vocab.trie
        # (BPE vocabularies spell most words with their leading space)
        language = rx.star(char_class)
        dfa = regex_to_dfa(rx.seq(rx.repeat(rx.literal(" "), 0, 1), language) if leading_space else language)
        self.c_transitions = np.ascontiguousarray(dfa.transitions, dtype=np.int32)
        self.c_accepting = np.ascontiguousarray(dfa.accepting, dtype=np.bool_)
        self.leading_space = leading_space
        self.n_kinds = 2 if leading_space else 1
        # lengths in bytes, or in characters (``by_chars``): a string's maxLength counts code points,
        # and inside one the slice's tokens of up to the remaining count are exactly the allowed ones
        # whatever their bytes (in bytes, multi-byte characters left the bound inexact)
        self.by_chars = by_chars
        node_len = _char_depth_cached(vocab) if by_chars else trie.node_depth
        longest = _longest_chars_below_cached(vocab) if by_chars else _longest_below_cached(vocab)
        tables = _slice_tables(*trie.arrays(), longest, node_len, self.c_transitions, self.c_accepting,
                               np.int32(0x20 if leading_space else -1))
        self.skip_len, self._ids, self._kind_start, self.count_upto = tables
        self.node_full = self.skip_len != NEVER_SKIP
        self.max_len = self.count_upto.shape[1] - 1
        self.n_tokens = int(self.count_upto[:, -1].sum())
        self._n_words = (vocab.size + 31) // 32
        self._checkpoints: dict[tuple[int, int], np.ndarray] = {}
        self._residual = None
        self._byte_reps: dict[int, tuple[weakref.ref, np.ndarray | None]] = {}
        self.bits = _bits_of(self._ids, self._kind_start, self._kind_start[1:], self._n_words)  # every token
        self.bits.flags.writeable = False

    def safe(self, transitions: np.ndarray, accepting: np.ndarray, state: int) -> bool:
        return self.safe_length(transitions, accepting, state) >= self.max_len

    def safe_length(self, transitions: np.ndarray, accepting: np.ndarray, state: int) -> int:
        """The largest L <= max_len such that every slice string of 1..L bytes, read from ``state``,
        keeps the DFA alive and passes no accepting state (0: not even one byte)."""
        return min(length for length, _ in self.safe_lengths(transitions, accepting, state))

    def safe_lengths(self, transitions: np.ndarray, accepting: np.ndarray, state: int,
                     want_accepting: bool = False) -> list[tuple[int, bool]]:
        """Per kind, (L, exact): L as in ``safe_length`` for the slice strings of that kind; exact
        when every one of its strings of L+1 bytes kills the DFA: its tokens of at most L bytes are
        then all the allowed ones, and a walk skips each of its subtrees whatever its longest token
        (a counted `[a-z]{1,10}` run). ``want_accepting``: L for strings that all end accepting."""
        kinds = ((-1, 0x20), (0x20, -1)) if self.leading_space else ((-1, -1),)
        out = []
        for only, never in kinds:  # kind 0: not led by a space; kind 1: led by one
            if self.by_chars:
                length, exact = slice_safe_length_chars(transitions, accepting, np.int32(state), self.c_transitions,
                                                        self.c_accepting, np.int32(self.max_len), np.int32(only),
                                                        np.int32(never), self.byte_representatives(transitions),
                                                        want_accepting)
                if length < 0:  # (a frontier too wide to follow) strings of L bytes have at most L characters
                    length = slice_safe_length(transitions, accepting, np.int32(state), self.c_transitions,
                                               np.int32(4 * self.max_len), np.int32(only), np.int32(never),
                                               want_accepting)[0] // 4
                    exact = length >= self.max_len
            else:
                length, exact = slice_safe_length(transitions, accepting, np.int32(state), self.c_transitions,
                                                  np.int32(self.max_len), np.int32(only), np.int32(never),
                                                  want_accepting)
            out.append((int(length), bool(exact)))
        return out

    def byte_representatives(self, transitions: np.ndarray) -> np.ndarray:
        """int32[K]: one byte of each class of bytes that ``transitions`` and the slice's own DFA
        map alike from every state, plus the space (kinds tell it apart), ascending
        (``_byte_classes``). Worth it for a table asked about again (each position of a counted
        string is a new state of the same DFA): the first ask gets all 256 bytes. Cached per
        transition table (by a weak reference, which also tells a reused id apart: a table is
        not kept alive by this cache)."""
        hit = self._byte_reps.get(id(transitions))
        if hit is not None and hit[0]() is transitions:
            if hit[1] is not None:
                return hit[1]
            reps = _byte_classes(transitions, self.c_transitions)
        else:
            reps = None
        with _LOCK:
            self._byte_reps[id(transitions)] = (weakref.ref(transitions), reps)
            if len(self._byte_reps) > BYTE_REPS_CACHE_SIZE:
                self._byte_reps.pop(next(iter(self._byte_reps)))
        return _ALL_BYTES if reps is None else reps

    def bits_upto(self, length: int) -> np.ndarray:
        """Bitmask (a new uint32 array) of the slice tokens of at most ``length`` bytes."""
        return self.bits_for([length] * self.n_kinds)

    def bits_for(self, lengths, out: np.ndarray | None = None) -> np.ndarray:
        """Bitmask of each kind's tokens of at most ``lengths[kind]`` bytes: a prefix of each
        kind's tokens sorted by length, set in ~20-60 us on Llama-3 (all rows precomputed had
        taken 2 MB and ~5 ms per slice; a row per call with numpy ~2 ms). Written into ``out`` (a
        zeroed uint32 row) when given, else into a new array."""
        if hasattr(self, "bits") and all(n >= self.max_len for n in lengths):
            if out is None:
                return self.bits.copy()
            np.copyto(out, self.bits)
            return out
        # from the kind's bitmask at the largest checkpoint length below (built on first use), then
        # the few tokens longer than it: scattering all of the string slice's ~100k tokens had cost
        # ~120 us a first-visit mask inside a length-bounded string
        starts = np.empty(len(lengths), dtype=np.int64)
        ends = np.empty(len(lengths), dtype=np.int64)
        for k, n in enumerate(lengths):
            n = max(0, min(int(n), self.max_len))
            c = max((c for c in BITS_CHECKPOINTS if c <= n), default=0)
            if c:
                base = self._checkpoint_bits(k, c)
                out = base.copy() if out is None else np.bitwise_or(out, base, out=out)
            starts[k] = self._kind_start[k] + self.count_upto[k, c]
            ends[k] = self._kind_start[k] + self.count_upto[k, n]
        if out is None:
            out = np.zeros(self._n_words, np.uint32)
        _or_bits_of(self._ids, starts, ends, out)
        return out

    def prepare_checkpoints(self) -> None:
        """Build every kind's checkpoint bitmasks now (~0.1 ms each on Llama-3) rather than in the
        first masks inside bounded strings."""
        for kind in range(self.n_kinds):
            for length in BITS_CHECKPOINTS:
                if length <= self.max_len:
                    self._checkpoint_bits(kind, length)

    def _checkpoint_bits(self, kind: int, length: int) -> np.ndarray:
        """Read-only bitmask of the kind's tokens of at most ``length`` bytes (cached)."""
        got = self._checkpoints.get((kind, length))
        if got is None:
            ends = np.array([self._kind_start[kind] + self.count_upto[kind, length]], dtype=np.int64)
            got = _bits_of(self._ids, self._kind_start[kind:kind + 1], ends, self._n_words)
            got.flags.writeable = False
            self._checkpoints[(kind, length)] = got
        return got

    def residual(self, trie, packed_info: np.ndarray, packed_tok: np.ndarray) -> "tuple | None":
        """The trie without the slice's own subtrees (nodes whose every token is a slice token),
        for ``trie_walk.walk_trie_residual``: (byte|depth words with two flags, whether the node
        holds a token and whether the trie goes on below it; skip pointers; trie node of each).
        Those nodes' ancestors are never slice-only, so what is left is a trie in the same
        pre-order. Built from the trie's packed arrays (``trie_walk.packed_walk_arrays``) on first
        use, in the mask that built the slice as a rule (class slices are built for counted runs,
        each position of which is a new state): one linear pass, ~0.5-1 ms and ~2.3 MB for a class
        that leaves most nodes (` ?[a-z]+`: 196k of Llama-3's 275k); the string slice leaves 12k.
        None for a vocabulary with a token of 65,536 bytes or more (walk past the subtrees instead)."""
        got = self._residual
        if got is None:
            if int(trie.node_depth.max()) >= RESIDUAL_MAX_DEPTH:  # (the flags share the depth's word)
                return None
            got = self._residual = _residual_trie(self.node_full, trie.node_skip, packed_info, packed_tok)
        return got

    def decides_every_subtree(self, upto: np.ndarray) -> bool:
        """Whether a walk with ``skip_upto(...) == upto`` skips every slice-only subtree (then
        ``residual`` walks the same)."""
        return int(upto.min()) >= self.max_len


    def covered(self, lengths) -> int:
        """Tokens in ``bits_for(lengths)``."""
        return int(sum(self.count_upto[k, max(0, min(int(n), self.max_len))] for k, n in enumerate(lengths)))

    def skip_upto(self, lengths_exact) -> np.ndarray:
        """int32[256] by a token's first byte: the walk skips all-slice subtrees whose longest token
        has at most that many bytes (all of them for an exact kind)."""
        n0, exact0 = lengths_exact[0]
        out = np.full(256, self.max_len if exact0 else n0, dtype=np.int32)
        if self.leading_space:
            n1, exact1 = lengths_exact[1]
            out[0x20] = self.max_len if exact1 else n1
        return out


NEVER_SKIP = np.iinfo(np.int32).max
BITS_CHECKPOINTS = (4, 8, 16, 32, 64)  # token lengths whose slice bitmask is kept per kind
BYTE_REPS_CACHE_SIZE = 512  # transition tables whose byte classes a slice keeps
EXACT_FRONTIER = 16  # pairs per level past which slice_safe_length gives up on exactness


@njit(cache=True, nogil=True)
def _slice_tables(node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids, longest, node_len,
                  c_transitions, c_accepting, kind1_first_byte):  # pragma: no cover - numba
    """One pre-order pass: (skip_len per node, the slice's token ids sorted by (kind, length), each
    kind's offset into them, count_upto[kind, L] = its tokens of at most L bytes, or of length
    ``node_len`` in general, ``longest`` being its subtree maximum). A token is in the
    slice when its bytes end in an accepting state of the slice DFA; it is of kind 1 when its first
    byte is ``kind1_first_byte`` (-1: one kind). A node's subtree is all slice tokens when it holds no
    other token (its tokens are one run of ``tok_ids``: prefix counts of the others)."""
    n = node_byte.shape[0]
    n_entries = tok_ids.shape[0]
    max_depth = 0
    for i in range(n):
        if node_depth[i] > max_depth:
            max_depth = node_depth[i]
    n_kinds = 2 if kind1_first_byte >= 0 else 1
    state_at = np.full(max_depth + 1, -1, np.int32)
    state_at[0] = 0
    entry_kind = np.full(n_entries, -1, np.int8)
    per_length = np.zeros((n_kinds, max_depth + 1), np.int64)
    visited = np.empty(n, np.int32)  # the nodes whose bytes stay in the slice language, in pre-order
    n_visited = 0
    kind = 0
    i = 1
    while i < n:  # pruned at the first byte that leaves the language: no token below is a slice token
        d = node_depth[i]
        if d == 1:
            kind = 1 if node_byte[i] == kind1_first_byte else 0
        st = c_transitions[state_at[d - 1], node_byte[i]]
        if st < 0:
            i = node_skip[i]
            continue
        state_at[d] = st
        visited[n_visited] = i
        n_visited += 1
        if c_accepting[st]:
            for k in range(node_tok_start[i], node_tok_end[i]):
                entry_kind[k] = kind
                per_length[kind, node_len[i]] += 1
        i += 1
    others_before = np.zeros(n_entries + 1, np.int64)
    for k in range(n_entries):
        others_before[k + 1] = others_before[k] + (1 if entry_kind[k] < 0 else 0)
    skip_len = np.full(n, NEVER_SKIP, np.int32)
    for v in range(n_visited):  # (a node off the language holds only other tokens)
        i = visited[v]
        after = node_tok_start[node_skip[i]] if node_skip[i] < n else n_entries
        if others_before[after] - others_before[node_tok_start[i]] == 0:
            skip_len[i] = longest[i]
    max_len = 0
    for k in range(n_kinds):
        for d in range(max_depth + 1):
            if per_length[k, d] > 0 and d > max_len:
                max_len = d
    count_upto = np.zeros((n_kinds, max_len + 1), np.int64)
    for k in range(n_kinds):
        for d in range(1, max_len + 1):
            count_upto[k, d] = count_upto[k, d - 1] + per_length[k, d]
    kind_start = np.zeros(n_kinds + 1, np.int64)
    for k in range(n_kinds):
        kind_start[k + 1] = kind_start[k] + count_upto[k, max_len]
    # counting sort of the slice's tokens by (kind, length)
    fill = np.zeros((n_kinds, max_len + 1), np.int64)
    for k in range(n_kinds):
        for d in range(1, max_len + 1):
            fill[k, d] = kind_start[k] + count_upto[k, d - 1]
    ids = np.empty(kind_start[n_kinds], np.int32)
    for v in range(n_visited):
        i = visited[v]
        for k in range(node_tok_start[i], node_tok_end[i]):
            kd = entry_kind[k]
            if kd >= 0:
                d = node_len[i]
                ids[fill[kd, d]] = tok_ids[k]
                fill[kd, d] += 1
    return skip_len, ids, kind_start, count_upto


RESIDUAL_HAS_TOKEN = 1 << 24  # flags in a residual node's byte|depth<<8 word
RESIDUAL_HAS_CHILDREN = 1 << 25
RESIDUAL_MAX_DEPTH = 1 << 16  # token bytes below the flags


_ALL_BYTES = np.arange(256, dtype=np.int32)


@njit(cache=True, nogil=True)
def _byte_classes(transitions, c_transitions):  # pragma: no cover - numba
    """``TokenSlice.byte_representatives``: bytes grouped by a hash of their columns in both
    tables, each grouping then checked column against column (all 256 bytes on a collision);
    ~20-60 us for a few hundred states, read row by row."""
    h = np.zeros(256, np.uint64)
    for table in (transitions, c_transitions):
        for q in range(table.shape[0]):
            for b in range(256):
                h[b] = h[b] * np.uint64(1000003) + np.uint64(table[q, b] + 2)
    order = np.argsort(h)
    rep_of = np.empty(256, np.int32)
    reps = np.empty(257, np.int32)
    n = 0
    for k in range(256):
        b = order[k]
        if k == 0 or h[b] != h[order[k - 1]]:
            reps[n] = b
            n += 1
        rep_of[b] = reps[n - 1]
    for table in (transitions, c_transitions):
        for q in range(table.shape[0]):
            for b in range(256):
                if table[q, b] != table[q, rep_of[b]]:
                    return np.arange(256).astype(np.int32)
    space = False
    for k in range(n):
        space = space or reps[k] == 0x20
    if not space:
        reps[n] = 0x20
        n += 1
    return np.sort(reps[:n])

@njit(cache=True, nogil=True)
def _residual_trie(node_full, node_skip, info, tok):  # pragma: no cover - numba
    """``TokenSlice.residual``'s arrays: the nodes that are not slice-only (and the root), in
    pre-order: (byte | depth << 8 | RESIDUAL_HAS_TOKEN | RESIDUAL_HAS_CHILDREN, skip pointer among
    them, trie node). Skip pointers are renumbered through a prefix count (a binary search per
    node had taken ~10 ms for a class slice's ~200k nodes; ~0.5 ms warm now)."""
    n = node_full.shape[0]
    before = np.empty(n + 1, np.int32)  # kept nodes before each trie node
    count = 0
    for i in range(n):
        before[i] = count
        count += (not node_full[i]) or i == 0
    before[n] = count
    r_info = np.empty(count, np.int32)
    r_skip = np.empty(count, np.int32)
    r_node = np.empty(count, np.int32)
    for i in range(n):
        if node_full[i] and i != 0:
            continue
        k = before[i]
        r_info[k] = (info[i] | (RESIDUAL_HAS_TOKEN if tok[i] != -1 else 0)
                     | (RESIDUAL_HAS_CHILDREN if node_skip[i] > i + 1 else 0))
        r_skip[k] = before[node_skip[i]]
        r_node[k] = i
    return r_info, r_skip, r_node


@njit(cache=True, nogil=True)
def _bits_of(ids, starts, ends, n_words):  # pragma: no cover - numba
    out = np.zeros(n_words, np.uint32)
    for k in range(ends.shape[0]):
        for j in range(starts[k], ends[k]):
            t = ids[j]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    return out


@njit(cache=True, nogil=True)
def _or_bits_of(ids, starts, ends, out):  # pragma: no cover - numba
    for k in range(ends.shape[0]):
        for j in range(starts[k], ends[k]):
            t = ids[j]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def _class_token_counts(node_byte, node_depth, node_skip, node_tok_start, node_tok_end,
                        byte_class):  # pragma: no cover - numba
    """(tokens in `C+`, tokens in ` C+`): a walk pruned at the first byte outside the class."""
    n = node_byte.shape[0]
    led_by_space = False
    n_plain = 0
    n_spaced = 0
    i = 1
    while i < n:
        d = node_depth[i]
        b = node_byte[i]
        if d == 1:
            led_by_space = b == 0x20 and not byte_class[0x20]
            if not (byte_class[b] or led_by_space):
                i = node_skip[i]
                continue
        elif not byte_class[b]:
            i = node_skip[i]
            continue
        if not (led_by_space and d == 1):
            if led_by_space:
                n_spaced += node_tok_end[i] - node_tok_start[i]
            else:
                n_plain += node_tok_end[i] - node_tok_start[i]
        i += 1
    return n_plain, n_spaced


@njit(cache=True, nogil=True)
def _loops_on(transitions, state, byte_class):  # pragma: no cover - numba
    """Every byte of the class leads from ``state`` back to it (`[^']*`, not a counted run)."""
    for b in range(256):
        if byte_class[b] and transitions[state, b] != state:
            return False
    return True


@njit(cache=True, nogil=True)
def repeatable_ascii_bytes(transitions, state):  # pragma: no cover - numba
    """bool[256]: the printable ASCII bytes b that ``state`` can read twice in a row (b, then b
    again) without dying: the class a counted or starred run repeats, without the one-off bytes
    that end the run (an e-mail's `@`, a sentence's space)."""
    out = np.zeros(256, np.bool_)
    for b in range(0x20, 0x7F):
        after = transitions[state, b]
        if after >= 0 and transitions[after, b] >= 0:
            out[b] = True
    return out


def _char_depth_cached(vocab) -> np.ndarray:
    """Per trie node, the characters its bytes spell: bytes that do not continue a UTF-8 sequence."""
    got = vocab.cache.get("corral.char_depth")
    if got is None:
        got = vocab.cache["corral.char_depth"] = _char_depth(vocab.trie.node_byte, vocab.trie.node_depth)
    return got


def _longest_chars_below_cached(vocab) -> np.ndarray:
    got = vocab.cache.get("corral.longest_chars_below")
    if got is None:
        got = vocab.cache["corral.longest_chars_below"] = _longest_below(_char_depth_cached(vocab),
                                                                         vocab.trie.node_skip)
    return got


@njit(cache=True, nogil=True)
def _char_depth(node_byte, node_depth):  # pragma: no cover - numba
    n = node_byte.shape[0]
    out = np.zeros(n, np.int32)
    at = np.zeros(int(node_depth.max()) + 1, np.int32)  # characters up to the node of each depth on the path
    for i in range(1, n):
        d = node_depth[i]
        at[d] = at[d - 1] + (1 if (node_byte[i] & 0xC0) != 0x80 else 0)
        out[i] = at[d]
    return out


def _longest_below_cached(vocab) -> np.ndarray:
    got = vocab.cache.get("corral.longest_below")
    if got is None:
        got = vocab.cache["corral.longest_below"] = _longest_below(vocab.trie.node_depth, vocab.trie.node_skip)
    return got


@njit(cache=True, nogil=True)
def _longest_below(node_depth, node_skip):  # pragma: no cover - numba
    """Per trie node, the depth of the deepest node of its subtree (its longest token's length;
    with character depths, its most characters)."""
    n = node_depth.shape[0]
    out = node_depth.astype(np.int32)
    for i in range(n - 1, -1, -1):
        j = i + 1
        while j < node_skip[i]:
            if out[j] > out[i]:
                out[i] = out[j]
            j = node_skip[j]
    return out


def string_slice(vocab, by_chars: bool = False) -> TokenSlice:
    """The JSON-string-characters slice of ``vocab`` (built once, ~7 ms on Llama-3; cached on it),
    lengths in bytes or (``by_chars``, what masks use) in characters."""
    key = "corral.string_slice_chars" if by_chars else "corral.string_slice"
    got = vocab.cache.get(key)
    if got is None:
        with _LOCK:
            got = vocab.cache.get(key)
            if got is None:
                got = vocab.cache[key] = TokenSlice(vocab, JSON_RAW_CHARS, by_chars=by_chars)
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
def slice_safe_length(transitions, accepting, state, c_transitions, max_len, first_only,
                      first_never, want_accepting=False):  # pragma: no cover - numba
    """(L, exact): L is the largest length <= ``max_len`` such that every string of the slice DFA's
    language of 1..L bytes, read from ``state``, keeps the DFA alive and passes no accepting state
    (with ``want_accepting``: ends in an accepting state, every one of them: an identifier);
    ``exact``: every slice string of L+1 bytes kills the DFA (so no longer slice token is allowed
    either: the slice languages are prefix-closed), or L = max_len. Only the strings whose first
    byte is ``first_only`` (when >= 0) and not ``first_never`` count (one kind of a slice).

    L by breadth-first search over (DFA state, slice state) pairs, each expanded once at its
    smallest depth (the first failing byte is found from a pair at the smallest depth d where one
    exists, so L = d). Exactness needs the pairs reached by strings of exactly L bytes: level by
    level, given up (not exact) past ``EXACT_FRONTIER`` pairs a level, as in strings of multi-byte
    characters whose frontier spans many character counts (there a level search is quadratic)."""
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
    length = max_len
    while head < tail and length == max_len:
        pair = queue[head]
        d = depth[head]
        head += 1
        if d >= max_len:
            continue
        q = pair // n_c
        c = pair % n_c
        for b in range(256):
            c2 = c_transitions[c, b]
            if c2 < 0 or (d == 0 and ((first_only >= 0 and b != first_only) or b == first_never)):
                continue
            q2 = transitions[q, b]
            if q2 < 0 or accepting[q2] != want_accepting:
                length = d
                break
            nxt = q2 * n_c + c2
            if not seen[nxt]:
                seen[nxt] = True
                queue[tail] = nxt
                depth[tail] = d + 1
                tail += 1
    if length == max_len:
        return max_len, True
    # the frontier at exactly `length` bytes, then whether every byte from it kills the DFA
    frontier = np.empty(EXACT_FRONTIER, np.int64)
    nxt_front = np.empty(EXACT_FRONTIER, np.int64)
    frontier[0] = state * n_c
    n_front = 1
    for d in range(length + 1):
        n_next = 0
        for f in range(n_front):
            q = frontier[f] // n_c
            c = frontier[f] % n_c
            for b in range(256):
                c2 = c_transitions[c, b]
                if c2 < 0 or (d == 0 and ((first_only >= 0 and b != first_only) or b == first_never)):
                    continue
                q2 = transitions[q, b]
                if d == length:
                    if q2 >= 0:
                        return length, False
                    continue
                pair = q2 * n_c + c2
                known = False
                for j in range(n_next):
                    if nxt_front[j] == pair:
                        known = True
                        break
                if not known:
                    if n_next == EXACT_FRONTIER:
                        return length, False
                    nxt_front[n_next] = pair
                    n_next += 1
        frontier, nxt_front = nxt_front, frontier
        n_front = n_next
    return length, True


@njit(cache=True, nogil=True)
def slice_safe_length_chars(transitions, accepting, state, c_transitions, c_accepting, max_len, first_only,
                            first_never, byte_reps, want_accepting=False):  # pragma: no cover - numba
    """``slice_safe_length`` with lengths in characters: (L, exact), L the largest count <=
    ``max_len`` such that every slice string of 1..L characters, read from ``state``, keeps the DFA
    alive and passes no accepting state (``want_accepting``: ends each character accepting);
    ``exact``: no slice string of L+1 characters keeps it alive. The slice DFA's accepting states
    are its character boundaries. Level by level over the (DFA state, slice state) pairs reached by
    exactly k characters (a character's bytes followed through the pairs inside it, each once),
    ending at a level equal to the one before (a loop: L = max_len). (-1, False) where a level or
    the inside of a character holds more than ``EXACT_FRONTIER`` pairs. ``byte_reps``: one byte of
    each class of bytes both DFAs treat alike, and the space (``TokenSlice.byte_representatives``:
    ~15 for a string body, where each level was 256 bytes per pair)."""
    n_c = c_transitions.shape[0]
    front = np.empty(EXACT_FRONTIER, np.int64)
    nxt = np.empty(EXACT_FRONTIER, np.int64)
    inside = np.empty(4 * EXACT_FRONTIER, np.int64)  # pairs of the character being read, this level
    front[0] = state * n_c
    n_front = 1
    for k in range(max_len):
        n_next = 0
        failed = False
        alive = False  # some string of k+1 characters keeps the DFA alive
        n_inside = 0
        for f in range(n_front):
            inside[n_inside] = front[f]
            n_inside += 1
        j = 0
        while j < n_inside:
            pair = inside[j]
            opening = j < n_front  # the character's first byte (and the string's, at k == 0)
            j += 1
            q = pair // n_c
            c = pair % n_c
            for r in range(byte_reps.shape[0]):
                b = byte_reps[r]
                c2 = c_transitions[c, b]
                if c2 < 0 or (k == 0 and opening and ((first_only >= 0 and b != first_only) or b == first_never)):
                    continue
                q2 = transitions[q, b]
                if q2 < 0:
                    failed = True
                    continue
                p2 = q2 * n_c + c2
                if c_accepting[c2]:  # the character is complete
                    alive = True
                    if accepting[q2] != want_accepting:
                        failed = True
                        continue
                    known = False
                    for t in range(n_next):
                        if nxt[t] == p2:
                            known = True
                            break
                    if not known:
                        if n_next == EXACT_FRONTIER:
                            return -1, False
                        nxt[n_next] = p2
                        n_next += 1
                else:
                    if accepting[q2] and not want_accepting:
                        failed = True
                    known = False
                    for t in range(n_front, n_inside):
                        if inside[t] == p2:
                            known = True
                            break
                    if not known:
                        if n_inside == inside.shape[0]:
                            return -1, False
                        inside[n_inside] = p2
                        n_inside += 1
        if failed:
            return k, not alive
        # the same pairs as the level before: every longer string is safe too
        same = n_next == n_front
        if same:
            for t in range(n_next):
                known = False
                for u in range(n_front):
                    if front[u] == nxt[t]:
                        known = True
                        break
                if not known:
                    same = False
                    break
        if same or n_next == 0:
            return max_len, True
        front, nxt = nxt, front
        n_front = n_next
    return max_len, True


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


def slice_safe_length_exact_reference(transitions, accepting, state, c_transitions, max_len, first_only=-1,
                                      first_never=-1, want_accepting=False) -> tuple[int, bool]:
    """Plain-Python oracle of ``slice_safe_length``'s pair: byte strings of each length enumerated
    one by one (a small slice and short lengths only), no automaton product."""
    wanted, unwanted = ("accept", "live") if want_accepting else ("live", "accept")
    live = [(b"", int(state), 0)]  # (string, DFA state, slice state) of the slice strings of length d
    for length in range(int(max_len)):
        grown = []
        outcomes = []
        for text, q, c in live:
            for b in range(256):
                c2 = int(c_transitions[c][b])
                if c2 < 0 or (length == 0 and ((first_only >= 0 and b != first_only) or b == first_never)):
                    continue
                q2 = int(transitions[q][b])
                outcomes.append("dead" if q2 < 0 else "accept" if accepting[q2] else "live")
                if outcomes[-1] == wanted:
                    grown.append((text + bytes([b]), q2, c2))
        if "dead" in outcomes or unwanted in outcomes:
            return length, all(o == "dead" for o in outcomes)
        if not grown:
            return int(max_len), True
        live = grown
    return int(max_len), True


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


# -- class slices: the same idea for the character class a DFA state repeats ---------------------
# Inside `[a-z0-9._%+-]{1,20}` (an e-mail's local part), a word of `[a-z]{1,10}`, or a JSON string
# with `pattern: ^[a-z0-9-]+$`, the string slice does not apply (its class is wider than the
# state's), and every position is a new DFA state whose plain walk visits every token starting with
# the class: ~0.4 ms on Llama-3 each. A slice for the class the state repeats, built once per
# vocabulary, lets the walk skip those subtrees (0.4 ms -> 45 us on the e-mail's local part).

CLASS_SLICES_PER_VOCAB = 12  # ~1.5 MB each on Llama-3; least recently used dropped
MIN_CLASS_SLICE_TOKENS = 8192  # tokens in the class (with the leading space where taken): a walk ~40 us+
MAX_CLASS_RUN = 4  # bytes a class must be safe for before its slice is built (the walk needs 2)


class ClassSlices:
    """The class slices of one vocabulary, built on first use and cached (LRU)."""

    def __init__(self, vocab):
        self.vocab = vocab
        self._slices: "dict[tuple[bytes, bool], TokenSlice]" = {}
        self._counts: dict[bytes, tuple[int, int]] = {}  # per class: tokens in `C+`, in ` C+`
        self._automata: dict[tuple[bytes, bool], np.ndarray] = {}  # per class and leading space
        self._lock = threading.Lock()
        self._bounds = _leading_byte_token_counts(vocab.trie)

    def _class_tokens(self, byte_class: np.ndarray, key: bytes) -> tuple[int, int]:
        """(tokens in `C+`, tokens in ` C+`), or upper bounds of them where those are already
        below MIN_CLASS_SLICE_TOKENS: what every caller compares them with. The bounds (tokens by
        their first byte, and by the byte after a leading space) spare the pruned pass, ~0.3 ms on
        Llama-3 a class, for classes such as digits, hex digits or `[+-]`."""
        got = self._counts.get(key)
        if got is None:
            first, after_space = self._bounds
            plain = int(first[byte_class].sum())
            spaced = 0 if byte_class[0x20] else int(after_space[byte_class].sum())
            if plain + spaced < MIN_CLASS_SLICE_TOKENS:
                got = (plain, spaced)
            else:
                trie = self.vocab.trie
                got = _class_token_counts(trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start,
                                          trie.node_tok_end, byte_class)
            self._counts[key] = got
        return got

    def get(self, byte_class: np.ndarray, leading_space: bool, build: bool = True) -> "TokenSlice | None":
        key = (np.packbits(byte_class).tobytes(), leading_space)
        with self._lock:
            got = self._slices.pop(key, None)
            if got is None:
                if not build:
                    return None
                ranges = [(int(b), int(b)) for b in np.flatnonzero(byte_class)]
                got = TokenSlice(self.vocab, rx.chars(ranges), leading_space)
            self._slices[key] = got  # most recently used last
            while len(self._slices) > CLASS_SLICES_PER_VOCAB:
                self._slices.pop(next(iter(self._slices)))
        return got

    def prepare(self, byte_class: np.ndarray, packed_info: np.ndarray, packed_tok: np.ndarray) -> None:
        """Build the class's token counts, its (unspaced) slice, that slice's residual trie and
        checkpoint bitmasks now rather than inside some grammar's first masks (warm-up of common
        identifier classes)."""
        self._class_tokens(byte_class, np.packbits(byte_class).tobytes())
        sl = self.get(byte_class, False)
        sl.residual(self.vocab.trie, packed_info, packed_tok)
        sl.prepare_checkpoints()

    def _automaton(self, byte_class: np.ndarray, key: bytes, leading_space: bool) -> np.ndarray:
        got = self._automata.get((key, leading_space))
        if got is None:
            got = self._automata[(key, leading_space)] = _class_automaton(byte_class, leading_space)
        return got

    def choose(self, transitions: np.ndarray, accepting: np.ndarray, state: int, min_length: int,
               accepting_runs: bool = False):
        """(slice, its ``safe_lengths``) covering the most tokens from ``state``, or None where the
        class has few tokens or no slice is safe ``min_length`` bytes. With ``accepting_runs``,
        failing that, ``_choose_accepting``'s triple where it applies."""
        byte_class = repeatable_ascii_bytes(transitions, np.int32(state))
        spaced = not byte_class[0x20] and transitions[state, 0x20] >= 0
        # worth a slice where the class's tokens are many: a walk among few (`[0-9]{3}`, the hex
        # digits of `\uXXXX`) was cheap, and a ~4 ms build is not
        key = np.packbits(byte_class).tobytes()
        # a state that loops on its class (`[^']*`) is walked once whatever it costs: slices are
        # built for counted runs, whose every position is a new state, and used by both
        loops = _loops_on(transitions, np.int32(state), byte_class)
        if loops and (key, False) not in self._slices and (key, True) not in self._slices:
            return None
        n_plain, n_spaced = self._class_tokens(byte_class, key)
        if n_plain + (n_spaced if spaced else 0) < MIN_CLASS_SLICE_TOKENS:
            return None
        best, best_score = None, 0
        for leading_space in ((True, False) if spaced else (False,)):
            # safe lengths on the class's own two-state automaton first: slices are built only
            # where one is safe (an identifier ends a lexeme after each byte: none ever is)
            c_transitions = self._automaton(byte_class, key, leading_space)
            kinds = ((-1, 0x20), (0x20, -1)) if leading_space else ((-1, -1),)
            if all(slice_safe_length(transitions, accepting, np.int32(state), c_transitions, np.int32(MAX_CLASS_RUN),
                                     np.int32(only), np.int32(never))[0] < min_length for only, never in kinds):
                continue
            sl = self.get(byte_class, leading_space, build=not loops)
            if sl is None:
                continue
            lengths = sl.safe_lengths(transitions, accepting, state)
            if max(n for n, _ in lengths) < min_length:
                continue
            # tokens covered; a kind that is not exact decides fewer subtrees: half weight
            score = sum(sl.covered([n if k == j else 0 for j in range(sl.n_kinds)]) * (1.0 if exact else 0.5)
                        for k, (n, exact) in enumerate(lengths))
            if score > best_score:
                best, best_score = (sl, lengths), score
            if leading_space:
                # the spaced slice's tokens not led by a space are the plain slice, with the same
                # lengths: the plain one cannot score higher (~14 us a first visit saved)
                break
        if best is None and accepting_runs and n_plain >= MIN_CLASS_SLICE_TOKENS:
            return self._choose_accepting(transitions, accepting, state, min_length, byte_class, key, loops)
        return best

    def _choose_accepting(self, transitions, accepting, state, min_length, byte_class, key, loops):
        """(slice, its ``safe_lengths`` with ``want_accepting``, the class as bool[256]) where every
        run of the state's class ends a lexeme (an identifier: `[a-z_][a-z0-9_]{0,20}`), or None.
        There a walk that skips the slice's subtrees leaves out boundary nodes: those inside them,
        whose continuation starts with a byte of the class. The caller keeps them out only where
        the state after the lexeme cannot start with such a byte (after a name: `(`, `=`, `,`, a
        space), and walks without the slice otherwise."""
        if loops and (key, False) not in self._slices:
            return None  # (as in choose: a loop is walked once, slices are built for counted runs)
        if slice_safe_length(transitions, accepting, np.int32(state), self._automaton(byte_class, key, False),
                             np.int32(MAX_CLASS_RUN), np.int32(-1), np.int32(-1), True)[0] < min_length:
            return None
        sl = self.get(byte_class, False, build=not loops)
        if sl is None:
            return None
        lengths = sl.safe_lengths(transitions, accepting, state, want_accepting=True)
        if lengths[0][0] < min_length:
            return None
        return sl, lengths, byte_class


def _leading_byte_token_counts(trie) -> tuple[np.ndarray, np.ndarray]:
    """int64[256] twice: tokens by their first byte, and tokens led by a space by their second
    byte (a subtree's tokens are one slice of ``tok_ids``: its size comes from the token starts)."""
    n = trie.num_nodes
    starts = np.append(trie.node_tok_start.astype(np.int64), len(trie.tok_ids))
    first, after_space = np.zeros(256, dtype=np.int64), np.zeros(256, dtype=np.int64)
    top = np.flatnonzero(trie.node_depth == 1)
    first[trie.node_byte[top]] = starts[trie.node_skip[top]] - starts[top]
    space = top[trie.node_byte[top] == 0x20]
    if len(space):
        s = int(space[0])
        below = np.arange(s + 1, int(trie.node_skip[s]))
        below = below[trie.node_depth[below] == 2]
        after_space[trie.node_byte[below]] = starts[trie.node_skip[below]] - starts[below]
    return first, after_space


def _class_automaton(byte_class: np.ndarray, leading_space: bool) -> np.ndarray:
    """int32[S, 256] of `C*` (one state) or ` ?C*` (start, after the space, in the run): the
    language a class slice is built from, without building it."""
    table = np.full((3 if leading_space else 1, 256), -1, dtype=np.int32)
    run = 2 if leading_space else 0
    table[:, byte_class] = run
    if leading_space:
        table[0, 0x20] = 1
    return table


def class_slices(vocab) -> ClassSlices:
    got = vocab.cache.get("corral.class_slices")
    if got is None:
        with _LOCK:
            got = vocab.cache.get("corral.class_slices")
            if got is None:
                got = vocab.cache["corral.class_slices"] = ClassSlices(vocab)
    return got
