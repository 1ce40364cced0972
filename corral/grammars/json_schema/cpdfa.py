"""Small DFAs over code points, for the regex algebra the JSON Schema compiler needs.

The Grammar IR has no intersection or complement, but JSON Schema does: ``pattern`` with
``minLength``, several ``pattern``s under ``allOf``, ``patternProperties`` regions ("matches p1 but
not p2, and is not a declared key"), ``propertyNames``. These are computed here on decoded code
points, over a partition of the code points into "atoms" (maximal intervals no class splits), then
turned back into a regex (state elimination, size-budgeted) or into right-linear grammar rules.
All constructions are budgeted and raise ``CompileBudgetError`` instead of running away. The hot
ones run in numba (subset construction: ``subsets_nb``; products: ``product_nb``; minimization:
``corral.grammars.hopcroft_nb``), each with a plain-Python reference here that the tests compare
it with.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np

from corral.errors import CompileBudgetError
from corral.grammars import regex_ast as rx
from corral.grammars.hopcroft_nb import hopcroft_refine
from corral.grammars.json_schema.product_nb import product_levels
from corral.grammars.json_schema.subsets_nb import subset_construction
from corral.gc_untrack import untrack

MAX_NFA_STATES = 20000
# subsets cost ~0.1 ms each: 20,000 bound a construction to ~2 s. The common URL pattern
# "[-a-zA-Z0-9@:%._\\+~#=]{1,256}\\.[a-zA-Z0-9()]{1,6}\\b..." needs ~8,000 (2,055 minimal states).
MAX_DFA_STATES = 20000
# products (a pattern with a length bound: states x lengths) are cheap per state and end up as
# right-linear rules, so they get a larger budget than subset constructions
MAX_PRODUCT_STATES = 20000
MAX_DAG_DEPTH = 64  # longest path of an automaton turned into a regex by _dag_regex
NEGATIVE_GROUP = 48  # regexes subtracted at once by ``combine`` (one alternation, one product)


def _classes(node: rx.Regex, out: set, seen: set | None = None) -> None:
    """Collect character classes; ``seen`` (node ids) keeps shared sub-regexes from being re-walked,
    which would be exponential on DAG-shaped regexes (state elimination output)."""
    if seen is None:
        seen = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, rx.Chars):
            out.add(n.ranges)
        elif isinstance(n, rx.Automaton):
            out.update(tuple(c) for c in n.classes)
        elif isinstance(n, (rx.Seq, rx.Alt)):
            stack.extend(n.items)
        elif isinstance(n, rx.Repeat):
            stack.append(n.item)


class Atoms:
    """A partition of all scalar values into intervals, fine enough for every class of some regexes."""

    def __init__(self, regexes):
        classes: set = set()
        for r in regexes:
            _classes(r, classes)
        cuts = {0, rx.MAX_CODE_POINT + 1}
        for ranges in classes:
            for lo, hi in ranges:
                cuts.add(lo)
                cuts.add(hi + 1)
        cuts = sorted(cuts)
        # tuples: the cyclic GC stops visiting tuples of ints, never lists (atoms live in memos)
        self.intervals = tuple([(a, b - 1) for a, b in zip(cuts, cuts[1:])
                                if rx.normalize_ranges([(a, b - 1)])])
        self.starts = tuple([a for a, _ in self.intervals])
        self._memo: dict = {}

    def of_class(self, ranges) -> frozenset:
        got = self._memo.get(ranges)
        if got is None:
            ids = set()
            for lo, hi in ranges:
                i = bisect.bisect_right(self.starts, lo) - 1
                while i < len(self.intervals) and self.intervals[i][0] <= hi:
                    ids.add(i)
                    i += 1
            got = self._memo[ranges] = frozenset(ids)
            untrack(got)  # ints only (a frozenset stays tracked otherwise)
        return got

    def to_class(self, ids) -> rx.Regex:
        """The class of these atoms. Ascending ids (what the callers pass) merge in one pass: the
        intervals are sorted, disjoint and never inside the surrogates, so this is ``rx.chars``'s
        result without its sort (676k calls were 5.9 of 77 s in MaskBench's 40 slowest compiles)."""
        intervals = self.intervals
        out: list = []
        last = -2
        for i in ids:
            lo, hi = intervals[i]
            if lo <= last:  # not ascending: the general route
                return rx.chars([intervals[j] for j in ids])
            if lo == last + 1:
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
            last = hi
        return rx.Chars(tuple(out)) if out else rx.NOTHING


class _Nfa:
    def __init__(self, atoms: Atoms):
        self.atoms = atoms
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset, int]]] = []

    def new(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise CompileBudgetError("regex too large for the code-point automaton budget")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node: rx.Regex, start: int) -> int:
        """Adds ``node`` from ``start``; returns its end state."""
        if isinstance(node, rx.Chars):
            end = self.new()
            self.edges[start].append((self.atoms.of_class(node.ranges), end))
            return end
        if isinstance(node, rx.Seq):
            cur = start
            for it in node.items:
                cur = self.build(it, cur)
            return cur
        if isinstance(node, rx.Alt):
            end = self.new()
            for it in node.items:
                s = self.new()
                self.eps[start].append(s)
                self.eps[self.build(it, s)].append(end)
            return end
        if isinstance(node, rx.Repeat):
            cur = start
            for _ in range(node.min):
                cur = self.build(node.item, cur)
            if node.max is None:
                loop = self.new()
                self.eps[cur].append(loop)
                self.eps[self.build(node.item, loop)].append(loop)
                return loop
            end = self.new()
            self.eps[cur].append(end)
            for _ in range(node.max - node.min):
                cur = self.build(node.item, cur)
                self.eps[cur].append(end)
            return end
        if isinstance(node, rx.Automaton):  # embedded as is: its states become NFA states
            live = node.live_states()
            ids = {q: self.new() for q in range(len(node.accepting)) if live[q]}
            if not ids.get(0):
                return self.new()  # empty language: an end nothing reaches
            self.eps[start].append(ids[0])
            end = self.new()
            classes = [self.atoms.of_class(tuple(c)) for c in node.classes]
            for q, row in enumerate(node.trans):
                if q not in ids:
                    continue
                for c, t in enumerate(row):
                    if t >= 0 and t in ids:
                        self.edges[ids[q]].append((classes[c], ids[t]))
                if node.accepting[q]:
                    self.eps[ids[q]].append(end)
            return end
        raise TypeError(node)

    def closure(self, states) -> frozenset:
        seen = set(states)
        stack = list(states)
        while stack:
            s = stack.pop()
            for t in self.eps[s]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)


def _subsets(nfa: _Nfa, s0: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Subset construction in numba (``subsets_nb``): (transitions [subsets, atoms], acceptance),
    numbered as ``_subsets_reference`` numbers them. The Python constructions it replaced (per atom
    below 64 atoms, atoms grouped by class in numpy above) were 6.8 of 64 s of MaskBench's 40
    slowest compiles."""
    n = len(nfa.eps)
    eps_start = np.zeros(n + 1, dtype=np.int64)
    eps_start[1:] = np.cumsum([len(e) for e in nfa.eps])
    eps_to = np.fromiter((t for e in nfa.eps for t in e), dtype=np.int64, count=int(eps_start[-1]))
    class_of: dict[int, int] = {}  # id(atom frozenset) -> class number (``of_class`` shares them)
    classes: list = []
    edge_start = np.zeros(n + 1, dtype=np.int64)
    edge_class: list[int] = []
    edge_to: list[int] = []
    for s, edges in enumerate(nfa.edges):
        for ids, t in edges:
            c = class_of.get(id(ids))
            if c is None:
                c = class_of[id(ids)] = len(classes)
                classes.append(ids)
            edge_class.append(c)
            edge_to.append(t)
        edge_start[s + 1] = len(edge_to)
    cls_start = np.zeros(len(classes) + 1, dtype=np.int64)
    cls_start[1:] = np.cumsum([len(ids) for ids in classes])
    cls_atoms = np.fromiter((a for ids in classes for a in sorted(ids)), dtype=np.int64, count=int(cls_start[-1]))
    trans, accept, m = subset_construction(
        eps_start, eps_to, edge_start, np.asarray(edge_class, dtype=np.int64), np.asarray(edge_to, dtype=np.int64),
        cls_start, cls_atoms, len(nfa.atoms.intervals), s0, end, MAX_DFA_STATES)
    if m < 0:
        raise CompileBudgetError("code-point automaton exceeds its state budget")
    return trans, accept


def _subsets_reference(nfa: _Nfa, s0: int, end: int) -> tuple[list[list[int]], list[bool]]:
    """Per-atom subset construction in Python (the reference ``_subsets`` is tested against)."""
    n_atoms = len(nfa.atoms.intervals)
    start = nfa.closure([s0])
    index = {start: 0}
    sets = [start]
    trans: list[list[int]] = []
    accept: list[bool] = []
    # the same target sets recur across atoms and subsets: one closure each (1.76 M closures were
    # 3.7 of 79 s in MaskBench's 129 compiles of 0.25-1 s)
    closures: dict[frozenset, frozenset] = {}
    i = 0
    while i < len(sets):
        cur = sets[i]
        i += 1
        accept.append(end in cur)
        targets: list[set] = [set() for _ in range(n_atoms)]
        for s in cur:
            for ids, t in nfa.edges[s]:
                for a in ids:
                    targets[a].add(t)
        row = []
        for a in range(n_atoms):
            key = frozenset(targets[a])
            nxt = closures.get(key)
            if nxt is None:
                nxt = closures[key] = nfa.closure(key)
            if nxt not in index:
                if len(sets) >= MAX_DFA_STATES:
                    raise CompileBudgetError("code-point automaton exceeds its state budget")
                index[nxt] = len(sets)
                sets.append(nxt)
            row.append(index[nxt])
        trans.append(row)
    return trans, accept


@dataclass(eq=False)  # identity hash: DFAs are memo keys of the compiler
class Dfa:
    """Complete DFA over atom ids: ``trans[state][atom]`` (state 0 is the start; a dead state exists)."""

    atoms: Atoms
    trans: list[list[int]]
    accept: list[bool]
    minimal: bool = False  # known minimal (built by ``_minimal``, or a complement/refinement of one)

    @staticmethod
    def from_regex(node: rx.Regex, atoms: Atoms) -> "Dfa":
        nfa = _Nfa(atoms)
        s0 = nfa.new()
        end = nfa.build(node, s0)
        trans, accept = _subsets(nfa, s0, end)
        if len(trans) <= 1:
            return Dfa(atoms, trans.tolist(), accept.tolist(), True)
        return Dfa._minimal(atoms, trans, accept)

    def product(self, other: "Dfa", both: bool, minimize: bool = True) -> "Dfa":
        """Intersection (both=True) or union (both=False) of two DFAs over the same atoms: a
        breadth-first search over state pairs, level by level, in numba (``product_levels``; a pair
        is ``p * n2 + q``). The per-pair Python loop (``_product_reference``) took 29 of
        service-schema's 30 s compile, and numpy steps per level 12 of 77 s of the 40 slowest
        MaskBench compiles (deep products: one level per character of a length bound)."""
        t1 = np.ascontiguousarray(self.trans, dtype=np.int64)
        t2 = np.ascontiguousarray(other.trans, dtype=np.int64)
        acc1 = np.asarray(self.accept, dtype=bool)
        acc2 = np.asarray(other.accept, dtype=bool)
        n2 = t2.shape[0]
        table, all_codes, m = product_levels(t1, t2, MAX_PRODUCT_STATES)
        if m < 0:
            raise CompileBudgetError("code-point automaton product exceeds its state budget")
        a1, a2 = acc1[all_codes // n2], acc2[all_codes % n2]
        accept = (a1 & a2) if both else (a1 | a2)
        if minimize:
            # one side unchanged (its states one-to-one with the pairs, acceptance the same): the
            # product is that side, already minimal. Re-minimizing such products (a pattern's DFA
            # against a length bound or negative that cuts nothing) was most of service-schema's
            # minimization time: ~35 Moore rounds over the same 1,385 states, hundreds of times.
            for side, codes_of, acc in ((self, all_codes // n2, acc1), (other, all_codes % n2, acc2)):
                if side.minimal and len(all_codes) == len(side.trans) and np.array_equal(accept, acc[codes_of]) \
                        and len(np.unique(codes_of)) == len(codes_of):
                    return side
            return Dfa._minimal(self.atoms, table, accept)
        return Dfa(self.atoms, table.tolist(), accept.tolist())

    def _product_reference(self, other: "Dfa", both: bool, minimize: bool = True) -> "Dfa":
        """The pair-by-pair product (what ``product`` is tested against, up to state numbering)."""
        index = {(0, 0): 0}
        pairs = [(0, 0)]
        trans, accept = [], []
        i = 0
        while i < len(pairs):
            p, q = pairs[i]
            i += 1
            a1, a2 = self.accept[p], other.accept[q]
            accept.append((a1 and a2) if both else (a1 or a2))
            row = []
            for a in range(len(self.atoms.intervals)):
                nxt = (self.trans[p][a], other.trans[q][a])
                if nxt not in index:
                    if len(pairs) >= MAX_PRODUCT_STATES:
                        raise CompileBudgetError("code-point automaton product exceeds its state budget")
                    index[nxt] = len(pairs)
                    pairs.append(nxt)
                row.append(index[nxt])
            trans.append(row)
        out = Dfa(self.atoms, trans, accept)
        return out.minimize() if minimize else out

    def remap(self, atoms: Atoms) -> "Dfa":
        """The same automaton over ``atoms``, which must refine this DFA's atoms."""
        old = [bisect.bisect_right(self.atoms.starts, lo) - 1 for lo, _ in atoms.intervals]
        table = np.asarray(self.trans, dtype=np.int64)[:, old]
        return Dfa(atoms, table.tolist(), list(self.accept), self.minimal)  # distinctions survive refining

    def complement(self) -> "Dfa":
        return Dfa(self.atoms, [list(r) for r in self.trans], [not a for a in self.accept], self.minimal)

    def minimize(self) -> "Dfa":
        """Minimal DFA: Hopcroft's partition refinement in numba from the acceptance partition
        (``hopcroft_refine``), blocks numbered by their first state. States are assumed reachable
        (every construction here builds them by search from the start). Same result, state for
        state, as ``_minimize_reference`` (Moore rounds)."""
        if len(self.trans) <= 1:
            return Dfa(self.atoms, [list(r) for r in self.trans], list(self.accept), True)
        return Dfa._minimal(self.atoms, np.asarray(self.trans, dtype=np.int64), np.asarray(self.accept, dtype=bool))

    @staticmethod
    def _minimal(atoms: Atoms, table: np.ndarray, accept: np.ndarray) -> "Dfa":
        """``minimize`` on arrays (int64 transitions, bool acceptance): products stay in numpy.
        (Vectorized Moore rounds did this before: chains such as length bounds need one round per
        level, ~110 rounds a DFA in Github_hard o9808, whose compile spent 1.9 of 4.2 s in them;
        Hopcroft took 4.97 -> 1.19 s over the 2,327 minimizations of its five slowest schemas,
        faster at every size, `/work/runs/s25/hop.py`.)"""
        if len(table) <= 1:
            return Dfa(atoms, table.tolist(), accept.tolist(), True)
        initial = np.unique(accept, return_inverse=True)[1].reshape(-1).astype(np.int64)
        block = hopcroft_refine(np.ascontiguousarray(table, dtype=np.int64), initial)
        # number the blocks in order of their first state, so the start block is 0
        _, first = np.unique(block, return_index=True)
        order = np.argsort(first)  # order[i] = the block numbered i
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        reps = first[order]
        return Dfa(atoms, rank[block[table[reps]]].tolist(), accept[reps].tolist(), True)

    def _minimize_reference(self) -> "Dfa":
        """Plain-Python Moore refinement (the reference ``minimize`` is tested against)."""
        n = len(self.trans)
        block = [1 if a else 0 for a in self.accept]
        while True:
            sig = {}
            new_block = []
            for s in range(n):
                key = (block[s], tuple(block[t] for t in self.trans[s]))
                new_block.append(sig.setdefault(key, len(sig)))
            if len(sig) == len(set(block)):
                block = new_block
                break
            block = new_block
        # renumber so the start block is 0
        order = {block[0]: 0}
        for s in range(n):
            order.setdefault(block[s], len(order))
        m = len(order)
        trans = [None] * m
        accept = [False] * m
        for s in range(n):
            b = order[block[s]]
            if trans[b] is None:
                trans[b] = [order[block[t]] for t in self.trans[s]]
                accept[b] = self.accept[s]
        return Dfa(self.atoms, trans, accept)

    def live(self) -> list[bool]:
        """States from which an accepting state is reachable."""
        n = len(self.trans)
        rev = [[] for _ in range(n)]
        for s, row in enumerate(self.trans):
            for t in set(row):
                rev[t].append(s)
        live = [False] * n
        stack = [s for s in range(n) if self.accept[s]]
        for s in stack:
            live[s] = True
        while stack:
            s = stack.pop()
            for p in rev[s]:
                if not live[p]:
                    live[p] = True
                    stack.append(p)
        return live

    def to_automaton(self) -> rx.Automaton:
        """The same language as an ``rx.Automaton`` leaf (one class per atom; a regex node that
        ``combine`` and the byte-level automaton builder take as is)."""
        classes = [(self.atoms.intervals[i],) for i in range(len(self.atoms.intervals))]
        return rx.Automaton.from_rows(self.trans, classes, self.accept)

    def accepts(self, text: str) -> bool:
        """Whether the string (of code points) is in the language."""
        state = 0
        for ch in text:
            state = self.trans[state][bisect.bisect_right(self.atoms.starts, ord(ch)) - 1]
        return self.accept[state]

    def is_empty(self) -> bool:
        return not self.live()[0]

    def edges(self) -> dict[int, dict[int, rx.Regex]]:
        """Live-to-live transitions grouped into classes: {src: {dst: class}}."""
        live = self.live()
        out: dict[int, dict[int, rx.Regex]] = {}
        classes: dict[tuple, rx.Regex] = {}  # the same atom sets recur from state to state
        for s, row in enumerate(self.trans):
            if not live[s]:
                continue
            by_dst: dict[int, list[int]] = {}
            for a, t in enumerate(row):
                if live[t]:
                    by_dst.setdefault(t, []).append(a)
            mine = out[s] = {}
            for t, ids in by_dst.items():
                key = tuple(ids)
                c = classes.get(key)
                if c is None:
                    c = classes[key] = self.atoms.to_class(key)
                mine[t] = c
        return out

    def to_regex(self, max_nodes: int = 4000) -> rx.Regex | None:
        """State elimination; None when the regex would exceed ``max_nodes``."""
        if self.is_empty():
            return rx.NOTHING
        if len(self.trans) > 64:
            # state elimination on large automata nests too deeply; tree-like automata (a trie of
            # excluded keys and a universal sink) have a direct regex, else the caller uses rules
            return self._dag_regex(max_nodes)
        edges = self.edges()
        n = len(self.trans)
        START, END = n, n + 1
        g: dict[int, dict[int, rx.Regex]] = {s: dict(d) for s, d in edges.items()}
        g[START] = {0: rx.EMPTY}
        for s in edges:
            if self.accept[s]:
                g[s][END] = rx.alt(g[s].get(END, rx.NOTHING), rx.EMPTY)
        g.setdefault(END, {})
        states = [s for s in edges]
        while states:
            # eliminate the state with the fewest in*out edges
            incoming = {s: [p for p in g if s in g[p] and p != s] for s in states}
            s = min(states, key=lambda q: len(incoming[q]) * len([t for t in g[q] if t != q]))
            states.remove(s)
            loop = g[s].pop(s, None)
            loop_re = rx.star(loop) if loop is not None else rx.EMPTY
            outs = g.pop(s)
            for p in incoming[s]:
                via = g[p].pop(s)
                for t, r in outs.items():
                    new = rx.seq(via, loop_re, r)
                    g[p][t] = rx.alt(g[p][t], new) if t in g[p] else new
            if _size(g) > max_nodes:
                return None
        return g[START].get(END, rx.NOTHING)


    def _dag_regex(self, max_nodes: int) -> rx.Regex | None:
        """Regex of an automaton whose live states form a DAG apart from self-loops:
        ``R(q) = loop(q)* (EMPTY if accepting | class_c R(next_c) ...)``, memoized per state (shared
        sub-regexes). None when a longer cycle exists or the tree size exceeds ``max_nodes``."""
        edges = self.edges()
        order: list[int] = []  # reverse topological order of the live states reachable from 0
        color: dict[int, int] = {}
        stack = [(0, iter(edges.get(0, {})))]
        color[0] = 1
        while stack:
            s, it = stack[-1]
            for t in it:
                if t == s:
                    continue
                c = color.get(t, 0)
                if c == 1:
                    return None  # a cycle through another state
                if c == 0:
                    color[t] = 1
                    stack.append((t, iter(edges.get(t, {}))))
                    break
            else:
                stack.pop()
                color[s] = 2
                order.append(s)
        # accepting states whose only edge is a self-loop (the "anything else" tail of a key region)
        sinks = {s for s in order if self.accept[s] and set(edges.get(s, {})) == {s}}
        if len({id(edges[s][s]) for s in sinks}) > 1 or any(s in edges.get(s, {}) for s in order if s not in sinks):
            return None
        # R(0) = A(0) | B(0) tail*: A = paths ending in acceptance outside the sink, B = paths that
        # enter the sink. One shared tail keeps the Glushkov positions (and the byte DFA's subset
        # construction) linear in the DFA; a tail copy per entry edge multiplied them.
        tail = next((rx.star(edges[s][s]) for s in sinks), None)
        a_re: dict[int, rx.Regex] = {}
        b_re: dict[int, rx.Regex] = {}
        size: dict[int, int] = {}
        depth: dict[int, int] = {}
        for s in order:
            if s in sinks:
                a_re[s], b_re[s], size[s], depth[s] = rx.EMPTY, rx.NOTHING, 1, 0
                continue
            # regex nesting grows with the longest path: deep ones (a 255-character bound) would
            # overrun recursive consumers, and rules serve them as well
            depth[s] = 1 + max((depth[t] for t in edges.get(s, {}) if t != s), default=0)
            if depth[s] > MAX_DAG_DEPTH:
                return None
            a_parts = [rx.EMPTY] if self.accept[s] else []
            b_parts, n = [], 1
            for t, cls in edges.get(s, {}).items():
                if t in sinks:
                    b_parts.append(cls)
                    n += 1
                else:
                    if a_re[t] is not rx.NOTHING:
                        a_parts.append(rx.seq(cls, a_re[t]))
                    if b_re[t] is not rx.NOTHING:
                        b_parts.append(rx.seq(cls, b_re[t]))
                    n += 2 + size[t]
            a_re[s] = rx.alt(*a_parts) if a_parts else rx.NOTHING
            b_re[s] = rx.alt(*b_parts) if b_parts else rx.NOTHING
            size[s] = n
            if n > max_nodes:
                return None
        if 0 in sinks:
            return tail
        out = [a_re[0]]
        if tail is not None and b_re[0] is not rx.NOTHING:
            out.append(rx.seq(b_re[0], tail))
        return rx.alt(*out)


def _size(g) -> int:
    """Expanded (tree) size of all edge regexes: what every consumer that walks the regex pays, even
    though state elimination shares sub-regexes (memoized per node id, so computing it is cheap)."""
    memo: dict[int, int] = {}

    def tree(node) -> int:
        k = id(node)
        got = memo.get(k)
        if got is None:
            if isinstance(node, (rx.Seq, rx.Alt)):
                got = 1 + sum(tree(i) for i in node.items)
            elif isinstance(node, rx.Repeat):
                got = 1 + tree(node.item)
            else:
                got = 1
            memo[k] = got
        return got

    return sum(tree(r) for d in g.values() for r in d.values())


def _finite(node: rx.Regex) -> bool:
    """The regex has no unbounded repeat (a finite language)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, rx.Repeat):
            if n.max is None:
                return False
            stack.append(n.item)
        elif isinstance(n, (rx.Seq, rx.Alt)):
            stack.extend(n.items)
    return True


_COMBINED: dict = {}  # (positive, negative) -> Dfa: a schema asks for the same key region again
COMBINED_CACHE_CELLS = 4_000_000  # transition cells kept (~32 MB of list slots); DFAs are never changed
_combined_cells = [0]
_COMBINED_LOCK = threading.Lock()


def _cells(d: Dfa) -> int:
    return len(d.trans) * len(d.atoms.intervals)


def combine(positive: list, negative: list = ()) -> Dfa:
    """DFA of (intersection of ``positive``) minus (union of ``negative``): regexes or ``Dfa``s (for
    languages whose regex would be huge, e.g. the multiples of 11 in decimal). Memoized: a third
    of service-schema's 738 calls repeat an earlier one."""
    key = (tuple(positive), tuple(negative))  # a Dfa hashes by identity, and the entry keeps it alive
    hit = _COMBINED.get(key)
    if hit is None:
        hit = _combine(positive, negative)
        _remember(_COMBINED, _combined_cells, COMBINED_CACHE_CELLS, key, hit)
    return hit


def _remember(memo: dict, cells: list, limit: int, key, dfa: Dfa) -> None:
    """Keep ``dfa`` in ``memo`` under ``key``, oldest entries out past ``limit`` transition cells
    in all (``cells[0]``); a DFA over a quarter of the limit is not kept."""
    size = _cells(dfa)
    if size <= limit // 4:
        # kept rows become tuples: tuples of ints leave the cyclic GC, lists never do, and the two
        # memos' up to 8M list slots were what made a full collection slow (~120 ms with 70k rows
        # alive after 400 MaskBench compiles, inside whichever compile or mask it landed in)
        if type(dfa.trans) is not tuple:
            dfa.trans = tuple(map(tuple, dfa.trans))
            dfa.accept = tuple(dfa.accept)
        with _COMBINED_LOCK:  # compiles may run in threads
            while memo and cells[0] + size > limit:
                cells[0] -= _cells(memo.pop(next(iter(memo))))
            if key not in memo:
                memo[key] = dfa
                cells[0] += size


_ANY_STRING = rx.star(rx.any_char())


def _single_string(positive: list, negative: list) -> rx.Regex | None:
    """When a positive is one literal string (an object's "some member named k" against its
    declared keys), the combination is that string or nothing: each other part is a membership
    test, not a product. (strmprivacy's 1,315 such key regions were 27 s of products.) None when no
    positive is a literal."""
    text = next((t for t in (rx.literal_text(p) for p in positive if not isinstance(p, Dfa)) if t is not None), None)
    if text is None:
        return None

    def holds(r) -> bool:
        if isinstance(r, Dfa):
            return r.accepts(text)
        t = rx.literal_text(r)
        if t is not None:
            return t == text
        if r == _ANY_STRING and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return True
        return Dfa.from_regex(r, Atoms([r, rx.literal(text), rx.any_char()])).accepts(text)

    ok = all(holds(p) for p in positive) and not any(holds(n) for n in negative)
    return rx.literal(text) if ok else rx.alt()


_EMPTINESS: dict = {}  # (positive, negative) -> bool, for ``combination_is_empty``
EMPTINESS_CACHE_ENTRIES = 1 << 16


def combination_is_empty(positive: list, negative: list = ()) -> bool:
    """Whether ``combine(positive, negative)`` is the empty language, without building it: one
    breadth-first search over the tuples of the parts' states (a numpy step per level) that drops a
    tuple as soon as a positive part can no longer accept or a negative part accepts every
    continuation, and stops at the first accepting tuple. Disjointness questions ("can a string
    match both discriminating patterns?") were ~60% of service-schema's compile as minimized
    products (``combine(...).is_empty()``, which this equals; tested). A search past the product
    budget falls back to ``combine``."""
    key = (tuple(positive), tuple(negative))
    hit = _EMPTINESS.get(key)
    if hit is None:
        done = _COMBINED.get(key)
        hit = done.is_empty() if done is not None else _search_emptiness(positive, negative)
        if hit is None:
            hit = combine(positive, negative).is_empty()
        with _COMBINED_LOCK:
            if len(_EMPTINESS) >= EMPTINESS_CACHE_ENTRIES:
                _EMPTINESS.clear()
            _EMPTINESS[key] = hit
    return hit


def _search_emptiness(positive: list, negative: list) -> bool | None:
    """``combination_is_empty``'s search; None when it exceeds the product budget."""
    atoms = _common_atoms(positive, negative)
    # every part as a DFA that must accept (negatives complemented), with the states from which
    # it still can
    machines = [_dfa_over(r, atoms) for r in positive]
    machines += [_dfa_over(r, atoms).complement() for r in _negative_parts(negative)]
    if not machines:
        return False  # the intersection of nothing: every string
    tables = [np.asarray(m.trans, dtype=np.int64) for m in machines]
    accepts = [np.asarray(m.accept, dtype=bool) for m in machines]
    lives = [np.asarray(m.live(), dtype=bool) for m in machines]
    sizes = [len(t) for t in tables]
    strides, total = [], 1
    for n in sizes:
        strides.append(total)
        total *= n
    if total >= 1 << 62:
        return None
    if not all(live[0] for live in lives):
        return True
    if all(acc[0] for acc in accepts):
        return False
    seen = {0}
    frontier = np.zeros((1, len(tables)), dtype=np.int64)
    while len(frontier):
        codes = sum(t[frontier[:, i]] * strides[i] for i, t in enumerate(tables))
        fresh = [c for c in np.unique(codes).tolist() if c not in seen]
        seen.update(fresh)
        if len(seen) > MAX_PRODUCT_STATES:
            return None
        fresh = np.asarray(fresh, dtype=np.int64)
        states = np.stack([(fresh // strides[i]) % sizes[i] for i in range(len(tables))], axis=1) \
            if len(fresh) else np.zeros((0, len(tables)), dtype=np.int64)
        alive = np.logical_and.reduce([lives[i][states[:, i]] for i in range(len(tables))])
        states = states[alive]
        if np.logical_and.reduce([accepts[i][states[:, i]] for i in range(len(tables))]).any():
            return False
        frontier = states
    return True


def _common_atoms(positive, negative) -> Atoms:
    parts = list(positive) + list(negative)
    classes = [p for p in parts if not isinstance(p, Dfa)]
    for p in parts:
        if isinstance(p, Dfa):  # the common atoms must refine every given DFA's atoms
            classes.extend(p.atoms.to_class({i}) for i in range(len(p.atoms.intervals)))
    return Atoms(classes + [rx.any_char()])


_OVER: dict = {}  # (regex, atom intervals) -> Dfa, bounded like _COMBINED
OVER_CACHE_CELLS = 4_000_000
_over_cells = [0]


def _dfa_over(p, atoms: Atoms) -> Dfa:
    """``p`` (a regex or a Dfa) as a DFA over ``atoms``. Regexes are memoized by content: the
    combinations of one schema repeat their parts (Handwritten allone4 built the same 909-state
    multipleOf automaton 29 times, ~0.2 s each, under different negations)."""
    if isinstance(p, Dfa):
        return p.remap(atoms)
    key = (p, tuple(atoms.intervals))
    hit = _OVER.get(key)
    if hit is None:
        hit = Dfa.from_regex(p, atoms)
        _remember(_OVER, _over_cells, OVER_CACHE_CELLS, key, hit)
        return hit
    # (equal atoms, maybe another Atoms object: the caller's, sharing the never-changed rows)
    return hit if hit.atoms is atoms else Dfa(atoms, hit.trans, hit.accept, hit.minimal)


def _negative_parts(negative) -> list:
    """The negatives as ``combine`` subtracts them: finite regexes (literal keys) in alternations of
    NEGATIVE_GROUP, the rest one by one."""
    finite = [r for r in negative if not isinstance(r, Dfa) and _finite(r)]
    groups = [rx.alt(*finite[i:i + NEGATIVE_GROUP]) for i in range(0, len(finite), NEGATIVE_GROUP)]
    return groups + [r for r in negative if isinstance(r, Dfa) or not _finite(r)]


def _combine(positive: list, negative: list = ()) -> Dfa:
    atoms = _common_atoms(positive, negative)
    single = _single_string(positive, negative)
    if single is not None:
        return Dfa.from_regex(single, atoms)

    acc = _dfa_over(positive[0], atoms) if positive else Dfa.from_regex(rx.star(rx.any_char()), atoms)
    for r in positive[1:]:
        acc = acc.product(_dfa_over(r, atoms), both=True)
    # regex negatives in groups as one alternation each: an object's "any key but these 300
    # declared ones" is then a few products with a trie-shaped DFA instead of 300 (each minimized)
    # (only finite languages such as literal keys: an alternation of infinite ones, e.g. several
    # remainder automata, can be far larger than each of them)
    for r in _negative_parts(negative):
        acc = acc.product(_dfa_over(r, atoms).complement(), both=True)
    return acc if acc.minimal else acc.minimize()


def warm_up() -> None:
    """Load this module's numba functions (the product search, Hopcroft) from numba's disk cache
    now: a process's first product otherwise pays ~14 ms for it inside some compile."""
    atoms = Atoms([rx.literal("ab"), rx.any_char()])
    words = Dfa.from_regex(rx.star(rx.literal("ab")), atoms)
    words.product(Dfa.from_regex(rx.star(rx.any_char()), atoms).complement(), both=False)
