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


def _with_min_length(auto: rx.Automaton, length: int) -> rx.Automaton:
    """``auto`` with its shortest match length recorded (``rx.min_length`` would search for it:
    ~0.1 ms an automaton, a key region and a literal per object key in every compile)."""
    object.__setattr__(auto, "_min_length", length)
    return auto


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
    columns: dict[int, list] = {}  # code point -> [(state, target), ...]
    n_states = [1]

    def new() -> int:
        n_states[0] += 1
        return n_states[0] - 1

    def edge(state: int, cps, target: int) -> None:
        for cp in cps:
            columns.setdefault(cp, []).append((state, target))

    def hex_chain(start: int, value: int, end: int) -> None:
        cur = start
        for k, digit in enumerate("%04x" % value):
            nxt = end if k == 3 else new()
            edge(cur, _DIGIT_POINTS[int(digit, 16)], nxt)
            cur = nxt

    cur = new()
    edge(0, (0x22,), cur)
    for ch in text:
        cp = ord(ch)
        nxt = new()
        if any(a <= cp <= b for a, b in _RAW_ALLOWED):
            edge(cur, (cp,), nxt)
        escape = new()
        edge(cur, (0x5C,), escape)
        if cp in SHORT_ESCAPES:
            edge(escape, (ord(SHORT_ESCAPES[cp]),), nxt)
        after_u = new()
        edge(escape, (0x75,), after_u)
        if cp < _ASTRAL:
            hex_chain(after_u, cp, nxt)
        else:
            v = cp - _ASTRAL
            low_backslash, low_u = new(), new()
            hex_chain(after_u, _HIGH[0] + (v >> 10), low_backslash)
            edge(low_backslash, (0x5C,), low_u)
            low_start = new()
            edge(low_u, (0x75,), low_start)
            hex_chain(low_start, _LOW[0] + (v & 0x3FF), nxt)
        cur = nxt
    end = new()
    edge(cur, (0x22,), end)
    n = n_states[0]
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
    return _with_min_length(auto, 2 + sum(map(_spelled_length, text)))


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
    return _with_min_length(_tabulate(edges, accepting), 2 + sum(map(_spelled_length, text)))


def _dawg(texts) -> tuple[list, int]:
    """The minimal acyclic DFA of ``texts`` over code points (the trie with equal subtrees merged,
    bottom-up): a list of (final, ((code point, child id), ...)) with children before parents,
    and the root's id."""
    trie: dict = {}
    for text in texts:
        node = trie
        for ch in text:
            node = node.setdefault(ord(ch), {})
        node[-1] = True  # a value ends here
    dawg_id: dict = {}
    dawg: list = []
    stack = [(trie, False)]
    ids: dict = {}  # id(trie node) -> dawg id
    while stack:
        node, expanded = stack.pop()
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for cp, child in node.items() if cp >= 0)
            continue
        sig = (bool(node.get(-1)), tuple(sorted((cp, ids[id(child)]) for cp, child in node.items() if cp >= 0)))
        d = dawg_id.get(sig)
        if d is None:
            d = dawg_id[sig] = len(dawg)
            dawg.append(sig)
        ids[id(node)] = d
    return dawg, ids[id(trie)]


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


def _keys_except_automaton(texts: tuple[str, ...]) -> rx.Automaton:
    """``"`` + every JSON spelling of any string *not* in ``texts`` + ``"``: the key region of an
    object whose undeclared keys are free ("any key but these"), the most common region by far.

    The general route (``cpdfa.combine`` of the negated literals, then ``quoted_automaton``) cost
    ~5 ms per region, half of a median schema's compile. The complement of a finite language has
    the DAWG's states plus one accepting sink for "left the declared keys behind", with finality
    flipped; each DAWG node's other code points (raw or escaped) lead to the sink. Escape and hex
    states are hash-consed by what they lead to, as in ``_Builder``, so the result is minimal.
    Texts holding a lone surrogate (no JSON spelling decodes to one) are the general route's."""
    if any(_HIGH[0] <= ord(ch) <= _LOW[1] for text in texts for ch in text):
        raise ValueError("keys_except_automaton: a text holds a lone surrogate")
    dawg, root = _dawg(texts)
    b = _StateLeaves()
    start = b.new()
    end = b.new(True)
    sink = b.new()
    body = [b.new() for _ in dawg]
    pairs: dict = {}

    def pair(lows: tuple) -> int:
        """After a high surrogate escape: ``\\u`` + a low one; ``lows`` = ((low value, state), ...)
        for astral children of this window, every other low value to the sink."""
        got = pairs.get(lows)
        if got is None:
            got = pairs[lows] = b.new()
            u = b.new()
            b.edges[got].append((((0x5C, 0x5C),), u))
            runs = _runs_over(0, 0x3FF, lows, sink)
            values = tuple((lo + _LOW[0], hi + _LOW[0], t) for lo, hi, t in _merge(runs))
            b.edges[u].append((((0x75, 0x75),), b.hex_state(4, values)))
        return got

    def uniform(k: int) -> int:
        """Reads ``k`` more digits, any value to the sink (the states ``_Builder.hex_state`` makes)."""
        return sink if k == 0 else b.hex_state(k, ((0, 16 ** k - 1, sink),))

    def points_hex(k: int, points: tuple) -> int:
        """Reads ``k`` more digits: the values ``points`` = ((value, state), ...) to their states,
        every other value to the sink (no surrogates in the range)."""
        key = ("pts", k, points)
        got = b.memo.get(key)
        if got is not None:
            return got
        me = b.memo[key] = b.new()
        shift = 4 * (k - 1)
        by_digit: dict = {}
        for value, target in points:
            by_digit.setdefault(value >> shift, []).append((value & ((1 << shift) - 1), target))
        for digit, group in by_digit.items():
            to = group[0][1] if k == 1 else points_hex(k - 1, tuple(group))
            b.edges[me].append((_DIGIT_RANGES[digit], to))
        if len(by_digit) < 16:
            b.edges[me].append((_other_digits(frozenset(by_digit)), uniform(k - 1)))
        return me

    def plain_hex(kids: tuple) -> int:
        """``\\u`` + 4 digits when no child needs the surrogate digits (D000-DFFF): the first digit
        ``d`` leads to the one subtree every such node shares."""
        key = ("plain", kids)
        got = b.memo.get(key)
        if got is not None:
            return got
        me = b.memo[key] = b.new()
        by_digit: dict = {}
        for cp, target in kids:
            by_digit.setdefault(cp >> 12, []).append((cp & 0xFFF, target))
        for digit, group in by_digit.items():
            b.edges[me].append((_DIGIT_RANGES[digit], points_hex(3, tuple(group))))
        b.edges[me].append((_DIGIT_RANGES[0xD], surrogate_digit()))
        b.edges[me].append((_other_digits(frozenset(by_digit) | {0xD}), uniform(3)))
        return me

    def surrogate_digit() -> int:
        """After ``\\ud``: D000-D7FF to the sink, high surrogates on to a pair, low ones nowhere."""
        return b.hex_state(3, ((0, 0x7FF, sink), (0x800, 0xBFF, pair(()))))

    def escape(kids: tuple) -> int:
        key = ("esc", kids)
        got = b.memo.get(key)
        if got is not None:
            return got
        me = b.memo[key] = b.new()
        to = dict(kids)
        for cp, letter in SHORT_ESCAPES.items():
            b.edges[me].append((((ord(letter), ord(letter)),), to.get(cp, sink)))
        if all(cp < 0xD000 or _LOW[1] < cp < _ASTRAL for cp, _ in kids):
            b.edges[me].append((((0x75, 0x75),), plain_hex(kids)))
            return me
        astral: dict = {}
        for cp, target in kids:
            if cp >= _ASTRAL:
                astral.setdefault((cp - _ASTRAL) >> 10, []).append(((cp - _ASTRAL) & 0x3FF, target))
        # escape values: BMP code points below and above the surrogates (a lone surrogate has no
        # spelling, so such children are left out), and high surrogates leading to a pair state
        runs = _runs_over(0, _HIGH[0] - 1, kids, sink)
        runs += _runs_over(0, 0x3FF, [(w, pair(tuple(lows))) for w, lows in sorted(astral.items())], pair(()),
                           shift=_HIGH[0])
        runs += _runs_over(_LOW[1] + 1, 0xFFFF, kids, sink)
        b.edges[me].append((((0x75, 0x75),), b.hex_state(4, tuple(_merge(runs)))))
        return me

    b.edges[start].append((((0x22, 0x22),), body[root]))
    b.edges[sink].extend([(_RAW_ALLOWED, sink), (((0x22, 0x22),), end), (((0x5C, 0x5C),), escape(()))])
    for d, (final, kids) in enumerate(dawg):
        me = body[d]
        targets = tuple((cp, body[child]) for cp, child in kids)
        raw = [cp for cp, _ in kids if any(a <= cp <= hi for a, hi in _RAW_ALLOWED)]
        b.edges[me].extend((((cp, cp),), body[child]) for cp, child in kids if cp in raw)
        others = _points_minus(_RAW_ALLOWED, raw)
        if others:
            b.edges[me].append((tuple(others), sink))
        if not final:
            b.edges[me].append((((0x22, 0x22),), end))
        b.edges[me].append((((0x5C, 0x5C),), escape(targets)))
    auto = _tabulate(b.edges, b.accepting)
    # the shortest key outside ``texts``: the empty one, else one raw character (~1.1M of them
    # exist, so fewer than 65,536 one-character texts always leave one out)
    if "" not in texts:
        return _with_min_length(auto, 2)
    return _with_min_length(auto, 3) if sum(len(t) == 1 for t in texts) < 0x10000 else auto


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
    return _with_min_length(auto, 2 + min(sum(map(_spelled_length, t)) for t in texts)) if texts else auto


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
    cuts = np.unique(np.concatenate([np.array([0, rx.MAX_CODE_POINT + 1], dtype=np.int64), lo_a, hi_a + 1]))
    m = len(cuts) - 1
    i0 = np.searchsorted(cuts, lo_a)
    lengths = np.searchsorted(cuts, hi_a + 1) - i0
    total = int(lengths.sum())
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    table = np.full((n, m), -1, dtype=np.int32)
    table[np.repeat(ss, lengths), np.repeat(i0, lengths) + offsets] = np.repeat(ts, lengths)
    return _classes_of_columns(table, cuts.tolist(), accepting, minimal)


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
