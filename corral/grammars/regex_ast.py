"""Regex AST over Unicode code points: the terminal language of the Grammar IR.

Every front-end (regex strings, Lark terminals, JSON Schema) builds terminals from these nodes;
``corral.automata`` turns them into byte-level DFAs (UTF-8 expansion happens there, not here).
Nodes are immutable, hashable and structurally comparable, so identical terminals are shared.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Union

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)  # not encodable in UTF-8, never part of any class


class _Node:
    """Structural hash computed once per node: terminals are deep trees used as dict keys."""

    __slots__ = ()

    def __hash__(self) -> int:
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((type(self).__name__,) + tuple(getattr(self, f) for f in self.__dataclass_fields__))
            object.__setattr__(self, "_hash", h)
        return h

    def __reduce__(self):  # never pickle the cached hash: str hashes differ between processes
        return (type(self), tuple(getattr(self, f) for f in self.__dataclass_fields__))


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


Regex = Union[Chars, Seq, Alt, Repeat]

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


def literal(text: str) -> Regex:
    return seq(*(Chars(((ord(c), ord(c)),)) for c in text))


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
    raise TypeError(node)
