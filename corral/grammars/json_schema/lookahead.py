"""Search languages of ECMAScript patterns with lookaheads anywhere (JSON Schema ``pattern``).

A lookahead constrains everything after its position, up to the end of the string, not just the
rest of its group: in ``^a(?:(?!.*--)[a-z-]*)?/b$`` the ``.*--`` also sees ``/b``. So a pattern is
read right to left as a function of its continuation: ``L(node, K)`` is the set of strings that
``node`` matches at the front and ``K`` accepts the rest of. Then

* ``L(r, K) = r K`` for a plain regex ``r``; sequences fold right; alternations unite;
* ``L((?=B), K) = K ∩ L(B, Σ*)`` and ``L((?!B), K) = K \\ L(B, Σ*)`` (code-point automata);
* an end anchor or a one-character lookahead keeps the ``K`` strings that start as it asks;
* a bounded repetition unrolls (``L(x{0,2}, K) = K ∪ L(x, K ∪ L(x, K))``).

* an unbounded repetition of lookaheads then one character (``((?!mode).)*``) is the least
  fixpoint ``X = K ∪ (cX ∩ P)``, built by a subset construction (``_guarded_star``).

Refused with a ``GrammarError`` (the caller reports the pattern unsupported): any other lookahead
inside an unbounded repetition (the fixpoint need not be reached by unrolling), and anything that
constrains the character *before* a position (lookbehind, word boundaries, ``^`` past the
pattern's start), which a right-to-left reading cannot see. The leading ``^(?=A)(?!B)R`` form keeps
its cheaper route (``regex_parser.search_regex_parts``); this one is the fallback.
"""
from __future__ import annotations

import re

from corral.errors import CompileBudgetError, GrammarError
from corral.grammars import regex_ast as rx
from corral.grammars import regex_parser as rp
from corral.grammars.json_schema import cpdfa

MAX_UNROLL = 32  # iterations of a bounded repetition that holds a lookahead
MAX_GUARDED_STATES = 4096  # subsets of a guarded repetition's construction (a few in practice)
ANY = rx.star(rx.any_char())


def search_language(pattern: str, flavor: str = "ecmascript", flags: int = 0) -> cpdfa.Dfa:
    """The strings containing a match of ``pattern`` (``re.search`` semantics) as one automaton."""
    rp._check_args(flavor, flags)
    tree = rp._Parser(pattern, flavor, int(flags), lookahead_tree=True).parse()
    branches = tree[1] if tree[0] == "alt" else [tree]
    try:
        return cpdfa.combine([rx.alt(*(_search_branch(b) for b in branches))])
    except CompileBudgetError as e:
        raise GrammarError(f"lookahead automaton too large ({e}) in regex {pattern!r}", None, "lookahead") from e


_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")


def fullmatch_language(pattern: str, flavor: str = "python", flags: int = 0) -> rx.Regex:
    """The strings ``pattern`` matches in full (``re.fullmatch``), for patterns with lookaheads past
    one character (``(?=.*[A-Z])(?=.*\\d).{8,}``, which ``regex_parser.parse_regex`` refuses): the
    search language of ``\\A(?:pattern)\\Z``, as an automaton leaf. Leading global flags stay in
    front, where Python requires them."""
    head = ""
    while True:
        m = _GLOBAL_FLAGS.match(pattern)
        if not m:
            break
        head += m.group(0)
        pattern = pattern[m.end():]
    if flavor == "python" and ("x" in head or flags & re.VERBOSE):
        pattern += "\n"  # a trailing verbose-mode comment must not swallow the closing group
    anchored = head + r"\A(?:" + pattern + r")\Z" if flavor == "python" else head + "^(?:" + pattern + ")$"
    return search_language(anchored, flavor=flavor, flags=flags).to_automaton()


def _search_branch(node) -> rx.Regex:
    """One top-level alternative: a leading ``^`` pins it to the start, else any prefix."""
    items = list(node[1]) if node[0] == "seq" else [node]
    anchored = False
    while items:
        if items[0][0] == "seq":  # a group at the front: its leading "^" is at the front too
            items[:1] = list(items[0][1])
        elif items[0][0] == "zw" and all(s is not None and s[1] and not s[0] and e is None for s, e in items[0][1]):
            anchored = True  # "^": no character before it
            items.pop(0)
        else:
            break
    body = _continued(("seq", items), ANY)
    return body if anchored else rx.seq(ANY, body)


def _has_lookahead(node) -> bool:
    kind = node[0]
    if kind in ("look", "zw"):
        return True
    if kind in ("seq", "alt"):
        return any(_has_lookahead(n) for n in node[1])
    if kind == "rep":
        return _has_lookahead(node[1])
    return False


def _as_automaton(positive: list, negative: list = ()) -> rx.Regex:
    return cpdfa.combine(positive, negative).to_automaton()


def _continued(node, k: rx.Regex) -> rx.Regex:
    """``L(node, k)``: ``node`` matched at the front of the string, ``k`` accepting the rest."""
    if not _has_lookahead(node):
        return rx.seq(rp._to_regex(node), k)
    kind = node[0]
    if kind == "seq":
        for item in reversed(node[1]):
            k = _continued(item, k)
        return k
    if kind == "alt":
        return rx.alt(*(_continued(n, k) for n in node[1]))
    if kind == "rep":
        _, item, lo, hi, pos = node
        if hi is None and lo <= MAX_UNROLL and _guarded_char(item) is not None:
            guards, cls = _guarded_char(item)
            acc = _guarded_star(guards, cls, k)
            for _ in range(lo):
                acc = _continued(item, acc)
            return acc
        if hi is None or hi > MAX_UNROLL:
            raise GrammarError("lookahead inside an unbounded (or long) repetition is not supported", pos, "lookahead")
        acc = k
        for _ in range(hi - lo):
            acc = rx.alt(k, _continued(item, acc))
        for _ in range(lo):
            acc = _continued(item, acc)
        return acc
    if kind == "look":
        _, positive, body, _pos = node
        ahead = _continued(body, ANY)
        return _as_automaton([k, ahead]) if positive else _as_automaton([k], [ahead])
    if kind == "zw":
        out = []
        for before, after in node[1]:
            if before is not None:
                raise GrammarError("an anchor, word boundary or lookbehind that looks at the previous "
                                   "character is not supported next to a lookahead", node[2], "lookahead")
            if after is None:
                out.append(k)
                continue
            ranges, edge_ok, _ = after
            start = [rx.seq(rx.chars(ranges), ANY)] if ranges else []
            if edge_ok:
                start.append(rx.EMPTY)
            if rp._final_newline_only(after):
                start.append(rx.char_set("\n"))  # Python "$" before a final newline
            out.append(_as_automaton([k, rx.alt(*start)]) if start else rx.NOTHING)
        return rx.alt(*out)
    raise AssertionError(kind)


def _guarded_char(item):
    """(guards, class) where a repeated item is lookaheads then one character (`(?!mode).`, the
    "does not contain" idiom), else None."""
    if item[0] != "seq" or not item[1]:
        return None
    *guards, last = item[1]
    if not guards or last[0] != "lit" or not isinstance(last[1], rx.Chars):
        return None
    if not all(g[0] in ("look", "zw") for g in guards):
        return None
    return guards, last[1]


def _guarded_star(guards: list, cls: rx.Chars, k: rx.Regex) -> rx.Regex:
    """``L(((?guards)c)*, K)``: the least X with X = K ∪ (cX ∩ P), P = ``L(guards, Σ*)`` (the
    strings the guards accept at their front). A string c1..cn t (t in K) is in X when the suffix
    starting at each ci is in P. Read left to right, every iteration starts an attempt of P's
    automaton that runs to the end of the string; where the c-run ends is a guess. So a subset
    construction over (the attempts' P states, then K's state once the run has ended) gives X's
    automaton: an attempt or a K state that can no longer accept prunes its branch."""
    p_re = _continued(("seq", list(guards)), ANY)
    atoms = cpdfa.Atoms([cls, p_re, k])
    pd, kd = cpdfa.Dfa.from_regex(p_re, atoms), cpdfa.Dfa.from_regex(k, atoms)
    p_live, k_live = pd.live(), kd.live()
    in_class = set(atoms.of_class(cls.ranges))
    n_atoms = len(atoms.intervals)

    def closure(branches: set) -> frozenset:
        # a run may end before any character: K starts there, the attempts go on
        out = set(branches)
        for b in branches:
            if b[0] == "c" and k_live[0]:
                out.add(("k", b[1], 0))
        return frozenset(out)

    def accepting(d: frozenset) -> bool:
        return any(b[0] == "k" and kd.accept[b[2]] and all(pd.accept[a] for a in b[1]) for b in d)

    start = closure({("c", frozenset())})
    ids = {start: 0}
    order = [start]
    trans = []
    while len(trans) < len(order):
        d = order[len(trans)]
        row = []
        for a in range(n_atoms):
            nxt = set()
            for b in d:
                if b[0] == "c":
                    if a not in in_class:
                        continue
                    attempts = frozenset(pd.trans[q][a] for q in b[1] | {0})
                    if all(p_live[q] for q in attempts):
                        nxt.add(("c", attempts))
                else:
                    attempts = frozenset(pd.trans[q][a] for q in b[1])
                    kq = kd.trans[b[2]][a]
                    if k_live[kq] and all(p_live[q] for q in attempts):
                        nxt.add(("k", attempts, kq))
            target = closure(nxt)
            got = ids.get(target)
            if got is None:
                if len(order) >= MAX_GUARDED_STATES:
                    raise CompileBudgetError(f"a guarded repetition exceeds {MAX_GUARDED_STATES} automaton states")
                got = ids[target] = len(order)
                order.append(target)
            row.append(got)
        trans.append(row)
    dfa = cpdfa.Dfa(atoms, trans, [accepting(d) for d in order]).minimize()
    return dfa.to_automaton()
