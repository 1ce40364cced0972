"""The JSON spellings of a code-point DFA's strings, built directly as an automaton.

``strings.quoted(regex)`` spells a decoded-string regex as a regex: each class becomes its raw,
short-escape and ``\\uXXXX`` (and surrogate pair) alternatives. For key regions ("any key but
these 40 declared ones") the decoded language is a code-point DFA (``cpdfa``); turning it into a
regex, spelling it and building the byte DFA back from ~7,000 Glushkov positions took 15-45 ms per
terminal, paid in the first mask of every object with undeclared keys allowed. Here the spelling
automaton comes straight from the DFA (2-3 ms, docs/automata.md):

* body state ``B(s)`` per live DFA state: raw code points (those JSON allows raw) go to
  ``B(δ(s, c))``; ``\\`` goes to an escape state; when ``s`` accepts, ``"`` ends the string;
* the escape state: short escapes (``\\n``, ``\\"``...) to ``B(δ(s, c))``; ``u`` to a hex-digit
  tree deciding the code point 4 digits at a time (either case), keyed by what the remaining
  digits can still lead to, so equal subtrees are one state (for most states everything beyond the
  first digit or two is "any digits -> one target");
* a high surrogate escape (D800-DBFF) continues with ``\\u`` and a low one (DC00-DFFF) naming the
  astral code point; a lone surrogate never decodes and has no transition.

The decoding is unique (a homomorphism), so the result is deterministic and accepts exactly the
spellings of the DFA's strings; ``corral.automata`` minimizes and expands it to bytes.
"""
from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from functools import lru_cache
from itertools import chain

import numpy as np

from corral.errors import CompileBudgetError
from corral.grammars import regex_ast as rx
from corral.grammars.json_schema import cpdfa
from corral.grammars.json_schema.strings import RAW_FORBIDDEN, SHORT_ESCAPES

MAX_SPELLING_STATES = 60_000
_HIGH, _LOW, _ASTRAL = (0xD800, 0xDBFF), (0xDC00, 0xDFFF), 0x10000
_DIGIT_RANGES = tuple(
    ((ord(c), ord(c)),) if not c.isalpha() else ((ord(c.upper()), ord(c.upper())), (ord(c), ord(c)))
    for c in "0123456789abcdef")
_RAW_ALLOWED = rx.negate(rx.chars(RAW_FORBIDDEN)).ranges
_DIGIT_POINTS = tuple(tuple(cp for lo, hi in ranges for cp in range(lo, hi + 1)) for ranges in _DIGIT_RANGES)


def _clip(runs, lo: int, hi: int, shift: int = 0) -> tuple:
    """The part of ``runs`` (sorted (lo, hi, target)) inside [lo, hi], moved by ``-shift``."""
    out = []
    i = bisect.bisect_left(runs, (lo,)) - 1
    for a, b, t in runs[max(i, 0):]:
        if a > hi:
            break
        if b < lo:
            continue
        out.append((max(a, lo) - shift, min(b, hi) - shift, t))
    return tuple(out)


def _merge(runs) -> list:
    out: list = []
    for a, b, t in runs:
        if out and out[-1][2] == t and out[-1][1] + 1 == a:
            out[-1] = (out[-1][0], b, t)
        else:
            out.append((a, b, t))
    return out


class _Builder:
    def __init__(self, d: cpdfa.Dfa):
        self.d = d
        self.live = d.live()
        self.edges: list[list[tuple[tuple, int]]] = []  # per state: (code point ranges, target)
        self.accepting: list[bool] = []
        self.body: dict[int, int] = {}
        self.memo: dict = {}
        self.uniform: dict = {}  # (digits left + 1, target) -> hex state leading there for any value
        self.todo: list[int] = []

    def new(self, accepting: bool = False) -> int:
        if len(self.edges) >= MAX_SPELLING_STATES:
            raise CompileBudgetError(f"JSON spelling automaton exceeds {MAX_SPELLING_STATES} states")
        self.edges.append([])
        self.accepting.append(accepting)
        return len(self.edges) - 1

    def body_state(self, s: int) -> int:
        got = self.body.get(s)
        if got is None:
            got = self.body[s] = self.new()
            self.todo.append(s)
        return got

    def runs(self, s: int) -> list:
        """(lo, hi, live target) over code points, merged."""
        row, live = self.d.trans[s], self.live
        return _merge((lo, hi, row[a]) for a, (lo, hi) in enumerate(self.d.atoms.intervals) if live[row[a]])

    def fill_body(self, s: int, close_to: int) -> None:
        me = self.body[s]
        runs = self.runs(s)
        by_target: dict[int, list] = {}
        for lo, hi, t in runs:
            for a, b in _RAW_ALLOWED:
                if a <= hi and b >= lo:
                    by_target.setdefault(t, []).append((max(a, lo), min(b, hi)))
        for t, ranges in by_target.items():
            rs = rx.normalize_ranges(ranges)
            if rs:
                self.edges[me].append((rs, self.body_state(t)))
        if self.d.accept[s]:
            self.edges[me].append((((0x22, 0x22),), close_to))
        if runs:
            self.edges[me].append((((0x5C, 0x5C),), self.escape_state(runs)))

    def escape_state(self, runs: list) -> int:
        key = ("esc", tuple(runs))
        got = self.memo.get(key)
        if got is not None:
            return got
        me = self.memo[key] = self.new()
        starts = [a for a, _, _ in runs]
        for cp, letter in SHORT_ESCAPES.items():
            i = bisect.bisect_right(starts, cp) - 1
            if i >= 0 and runs[i][1] >= cp:
                self.edges[me].append((((ord(letter), ord(letter)),), self.body_state(runs[i][2])))
        values = self.bmp_values(runs)
        if values:
            self.edges[me].append((((0x75, 0x75),), self.hex_state(4, values)))
        return me

    def bmp_values(self, runs: list) -> tuple:
        """What each 4-digit escape value leads to: ("B", state) for a BMP code point, ("L", runs of
        the astral window) for a high surrogate, nothing for a low one."""
        out = [(a, b, ("B", t)) for a, b, t in _clip(runs, 0, _HIGH[0] - 1)]
        astral = _clip(runs, _ASTRAL, rx.MAX_CODE_POINT)
        if astral:
            # one window of 1024 code points per high surrogate; windows without a run boundary
            # inside are uniform, so only windows holding a boundary are cut individually
            cuts = sorted({(a - _ASTRAL) >> 10 for a, _, _ in astral} | {(b - _ASTRAL) >> 10 for _, b, _ in astral})
            windows = []
            prev = 0
            for w in cuts:
                if prev < w:
                    windows.append((prev, w - 1))
                windows.append((w, w))
                prev = w + 1
            if prev <= 1023:
                windows.append((prev, 1023))
            high = []
            for w0, w1 in windows:
                base = _ASTRAL + (w0 << 10)
                # a run of windows without boundaries lies inside one run (or one gap)
                inner = _clip(astral, base, base + 1023, base) if w0 == w1 else (
                    tuple((0, 1023, t) for _, _, t in _clip(astral, base, base)))
                if inner:
                    high.append((_HIGH[0] + w0, _HIGH[0] + w1, ("L", inner)))
            out.extend(_merge(high))
        out.extend((a, b, ("B", t)) for a, b, t in _clip(runs, _LOW[1] + 1, 0xFFFF))
        return tuple(out)

    def hex_state(self, k: int, values: tuple) -> int:
        """Reads ``k`` more hex digits; ``values`` (relative to 0) says where each value leads."""
        key = ("hex", k, values)
        got = self.memo.get(key)
        if got is not None:
            return got
        me = self.memo[key] = self.new()
        width = 16 ** (k - 1)
        sub_width = width - 1
        by_target: dict[int, list] = {}
        partial: set = set()
        for a, b, t in values:
            first, last = -(-a // width), (b + 1) // width - 1
            if first <= last:
                # digits this run covers whole (most digits of most states): one subtree per target
                if k == 1:
                    target = self.leaf(t)
                else:
                    target = self.uniform.get((k, t))
                    if target is None:
                        target = self.uniform[(k, t)] = self.hex_state(k - 1, ((0, sub_width, t),))
                ranges = by_target.setdefault(target, [])
                for digit in range(first, last + 1):
                    ranges.extend(_DIGIT_RANGES[digit])
            if a % width:
                partial.add(a // width)
            if (b + 1) % width:
                partial.add(b // width)
        for digit in sorted(partial):  # digits holding a run boundary: their own subtree
            lo = digit * width
            target = self.hex_state(k - 1, _clip(values, lo, lo + sub_width, lo))
            by_target.setdefault(target, []).extend(_DIGIT_RANGES[digit])
        for target, ranges in by_target.items():
            self.edges[me].append((tuple(ranges), target))
        return me

    def leaf(self, what) -> int:
        kind, arg = what
        if kind == "B":
            return self.body_state(arg)
        key = ("low", arg)
        got = self.memo.get(key)
        if got is not None:
            return got
        me = self.memo[key] = self.new()
        backslash = self.new()
        self.edges[me].append((((0x5C, 0x5C),), backslash))
        low_values = tuple((a + _LOW[0], b + _LOW[0], ("B", t)) for a, b, t in arg)
        self.edges[backslash].append((((0x75, 0x75),), self.hex_state(4, low_values)))
        return me


_SPELLED_CACHE: OrderedDict = OrderedDict()  # what was spelled -> its spelling automaton (or budget error)
_SPELLED_CACHE_BYTES = 64 << 20
_spelled_cache_bytes = [0]
_SPELLED_LOCK = threading.Lock()


def _cached_build(key, build) -> rx.Automaton:
    """``build()``, memoized process-wide under ``key`` (least recently used first out, bounded by
    the automata's table bytes; compiles may run in threads). A budget error is remembered too."""
    with _SPELLED_LOCK:
        hit = _SPELLED_CACHE.get(key)
        if hit is not None:
            _SPELLED_CACHE.move_to_end(key)
    if hit is None:
        try:
            hit = build()
        except CompileBudgetError as e:
            hit = e
        size = len(hit.table) if isinstance(hit, rx.Automaton) else 0
        with _SPELLED_LOCK:
            if key not in _SPELLED_CACHE:
                _SPELLED_CACHE[key] = hit
                _spelled_cache_bytes[0] += size
                while len(_SPELLED_CACHE) > 1 and _spelled_cache_bytes[0] > _SPELLED_CACHE_BYTES:
                    _, old = _SPELLED_CACHE.popitem(last=False)
                    _spelled_cache_bytes[0] -= len(old.table) if isinstance(old, rx.Automaton) else 0
    if isinstance(hit, CompileBudgetError):
        raise CompileBudgetError(str(hit))
    return hit


def quoted_automaton_cached(d: cpdfa.Dfa) -> rx.Automaton:
    """``quoted_automaton(d)``, memoized process-wide by the DFA's content. Objects of different
    schemas often declare the same keys: on every 10th MaskBench schema, 1,887 of 2,886 key regions
    were distinct, and one costs ~8 ms to spell at the median."""
    key = ("dfa", tuple(map(tuple, d.trans)), tuple(d.accept), tuple(d.atoms.intervals))
    return _cached_build(key, lambda: quoted_automaton(d))


def quoted_automaton(d: cpdfa.Dfa, suffix: rx.Regex | None = None) -> rx.Automaton:
    """``"`` + the JSON spellings of ``d``'s strings + ``"`` (+ ``suffix``) as one automaton."""
    b = _Builder(d)
    start = b.new()
    if suffix is not None:
        sd = _suffix_dfa(suffix)
        s_live = sd.live()
        s_ids = {s: b.new(sd.accept[s]) for s in range(len(sd.trans)) if s_live[s]}
        for s, me in s_ids.items():
            by_target: dict[int, list] = {}
            for a, t in enumerate(sd.trans[s]):
                if t in s_ids:
                    by_target.setdefault(s_ids[t], []).append(sd.atoms.intervals[a])
            b.edges[me].extend((rx.normalize_ranges(rs), t) for t, rs in by_target.items())
        close_to = s_ids.get(0)
        if close_to is None:  # an empty suffix language: nothing is accepted
            close_to = b.new()
    else:
        close_to = b.new(True)
    if b.live[0]:
        b.edges[start].append((((0x22, 0x22),), b.body_state(0)))
    while b.todo:
        b.fill_body(b.todo.pop(), close_to)
    return _tabulate(b.edges, b.accepting)


def _spelled_length(ch: str) -> int:
    """Code points of the shortest JSON spelling of ``ch`` inside a string."""
    cp = ord(ch)
    if any(a <= cp <= b for a, b in _RAW_ALLOWED):
        return 1
    return 2 if cp in SHORT_ESCAPES else 6


def _text_spelled_length(text: str) -> int:
    """Code points of the shortest JSON spelling of ``text`` (without its quotes): its length when
    every character is written raw (the common case, one C-level check), else per character."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return len(text)
    return sum(map(_spelled_length, text))


def _with_min_length(auto: rx.Automaton, length: int) -> rx.Automaton:
    """``auto`` with its shortest match length recorded (``rx.min_length`` would search for it:
    ~0.1 ms an automaton, a key region and a literal per object key in every compile)."""
    object.__setattr__(auto, "_min_length", length)
    return auto


@lru_cache(maxsize=1 << 12)
def _char_cells(cp: int) -> tuple:
    """(states one character of a literal adds, its cells ((code point, from, to), ...)): the
    states numbered from 0, the body state after the character; ``from`` -1 is the body state
    before it. The raw path, the short escape, ``\\u`` + four hex digits (either case) or a
    surrogate pair, as ``_literal_automaton_edges`` spells them (~37 % of a key's build was
    recomputing these per character)."""
    n = [1]
    cells: list = []

    def new() -> int:
        n[0] += 1
        return n[0] - 1

    def hex_chain(start: int, value: int, end: int) -> None:
        cur = start
        for k in range(4):
            nxt = end if k == 3 else new()
            cells.extend((c, cur, nxt) for c in _DIGIT_POINTS[(value >> (12 - 4 * k)) & 0xF])
            cur = nxt

    if any(a <= cp <= b for a, b in _RAW_ALLOWED):
        cells.append((cp, -1, 0))
    escape = new()
    cells.append((0x5C, -1, escape))
    if cp in SHORT_ESCAPES:
        cells.append((ord(SHORT_ESCAPES[cp]), escape, 0))
    after_u = new()
    cells.append((0x75, escape, after_u))
    if cp < _ASTRAL:
        hex_chain(after_u, cp, 0)
    else:
        v = cp - _ASTRAL
        low_backslash, low_u = new(), new()
        hex_chain(after_u, _HIGH[0] + (v >> 10), low_backslash)
        cells.append((0x5C, low_backslash, low_u))
        low_start = new()
        cells.append((0x75, low_u, low_start))
        hex_chain(low_start, _LOW[0] + (v & 0x3FF), 0)
    return n[0], tuple(cells)


@lru_cache(maxsize=16384)
def literal_automaton(text: str) -> rx.Automaton:
    """``"`` + every JSON spelling of ``text`` + ``"``, straight from the characters: a chain of body
    states, each with its raw byte path and an escape branch (short escape, ``\\u`` + the code point's
    four hex digits in either case, or a surrogate pair). Minimal by construction; ~20x faster than
    the regex route for the key literals of an object (1-3 ms each, paid at its first key position).

    Every edge reads one code point (a hex digit: either case), so the classes come from grouping
    code points by their column of (state, target) pairs, in a dict, rather than from the general
    table of ``_tabulate`` (~280 of ~360 us a key before); ``_literal_automaton_edges`` is that
    route, the specification the tests compare with."""
    # code point -> [(state, target), ...]: start, then each character's cells (cached per
    # character, ``_char_cells``) moved to its block of states, then the closing quote
    columns: dict[int, list] = {0x22: [(0, 1)]}
    cur, n = 1, 2
    for ch in text:
        count, cells = _char_cells(ord(ch))
        for cp, s, t in cells:
            pair = (cur if s < 0 else n + s, n + t)
            got = columns.get(cp)
            if got is None:
                columns[cp] = [pair]
            else:
                got.append(pair)
        cur = n
        n += count
    end = n
    columns[0x22].append((cur, end))
    n += 1
    # classes in the order of their smallest code point (as ``_classes_of_columns`` orders them),
    # consecutive code points of one class merged into ranges
    class_of: dict[tuple, int] = {}
    members: list[list[int]] = []
    for cp in sorted(columns):
        c = class_of.setdefault(tuple(columns[cp]), len(members))
        if c == len(members):
            members.append([])
        members[c].append(cp)
    table = np.full((n, len(members)), -1, dtype=np.int32)
    classes = []
    for c, cps in enumerate(members):
        for state, target in columns[cps[0]]:
            table[state, c] = target
        ranges = [[cps[0], cps[0]]]
        for cp in cps[1:]:
            if cp == ranges[-1][1] + 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
        classes.append(tuple((lo, hi) for lo, hi in ranges))
    accepting = [False] * n
    accepting[end] = True
    auto = rx.Automaton.from_rows(table, classes, accepting, True)
    return _with_min_length(auto, 2 + _text_spelled_length(text))


def _literal_automaton_edges(text: str) -> rx.Automaton:
    """``literal_automaton`` through edge lists and ``_tabulate`` (the reference)."""
    edges: list[list] = [[]]

    def new() -> int:
        edges.append([])
        return len(edges) - 1

    def hex_chain(start: int, value: int, end: int) -> None:
        cur = start
        for k, digit in enumerate("%04x" % value):
            nxt = end if k == 3 else new()
            edges[cur].append((_DIGIT_RANGES[int(digit, 16)], nxt))
            cur = nxt

    cur = new()
    edges[0].append((((0x22, 0x22),), cur))
    for ch in text:
        cp = ord(ch)
        nxt = new()
        if any(a <= cp <= b for a, b in _RAW_ALLOWED):
            edges[cur].append((((cp, cp),), nxt))
        escape = new()
        edges[cur].append((((0x5C, 0x5C),), escape))
        if cp in SHORT_ESCAPES:
            letter = ord(SHORT_ESCAPES[cp])
            edges[escape].append((((letter, letter),), nxt))
        after_u = new()
        edges[escape].append((((0x75, 0x75),), after_u))
        if cp < _ASTRAL:
            hex_chain(after_u, cp, nxt)
        else:
            v = cp - _ASTRAL
            low_backslash, low_u = new(), new()
            hex_chain(after_u, _HIGH[0] + (v >> 10), low_backslash)
            edges[low_backslash].append((((0x5C, 0x5C),), low_u))
            low_start = new()
            edges[low_u].append((((0x75, 0x75),), low_start))
            hex_chain(low_start, _LOW[0] + (v & 0x3FF), nxt)
        cur = nxt
    end = new()
    edges[cur].append((((0x22, 0x22),), end))
    accepting = [False] * len(edges)
    accepting[end] = True
    return _with_min_length(_tabulate(edges, accepting), 2 + _text_spelled_length(text))


def _dawg(texts) -> tuple[list, int]:
    """The minimal acyclic DFA of ``texts`` over code points (the trie with equal subtrees merged):
    a list of (final, ((code point, child id), ...)) with children before parents, and the root's
    id. The words go in sorted order, so a trie node is complete once a word leaves its prefix: it
    is registered then (merged with an equal node), without building the trie (~3x faster than
    hashing a dict trie bottom-up)."""
    dawg: list = []
    ids: dict = {}  # (final, children) -> id

    def close(node: list) -> int:
        sig = (node[0], tuple(node[1]))
        d = ids.get(sig)
        if d is None:
            d = ids[sig] = len(dawg)
            dawg.append(sig)
        return d

    path = [[False, []]]  # the open nodes along the previous word: [final, children so far]
    prev = ""
    for word in sorted(set(texts)):
        k, m = 0, min(len(word), len(prev))
        while k < m and word[k] == prev[k]:
            k += 1
        for depth in range(len(prev), k, -1):  # nodes below the common prefix are complete
            child = close(path.pop())
            path[-1][1].append((ord(prev[depth - 1]), child))
        path.extend([False, []] for _ in range(len(word) - k))
        path[-1][0] = True
        prev = word
    for depth in range(len(prev), 0, -1):
        child = close(path.pop())
        path[-1][1].append((ord(prev[depth - 1]), child))
    return dawg, close(path[0])


class _StateLeaves(_Builder):
    """The hex-digit trees of ``_Builder`` over values that lead straight to states."""

    def __init__(self):  # noqa: D107 - no code-point DFA behind it
        self.edges, self.accepting, self.memo, self.uniform = [], [], {}, {}

    def leaf(self, what) -> int:
        return what


def _points_minus(ranges, points) -> list:
    """``ranges`` (sorted, disjoint) without the sorted code points ``points``."""
    out = []
    i = 0
    for lo, hi in ranges:
        while i < len(points) and points[i] < lo:
            i += 1
        cur = lo
        j = i
        while j < len(points) and points[j] <= hi:
            if cur < points[j]:
                out.append((cur, points[j] - 1))
            cur = points[j] + 1
            j += 1
        if cur <= hi:
            out.append((cur, hi))
    return out


@lru_cache(maxsize=1 << 16)
def _other_digits(used: frozenset) -> tuple:
    """The code point ranges of the hex digits (either case) not in ``used``: one shared tuple."""
    return tuple(r for digit in range(16) if digit not in used for r in _DIGIT_RANGES[digit])


def _runs_over(lo: int, hi: int, points, default: int, shift: int = 0) -> list:
    """(lo, hi, target) runs covering [lo, hi]: the sorted (point, target) pairs inside it, every
    other value to ``default``; all moved up by ``shift``."""
    runs, cur = [], lo
    for p, target in points:
        if lo <= p <= hi:
            if cur < p:
                runs.append((cur + shift, p - 1 + shift, default))
            runs.append((p + shift, p + shift, target))
            cur = p + 1
    if cur <= hi:
        runs.append((cur + shift, hi + shift, default))
    return runs


def keys_except_automaton(texts: tuple[str, ...]) -> rx.Automaton:
    """``_keys_except_automaton(texts)``, memoized process-wide (``_cached_build``)."""
    return _cached_build(("keys except", texts), lambda: _keys_except_automaton(texts))


class _ExceptSpeller(_StateLeaves):
    """The states of "any key but these" (``_keys_except_automaton``): start, end and the sink for
    "left the declared keys behind", then escape and hex-digit states hash-consed by what they
    lead to, every value no child takes leading to the sink."""

    def __init__(self):
        super().__init__()
        self.pairs: dict = {}
        self.start = self.new()
        self.end = self.new(True)
        self.sink = self.new()

    def copy(self) -> "_ExceptSpeller":
        """A speller with this one's states and memos, to grow apart from it."""
        other = _ExceptSpeller.__new__(_ExceptSpeller)
        other.edges = [list(row) for row in self.edges]
        other.accepting = list(self.accepting)
        other.memo, other.uniform, other.pairs = dict(self.memo), dict(self.uniform), dict(self.pairs)
        other.start, other.end, other.sink = self.start, self.end, self.sink
        return other

    def close_sink(self) -> None:
        """The sink's own transitions: any raw character, any escape, ``"`` to the end."""
        self.edges[self.sink].extend(
            [(_RAW_ALLOWED, self.sink), (((0x22, 0x22),), self.end), (((0x5C, 0x5C),), self.escape(()))])

    def pair(self, lows: tuple) -> int:
        """After a high surrogate escape: ``\\u`` + a low one; ``lows`` = ((low value, state), ...)
        for astral children of this window, every other low value to the sink."""
        got = self.pairs.get(lows)
        if got is None:
            got = self.pairs[lows] = self.new()
            u = self.new()
            self.edges[got].append((((0x5C, 0x5C),), u))
            runs = _runs_over(0, 0x3FF, lows, self.sink)
            values = tuple((lo + _LOW[0], hi + _LOW[0], t) for lo, hi, t in _merge(runs))
            self.edges[u].append((((0x75, 0x75),), self.hex_state(4, values)))
        return got

    def uniform_to_sink(self, k: int) -> int:
        """Reads ``k`` more digits, any value to the sink (the states ``_Builder.hex_state`` makes)."""
        return self.sink if k == 0 else self.hex_state(k, ((0, 16 ** k - 1, self.sink),))

    def points_hex(self, k: int, points: tuple) -> int:
        """Reads ``k`` more digits: the values ``points`` = ((value, state), ...) to their states,
        every other value to the sink (no surrogates in the range)."""
        key = ("pts", k, points)
        got = self.memo.get(key)
        if got is not None:
            return got
        me = self.memo[key] = self.new()
        shift = 4 * (k - 1)
        by_digit: dict = {}
        for value, target in points:
            by_digit.setdefault(value >> shift, []).append((value & ((1 << shift) - 1), target))
        for digit, group in by_digit.items():
            to = group[0][1] if k == 1 else self.points_hex(k - 1, tuple(group))
            self.edges[me].append((_DIGIT_RANGES[digit], to))
        if len(by_digit) < 16:
            self.edges[me].append((_other_digits(frozenset(by_digit)), self.uniform_to_sink(k - 1)))
        return me

    def plain_hex(self, kids: tuple) -> int:
        """``\\u`` + 4 digits when no child needs the surrogate digits (D000-DFFF): the first digit
        ``d`` leads to the one subtree every such node shares."""
        key = ("plain", kids)
        got = self.memo.get(key)
        if got is not None:
            return got
        me = self.memo[key] = self.new()
        by_digit: dict = {}
        for cp, target in kids:
            by_digit.setdefault(cp >> 12, []).append((cp & 0xFFF, target))
        for digit, group in by_digit.items():
            self.edges[me].append((_DIGIT_RANGES[digit], self.points_hex(3, tuple(group))))
        self.edges[me].append((_DIGIT_RANGES[0xD], self.surrogate_digit()))
        self.edges[me].append((_other_digits(frozenset(by_digit) | {0xD}), self.uniform_to_sink(3)))
        return me

    def surrogate_digit(self) -> int:
        """After ``\\ud``: D000-D7FF to the sink, high surrogates on to a pair, low ones nowhere."""
        return self.hex_state(3, ((0, 0x7FF, self.sink), (0x800, 0xBFF, self.pair(()))))

    def escape(self, kids: tuple) -> int:
        """After a backslash, with the children ((cp, target), ...) to spell; the rest to the sink."""
        key = ("esc", kids)
        got = self.memo.get(key)
        if got is not None:
            return got
        me = self.memo[key] = self.new()
        to = dict(kids)
        for cp, letter in SHORT_ESCAPES.items():
            self.edges[me].append((((ord(letter), ord(letter)),), to.get(cp, self.sink)))
        if all(cp < 0xD000 or _LOW[1] < cp < _ASTRAL for cp, _ in kids):
            self.edges[me].append((((0x75, 0x75),), self.plain_hex(kids)))
            return me
        astral: dict = {}
        for cp, target in kids:
            if cp >= _ASTRAL:
                astral.setdefault((cp - _ASTRAL) >> 10, []).append(((cp - _ASTRAL) & 0x3FF, target))
        # escape values: BMP code points below and above the surrogates (a lone surrogate has no
        # spelling, so such children are left out), and high surrogates leading to a pair state
        runs = _runs_over(0, _HIGH[0] - 1, kids, self.sink)
        runs += _runs_over(0, 0x3FF, [(w, self.pair(tuple(lows))) for w, lows in sorted(astral.items())],
                           self.pair(()), shift=_HIGH[0])
        runs += _runs_over(_LOW[1] + 1, 0xFFFF, kids, self.sink)
        self.edges[me].append((((0x75, 0x75),), self.hex_state(4, tuple(_merge(runs)))))
        return me


def _check_key_texts(texts) -> None:
    if any(_HIGH[0] <= ord(ch) <= _LOW[1] for text in texts for ch in text):
        raise ValueError("keys_except_automaton: a text holds a lone surrogate")


def _keys_except_min_length(auto: rx.Automaton, texts) -> rx.Automaton:
    # the shortest key outside ``texts``: the empty one, else one raw character (~1.1M of them
    # exist, so fewer than 65,536 one-character texts always leave one out)
    if "" not in texts:
        return _with_min_length(auto, 2)
    return _with_min_length(auto, 3) if sum(len(t) == 1 for t in texts) < 0x10000 else auto


def _keys_except_automaton_reference(texts: tuple[str, ...]) -> rx.Automaton:
    """``_keys_except_automaton`` state by state through ``_ExceptSpeller`` (the tested spec; its
    automaton is minimal except beside an astral child, where a BMP digit tree may be built once
    per route, both accepting the same)."""
    _check_key_texts(texts)
    dawg, root = _dawg(texts)
    b = _ExceptSpeller()
    body = [b.new() for _ in dawg]
    b.edges[b.start].append((((0x22, 0x22),), body[root]))
    b.close_sink()
    for d, (final, kids) in enumerate(dawg):
        me = body[d]
        targets = tuple((cp, body[child]) for cp, child in kids)
        raw = [cp for cp, _ in kids if any(a <= cp <= hi for a, hi in _RAW_ALLOWED)]
        b.edges[me].extend((((cp, cp),), body[child]) for cp, child in kids if cp in raw)
        others = _points_minus(_RAW_ALLOWED, raw)
        if others:
            b.edges[me].append((tuple(others), b.sink))
        if not final:
            b.edges[me].append((((0x22, 0x22),), b.end))
        b.edges[me].append((((0x5C, 0x5C),), b.escape(targets)))
    return _keys_except_min_length(_tabulate(b.edges, b.accepting), texts)


# -- "any key but these" from cached escape templates -------------------------------------------
#
# A DAWG node's escape branch (short escapes, ``\uXXXX`` digit trees, surrogate pairs) depends on
# its children's code points and on which body states they lead to. Its shape depends on the code
# points alone, so it is built once per code-point tuple with placeholder targets (a template) and
# stamped per node as flat arrays; only the hash-consing across nodes stays per state, by the
# template state's shape and the targets it reaches. Building each node's branch through
# ``_ExceptSpeller`` was ~60% of a key region's ~1 ms (the region is a third of a median compile).

_PLACEHOLDER = 1 << 40  # template targets >= this are "the j-th child's body state"
_SHAPE_IDS: dict = {}  # structural signature of a template state -> small int, process-wide
_SHAPE_LOCK = threading.Lock()


class _EscapeTemplate:
    """The escape branch of a node whose children have code points ``cps``, states numbered
    locally. ``entry``: (kind, value) of the escape state; kinds are 0 a prelude (global) state,
    1 a local state, 2 the value-th child. Per local state: its shape id and the children it
    reaches (a slice when contiguous, else a tuple of indices). Cells (one per code point range):
    ``src`` local state, ``cp`` (a code point: escape letters and hex digits), target
    ``kind``/``value``."""

    __slots__ = ("n", "entry", "shapes", "reach", "src", "cp", "kind", "value")


_PRELUDE: list = []
_START, _END, _SINK = 0, 1, 2  # as ``_ExceptSpeller`` numbers them
_RAW_STARTS = [lo for lo, _ in _RAW_ALLOWED]


def _is_raw(cp: int) -> bool:
    i = bisect.bisect_right(_RAW_STARTS, cp) - 1
    return i >= 0 and cp <= _RAW_ALLOWED[i][1]


def _prelude() -> tuple:
    """(state count, cells (src, code point, target) of the states every key region shares: start,
    end, the sink and its escape branch; the sink's raw characters are ``_point_cells_table``'s)."""
    if not _PRELUDE:
        b = _ExceptSpeller()
        assert (b.start, b.end, b.sink) == (_START, _END, _SINK)
        b.close_sink()
        cells = []
        for s, row in enumerate(b.edges):
            for ranges, t in row:
                if s == _SINK and ranges is _RAW_ALLOWED:
                    continue
                for lo, hi in ranges:
                    assert lo == hi and (lo in _ESCAPE_POINTS or lo == 0x22), "a prelude cell off the escape points"
                    cells.append((s, lo, t))
        arrays = tuple(np.array(col, dtype=np.int64) for col in zip(*cells))
        _PRELUDE.append((len(b.edges), arrays))
    return _PRELUDE[0]


_RAW_CUTS = np.array(sorted({0, rx.MAX_CODE_POINT + 1} | {c for lo, hi in _RAW_ALLOWED for c in (lo, hi + 1)}),
                     dtype=np.int64)
# (the raw ranges start above 0 and leave gaps between them: they are the odd intervals of the cuts)
assert len(_RAW_CUTS) == 2 * len(_RAW_ALLOWED) + 1 and _RAW_CUTS[1::2].tolist() == [lo for lo, _ in _RAW_ALLOWED]
# the code points escape branches read: escape letters, ``u`` and the hex digits
_ESCAPE_POINTS = frozenset({0x5C, 0x75} | {ord(c) for c in SHORT_ESCAPES.values()}
                           | {cp for ranges in _DIGIT_RANGES for cp, _ in ranges})
_FIXED_CUTS = frozenset(_RAW_CUTS.tolist()) | {c for cp in _ESCAPE_POINTS | {0x22} for c in (cp, cp + 1)}


def _point_cells_table(n: int, raw_rows: np.ndarray, raw_target: int, src: np.ndarray, cps: np.ndarray,
                       targets: np.ndarray, other_points) -> tuple[np.ndarray, list]:
    """``_cells_table`` for cells of one code point each, after ``raw_rows`` send every raw
    character (``_RAW_ALLOWED``) to ``raw_target``: the intervals are the raw ranges cut at the
    cells' code points (``_ESCAPE_POINTS``, ``"`` and ``other_points``), so each cell is one column
    and the raw rows one broadcast."""
    cuts = np.array(sorted(_FIXED_CUTS.union(other_points, [cp + 1 for cp in other_points])), dtype=np.int64)
    lows = cuts[:-1]
    i = np.searchsorted(_RAW_CUTS, lows, side="right") - 1  # raw ranges are [cut 1, 2), [3, 4)...
    raw_cols = np.flatnonzero((i % 2 == 1) & (i < len(_RAW_CUTS) - 1))
    table = np.full((n, len(lows)), -1, dtype=np.int32)
    table[raw_rows[:, None], raw_cols[None, :]] = raw_target
    table[src, np.searchsorted(cuts, cps, side="right") - 1] = targets
    return table, cuts.tolist()


_SPELLER: list = []


def _prelude_speller() -> "_ExceptSpeller":
    """An ``_ExceptSpeller`` holding the prelude states (built once; templates build on copies)."""
    if not _SPELLER:
        b = _ExceptSpeller()
        b.close_sink()
        _SPELLER.append(b)
    return _SPELLER[0]


def _shape_id(signature: tuple) -> int:
    with _SHAPE_LOCK:
        return _SHAPE_IDS.setdefault(signature, len(_SHAPE_IDS))


@lru_cache(maxsize=1 << 12)
def _canonical_ranges(ranges: tuple) -> tuple:
    """``ranges`` sorted and merged (the digit ranges of a template state: few distinct tuples)."""
    ranges = sorted(ranges)
    out = [ranges[0]]
    for lo, hi in ranges[1:]:
        if lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


@lru_cache(maxsize=1 << 14)
def _escape_template(cps: tuple) -> _EscapeTemplate:
    b = _prelude_speller().copy()
    g = len(b.edges)
    entry = b.escape(tuple((cp, _PLACEHOLDER + j) for j, cp in enumerate(cps)))
    n = len(b.edges) - g

    def ref(t: int) -> tuple:
        return (0, t) if t < g else (1, t - g) if t < _PLACEHOLDER else (2, t - _PLACEHOLDER)

    rows = [[(ranges,) + ref(t) for ranges, t in b.edges[g + i]] for i in range(n)]
    reach: list = [None] * n  # sorted child indices each local state reaches
    shapes: list = [None] * n

    def visit(i: int) -> None:  # children first (the branch is acyclic below the escape state)
        if shapes[i] is not None:
            return
        kids: set = set()
        for _, kind, v in rows[i]:
            if kind == 1:
                visit(v)
                kids.update(reach[v])
            elif kind == 2:
                kids.add(v)
        mine = tuple(sorted(kids))
        rank = {k: r for r, k in enumerate(mine)}
        # each target with all the code points leading to it, merged and sorted: equal states get
        # equal shapes whichever route built them (the astral route groups digits by target,
        # ``points_hex`` digit by digit)
        by_target: dict = {}
        for ranges, kind, v in rows[i]:
            if kind == 1:
                to = (1, shapes[v], tuple(rank[k] for k in reach[v]))
            else:
                to = (kind, rank[v] if kind == 2 else v)
            got = by_target.get(to)
            by_target[to] = ranges if got is None else got + ranges
        reach[i] = mine
        shapes[i] = _shape_id(tuple(sorted((_canonical_ranges(rs), to) for to, rs in by_target.items())))

    for i in range(n):
        visit(i)
    tpl = _EscapeTemplate()
    tpl.n, tpl.entry, tpl.shapes = n, ref(entry), shapes
    tpl.reach = [slice(r[0], r[-1] + 1) if r and r[-1] - r[0] + 1 == len(r) else (slice(0, 0) if not r else r)
                 for r in reach]
    # (escape letters and hex digits: every range is one code point)
    src, cp_col, kind_col, value_col = [], [], [], []
    for i, row in enumerate(rows):
        for ranges, kind, v in row:
            for cp, hi in ranges:
                if cp != hi or cp not in _ESCAPE_POINTS:
                    raise AssertionError("an escape template cell is not one of the escape code points")
                src.append(i)
                cp_col.append(cp)
                kind_col.append(kind)
                value_col.append(v)
    tpl.src, tpl.cp, tpl.kind, tpl.value = (np.array(c, dtype=np.int64) for c in (src, cp_col, kind_col, value_col))
    return tpl


def _keys_except_automaton(texts: tuple[str, ...]) -> rx.Automaton:
    """``"`` + every JSON spelling of any string *not* in ``texts`` + ``"``: the key region of an
    object whose undeclared keys are free ("any key but the declared ones"), the most common
    region by far.

    The general route (``cpdfa.combine`` of the negated literals, then ``quoted_automaton``) cost
    ~5 ms per region, half of a median schema's compile. The complement of a finite language has
    the DAWG's states plus one accepting sink for "left the declared keys behind", with finality
    flipped; each DAWG node's other code points (raw or escaped) lead to the sink. Escape and hex
    states are hash-consed by what they lead to, so the result is minimal; each node's escape
    branch is stamped from a template (above), merged with equal states of other nodes' branches
    by shape and targets (which also merges the BMP digit trees that the state-by-state builder
    built twice beside an astral child, one per route). Texts holding a lone surrogate
    (no JSON spelling decodes to one) are the general route's."""
    _check_key_texts(texts)
    dawg, root = _dawg(texts)
    g, prelude = _prelude()
    body0 = g
    n_fixed = g + len(dawg)  # prelude and body states; escape branches follow
    canon: list[int] = []  # per provisional local state: the provisional id of its equal, or itself
    seen: dict = {}
    tpls, bases, kid_bodies, kid_offsets = [], [], [], []
    entries = np.empty(len(dawg), dtype=np.int64)  # provisional id of each node's escape state
    fixed_next = n_fixed
    for d, (_, kids) in enumerate(dawg):
        tpl = _escape_template(tuple(cp for cp, _ in kids))
        targets = tuple(body0 + child for _, child in kids)
        base = fixed_next
        fixed_next += tpl.n
        for i, (shape, r) in enumerate(zip(tpl.shapes, tpl.reach)):
            reached = targets[r] if type(r) is slice else tuple(targets[j] for j in r)
            canon.append(seen.setdefault((shape, reached), base + i))
        kind, v = tpl.entry
        entries[d] = v if kind == 0 else base + v
        tpls.append(tpl)
        bases.append(base)
        kid_offsets.append(len(kid_bodies))
        kid_bodies.extend(targets)
    # final numbering: prelude and bodies as they are, then the local states that are their own
    # canonical state, in order
    canon_a = np.array(canon, dtype=np.int64)
    local_ids = np.arange(n_fixed, fixed_next, dtype=np.int64)
    kept = canon_a == local_ids
    final_of = np.empty(fixed_next, dtype=np.int64)
    final_of[:n_fixed] = np.arange(n_fixed)
    rank = n_fixed + np.cumsum(kept) - 1
    final_of[n_fixed:] = rank[canon_a - n_fixed]
    n_states = n_fixed + int(kept.sum())
    if n_states > MAX_SPELLING_STATES:
        raise CompileBudgetError(f"JSON spelling automaton exceeds {MAX_SPELLING_STATES} states")
    src_parts, cp_parts, target_parts = [prelude[0]], [prelude[1]], [prelude[2]]
    if tpls:
        counts = np.fromiter((len(t.src) for t in tpls), dtype=np.int64, count=len(tpls))
        base_rep = np.repeat(np.array(bases, dtype=np.int64), counts)
        kid_rep = np.repeat(np.array(kid_offsets, dtype=np.int64), counts)
        src = base_rep + np.concatenate([t.src for t in tpls])
        kind = np.concatenate([t.kind for t in tpls])
        value = np.concatenate([t.value for t in tpls])
        target = np.where(kind == 0, value, 0)
        local = kind == 1
        target[local] = final_of[base_rep[local] + value[local]]
        child = kind == 2
        target[child] = np.array(kid_bodies, dtype=np.int64)[kid_rep[child] + value[child]]
        keep = kept[src - n_fixed]
        src_parts.append(final_of[src[keep]])
        cp_parts.append(np.concatenate([t.cp for t in tpls])[keep])
        target_parts.append(target[keep])
    # body states: every raw character to the sink (below), except the children's raw characters
    # to their bodies; ``"`` to the end where no declared key ends here, ``\\`` to the node's
    # escape state
    fg_src, fg_cp, fg_t = [_START], [0x22], [body0 + root]
    raw_kids = set()
    for d, (final, kids) in enumerate(dawg):
        for cp, child in kids:
            if _is_raw(cp):
                raw_kids.add(cp)
                fg_src.append(body0 + d)
                fg_cp.append(cp)
                fg_t.append(body0 + child)
        if not final:
            fg_src.append(body0 + d)
            fg_cp.append(0x22)
            fg_t.append(_END)
    fg_src.extend(range(body0, body0 + len(dawg)))
    fg_cp.extend([0x5C] * len(dawg))
    fg_t.extend(final_of[entries].tolist())
    src_parts.append(np.array(fg_src, dtype=np.int64))
    cp_parts.append(np.array(fg_cp, dtype=np.int64))
    target_parts.append(np.array(fg_t, dtype=np.int64))
    raw_rows = np.concatenate([np.array([_SINK], dtype=np.int64), np.arange(body0, body0 + len(dawg), dtype=np.int64)])
    table, cuts = _point_cells_table(n_states, raw_rows, _SINK, np.concatenate(src_parts),
                                     np.concatenate(cp_parts), np.concatenate(target_parts), raw_kids)
    accepting = [False] * n_states
    accepting[_END] = True
    return _keys_except_min_length(_classes_of_columns(table, cuts, accepting, True), texts)


@lru_cache(maxsize=4096)
def literals_automaton(texts: tuple[str, ...]) -> rx.Automaton:
    """``"`` + every JSON spelling of any of ``texts`` + ``"``: one terminal for a string enum
    (one per value made a state hold a lexing branch, a root walk and a DFA per value: 2,700
    enum values in JsonSchemaStore cryproj took 1.8 s at their first mask).

    Minimal by construction, so the byte automaton skips Hopcroft (12 ms per 3,000-state chunk of
    an enum, ~0.8 s at cryproj's first value position): the code points form a minimal acyclic
    DFA (the trie with equal subtrees merged, bottom-up), and each DAWG node is one body state.
    A node's escape branch reads its children's ``\\uXXXX`` spellings (either case) through a trie
    of hex digits, and surrogate pairs through one more per high surrogate; escape and hex states
    are hash-consed by what they lead to, as equal subtrees of two nodes are equal states."""
    dawg, root = _dawg(texts)

    edges: list[list] = [[]]
    accepting = [False]

    def new(final: bool = False) -> int:
        edges.append([])
        accepting.append(final)
        return len(edges) - 1

    end = new(True)
    body = {d: new() for d in range(len(dawg))}
    memo: dict = {}

    def hex_state(remaining: int, items: tuple) -> int:
        """Reads ``remaining`` hex digits: ``items`` = ((value of those digits, target), ...)."""
        key = ("hex", remaining, items)
        st = memo.get(key)
        if st is None:
            st = memo[key] = new()
            shift = 4 * (remaining - 1)
            by_digit: dict = {}
            for value, target in items:
                by_digit.setdefault(value >> shift, []).append((value & ((1 << shift) - 1), target))
            for digit, group in sorted(by_digit.items()):
                to = group[0][1] if remaining == 1 else hex_state(remaining - 1, tuple(group))
                edges[st].append((_DIGIT_RANGES[digit], to))
        return st

    def escape_state(kids: tuple) -> int:
        """After a backslash, with the children ((cp, target body state), ...) still to spell."""
        key = ("esc", kids)
        st = memo.get(key)
        if st is None:
            st = memo[key] = new()
            for cp, target in kids:
                if cp in SHORT_ESCAPES:
                    letter = ord(SHORT_ESCAPES[cp])
                    edges[st].append((((letter, letter),), target))
            first = [(cp, target) for cp, target in kids if cp < _ASTRAL]
            astral: dict = {}
            for cp, target in kids:
                if cp >= _ASTRAL:
                    astral.setdefault(_HIGH[0] + ((cp - _ASTRAL) >> 10), []).append(
                        (_LOW[0] + ((cp - _ASTRAL) & 0x3FF), target))
            for high, lows in sorted(astral.items()):
                lows_key = ("pair", tuple(lows))
                backslash = memo.get(lows_key)
                if backslash is None:
                    backslash = memo[lows_key] = new()
                    u = new()
                    edges[backslash].append((((0x5C, 0x5C),), u))
                    edges[u].append((((0x75, 0x75),), hex_state(4, tuple(lows))))
                first.append((high, backslash))
            edges[st].append((((0x75, 0x75),), hex_state(4, tuple(sorted(first)))))
        return st

    edges[0].append((((0x22, 0x22),), body[root]))
    for d, (final, kids) in enumerate(dawg):
        me = body[d]
        if final:
            edges[me].append((((0x22, 0x22),), end))
        if not kids:
            continue
        targets = tuple((cp, body[child]) for cp, child in kids)
        for cp, target in targets:
            if any(a <= cp <= b for a, b in _RAW_ALLOWED):
                edges[me].append((((cp, cp),), target))
        edges[me].append((((0x5C, 0x5C),), escape_state(targets)))
    auto = _tabulate(edges, accepting)
    return _with_min_length(auto, 2 + min(map(_text_spelled_length, texts))) if texts else auto


@lru_cache(maxsize=64)
def _suffix_dfa(suffix: rx.Regex) -> cpdfa.Dfa:
    return cpdfa.Dfa.from_regex(suffix, cpdfa.Atoms([suffix]))


def _tabulate(edges, accepting, minimal: bool = True) -> rx.Automaton:
    """Transition table over the coarsest code point classes the edges allow. The cells are filled
    in numpy from flat (state, range, target) arrays: a key region's spelling automaton has ~10^5
    ranges (every state's escape digits), and one slice assignment per range was a third of a
    typical schema's compile time (``_tabulate_reference`` is that loop, the tested spec)."""
    # edges share their range tuples (a digit's, "every other digit", the raw code points), so
    # each distinct tuple is flattened once and the edges index it
    sources, targets, which = [], [], []
    index: dict = {}  # id(range tuple) -> position in pool (edges keep the tuples alive)
    pool = []
    for s, row in enumerate(edges):
        for ranges, t in row:
            i = index.get(id(ranges))
            if i is None:
                i = index[id(ranges)] = len(pool)
                pool.append(ranges)
            sources.append(s)
            targets.append(t)
            which.append(i)
    n = len(edges)
    pool_lengths = np.fromiter(map(len, pool), dtype=np.int64, count=len(pool))
    if not pool_lengths.sum():
        return _tabulate_reference(edges, accepting, minimal)
    pool_ranges = np.fromiter(chain.from_iterable(chain.from_iterable(pool)), dtype=np.int64).reshape(-1, 2)
    which_a = np.array(which, dtype=np.int64)
    per_edge = pool_lengths[which_a]
    count = int(per_edge.sum())
    pick = np.repeat((np.cumsum(pool_lengths) - pool_lengths)[which_a], per_edge) + (
        np.arange(count, dtype=np.int64) - np.repeat(np.cumsum(per_edge) - per_edge, per_edge))
    lo_a, hi_a = pool_ranges[pick, 0], pool_ranges[pick, 1]
    ss = np.repeat(np.array(sources, dtype=np.int64), per_edge)
    ts = np.repeat(np.array(targets, dtype=np.int64), per_edge)
    table, cuts = _cells_table(n, [(ss, lo_a, hi_a, ts)])
    return _classes_of_columns(table, cuts, accepting, minimal)


def _cells_table(n: int, passes) -> tuple[np.ndarray, list]:
    """(int32[n, intervals] transition table, interval cuts) from cells: per pass, arrays (state,
    lo, hi, target) of code point ranges; a later pass overwrites an earlier one's cells."""
    cuts = np.unique(np.concatenate([np.array([0, rx.MAX_CODE_POINT + 1], dtype=np.int64)]
                                    + [c for _, lo, hi, _ in passes for c in (lo, hi + 1)]))
    table = np.full((n, len(cuts) - 1), -1, dtype=np.int32)
    for ss, lo_a, hi_a, ts in passes:
        i0 = np.searchsorted(cuts, lo_a)
        lengths = np.searchsorted(cuts, hi_a + 1) - i0
        total = int(lengths.sum())
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        table[np.repeat(ss, lengths), np.repeat(i0, lengths) + offsets] = np.repeat(ts, lengths)
    return table, cuts.tolist()


def _classes_of_columns(table: np.ndarray, cuts: list, accepting, minimal: bool) -> rx.Automaton:
    """Intervals (``cuts``) whose columns of ``table`` are equal form one class. A dict of column
    bytes: np.unique(axis=...) sorts structured views and cost ~1 ms per key."""
    used = np.flatnonzero((table >= 0).any(axis=0)).tolist()
    column_ids: dict[bytes, int] = {}
    firsts: list[int] = []
    classes: list[list] = []
    for i, column in zip(used, np.ascontiguousarray(table.T[used])):
        c = column_ids.setdefault(column.tobytes(), len(firsts))
        lo, hi = cuts[i], cuts[i + 1] - 1
        if c == len(firsts):
            firsts.append(i)
            classes.append([(lo, hi)])
            continue
        ranges = classes[c]
        if ranges[-1][1] + 1 == lo:  # intervals come in order: adjacent ones merge here
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    # (sorted and merged already; normalize_ranges only where a class reaches the surrogates)
    s_lo, s_hi = rx.SURROGATES
    classes = [rx.normalize_ranges(c) if any(lo <= s_hi and hi >= s_lo for lo, hi in c) else tuple(c)
               for c in classes]
    return rx.Automaton.from_rows(table[:, firsts], classes, accepting, minimal)


def _tabulate_reference(edges, accepting, minimal: bool = True) -> rx.Automaton:
    """Transition table over the coarsest code point classes the edges allow (one range at a time)."""
    cuts = {0, rx.MAX_CODE_POINT + 1}
    for row in edges:
        for ranges, _ in row:
            for lo, hi in ranges:
                cuts.add(lo)
                cuts.add(hi + 1)
    cuts = sorted(cuts)
    n, m = len(edges), len(cuts) - 1
    table = np.full((n, m), -1, dtype=np.int32)
    for s, row in enumerate(edges):
        for ranges, t in row:
            for lo, hi in ranges:
                table[s, bisect.bisect_left(cuts, lo):bisect.bisect_left(cuts, hi + 1)] = t
    return _classes_of_columns(table, cuts, accepting, minimal)
