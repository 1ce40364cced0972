"""Regex AST -> minimal byte-level DFA (``ByteDFA``): the lexer automaton of every terminal.

Construction (details and the minimality argument in docs/automata.md):
0. Finite languages (enums, literals) go straight to a minimal acyclic DFA built from the sorted
   UTF-8 words (Daciuk et al.).
1. Otherwise a Glushkov (position) automaton over *code points*: one position per character class
   leaf; bounded repeats are unrolled (``x{0,n}`` nested so the follow relation stays linear).
2. Code points are partitioned into alphabet classes (sets of positions accepting them), and the
   subset construction runs over classes in numba (``subset_nb``; the int-bitset and frozenset
   versions here are its plain-Python references). A state or work budget raises
   ``CompileBudgetError`` instead of blowing up.
3. Trim states that cannot reach acceptance; minimize with Hopcroft in numba (``hopcroft_nb``;
   ``_hopcroft`` and ``_moore_rounds`` here are the references the tests compare against).
4. Expand to bytes: ASCII columns by one gather, multi-byte characters through cached UTF-8 trie
   templates whose nodes are hash-consed, which keeps the byte DFA minimal.

``regex_to_dfa`` is memoized by AST node (nodes are hashable and structurally compared).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property, lru_cache
from threading import Lock

import numpy as np

from corral.automata.subset_nb import STATE_BUDGET, WORK_BUDGET, ascii_columns, coreachable, subset_construction
from corral.errors import CompileBudgetError
from corral.gc_untrack import gc_paused, untrack
from corral.grammars import regex_ast as rx
from corral.grammars.hopcroft_nb import hopcroft_refine

__all__ = ["ByteDFA", "regex_to_dfa", "utf8_sequences", "DEFAULT_MAX_STATES", "DEFAULT_TIME_BUDGET_S"]

DEFAULT_MAX_STATES = 20000
DEFAULT_TIME_BUDGET_S = 4.0
_ALL_BYTES = (1 << 256) - 1


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """A minimal, trimmed DFA over bytes. Start state 0; ``-1`` is the (implicit) dead state."""

    transitions: np.ndarray  # int32 [n_states, 256]
    accepting: np.ndarray  # bool [n_states]

    def __post_init__(self) -> None:
        # two arrays (and cached arrays later): never in a cycle, and thousands live in the
        # per-vocabulary walk memos, whose entries the cyclic GC then stops visiting too
        untrack(self)

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[0])

    @cached_property
    def live_bytes(self) -> np.ndarray:
        """bool [n_states, 256]: the byte keeps the text extendable to a match."""
        return self.transitions >= 0

    def run(self, data: bytes, state: int = 0) -> int:
        """The state after reading ``data`` from ``state`` (-1 once dead)."""
        table = self.transitions
        for b in data:
            if state < 0:
                return -1
            state = int(table[state, b])
        return state

    def matches(self, data: bytes) -> bool:
        if self.n_states == 0:
            return False
        s = self.run(data)
        return s >= 0 and bool(self.accepting[s])

    def is_prefix(self, data: bytes) -> bool:
        """``data`` can be extended (possibly by nothing) to a match (every state is live)."""
        return self.n_states > 0 and self.run(data) >= 0

    def __repr__(self) -> str:
        return f"ByteDFA(n_states={self.n_states}, accepting={int(self.accepting.sum())})"


# --------------------------------------------------------------------------------------------
# UTF-8 expansion
# --------------------------------------------------------------------------------------------

_UTF8_BOUNDS = ((0, 0x7F, 1), (0x80, 0x7FF, 2), (0x800, 0xFFFF, 3), (0x10000, 0x10FFFF, 4))


def _split_same_length(lo: int, hi: int, n: int, out: list) -> None:
    for i in range(1, n):
        m = (1 << (6 * i)) - 1
        if (lo & ~m) != (hi & ~m):
            if lo & m:
                _split_same_length(lo, lo | m, n, out)
                _split_same_length((lo | m) + 1, hi, n, out)
                return
            if (hi & m) != m:
                _split_same_length(lo, (hi & ~m) - 1, n, out)
                _split_same_length(hi & ~m, hi, n, out)
                return
    a, b = chr(lo).encode("utf-8"), chr(hi).encode("utf-8")
    out.append(tuple(zip(a, b)))


# --------------------------------------------------------------------------------------------
# Glushkov position automaton over code points
# --------------------------------------------------------------------------------------------

def _bits(x: int):
    """Indices of the set bits of ``x`` (ascending)."""
    if x.bit_length() > 2048 and x.bit_count() > 32:  # big dense-ish sets: one C-level pass
        raw = np.frombuffer(x.to_bytes((x.bit_length() + 7) // 8, "little"), dtype=np.uint8)
        return np.flatnonzero(np.unpackbits(raw, bitorder="little")).tolist()
    return _few_bits(x)


def _bitset(items) -> int:
    """The int bitset of the given indices (big sets built in one C-level pass)."""
    if len(items) < 64:
        x = 0
        for i in items:
            x |= 1 << i
        return x
    idx = np.fromiter(items, dtype=np.int64)
    if len(idx) == 0:
        return 0
    mask = np.zeros(int(idx.max()) + 1, dtype=np.uint8)
    mask[idx] = 1
    return int.from_bytes(np.packbits(mask, bitorder="little").tobytes(), "little")


def _few_bits(x: int):
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


class _Positions:
    """Glushkov positions: one per character-class leaf (after unrolling bounded repeats).
    ``first``/``last``/``follow`` are sets of position ids; position 0 is the virtual start."""

    def __init__(self, max_positions: int):
        self.classes: list[tuple[tuple[int, int], ...] | None] = [None]
        self.follow: list[set[int]] = [set()]
        self.max_positions = max_positions

    def new(self, ranges: tuple[tuple[int, int], ...]) -> int:
        p = len(self.classes)
        if p >= self.max_positions:
            raise CompileBudgetError(
                f"regex needs more than {self.max_positions} automaton positions (bounded repeats too large)")
        self.classes.append(ranges)
        self.follow.append(set())
        return p

    def link(self, last: set[int], first: set[int]) -> None:
        if first:
            follow = self.follow
            for p in last:
                follow[p].update(first)

    def build(self, node: rx.Regex) -> tuple[set[int], set[int], bool]:
        """(first, last, nullable) of a fresh copy of ``node``'s positions."""
        if isinstance(node, rx.Chars):
            p = self.new(node.ranges)
            return {p}, {p}, False
        if isinstance(node, rx.Seq):
            first, last, nullable = set(), set(), True
            for item in node.items:
                f, l, n = self.build(item)
                self.link(last, f)
                if nullable:
                    first |= f
                last = (last | l) if n else l
                nullable = nullable and n
            return first, last, nullable
        if isinstance(node, rx.Alt):
            first, last, nullable = set(), set(), False
            for item in node.items:
                f, l, n = self.build(item)
                first |= f
                last |= l
                nullable = nullable or n
            return first, last, nullable
        if isinstance(node, rx.Repeat):
            return self.build_repeat(node.item, node.min, node.max)
        if isinstance(node, rx.Automaton):  # inside a composition: as a regex (slow, rare)
            return self.build(node.as_regex())
        raise TypeError(f"not a regex node: {node!r}")

    def copies(self, item: rx.Regex):
        """A function that returns ``build(item)`` each call: the first call builds the copy, the
        next ones repeat its positions shifted past the last one (``build`` numbers a copy's
        positions as one contiguous block, and its follow sets stay inside the block until the
        caller links them). A counted string's ``{0,300}`` built ~3,900 positions one call each."""
        start = len(self.classes)
        built = self.build(item)
        end = len(self.classes)
        classes = self.classes[start:end]
        inner = [sorted(self.follow[p]) for p in range(start, end)]  # before the caller's links
        first, last = sorted(built[0]), sorted(built[1])
        pending = [built]

        def next_copy() -> tuple[set[int], set[int], bool]:
            if pending:
                return pending.pop()
            shift = len(self.classes) - start
            if len(self.classes) + len(classes) > self.max_positions:
                raise CompileBudgetError(
                    f"regex needs more than {self.max_positions} automaton positions (bounded repeats too large)")
            self.classes.extend(classes)
            self.follow.extend([{q + shift for q in f} for f in inner])
            return {q + shift for q in first}, {q + shift for q in last}, built[2]

        return next_copy

    def build_repeat(self, item: rx.Regex, lo: int, hi: int | None) -> tuple[set[int], set[int], bool]:
        first, last, nullable = set(), set(), True
        if lo + (1 if hi is None else hi - lo) <= 1:
            copy = lambda: self.build(item)  # noqa: E731 - one copy: nothing to repeat
        else:
            copy = self.copies(item)
        for _ in range(lo):
            f, l, n = copy()
            self.link(last, f)
            if nullable:
                first |= f
            last = (last | l) if n else l
            nullable = nullable and n
        if hi is None:
            f, l, n = copy()
            self.link(l, f)  # the loop
            self.link(last, f)
            if nullable:
                first |= f
            return first, last | l, nullable
        extra = hi - lo
        if extra <= 0:
            return first, last, nullable
        # x{0,k} as (x(x(x)?)?)?: each copy's last links only to the next copy's first (linear size)
        tf, tl, _ = copy()
        for _ in range(extra - 1):
            f, l, _n = copy()
            self.link(l, tf)
            tf, tl = f, l | tl
        self.link(last, tf)
        if nullable:
            first |= tf
        return first, last | tl, nullable


@lru_cache(maxsize=65536)
def _max_length(node: rx.Regex) -> int | None:
    """Longest string length in code points (None when unbounded)."""
    if isinstance(node, rx.Chars):
        return 1
    if isinstance(node, rx.Seq):
        total = 0
        for i in node.items:
            m = _max_length(i)
            if m is None:
                return None
            total += m
        return total
    if isinstance(node, rx.Alt):
        best = 0
        for i in node.items:
            m = _max_length(i)
            if m is None:
                return None
            best = max(best, m)
        return best
    if isinstance(node, rx.Repeat):
        m = _max_length(node.item)
        if m == 0:
            return 0
        if node.max is None or m is None:
            return None
        return node.max * m
    if isinstance(node, rx.Automaton):
        return _automaton_max_length(node)
    raise TypeError(node)


def _automaton_max_length(node: rx.Automaton) -> int | None:
    """Longest accepted string over the live states (None when a live cycle exists)."""
    live = node.live_states()
    if not live[0]:
        return 0
    longest: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[int, list[int]]] = [(0, [t for t in set(node.trans[0]) if t >= 0 and live[t]])]
    on_path.add(0)
    while stack:
        s, todo = stack[-1]
        if todo:
            t = todo.pop()
            if t in on_path:
                return None
            if t not in longest:
                on_path.add(t)
                stack.append((t, [u for u in set(node.trans[t]) if u >= 0 and live[u]]))
            continue
        stack.pop()
        on_path.discard(s)
        longest[s] = max((1 + longest[t] for t in set(node.trans[s]) if t >= 0 and live[t]), default=0)
    return longest[0]


_position_count = rx.position_count


# --------------------------------------------------------------------------------------------
# Code point DFA: subset construction over alphabet classes
# --------------------------------------------------------------------------------------------

def _alphabet_classes(pos: _Positions) -> tuple[list[int], list[list[tuple[int, int]]]]:
    """Partition the code points by the set of positions that accept them.

    Returns, per class, the bitset of positions covering it and its code point ranges; code points
    no position accepts belong to no class.
    """
    grouped: dict[tuple, list[int]] = {}
    for p, ranges in enumerate(pos.classes):
        if ranges is not None:
            grouped.setdefault(ranges, []).append(p)
    members = {ranges: _bitset(ps) for ranges, ps in grouped.items()}
    sets = list(members.items())
    events: dict[int, int] = {}  # code point -> xor of set-ids starting or ending there
    for sid, (ranges, _) in enumerate(sets):
        for lo, hi in ranges:
            events[lo] = events.get(lo, 0) ^ (1 << sid)
            events[hi + 1] = events.get(hi + 1, 0) ^ (1 << sid)
    cover_of_key: dict[int, int] = {}
    class_of_key: dict[int, int] = {}
    covers: list[int] = []
    class_ranges: list[list[tuple[int, int]]] = []
    active = 0
    points = sorted(events)
    for i, cp in enumerate(points[:-1]):
        active ^= events[cp]
        if not active:
            continue
        ci = class_of_key.get(active)
        if ci is None:
            cover = 0
            for sid in _bits(active):
                cover |= sets[sid][1]
            ci = class_of_key[active] = len(covers)
            covers.append(cover)
            class_ranges.append([])
        rs = class_ranges[ci]
        hi = points[i + 1] - 1
        if rs and rs[-1][1] == cp - 1:
            rs[-1] = (rs[-1][0], hi)
        else:
            rs.append((cp, hi))
    return covers, class_ranges


def _subset_construction(pos: _Positions, last: set[int], nullable: bool, covers: list[int],
                         max_states: int, deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """Subset construction with states as int bitsets of positions (state 0 = {virtual start}).
    Returns (transitions [n, classes] with -1 for none, accepting [n])."""
    k = len(covers)
    follow = [_bitset(f) for f in pos.follow]
    accept_mask = _bitset(last) | (1 if nullable else 0)
    ids: dict[int, int] = {1: 0}
    order = [1]
    rows: list[list[int]] = []
    cand_cache: dict[int, int] = {}
    i = 0
    while i < len(order):
        state = order[i]
        i += 1
        cand = 0
        for p in _bits(state):
            cand |= follow[p]
        row = [-1] * k
        if cand:
            row = cand_cache.get(cand)
            if row is None:
                row = [-1] * k
                for ci in range(k):
                    t = cand & covers[ci]
                    if t:
                        j = ids.get(t)
                        if j is None:
                            j = len(order)
                            if j >= max_states:
                                raise CompileBudgetError(f"regex DFA exceeds {max_states} states")
                            ids[t] = j
                            order.append(t)
                        row[ci] = j
                cand_cache[cand] = row
        rows.append(row)
        if (i & 127) == 0 and time.perf_counter() > deadline:
            raise CompileBudgetError(
                f"regex DFA construction exceeded its time budget ({len(order)} states so far)")
    trans = np.array(rows, dtype=np.int64).reshape(len(rows), k)
    accepting = np.array([(s & accept_mask) != 0 for s in order], dtype=bool)
    return trans, accepting


def _subset_construction_sparse(pos: _Positions, last: set[int], nullable: bool, covers: list[int],
                                max_states: int, deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """Same result as ``_subset_construction`` with states as frozensets of positions: faster when
    there are many positions but each state holds few (big alternations such as long enums)."""
    k = len(covers)
    n_pos = len(pos.classes)
    classes_of: list[list[int]] = [[] for _ in range(n_pos)]
    for ci, cover in enumerate(covers):
        for p in _bits(cover):
            classes_of[p].append(ci)
    follow = pos.follow
    is_last = [False] * n_pos
    for p in last:
        is_last[p] = True
    start = frozenset((0,))
    ids: dict[frozenset, int] = {start: 0}
    order = [start]
    rows: list[list[int]] = []
    i = 0
    while i < len(order):
        state = order[i]
        i += 1
        buckets: dict[int, list[int]] = {}
        for p in state:
            for q in follow[p]:
                for ci in classes_of[q]:
                    b = buckets.get(ci)
                    if b is None:
                        buckets[ci] = [q]
                    else:
                        b.append(q)
        row = [-1] * k
        for ci, qs in buckets.items():
            t = frozenset(qs)
            j = ids.get(t)
            if j is None:
                j = len(order)
                if j >= max_states:
                    raise CompileBudgetError(f"regex DFA exceeds {max_states} states")
                ids[t] = j
                order.append(t)
            row[ci] = j
        rows.append(row)
        if (i & 127) == 0 and time.perf_counter() > deadline:
            raise CompileBudgetError(
                f"regex DFA construction exceeded its time budget ({len(order)} states so far)")
    trans = np.array(rows, dtype=np.int64).reshape(len(rows), k)
    accepting = np.array([any(is_last[p] for p in st) for st in order], dtype=bool)
    accepting[0] = nullable
    return trans, accepting


# numba work units (successor keys gathered) per second of time budget, measured conservatively
_WORK_PER_SECOND = 20_000_000


def _subset_construction_fast(pos: _Positions, last: set[int], nullable: bool, covers: list[int],
                              max_states: int, deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """``_subset_construction`` in numba (``subset_nb``); the two Python versions stay as references."""
    n_pos = len(pos.classes)
    fol_len = np.fromiter((len(f) for f in pos.follow), dtype=np.int64, count=n_pos)
    fol_start = np.zeros(n_pos + 1, dtype=np.int64)
    np.cumsum(fol_len, out=fol_start[1:])
    fol = np.fromiter((q for f in pos.follow for q in f), dtype=np.int64, count=int(fol_start[-1]))
    pairs_pos: list[int] = []
    pairs_cls: list[int] = []
    for ci, cover in enumerate(covers):
        ps = list(_bits(cover))
        pairs_pos.extend(ps)
        pairs_cls.extend([ci] * len(ps))
    pp = np.array(pairs_pos, dtype=np.int64)
    pc = np.array(pairs_cls, dtype=np.int64)
    order = np.argsort(pp, kind="stable")
    cls_of = pc[order]
    cls_start = np.zeros(n_pos + 1, dtype=np.int64)
    np.cumsum(np.bincount(pp, minlength=n_pos)[:n_pos], out=cls_start[1:])
    remaining = min(max(deadline - time.perf_counter(), 0.0), 3600.0)
    status, trans, offsets, pool = subset_construction(
        fol_start, fol, cls_start, cls_of, len(covers), max_states, int(remaining * _WORK_PER_SECOND) + 1000)
    if status == STATE_BUDGET:
        raise CompileBudgetError(f"regex DFA exceeds {max_states} states")
    if status == WORK_BUDGET:  # (not the clock: the first call includes numba's compile)
        raise CompileBudgetError(
            f"regex DFA construction exceeded its time budget ({len(trans)} states so far)")
    is_last = np.zeros(n_pos, dtype=bool)
    is_last[list(last)] = True
    accepting = np.logical_or.reduceat(is_last[pool], offsets[:-1])
    accepting[0] = nullable
    return trans, accepting


# --------------------------------------------------------------------------------------------
# Trim and minimize (code point level)
# --------------------------------------------------------------------------------------------

def _predecessors(trans: np.ndarray):
    """CSR of incoming edges: for target t, sources[starts[t]:starts[t+1]] with classes alongside."""
    n, k = trans.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    cls = np.tile(np.arange(k, dtype=np.int64), n)
    dst = trans.reshape(-1)
    keep = dst >= 0
    src, cls, dst = src[keep], cls[keep], dst[keep]
    order = np.lexsort((cls, dst))
    starts = np.searchsorted(dst[order], np.arange(n + 1))
    return starts, src[order], cls[order]


def _coreachable(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """States from which an accepting state is reachable."""
    starts, preds, _ = _predecessors(trans)
    live = accepting.copy()
    stack = np.flatnonzero(accepting).tolist()
    while stack:
        s = stack.pop()
        for p in preds[starts[s]:starts[s + 1]].tolist():
            if not live[p]:
                live[p] = True
                stack.append(p)
    return live


def _trim(trans: np.ndarray, accepting: np.ndarray):
    live = coreachable(np.ascontiguousarray(trans, dtype=np.int64), accepting)
    if not live[0]:
        return None
    if live.all():  # the common case (spelling automata are built live): no renumbering pass
        return trans, accepting
    new_id = np.full(len(live), -1, dtype=np.int64)
    idx = np.flatnonzero(live)
    new_id[idx] = np.arange(len(idx))
    t = trans[idx]
    return np.where(t >= 0, new_id[np.maximum(t, 0)], -1), accepting[idx]


def _row_ids(sig: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids of the distinct rows of an int matrix (lexsort + neighbor compare: much faster than
    ``np.unique(axis=0)``)."""
    order = np.lexsort(sig.T[::-1])
    srt = sig[order]
    new_group = np.empty(len(sig), dtype=bool)
    new_group[0] = True
    new_group[1:] = (srt[1:] != srt[:-1]).any(axis=1)
    ids = np.empty(len(sig), dtype=np.int64)
    ids[order] = np.cumsum(new_group) - 1
    return ids, int(new_group.sum())


def _moore_rounds(trans: np.ndarray, accepting: np.ndarray, max_rounds: int, early_stop: bool = True):
    """Vectorized Moore refinement (the dead state -1 is its own block). Returns (block ids,
    converged). Each round groups the rows of [block, blocks of the successors]. Stops early when
    rounds split little (a deep chain needs one round per level: Hopcroft's job)."""
    n = len(trans)
    block = accepting.astype(np.int64)
    n_blocks = len(np.unique(block))
    for r in range(max_rounds):
        nxt = np.where(trans >= 0, block[np.maximum(trans, 0)], -1)
        new_block, new_n = _row_ids(np.concatenate([block[:, None], nxt], axis=1))
        if new_n == n_blocks:
            return new_block, True
        slow = early_stop and r >= 24 and new_n - n_blocks < max(4, n // 64)
        block, n_blocks = new_block, new_n
        if slow:
            break
    return block, False


def _hopcroft(trans: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Coarsest refinement of the partition ``initial`` (block ids, already separating accepting
    states) that is stable under the transitions: Hopcroft's algorithm with a block worklist,
    starting with every block in the worklist. The dead state is an extra sink in its own block."""
    n, k = trans.shape
    sink = n
    total = np.vstack([np.where(trans >= 0, trans, sink), np.full((1, k), sink, dtype=np.int64)])
    starts, srcs, clss = _predecessors(total)
    starts = starts.tolist()
    srcs = srcs.tolist()
    clss = clss.tolist()
    n_initial = int(initial.max()) + 1
    block_of = initial.tolist() + [n_initial]
    blocks: list[set[int]] = [set() for _ in range(n_initial + 1)]
    for st, b in enumerate(block_of):
        blocks[b].add(st)
    work = list(range(len(blocks)))
    in_work = set(work)
    while work:
        b = work.pop()
        in_work.discard(b)
        by_class: dict[int, list[int]] = {}
        for t in blocks[b]:
            for e in range(starts[t], starts[t + 1]):
                by_class.setdefault(clss[e], []).append(srcs[e])
        for xs in by_class.values():
            touched: dict[int, list[int]] = {}
            for st in xs:
                touched.setdefault(block_of[st], []).append(st)
            for y, hit in touched.items():
                hit_set = set(hit)
                if len(hit_set) == len(blocks[y]):
                    continue
                nb = len(blocks)
                blocks[y] -= hit_set
                blocks.append(hit_set)
                for st in hit_set:
                    block_of[st] = nb
                if y in in_work:
                    work.append(nb)
                    in_work.add(nb)
                else:
                    add = nb if len(hit_set) <= len(blocks[y]) else y
                    work.append(add)
                    in_work.add(add)
    _, dense = np.unique(np.array(block_of[:n], dtype=np.int64), return_inverse=True)
    return dense.reshape(-1)


def _minimize(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """Block id per state of the Myhill-Nerode partition of a trimmed DFA: Hopcroft (numba) from
    the acceptance partition. (Vectorized Moore rounds were tried first: deep chains such as
    bounded whitespace runs need one round per level, and Hopcroft in numba beats them anyway.)"""
    return hopcroft_refine(np.ascontiguousarray(trans, dtype=np.int64), accepting.astype(np.int64))


def _quotient(trans: np.ndarray, accepting: np.ndarray, block: np.ndarray):
    nb = int(block.max()) + 1
    rep = np.zeros(nb, dtype=np.int64)
    rep[block[::-1]] = np.arange(len(block))[::-1]  # first state of each block
    bt = trans[rep]
    bt = np.where(bt >= 0, block[np.maximum(bt, 0)], -1)
    return bt, accepting[rep], int(block[0])


# --------------------------------------------------------------------------------------------
# Byte expansion: a code point DFA -> byte DFA, with hash-consed multi-byte trie nodes
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def utf8_sequences(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Byte-range sequences whose concatenations are exactly the UTF-8 encodings of the code points
    in ``ranges``: e.g. U+0800..U+FFFF -> (E0,A0-BF,80-BF), (E1-EC,80-BF,80-BF), ... Surrogates are
    never encoded; there are no overlong forms by construction."""
    raw: list[tuple[tuple[int, int], ...]] = []
    for lo, hi in ranges:
        for blo, bhi, n in _UTF8_BOUNDS:
            a, b = max(lo, blo), min(hi, bhi)
            if a > b:
                continue
            if n == 3 and a <= 0xDFFF and b >= 0xD800:
                if a < 0xD800:
                    _split_same_length(a, 0xD7FF, 3, raw)
                if b > 0xDFFF:
                    _split_same_length(0xE000, b, 3, raw)
                continue
            _split_same_length(a, b, n, raw)
    return tuple(raw)


def _group_row(items, node_of) -> list[tuple[int, int, int]]:
    """Byte intervals for ``items`` = [(byte range sequence, ref)]: a one-byte sequence goes to its
    ref, longer ones to ``node_of(sorted continuation items)``. Refs of complete characters are
    distinct per interval (the code points are disjoint), so the result is deterministic."""
    groups: dict[tuple[int, int], list] = {}
    for seq, ref in items:
        groups.setdefault(seq[0], []).append((seq, ref))
    keys = sorted(groups)
    disjoint = all(keys[i][1] < keys[i + 1][0] for i in range(len(keys) - 1))
    if disjoint:
        pieces = [(lo, hi, groups[(lo, hi)]) for lo, hi in keys]
    else:  # overlapping lead ranges: split into elementary intervals
        bounds = sorted({lo for lo, _ in keys} | {hi + 1 for _, hi in keys})
        pieces = []
        for x, y in zip(bounds, bounds[1:]):
            covering = [it for (lo, hi) in keys if lo <= x and y - 1 <= hi for it in groups[(lo, hi)]]
            if covering:
                pieces.append((x, y - 1, covering))
    out: list[tuple[int, int, int]] = []
    for lo, hi, group in pieces:
        direct = None
        rest = []
        for seq, ref in group:
            if len(seq) == 1:
                direct = ref
            else:
                rest.append((seq[1:], ref))
        target = direct if direct is not None else node_of(tuple(sorted(rest)))
        if out and out[-1][2] == target and out[-1][1] == lo - 1:
            out[-1] = (out[-1][0], hi, target)
        else:
            out.append((lo, hi, target))
    return out


class _Template:
    """The byte trie of one code point state, with its targets abstracted to local indices.

    Refs: ``r < 0`` is local target ``-r - 1``; ``r >= 0`` is trie node ``r`` (children first)."""

    def __init__(self, target_ranges: tuple[tuple[tuple[int, int], ...], ...]):
        self.nodes: list[list[tuple[int, int, int]]] = []
        node_ids: dict[tuple, int] = {}
        row_ids: dict[tuple, int] = {}

        def node_of(items: tuple) -> int:
            hit = node_ids.get(items)
            if hit is None:
                row = _group_row(items, node_of)
                key = tuple(row)
                hit = row_ids.get(key)
                if hit is None:
                    hit = row_ids[key] = len(self.nodes)
                    self.nodes.append(row)
                node_ids[items] = hit
            return hit

        items = [(seq, -j - 1) for j, ranges in enumerate(target_ranges) for seq in utf8_sequences(ranges)]
        self.top = _group_row(items, node_of)


@lru_cache(maxsize=4096)
def _template(target_ranges: tuple[tuple[tuple[int, int], ...], ...]) -> _Template:
    return _Template(target_ranges)


class _ByteExpander:
    """Byte rows of the whole DFA. Code point states keep ids 0..n-1; trie nodes (inside a multi-byte
    character) are appended and hash-consed by their row, so equal continuations are one node. With
    a minimal code point DFA this yields the minimal byte DFA (see docs/automata.md)."""

    def __init__(self, n_cp_states: int, max_states: int):
        self.rows: list[list[tuple[int, int, int]]] = [[] for _ in range(n_cp_states)]
        self.node_of_row: dict[tuple, int] = {}
        self.max_states = max_states
        self.batch = None  # (int64 [k, 4] (node, lo, hi, target), node count): see _instantiate_single_target

    def instantiate(self, template: _Template, targets: list[int]) -> list[tuple[int, int, int]]:
        actual: list[int] = []
        rows, node_of_row = self.rows, self.node_of_row
        for row in template.nodes:
            key = tuple((lo, hi, targets[-r - 1] if r < 0 else actual[r]) for lo, hi, r in row)
            nid = node_of_row.get(key)
            if nid is None:
                nid = len(rows)
                if nid >= self.max_states:
                    raise CompileBudgetError(f"byte DFA exceeds {self.max_states} states")
                rows.append(list(key))
                node_of_row[key] = nid
            actual.append(nid)
        return [(lo, hi, targets[-r - 1] if r < 0 else actual[r]) for lo, hi, r in template.top]


def _instantiate_single_target(ex: _ByteExpander, template: _Template, rows: np.ndarray, targets: np.ndarray,
                               lead_block: np.ndarray) -> None:
    """``ex.instantiate(template, [t])`` for each distinct lead-byte row ``rows[k]`` with its one
    target ``targets[k]`` (distinct, as the rows are), in numpy. What the loop would build: the
    template's rows are distinct and each depends on the target (every trie path ends in it), so no
    node of one state equals a node of another and no hash-consing happens; state k's nodes are the
    template's, numbered from ``n + k * len(template.nodes)`` in template order, as the loop numbers
    them. The tests compare both on random classes and counts."""
    n, per = len(ex.rows), len(template.nodes)
    if n + len(rows) * per > ex.max_states:
        raise CompileBudgetError(f"byte DFA exceeds {ex.max_states} states")
    base = n + per * np.arange(len(rows), dtype=np.int64)
    entries = np.array([(j, lo, hi, r) for j, row in enumerate(template.nodes) for lo, hi, r in row],
                       dtype=np.int64).reshape(-1, 4)
    node = (base[:, None] + entries[None, :, 0]).ravel()
    value = np.where(entries[None, :, 3] < 0, targets[:, None], base[:, None] + entries[None, :, 3]).ravel()
    ex.batch = (np.stack([node, np.tile(entries[:, 1], len(rows)), np.tile(entries[:, 2], len(rows)), value], axis=1),
                len(rows) * per)
    for lo, hi, r in template.top:
        lead_block[rows, lo - 0x80:hi - 0x7F] = (targets if r < 0 else base + r)[:, None]


def _ascii_columns_reference(trans: np.ndarray, class_ranges) -> np.ndarray:
    """int32 [n, 128]: the ASCII columns ``subset_nb.ascii_columns`` fills (tests compare)."""
    n, k = trans.shape
    ascii_class = np.full(128, k, dtype=np.int64)  # column k: no class (dead)
    for c, ranges in enumerate(class_ranges):
        for lo, hi in ranges:
            if lo < 0x80:
                ascii_class[lo:min(hi, 0x7F) + 1] = c
    padded = np.concatenate([trans.astype(np.int32), np.full((n, 1), -1, dtype=np.int32)], axis=1)
    return padded[:, ascii_class]


def _expand_to_bytes(trans: np.ndarray, accepting: np.ndarray, class_ranges, start: int,
                     max_states: int) -> ByteDFA:
    """Byte table of a minimal code point DFA: ASCII columns in numba (``ascii_columns``), multi-byte
    characters through (cached) trie templates; then the start state is swapped to id 0."""
    n, k = trans.shape
    # every (range, class) at once: the ASCII columns are filled in numba (a Python pass over the
    # ranges and a fancy-indexed gather took ~40 us of a ~100-state key automaton's ~80 us)
    listed = [(lo, hi, c) for c, ranges in enumerate(class_ranges) for lo, hi in ranges]
    spans = np.array(listed, dtype=np.int64).reshape(-1, 3)
    high_classes = sorted({c for _, hi, c in listed if hi >= 0x80}) if int(spans[:, 1].max(initial=-1)) >= 0x80 else []
    ex = _ByteExpander(n, max_states) if high_classes else None
    row_ids = None
    if high_classes:
        high_ranges: dict[int, tuple] = {c: tuple((max(lo, 0x80), hi) for lo, hi in class_ranges[c] if hi >= 0x80)
                                         for c in high_classes}
        # lead-byte columns (0x80-0xFF) of the code point states, one block row per distinct row of
        # targets over the non-ASCII classes: states with equal rows get the same trie (its nodes are
        # hash-consed), and a key automaton's states mostly share one (to the "other key" state), so
        # the Python work is per distinct row, not per state (~1.5 us a state on key regions before)
        sub = trans[:, high_classes]
        row_ids, n_distinct = _row_ids(sub)
        first_state = np.empty(n_distinct, dtype=np.int64)
        first_state[row_ids[::-1]] = np.arange(n - 1, -1, -1)
        lead_block = np.full((n_distinct, 0x80), -1, dtype=np.int32)
        distinct_rows = sub[first_state]
        one_target = (distinct_rows >= 0).all(axis=1) & (distinct_rows == distinct_rows[:, :1]).all(axis=1)
        if one_target.any() and (one_target | (distinct_rows < 0).all(axis=1)).all():
            # every state reads all its non-ASCII characters into one state, a state of its own
            # (a counted string: position i goes to i + 1): one trie template, instantiated for
            # all of them at once (~10 us a state in the loop below, 4 ms of a maxLength-300 string)
            key = (rx.normalize_ranges([r for c in high_classes for r in high_ranges[c]]),)
            _instantiate_single_target(ex, _template(key), np.flatnonzero(one_target),
                                       distinct_rows[one_target, 0], lead_block)
        key_of_groups: dict[tuple, tuple] = {}
        for d, trow in enumerate(distinct_rows.tolist() if ex.batch is None else ()):
            # group the classes by target: the trie depends only on each target's code point set
            by_target: dict[int, list[int]] = {}
            for c, t in zip(high_classes, trow):
                if t >= 0:
                    by_target.setdefault(t, []).append(c)
            if not by_target:
                continue
            targets = sorted(by_target, key=lambda t: by_target[t][0])
            groups = tuple(tuple(by_target[t]) for t in targets)
            key = key_of_groups.get(groups)
            if key is None:
                key = key_of_groups[groups] = tuple(
                    rx.normalize_ranges([r for c in g for r in high_ranges[c]]) for g in groups)
            for lo, hi, t in ex.instantiate(_template(key), targets):
                lead_block[d, lo - 0x80:hi - 0x7F] = t
    # the trie nodes' (row, byte interval, target) entries, rows numbered from n on
    if ex is None:
        m, iv = n, np.zeros((0, 4), dtype=np.int64)
    elif ex.batch is not None:
        iv, m = ex.batch[0], n + ex.batch[1]
    else:
        m = len(ex.rows)
        iv = np.array([(i, lo, hi, t) for i in range(n, m) for lo, hi, t in ex.rows[i]], dtype=np.int64).reshape(-1, 4)
    table = np.empty((m, 256), dtype=np.int32)
    table[n:] = -1
    ascii_columns(np.ascontiguousarray(trans, dtype=np.int64), spans, table)
    table[:n, 0x80:] = -1 if row_ids is None else lead_block[row_ids]
    if len(iv):  # scatter every (row, byte interval, target) at once
        lengths = iv[:, 2] - iv[:, 1] + 1
        starts = np.repeat(iv[:, 0] * 256 + iv[:, 1] - np.cumsum(lengths) + lengths, lengths)
        table.reshape(-1)[starts + np.arange(int(lengths.sum()))] = np.repeat(iv[:, 3], lengths)
    acc = np.zeros(m, dtype=bool)
    acc[:n] = accepting
    if start != 0:  # swap ids so that the start state is 0
        perm = np.arange(m)
        perm[0], perm[start] = start, 0
        table = table[perm]
        table = np.where(table >= 0, perm[np.maximum(table, 0)], -1).astype(np.int32)
        acc = acc[perm]
    return ByteDFA(np.ascontiguousarray(table), acc)


# --------------------------------------------------------------------------------------------
# Finite languages (enums, literals): minimal acyclic DFA straight from the sorted word list
# --------------------------------------------------------------------------------------------

_FINITE_LIMIT = 50_000  # strings; above this the general construction takes over


def _finite_strings(node: rx.Regex, limit: int = _FINITE_LIMIT) -> list[str] | None:
    """All strings of a finite language with at most ``limit`` members and small classes, or None."""
    if isinstance(node, rx.Chars):
        if sum(hi - lo + 1 for lo, hi in node.ranges) > 64:
            return None
        return [chr(c) for lo, hi in node.ranges for c in range(lo, hi + 1)]
    if isinstance(node, rx.Seq):
        out = [""]
        for item in node.items:
            part = _finite_strings(item, limit)
            if part is None or len(out) * len(part) > limit:
                return None
            out = [a + b for a in out for b in part]
        return out
    if isinstance(node, rx.Alt):
        out: list[str] = []
        for item in node.items:
            part = _finite_strings(item, limit)
            if part is None:
                return None
            out.extend(part)
            if len(out) > limit:
                return None
        return out
    if isinstance(node, rx.Repeat):
        if node.max is None or node.max > 64:
            return None
        part = _finite_strings(node.item, limit)
        if part is None:
            return None
        out, power = [], [""]
        for count in range(node.max + 1):
            if count >= node.min:
                out.extend(power)
            if count < node.max:
                if len(power) * len(part) > limit:
                    return None
                power = [a + b for a in power for b in part]
            if len(out) > limit:
                return None
        return out
    if isinstance(node, rx.Automaton):
        return None
    raise TypeError(node)


def _finite_dfa(words: list[bytes], max_states: int) -> ByteDFA:
    """Minimal DFA of a finite set of byte strings (Daciuk et al.'s incremental construction over
    sorted input: each finished suffix is merged with an equal registered state)."""
    trans: list[dict[int, int]] = [{}]
    final = [False]
    register: dict[tuple, int] = {}
    replaced = [0]  # states merged away (garbage): the budget counts live ones

    def replace_or_register(state: int) -> None:
        # iterative form of the recursion down the most recently added path
        path = [state]
        while True:
            children = trans[path[-1]]
            if not children:
                break
            path.append(children[max(children)])
        path.pop()  # the deepest node has no children: registered with its parent's step below
        for parent in reversed(path):
            last_byte = max(trans[parent])
            child = trans[parent][last_byte]
            sig = (final[child], tuple(sorted(trans[child].items())))
            existing = register.get(sig)
            if existing is not None and existing != child:
                trans[parent][last_byte] = existing
                replaced[0] += 1
            elif existing is None:
                register[sig] = child

    previous = b""
    for word in words:
        common = 0
        limit = min(len(word), len(previous))
        while common < limit and word[common] == previous[common]:
            common += 1
        state = 0
        for b in word[:common]:
            state = trans[state][b]
        if trans[state]:
            replace_or_register(state)
        for b in word[common:]:
            if len(trans) - replaced[0] > max_states + len(word):
                raise CompileBudgetError(f"regex DFA exceeds {max_states} states")
            trans.append({})
            final.append(False)
            trans[state][b] = len(trans) - 1
            state = len(trans) - 1
        final[state] = True
        previous = word
    replace_or_register(0)
    # keep the states reachable from the root (replaced suffixes are garbage), numbered by BFS
    new_id = {0: 0}
    order = [0]
    i = 0
    while i < len(order):
        for _, t in sorted(trans[order[i]].items()):
            if t not in new_id:
                new_id[t] = len(order)
                order.append(t)
        i += 1
    if len(order) > max_states:
        raise CompileBudgetError(f"regex DFA exceeds {max_states} states")
    table = np.full((len(order), 256), -1, dtype=np.int32)
    for i, old in enumerate(order):
        for b, t in trans[old].items():
            table[i, b] = new_id[t]
    return ByteDFA(table, np.array([final[o] for o in order], dtype=bool))


def _automaton_to_bytes(node: rx.Automaton, max_states: int) -> ByteDFA:
    """A code-point automaton given as such: trim, minimize unless it is minimal, expand to bytes."""
    n = len(node.accepting)
    if n > 4 * max_states:
        raise CompileBudgetError(f"automaton of {n} states exceeds the budget of {4 * max_states}")
    trans = np.frombuffer(node.table, dtype=np.int32).reshape(n, len(node.classes)).astype(np.int64)
    trimmed = _trim(trans, np.array(node.accepting, dtype=bool))
    if trimmed is None:
        return ByteDFA(np.zeros((0, 256), dtype=np.int32), np.zeros(0, dtype=bool))
    trans, accepting = trimmed
    start = 0
    # builders that guarantee minimality (a JSON spelling automaton of a minimal code-point DFA,
    # tested equal to its Hopcroft quotient) skip the minimization: ~2.5 ms on an 850-state region
    if not node.minimal:
        trans, accepting, start = _quotient(trans, accepting, _minimize(trans, accepting))
    if len(trans) > max_states:
        raise CompileBudgetError(f"regex DFA exceeds {max_states} states ({len(trans)} code point states)")
    return _expand_to_bytes(trans, accepting, [list(c) for c in node.classes], start, max_states)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------

_cache: OrderedDict = OrderedDict()
_cache_lock = Lock()
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 512 << 20  # tables are n_states KiB each: bound the memory, not just the count
_cache_bytes = 0


def regex_to_dfa(node: rx.Regex, max_states: int = DEFAULT_MAX_STATES,
                 time_budget_s: float = DEFAULT_TIME_BUDGET_S) -> ByteDFA:
    """The minimal byte DFA of ``node`` (memoized by structure). Raises CompileBudgetError when the
    DFA would exceed ``max_states`` states or construction exceeds ``time_budget_s`` seconds."""
    global _cache_bytes
    key = (node, max_states)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    dfa = _build(node, max_states, time_budget_s)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = dfa
            _cache_bytes += dfa.transitions.nbytes
            while len(_cache) > _CACHE_ENTRIES or (_cache_bytes > _CACHE_BYTES and len(_cache) > 1):
                _, old = _cache.popitem(last=False)
                _cache_bytes -= old.transitions.nbytes
        return _cache[key]


def _build(node: rx.Regex, max_states: int, time_budget_s: float) -> ByteDFA:
    # construction allocates many small containers and frees none of them in cycles: pausing the
    # cyclic GC avoids repeated full-heap scans (several x faster on large DFAs)
    with gc_paused():
        return _build_unpaused(node, max_states, time_budget_s)


def _build_unpaused(node: rx.Regex, max_states: int, time_budget_s: float) -> ByteDFA:
    deadline = time.perf_counter() + time_budget_s
    if isinstance(node, rx.Automaton):
        return _automaton_to_bytes(node, max_states)
    # cheap refusals before any work: the positions to unroll, and lower bounds on the state count
    # (a DFA needs more states than its shortest match has characters, and than its longest one)
    max_positions = 4 * max_states
    if _position_count(node) >= max_positions:
        raise CompileBudgetError(f"regex unrolls to more than {max_positions} automaton positions")
    shortest, longest = rx.min_length(node), _max_length(node)
    if shortest < (1 << 30) and shortest >= max_states or (longest is not None and longest >= max_states):
        raise CompileBudgetError(f"regex DFA needs more than {max_states} states (match length bound)")
    if longest is not None:  # finite language: enums, keys, literals
        # worth it when the strings are about as many as the Glushkov positions (enums), not for
        # cross products such as [a-z]{3}
        words = _finite_strings(node, min(_FINITE_LIMIT, 64 + 2 * _position_count(node)))
        if words is not None:
            if not words:
                return ByteDFA(np.zeros((0, 256), dtype=np.int32), np.zeros(0, dtype=bool))
            return _finite_dfa(sorted({w.encode("utf-8") for w in words}), max_states)
    pos = _Positions(max_positions)
    first, last, nullable = pos.build(node)
    pos.follow[0] = first
    covers, class_ranges = _alphabet_classes(pos)
    # the subset automaton may be several times the minimal one (redundant regexes): cap it looser
    trans, accepting = _subset_construction_fast(pos, last, nullable, covers, 4 * max_states, deadline)
    trimmed = _trim(trans, accepting)
    if trimmed is None:
        return ByteDFA(np.zeros((0, 256), dtype=np.int32), np.zeros(0, dtype=bool))
    trans, accepting = trimmed
    trans, accepting, start = _quotient(trans, accepting, _minimize(trans, accepting))
    if len(trans) > max_states:
        raise CompileBudgetError(f"regex DFA exceeds {max_states} states ({len(trans)} code point states)")
    return _expand_to_bytes(trans, accepting, class_ranges, start, max_states)
