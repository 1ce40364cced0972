"""Regex AST over Unicode code points: the terminal language of the Grammar IR.

Every front-end (regex strings, Lark terminals, JSON Schema) builds terminals from these nodes;
``corral.automata`` turns them into byte-level DFAs (UTF-8 expansion happens there, not here).
Nodes are immutable, hashable and structurally comparable, so identical terminals are shared.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Union

from corral.gc_untrack import untrack

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)  # not encodable in UTF-8, never part of any class


class _Node:
    """Structural hash computed once per node: terminals are deep trees used as dict keys."""

    __slots__ = ()

    def __hash__(self) -> int:
        fields = self.__dict__
        h = fields.get("_hash")
        if h is None:
            h = hash((type(self).__name__,) + tuple(getattr(self, f) for f in self.__dataclass_fields__))
            object.__setattr__(self, "_hash", h)
            # the instance dict this materializes holds the node's fields and the hash: acyclic,
            # like the node (untracked at __post_init__), but the GC kept tracking it (26k of the
            # 104k objects a full collection visited after 400 MaskBench compiles)
            untrack(fields)
        return h

    def __reduce__(self):  # never pickle the cached hash: str hashes differ between processes
        return (type(self), tuple(getattr(self, f) for f in self.__dataclass_fields__))

    def __post_init__(self) -> None:
        # immutable trees of nodes built before them: never in a cycle, so out of the cyclic GC's
        # bookkeeping (~95k nodes alive after 150 JsonSchemaStore schemas; corral/gc_untrack.py).
        # Their tuples of child nodes too: CPython untracks a tuple only when its items are atoms or
        # untracked tuples, never when they are other (even untracked) objects (~30k such tuples
        # after 400 MaskBench compiles)
        untrack(self)
        items = getattr(self, "items", None)
        if type(items) is tuple:
            untrack(items)


@dataclass(frozen=True)
class Chars(_Node):
    __hash__ = _Node.__hash__
    """One code point from a set of inclusive ranges (sorted, disjoint, non-adjacent, no surrogates)."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Seq(_Node):
    __hash__ = _Node.__hash__
    """Concatenation. ``Seq(())`` matches the empty string."""

    items: tuple["Regex", ...]


@dataclass(frozen=True)
class Alt(_Node):
    __hash__ = _Node.__hash__
    """Alternation. ``Alt(())`` matches nothing."""

    items: tuple["Regex", ...]


@dataclass(frozen=True)
class Repeat(_Node):
    __hash__ = _Node.__hash__
    """``item{min,max}``; ``max=None`` is unbounded."""

    item: "Regex"
    min: int
    max: int | None


@dataclass(frozen=True)
class Automaton(_Node):
    __hash__ = _Node.__hash__
    """A regular language given by its code-point DFA: from state ``s``, a code point in
    ``classes[c]`` (disjoint range sets) leads to ``trans[s][c]`` (-1: no transition); state 0
    starts; ``accepting[s]``. Front-ends that compute an automaton (the JSON Schema compiler's key
    regions, docs/automata.md) hand it over as is: turning it into a regex and back costs ~20x more.
    Wherever a regex is needed instead (inside a Seq, export, sampling) ``as_regex()`` is used.
    ``table`` holds the transitions as int32 bytes, row-major (cheap to hash, compare and load)."""

    table: bytes
    classes: tuple[tuple[tuple[int, int], ...], ...]
    accepting: tuple[bool, ...]
    minimal: bool = False  # the builder guarantees it: the byte automaton skips minimization

    @staticmethod
    def from_rows(rows, classes, accepting, minimal: bool = False) -> "Automaton":
        import numpy as np  # noqa: PLC0415 - the AST itself stays numpy-free
        table = np.asarray(rows, dtype=np.int32).reshape(len(accepting), len(classes))
        return Automaton(table.tobytes(), tuple(map(tuple, classes)), tuple(map(bool, accepting)), bool(minimal))

    @property
    def trans(self) -> tuple[tuple[int, ...], ...]:
        # tuples of ints, not lists: the cyclic GC untracks them, where ~150k cached row lists made
        # every full collection (a mask-time pause) scan them
        cached = self.__dict__.get("_rows")
        if cached is None:
            import numpy as np  # noqa: PLC0415
            rows = np.frombuffer(self.table, dtype=np.int32).reshape(len(self.accepting), len(self.classes))
            cached = tuple(map(tuple, rows.tolist()))
            object.__setattr__(self, "_rows", cached)
        return cached

    def as_regex(self) -> "Regex":
        """The same language as a regex (state elimination; may be large: export and tests only)."""
        cached = self.__dict__.get("_regex")
        if cached is None:
            cached = _automaton_regex(self)
            object.__setattr__(self, "_regex", cached)
        return cached

    def live_states(self) -> list[bool]:
        """Per state: some accepting state is reachable from it."""
        cached = self.__dict__.get("_live")
        if cached is None:
            preds: list[list[int]] = [[] for _ in self.trans]
            for s, row in enumerate(self.trans):
                for t in row:
                    if t >= 0:
                        preds[t].append(s)
            cached = list(self.accepting)
            stack = [s for s, a in enumerate(cached) if a]
            while stack:
                for p in preds[stack.pop()]:
                    if not cached[p]:
                        cached[p] = True
                        stack.append(p)
            object.__setattr__(self, "_live", cached)
        return cached

    def edges(self, s: int) -> dict[int, tuple[tuple[int, int], ...]]:
        """Live successors of ``s`` with the code points leading to each."""
        live = self.live_states()
        out: dict[int, list[tuple[int, int]]] = {}
        for c, t in enumerate(self.trans[s]):
            if t >= 0 and live[t]:
                out.setdefault(t, []).extend(self.classes[c])
        return {t: normalize_ranges(rs) for t, rs in out.items()}


Regex = Union[Chars, Seq, Alt, Repeat, Automaton]

EMPTY = Seq(())
NOTHING = Alt(())


def normalize_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort, merge and strip surrogates from inclusive code point ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted((int(a), int(b)) for a, b in ranges if a <= b):
        lo, hi = max(lo, 0), min(hi, MAX_CODE_POINT)
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    cut: list[tuple[int, int]] = []
    s_lo, s_hi = SURROGATES
    for lo, hi in out:
        if hi < s_lo or lo > s_hi:
            cut.append((lo, hi))
            continue
        if lo < s_lo:
            cut.append((lo, s_lo - 1))
        if hi > s_hi:
            cut.append((s_hi + 1, hi))
    return tuple(cut)


def chars(ranges: Iterable[tuple[int, int]]) -> Regex:
    rs = normalize_ranges(ranges)
    return Chars(rs) if rs else NOTHING


def char_set(text: str) -> Regex:
    """Any one of the characters of ``text``."""
    return chars((ord(c), ord(c)) for c in text)


def char_range(lo: str, hi: str) -> Regex:
    return chars([(ord(lo), ord(hi))])


def any_char() -> Regex:
    """Any Unicode scalar value (what ``.`` with DOTALL means)."""
    return chars([(0, MAX_CODE_POINT)])


def negate(node: Chars | Regex) -> Regex:
    """Complement of a character class within all scalar values."""
    if isinstance(node, Alt) and not node.items:
        return any_char()
    if not isinstance(node, Chars):
        raise TypeError("negate() takes a character class")
    out, prev = [], 0
    for lo, hi in node.ranges:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CODE_POINT:
        out.append((prev, MAX_CODE_POINT))
    return chars(out)


def union_chars(*nodes: Regex) -> Regex:
    rs: list[tuple[int, int]] = []
    for n in nodes:
        if isinstance(n, Chars):
            rs.extend(n.ranges)
        elif not (isinstance(n, Alt) and not n.items):
            raise TypeError("union_chars() takes character classes")
    return chars(rs)


@lru_cache(maxsize=1 << 16)
def literal(text: str) -> Regex:
    # (memoized: an object's declared keys are negated once per key region, and a large schema
    # made ~74k of them, 1.4 s of a 13 s compile; nodes are immutable, so sharing them is safe)
    return seq(*(Chars(((ord(c), ord(c)),)) for c in text))


def literal_text(node: Regex) -> str | None:
    """The string ``node`` matches when it is a literal (``literal(text)`` inverted), else None."""
    items = node.items if isinstance(node, Seq) else (node,)
    out = []
    for it in items:
        if not (isinstance(it, Chars) and len(it.ranges) == 1 and it.ranges[0][0] == it.ranges[0][1]):
            return None
        out.append(chr(it.ranges[0][0]))
    return "".join(out)


def seq(*items: Regex) -> Regex:
    flat: list[Regex] = []
    for it in items:
        if isinstance(it, Seq):
            flat.extend(it.items)
        elif isinstance(it, Alt) and not it.items:
            return NOTHING
        else:
            flat.append(it)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def alt(*items: Regex) -> Regex:
    flat: list[Regex] = []
    seen: set[Regex] = set()  # nodes hash structurally (cached): O(n) dedupe for large enums
    for it in items:
        parts = it.items if isinstance(it, Alt) else (it,)
        for p in parts:
            if p not in seen:
                seen.add(p)
                flat.append(p)
    # merge single-character alternatives into one class: smaller automata
    classes = [p for p in flat if isinstance(p, Chars)]
    if len(classes) > 1:
        merged = union_chars(*classes)
        rest = [p for p in flat if not isinstance(p, Chars)]
        flat = [merged] + rest
    return flat[0] if len(flat) == 1 else Alt(tuple(flat))


def repeat(item: Regex, lo: int, hi: int | None) -> Regex:
    if hi is not None and hi < lo:
        return NOTHING
    if hi == 0 or item == EMPTY:
        return EMPTY
    if lo == 1 and hi == 1:
        return item
    return Repeat(item, lo, hi)


def star(item: Regex) -> Regex:
    return repeat(item, 0, None)


def plus(item: Regex) -> Regex:
    return repeat(item, 1, None)


def optional(item: Regex) -> Regex:
    return repeat(item, 0, 1)


def _class_to_python(ranges: tuple[tuple[int, int], ...]) -> str:
    # Always a bracketed class, with \U escapes except for the class metacharacters: valid for `re`
    # and also after Lark un-escapes \U sequences inside its /regexp/ literals.
    def esc(cp: int) -> str:
        return "\\" + chr(cp) if chr(cp) in "\\]^-[" else "\\U%08x" % cp

    body = "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges)
    return f"[{body}]"


def to_python_regex(node: Regex) -> str:
    """A Python ``re`` pattern for the same language (for oracles and export). Use with re.DOTALL."""
    if isinstance(node, Automaton):
        return to_python_regex(node.as_regex())
    if isinstance(node, Chars):
        return _class_to_python(node.ranges)
    if isinstance(node, Seq):
        return "".join(f"(?:{to_python_regex(i)})" for i in node.items)
    if isinstance(node, Alt):
        if not node.items:
            return "(?!)"
        return "(?:" + "|".join(to_python_regex(i) for i in node.items) + ")"
    if isinstance(node, Repeat):
        hi = "" if node.max is None else str(node.max)
        return f"(?:{to_python_regex(node.item)}){{{node.min},{hi}}}"
    raise TypeError(node)


def min_length(node: Regex) -> int:
    """Length in code points of the shortest string (a large number when the language is empty)."""
    cached = node.__dict__.get("_min_length")
    if cached is None:
        cached = _min_length(node)
        object.__setattr__(node, "_min_length", cached)
    return cached


def _min_length(node: Regex) -> int:
    if isinstance(node, Chars):
        return 1
    if isinstance(node, Seq):
        return sum(min_length(i) for i in node.items)
    if isinstance(node, Alt):
        return min((min_length(i) for i in node.items), default=1 << 30)
    if isinstance(node, Repeat):
        return node.min * min_length(node.item) if node.min else 0
    if isinstance(node, Automaton):
        # breadth-first from the start to the nearest accepting state, a frontier at a time over
        # the table (the rows as Python tuples cost more than the search: ~40k per median compile)
        import numpy as np  # noqa: PLC0415 - the AST itself stays numpy-free
        rows = np.frombuffer(node.table, dtype=np.int32).reshape(len(node.accepting), len(node.classes))
        accepting = np.array(node.accepting, dtype=bool)
        seen = np.zeros(len(accepting), dtype=bool)
        frontier = np.zeros(1, dtype=np.int64)
        seen[0] = True
        depth = 0
        while frontier.size:
            if accepting[frontier].any():
                return depth
            nxt = np.unique(rows[frontier])
            nxt = nxt[nxt >= 0]
            frontier = nxt[~seen[nxt]]
            seen[frontier] = True
            depth += 1
        return 1 << 30
    raise TypeError(node)


@lru_cache(maxsize=65536)
def position_count(node: Regex) -> int:
    """Number of Glushkov positions ``node`` unrolls to (bounded repeats copied): the size an
    automaton construction starts from, checked up front to refuse huge expansions."""
    if isinstance(node, Chars):
        return 1
    if isinstance(node, (Seq, Alt)):
        return sum(position_count(i) for i in node.items)
    if isinstance(node, Repeat):
        copies = node.min + 1 if node.max is None else max(node.max, 1)
        return copies * position_count(node.item)
    if isinstance(node, Automaton):  # its states: what the budgets of a construction count
        return len(node.accepting)
    raise TypeError(node)


def non_empty(node: Regex) -> Regex:
    """The same language without the empty string."""
    if isinstance(node, Chars):
        return node
    if isinstance(node, Seq):
        if not node.items:
            return NOTHING
        return alt(*(seq(*node.items[:i], non_empty(it), *node.items[i + 1:]) for i, it in enumerate(node.items)))
    if isinstance(node, Alt):
        return alt(*(non_empty(i) for i in node.items))
    if isinstance(node, Repeat):
        if node.max == 0:
            return NOTHING
        rest_min = 0 if min_length(node.item) == 0 else max(node.min - 1, 0)
        rest_max = None if node.max is None else node.max - 1
        return seq(non_empty(node.item), repeat(node.item, rest_min, rest_max))
    if isinstance(node, Automaton):
        return non_empty(node.as_regex())
    raise TypeError(node)


def _automaton_regex(node: Automaton) -> Regex:
    """State elimination (fewest in x out edges first) over the live states."""
    live = node.live_states()
    if not live[0]:
        return NOTHING
    start, end = -1, -2
    g: dict[int, dict[int, Regex]] = {start: {0: EMPTY}, end: {}}
    for s in range(len(node.trans)):
        if live[s]:
            g[s] = {t: chars(rs) for t, rs in node.edges(s).items()}
            if node.accepting[s]:
                g[s][end] = EMPTY
    incoming: dict[int, set[int]] = {s: set() for s in g}
    for p, outs in g.items():
        for t in outs:
            if t != p:
                incoming[t].add(p)
    remaining = set(g) - {start, end}
    while remaining:
        s = min(remaining, key=lambda q: (len(incoming[q]) * len(g[q]), q))
        remaining.discard(s)
        loop = g[s].pop(s, None)
        loop_re = star(loop) if loop is not None else EMPTY
        outs = g.pop(s)
        for t in outs:
            incoming[t].discard(s)
        for p in incoming.pop(s):
            via = g[p].pop(s)
            for t, r in outs.items():
                new = seq(via, loop_re, r)
                g[p][t] = alt(g[p][t], new) if t in g[p] else new
                if t != p:
                    incoming[t].add(p)
    return g[start].get(end, NOTHING)
