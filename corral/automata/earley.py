"""Byte-level Earley recognizer over regex terminals, with hash-consed parser states.

Owns the parser half of the engine: it turns an IR ``Grammar`` into ``ParserTables`` (dotted rule
positions, prediction closures, nullable sets, per-terminal byte DFAs) and steps a parser *state*
one byte at a time.

A state is an Earley set: ``items`` (dotted position, origin state) plus ``scans`` (a terminal being
lexed: terminal, DFA state, the state where its lexeme began). An item is one int,
``(origin + 1) << 32 | position`` (origin SELF = the state itself): ints are not tracked by the
cyclic GC, where tuples were ~2 objects per item and GC passes took ~20% of mask time; advancing
the dot is ``item + 1``. Origins are references to other
states, not chart indices, and states are hash-consed, so the same parse situation reached at two
positions (the second element of an array, a key seen in a second object) is the same state id.
That is what lets the mask layer memoize masks per state. Lexing is non-deterministic (a terminal
may end wherever its DFA accepts, or go on), which is exactly the IR's semantics.
"""
from __future__ import annotations

import threading
from array import array
from itertools import repeat
from typing import NamedTuple

import numpy as np

from corral.automata.dfa import DEFAULT_MAX_STATES, ByteDFA, regex_to_dfa
from corral.errors import CompileBudgetError, GrammarError
from corral.gc_untrack import untrack
from corral.grammars import regex_ast as rx
from corral.grammars.ir import FAMILY_SEPARATOR as ir_sep, Grammar

SELF = -1  # origin marker: "the state this item lives in"
POS_MASK = (1 << 32) - 1  # item = (origin + 1) << 32 | position


def make_item(pos: int, origin: int) -> int:
    return ((origin + 1) << 32) | pos


def item_pos(item: int) -> int:
    return item & POS_MASK


def item_origin(item: int) -> int:
    return (item >> 32) - 1
DEAD = -1  # state id of the empty (rejecting) state

END_OF_RULE = -(1 << 62)  # ParserTables.next_sym at a rule's end (symbols: terminals < 0 <= nonterminals)
SMALL_STATE_ITEMS = 8  # states up to this many items answer ``waiting_nt`` by a scan, not an index
ACCEPT_SYMBOL = "$corral_start"
TAIL_TERMINAL = "$corral_ignore_tail"


def least_fixpoint(rules, initial: list[bool], terminal_ok) -> list[bool]:
    """The least set of nonterminals holding ``initial`` and closed under "a rule whose terminals
    are all ``terminal_ok`` and whose nonterminals all hold makes its left side hold" (productive
    and nullable nonterminals). A worklist: each rule is revisited once per body nonterminal that
    comes to hold, linear in the grammar, where sweeping all rules until nothing changes was a
    tenth of a median JSON Schema compile."""
    holds = list(initial)
    queue = [i for i, h in enumerate(holds) if h]
    missing: list[int] = []
    users: list[list[int]] = [[] for _ in holds]
    verdict: dict[int, bool] = {}  # terminal symbol -> terminal_ok, asked once per terminal
    for r, (lhs, rhs) in enumerate(rules):
        count = 0
        for s in rhs:
            if s >= 0:
                count += 1
                continue
            ok = verdict.get(s)
            if ok is None:
                ok = verdict[s] = bool(terminal_ok(-1 - s))
            if not ok:
                count = -1  # never: a terminal of its body fails
                break
        missing.append(count)
        if count > 0:
            for s in rhs:
                if s >= 0:
                    users[s].append(r)
        elif count == 0 and not holds[lhs]:
            holds[lhs] = True
            queue.append(lhs)
    while queue:
        for r in users[queue.pop()]:
            missing[r] -= 1
            if missing[r] == 0:
                lhs = rules[r][0]
                if not holds[lhs]:
                    holds[lhs] = True
                    queue.append(lhs)
    return holds


class ParserState(NamedTuple):
    """One hash-consed Earley set. ``entries`` = scans plus terminals expected here (DFA state 0).
    ``items`` and ``scans`` are sorted tuples, not frozensets: tuples of ints leave the cyclic GC's
    scans after its first pass, sets never do (tens of thousands of states per long run). A named
    tuple, not a frozen dataclass: built in 0.8 µs instead of 2.0 (first-visit masks make a state
    per lexeme boundary). The GC untracks exact tuples only, so each state is untracked when made
    (``corral.gc_untrack``). Compared by id, never by value."""

    id: int
    items: tuple  # sorted make_item(pos, origin_id or SELF)
    scans: tuple  # sorted (terminal, dfa_state, start_state_id)
    entries: tuple  # ((terminal, dfa_state, start_state_id), ...) sorted, all lexing branches
    accepting: bool


class ParserTables:
    """Immutable tables for one grammar (shared by every state and matcher of it)."""

    def __init__(self, grammar: Grammar, max_items_per_state: int = 200_000):
        self.grammar = grammar
        self.max_items_per_state = max_items_per_state
        ignore = [grammar.terminals[t] for t in grammar.ignore]
        ignore_re = rx.star(rx.alt(*ignore)) if ignore else None

        # Terminals: %ignore folds into each terminal as an optional prefix, plus a nullable tail
        # terminal after the start symbol, so ignored text is allowed between and around lexemes.
        term_names = sorted(grammar.terminals)
        regexes = [grammar.terminals[t] for t in term_names]
        if ignore_re is not None:
            regexes = [rx.seq(ignore_re, r) for r in regexes]
            term_names.append(TAIL_TERMINAL)
            regexes.append(ignore_re)
        self.terminal_names = term_names
        self.terminal_regexes = regexes
        # automata are built lazily (first mask that needs them): refuse oversized ones now, at
        # compile time, rather than in the middle of a generation
        limit = 4 * DEFAULT_MAX_STATES
        for name, r in zip(term_names, regexes):
            if rx.position_count(r) >= limit:
                raise CompileBudgetError(f"terminal {name!r}: regex unrolls to more than {limit} automaton positions")
        self.terminal_index = {n: i for i, n in enumerate(term_names)}
        self.terminal_nullable = [rx.min_length(r) == 0 for r in regexes]
        term_empty = [rx.min_length(r) >= (1 << 30) for r in regexes]

        # Nonterminals and rules (augmented start rule first). Rule-family members (see
        # ``RuleFamily``) get ids as they are first referenced and rules when first predicted.
        nt_names = [ACCEPT_SYMBOL] + sorted(grammar.rules)
        self.nonterminal_names = nt_names
        self._nt_index = {n: i for i, n in enumerate(nt_names)}
        self._term_empty = term_empty
        self._lazy_lock = threading.RLock()
        self._lazy_alts: dict[int, tuple] = {}  # member id -> (family, key) not yet turned into rules
        self._member_nullable: dict[int, bool] = {}
        start_rhs = (grammar.start, TAIL_TERMINAL) if ignore_re is not None else (grammar.start,)
        raw_rules: list[tuple[int, tuple[int, ...]]] = []
        raw_rules.append((0, tuple(self._encode(s) for s in start_rhs)))
        # symbol ids from one dict (terminals over nonterminals, as ``_encode``); an alternative
        # naming a family member not met yet goes through ``_encode``, which numbers members in
        # the order they are first named, as before
        sym_id = dict(self._nt_index)
        sym_id.update((name, -1 - t) for name, t in self.terminal_index.items())
        known = sym_id.__getitem__
        for name in sorted(grammar.rules):
            lhs = self._nt_index[name]
            for alt in grammar.rules[name]:
                try:
                    rhs = tuple(map(known, alt))
                except KeyError:
                    rhs = tuple(self._encode(s) for s in alt)
                    sym_id.update(zip(alt, rhs))
                raw_rules.append((lhs, rhs))
        # a member's productivity is its family's: a pseudo-rule over the family's required symbols
        pseudo: list[tuple[int, tuple[int, ...]]] = []
        done_members: set[int] = set()
        while len(done_members) < len(self._lazy_alts):
            for i in [i for i in self._lazy_alts if i not in done_members]:
                done_members.add(i)
                fam, _ = grammar.family_of(nt_names[i])
                pseudo.append((i, tuple(self._encode(s) for s in fam.required_symbols())))
        n_nt = len(nt_names)

        self._productive = self._productive_nts(raw_rules + pseudo, n_nt, term_empty, set())
        self._family_productive = {nt_names[i].partition(ir_sep)[0]: self._productive[i] for i, _ in pseudo}
        # ``_rule_ok`` for every rule at once: no symbol of the body is an empty terminal or an
        # unproductive nonterminal
        unusable = {-1 - t for t, empty in enumerate(term_empty) if empty}
        unusable.update(i for i, ok in enumerate(self._productive) if not ok)
        productive = self._productive
        rules = [(lhs, rhs) for lhs, rhs in raw_rules if productive[lhs] and unusable.isdisjoint(rhs)]
        # An empty language is legal (JSON Schema `false`): its only state has no items, allows
        # nothing and never accepts. Front-ends where it must be a mistake check `empty_language`.
        self.empty_language = not any(lhs == 0 for lhs, _ in rules)
        self.rules = rules

        # Dotted positions: pos = rule_first_pos[r] + dot.
        # machine-int arrays, not lists: ~40k positions in a big grammar, 8 bytes each instead of
        # a pointer plus an int object, and no elements for the cyclic GC to visit (they were over
        # half the references it visited after 30 MaskBench schemas; its full passes cost about
        # the same without them: they are paid per tracked object). END_OF_RULE: "no symbol".
        self.next_sym = array("q")
        self.pos_lhs = array("q")
        self.rule_first_pos = array("q")
        self.rules_of: list[list[int] | None] = [None if i in self._lazy_alts else [] for i in range(n_nt)]
        next_sym, pos_lhs, rule_first_pos, rules_of = self.next_sym, self.pos_lhs, self.rule_first_pos, self.rules_of
        for lhs, rhs in rules:  # ``_add_positions``, inlined (~650k rules over 129 large schemas)
            first = len(next_sym)
            rule_first_pos.append(first)
            next_sym.extend(rhs)
            next_sym.append(END_OF_RULE)
            pos_lhs.extend(repeat(lhs, len(rhs) + 1))
            rules_of[lhs].append(first)
        # tuples: untracked by the cyclic GC once built (one list per nonterminal added up to ~30k)
        self.rules_of = [None if r is None else tuple(r) for r in self.rules_of]
        self.accept_pos = -2 if self.empty_language else self.rule_first_pos[0] + len(rules[0][1])
        self.nullable_nt = self._nullable(rules, n_nt, self._member_nullable)
        self._dfas: list[ByteDFA | None] = [None] * len(term_names)
        self._dfa_lock = threading.Lock()
        self._has_out: list[np.ndarray | None] = [None] * len(term_names)
        self._predictions: dict[int, tuple] = {}
        self._push_closures: dict[tuple, tuple | bool] = {}

    def _encode(self, sym: str) -> int:
        """Symbol id: terminals negative, nonterminals >= 0 (family members allocated on first use)."""
        t = self.terminal_index.get(sym)
        if t is not None:
            return -1 - t
        i = self._nt_index.get(sym)
        if i is not None:
            return i
        fam = self.grammar.family_of(sym)
        if fam is None:
            raise GrammarError(f"undefined symbol {sym!r}")
        with self._lazy_lock:
            i = self._nt_index.get(sym)
            if i is not None:
                return i
            # alternatives are built when the member is first predicted (rules_for): most members
            # a rule names are never reached (a key position names one per key not yet written)
            nullable = fam[0].nullable(fam[1])
            i = len(self.nonterminal_names)
            self._lazy_alts[i] = fam
            self._member_nullable[i] = nullable
            if hasattr(self, "nullable_nt"):  # after construction: extend the per-nonterminal tables
                self.nullable_nt.append(nullable)
                self._productive.append(self._family_productive.get(sym.partition(ir_sep)[0], False))
                self.rules_of.append(None)
            self.nonterminal_names.append(sym)
            self._nt_index[sym] = i  # published last: readers see complete tables
            return i

    def _rule_ok(self, lhs: int, rhs: tuple) -> bool:
        return self._productive[lhs] and all(
            (s < 0 and not self._term_empty[-1 - s]) or (s >= 0 and self._productive[s]) for s in rhs)

    def _add_positions(self, lhs: int, rhs: tuple) -> int:
        first = len(self.next_sym)
        self.rule_first_pos.append(first)
        for d in range(len(rhs) + 1):
            self.next_sym.append(rhs[d] if d < len(rhs) else END_OF_RULE)
            self.pos_lhs.append(lhs)
        return first

    def rules_for(self, nt: int) -> tuple[int, ...]:
        """First positions of ``nt``'s rules (a family member's rules are built on first call)."""
        r = self.rules_of[nt]
        if r is not None:
            return r
        with self._lazy_lock:
            r = self.rules_of[nt]
            if r is not None:
                return r
            r = []
            family, key = self._lazy_alts.pop(nt)
            for alt in family.alternatives(key):
                rhs = tuple(self._encode(s) for s in alt)
                if self._rule_ok(nt, rhs):
                    self.rules.append((nt, rhs))
                    r.append(self._add_positions(nt, rhs))
            r = tuple(r)
            self.rules_of[nt] = r
            return r

    @staticmethod
    def _productive_nts(rules, n_nt, term_empty, assumed) -> list[bool]:
        return least_fixpoint(rules, [i in assumed for i in range(n_nt)], lambda t: not term_empty[t])

    def _nullable(self, rules, n_nt, known: dict):
        return least_fixpoint(rules, [known.get(i, False) for i in range(n_nt)], lambda t: self.terminal_nullable[t])

    def dfa(self, t: int) -> ByteDFA:
        d = self._dfas[t]
        if d is None:
            with self._dfa_lock:
                d = self._dfas[t]
                if d is None:
                    try:
                        d = regex_to_dfa(self.terminal_regexes[t])
                    except CompileBudgetError as e:
                        raise CompileBudgetError(f"terminal {self.terminal_names[t]!r}: {e}") from e
                    self._dfas[t] = d
        return d

    def has_out(self, t: int) -> np.ndarray:
        """bool[n_states] of terminal ``t``'s DFA: the state has at least one outgoing byte."""
        h = self._has_out[t]
        if h is None:
            h = (self.dfa(t).transitions >= 0).any(axis=1)
            self._has_out[t] = h
        return h

    def prediction(self, nt: int) -> tuple:
        """(items, expected terminals) that predicting ``nt`` adds to a state: ``nt``'s rules at
        dot 0 with origin SELF, closed under prediction and nullable advance. Completions of these
        items need no lookup (the nullable shortcut), so the set is a function of ``nt`` alone."""
        hit = self._predictions.get(nt)
        if hit is not None:
            return hit
        items: set = set()
        expected: set = set()
        agenda = list(self.rules_for(nt))  # SELF items are bare positions
        next_sym = self.next_sym
        while agenda:
            it = agenda.pop()
            if it in items:
                continue
            items.add(it)
            s = next_sym[it]
            if s == END_OF_RULE:
                continue
            if s >= 0:
                agenda.extend(self.rules_for(s))
                if self.nullable_nt[s]:
                    agenda.append(it + 1)
            else:
                expected.add(-1 - s)
                if self.terminal_nullable[-1 - s]:
                    agenda.append(it + 1)
            if len(items) > self.max_items_per_state:
                raise CompileBudgetError(
                    f"parser state exceeds {self.max_items_per_state} Earley items (highly ambiguous grammar)")
        # completed items are not kept in states (ParserStates._intern): left out here already
        kept = frozenset([it for it in items if next_sym[it] != END_OF_RULE or it == self.accept_pos])
        hit = (kept, frozenset(expected))
        # frozensets of ints and their pair: CPython never untracks a frozenset by itself, nor a
        # tuple holding one (~10k of a mask run's 26k tracked objects after 100 MaskBench schemas)
        untrack(kept)
        untrack(hit[1])
        untrack(hit)
        self._predictions[nt] = hit
        return hit

    def push_closure(self, positions: tuple):
        """For a kernel whose items all wait for a symbol that is not nullable (nothing completes,
        nothing advances for free): (the sorted items its closure predicts, the sorted terminals expected),
        a function of the kernel's dotted positions alone; None for any other kernel. Most states
        a mask creates are such pushes (an opening bracket, a key, an operator, each level of a
        nesting chain), and this skips the closure's worklist for them."""
        hit = self._push_closures.get(positions)
        if hit is None:
            items: set = set()
            expected: set = set()
            hit = False
            for p in positions:
                s = self.next_sym[p]
                if s == END_OF_RULE:
                    break
                if s >= 0:
                    if self.nullable_nt[s]:
                        break
                    p_items, p_expected = self.prediction(s)
                    items |= p_items
                    expected |= p_expected
                elif self.terminal_nullable[-1 - s]:
                    break
                else:
                    expected.add(-1 - s)
            else:
                if len(items) + len(positions) <= self.max_items_per_state:
                    # both sorted tuples (of ints: CPython untracks them itself), the terminals in
                    # the order a state's entries list them
                    hit = (tuple(sorted(items)), tuple(sorted(expected)))
                    untrack(hit)
            self._push_closures[positions] = hit
        return hit or None

    def symbol_nullable(self, s: int) -> bool:
        return self.terminal_nullable[-1 - s] if s < 0 else self.nullable_nt[s]


class ParserStates:
    """The hash-consing table of states for one grammar, with memoized transitions.

    Thread-safe: state creation takes a lock; lookups are plain dict reads.
    """

    def __init__(self, tables: ParserTables):
        self.t = tables
        self._by_key: dict = {}
        self.states: list[ParserState] = []
        self._lock = threading.Lock()  # only _intern takes it, never re-entered
        self._step_memo: dict[tuple[int, int], int] = {}
        self._waiting: dict[int, dict] = {}  # state id -> {next symbol: items waiting for it}
        self._after_terminal: dict[tuple[int, int], int] = {}
        self._without: dict[tuple[int, frozenset], int] = {}
        # state id -> kernel positions, for states made by a push (``ParserTables.push_closure``)
        # and no lexeme in progress: their lexing and the states after their terminals are those of
        # the position set's template (the mask walks chains of them in numba, masks/mask_walk.py)
        self.push_positions: dict[int, tuple] = {}
        kernel = set() if tables.empty_language else {make_item(tables.rule_first_pos[0], SELF)}
        self.initial = self._closure_state(kernel, (), initial=True)

    # -- state construction -------------------------------------------------------------------
    def _intern(self, items, scans, initial: bool = False, expected_terms=None, accepting=None,
                completed_removed: bool = False, items_sorted: bool = False) -> int:
        # Completed items are not kept (except the start rule's, which says the state accepts):
        # their completions were made by the closure, and nothing looks them up later (waiting
        # items have a next symbol). Kept, they made states that differ only in where a finished
        # lexeme's rule began, which is exactly what ambiguous lexing varies.
        if not completed_removed:
            ns, accept_pos = self.t.next_sym, self.t.accept_pos
            items = [it for it in items if ns[it & POS_MASK] != END_OF_RULE or it & POS_MASK == accept_pos]
        if not items_sorted:
            items = tuple(sorted(items))
        scans = tuple(sorted(scans)) if scans else ()
        key = (items, scans)
        sid = self._by_key.get(key)
        if sid is not None:
            return sid
        # Lexemes that begin at a position begin at the scan-free state of its items, not at a
        # state that also holds the lexemes still being read there: both have the same items, so
        # they mean the same, but where lexing is ambiguous at every character (`NAME+` without
        # separators) the states reached after each byte differ by their scans, and lexemes begun
        # at them never merged: one branch per split, mask and step time growing with the input.
        lexeme_start = self._intern(items, (), initial, expected_terms, accepting, True, True) if scans and items else None
        with self._lock:
            sid = self._by_key.get(key)
            if sid is not None:
                return sid
            sid = len(self.states)
            if lexeme_start is None:
                lexeme_start = sid
            t = self.t
            if expected_terms is None:
                ns = t.next_sym
                expected_terms = {-1 - ns[it & POS_MASK] for it in items
                                  if ns[it & POS_MASK] != END_OF_RULE and ns[it & POS_MASK] < 0}
            if accepting is None:
                accepting = any(item_pos(it) == t.accept_pos and (item_origin(it) == 0 or (item_origin(it) == SELF and initial))
                                for it in items)
            # (a push closure's terminals come as a sorted tuple: no sort per new state)
            terms = expected_terms if type(expected_terms) is tuple else sorted(expected_terms)
            entries = scans + tuple([(term, 0, lexeme_start) for term in terms])
            state = ParserState(sid, items, scans, entries, accepting)
            untrack(state)  # ints, tuples of ints and a bool: no cycle through it (corral/gc_untrack.py)
            self.states.append(state)
            self._by_key[key] = sid
            return sid

    def _closure_state(self, kernel: set, scans, initial: bool = False,
                       blocked: frozenset = frozenset()) -> int:
        """Predict/complete closure of ``kernel`` items at a new position, then intern the state.

        Items predicted here (origin SELF) depend only on the predicted nonterminal, so they come
        from ``ParserTables.prediction`` as one set union; only kernel-derived items (real origins)
        go through the Python worklist. ``_closure_state_reference`` is the item-by-item spec."""
        if blocked or initial:
            return self._closure_state_reference(kernel, scans, initial, blocked)
        t = self.t
        if len(kernel) <= 8:
            if len(kernel) == 1:  # most kernels (p50 over MaskBench masks): no set, no sorts
                for only in kernel:
                    positions, kernel_items = (only & POS_MASK,), (only,)
            else:
                positions, kernel_items = tuple(sorted({it & POS_MASK for it in kernel})), tuple(sorted(kernel))
            push = t.push_closure(positions)
            if push is not None:
                # predicted items (origin SELF: bare positions) sort before kernel items (real origins)
                sid = self._intern(push[0] + kernel_items, scans, False, push[1], False, True, True)
                if not scans:
                    self.push_positions[sid] = positions
                return sid
        items: set = set()
        expected: set = set()
        predicted: set = set()
        accepting = False
        agenda = list(kernel)
        next_sym, pos_lhs, nullable_nt, term_nullable = t.next_sym, t.pos_lhs, t.nullable_nt, t.terminal_nullable
        accept_pos = t.accept_pos
        completed = []
        while agenda:
            it = agenda.pop()
            if it in items:
                continue
            items.add(it)
            p = it & POS_MASK
            s = next_sym[p]
            if s == END_OF_RULE:
                # kernel-derived items always have a real origin (SELF only comes from predictions)
                o = (it >> 32) - 1
                if p == accept_pos:
                    accepting = accepting or o == 0
                else:
                    completed.append(it)  # not kept in the state (see _intern)
                for w in self.waiting_nt(o, pos_lhs[p]):
                    agenda.append(w + 1)
            elif s >= 0:
                if s not in predicted:
                    predicted.add(s)
                    p_items, p_expected = t.prediction(s)
                    items |= p_items
                    expected |= p_expected
                if nullable_nt[s]:
                    agenda.append(it + 1)
            else:
                expected.add(-1 - s)
                if term_nullable[-1 - s]:
                    agenda.append(it + 1)
        if len(items) > t.max_items_per_state:
            raise CompileBudgetError(
                f"parser state exceeds {t.max_items_per_state} Earley items (highly ambiguous grammar)")
        if completed:
            items.difference_update(completed)
        return self._intern(items, scans, False, expected, accepting, True)

    def _closure_state_reference(self, kernel: set, scans, initial: bool = False,
                                 blocked: frozenset = frozenset()) -> int:
        """Item-by-item closure (the specification ``_closure_state`` is tested against). Items of
        ``blocked`` nonterminals are left out (see ``without``)."""
        t = self.t
        items: set = set()
        agenda = list(kernel)
        next_sym, pos_lhs = t.next_sym, t.pos_lhs
        while agenda:
            it = agenda.pop()
            if it in items:
                continue
            p, o = item_pos(it), item_origin(it)
            if blocked and pos_lhs[p] in blocked:
                continue
            items.add(it)
            s = next_sym[p]
            if s == END_OF_RULE:
                # Completion. Items predicted in this same set complete through the nullable
                # shortcut below (Aycock-Horspool), so only earlier origins are looked up.
                if o != SELF:
                    for w in self.waiting_nt(o, pos_lhs[p]):
                        agenda.append(w + 1)
            elif s >= 0:
                for rp in t.rules_for(s):
                    agenda.append(make_item(rp, SELF))
                if t.nullable_nt[s]:
                    agenda.append(it + 1)
            elif t.terminal_nullable[-1 - s]:
                agenda.append(it + 1)
            if len(items) > t.max_items_per_state:
                raise CompileBudgetError(
                    f"parser state exceeds {t.max_items_per_state} Earley items (highly ambiguous grammar)"
                )
        return self._intern(items, scans, initial)

    def waiting_nt(self, sid: int, nt: int) -> tuple:
        """Items of state ``sid`` whose next symbol is ``nt`` (origins resolved). Indexed once per
        state: a key position of an object with N keys is asked about each key terminal, and
        scanning its items per question was quadratic."""
        index = self._waiting.get(sid)
        if index is None:
            items = self.states[sid].items
            if len(items) <= SMALL_STATE_ITEMS:  # most states (p50 3 items): a scan beats an index
                ns, resolved = self.t.next_sym, (sid + 1) << 32
                return tuple([it if it >> 32 else it | resolved for it in items if ns[it & POS_MASK] == nt])
            ns = self.t.next_sym
            grouped: dict = {}
            resolved = (sid + 1) << 32
            for it in self.states[sid].items:
                p = it & POS_MASK
                sym = ns[p]
                if sym != END_OF_RULE:
                    grouped.setdefault(sym, []).append(it if it >> 32 else it | resolved)
            index = {sym: tuple(items) for sym, items in grouped.items()}
            self._waiting[sid] = index
        return index.get(nt, ())

    def waiting_t(self, sid: int, term: int) -> tuple:
        return self.waiting_nt(sid, -1 - term)

    def after_terminal(self, start_sid: int, term: int) -> int:
        """The state reached when ``term``, begun in ``start_sid``, completes (no other branch)."""
        key = (start_sid, term)
        n = self._after_terminal.get(key)
        if n is None:
            kernel = {w + 1 for w in self.waiting_nt(start_sid, -1 - term)}
            n = self._closure_state(kernel, ()) if kernel else DEAD
            self._after_terminal[key] = n
        return n

    def without(self, sid: int, blocked: frozenset) -> int:
        """State ``sid`` with every parse through the nonterminals ``blocked`` (ids) removed: the
        Matcher's value constraints kill the parses of an array whose items repeat this way. Items
        completed or predicted here are derived again from the kept ones, so none comes back through
        a completion; DEAD when nothing is left.

        The states an item began in (and a lexeme being read began in) go through the same removal
        first. They were all created before ``sid`` (a state names only existing states), so a
        worklist settles them in that order: no recursion as deep as the document is long."""
        key = (sid, blocked)
        n = self._without.get(key)
        if n is not None:
            return n
        memo = self._without
        stack = [sid]
        while stack:
            s = stack[-1]
            if (s, blocked) in memo:
                stack.pop()
                continue
            pending = [d for d in self._origins(s) if (d, blocked) not in memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[(s, blocked)] = self._without_one(s, blocked)
        return memo[key]

    def _origins(self, sid: int) -> set:
        """States that items and lexemes of ``sid`` began in (other than ``sid``)."""
        st = self.states[sid]
        out = {item_origin(it) for it in st.items if it >> 32}
        out.update(start for _, _, start in st.scans)
        out.discard(sid)
        return out

    def _without_one(self, sid: int, blocked: frozenset) -> int:
        """``without`` for one state whose origins are settled in the memo."""
        st = self.states[sid]
        pos_lhs = self.t.pos_lhs
        memo = self._without
        # an item begun in an earlier state lives only through the items there that wait for
        # its nonterminal: it moves to that state's remainder, or goes when none waits there
        # (a value inside a unique array's item dies with the array's parse)
        kernel = set()
        changed = False
        for it in st.items:
            if not it >> 32:
                continue  # predicted here: derived again from what is kept
            p = it & POS_MASK
            lhs = pos_lhs[p]
            if lhs in blocked:
                changed = True
                continue
            o = item_origin(it)
            kept_origin = memo[(o, blocked)]
            if kept_origin == o:
                kernel.add(it)
            elif kept_origin != DEAD and self.waiting_nt(kept_origin, lhs):
                kernel.add(make_item(p, kept_origin))
                changed = True
            else:
                changed = True
        # a lexeme still being read completes into the items waiting in its start state: those
        # go through the same removal, or the parse would come back when the lexeme ends
        scans = set()
        for term, q, start in st.scans:
            kept = start if start == sid else memo[(start, blocked)]
            if kept != DEAD and self.waiting_t(kept, term):
                scans.add((term, q, kept))
            changed = changed or kept != start
        if not changed and len(scans) == len(st.scans) and not any(
                pos_lhs[it & POS_MASK] in blocked for it in st.items):
            return sid  # nothing of those parses here or before
        if sid == self.initial:
            # all predictions, and acceptance is read off items begun in state 0: kept as is
            # (what a removed array predicts here is its opening bracket alone)
            return sid
        n = self._closure_state(kernel, scans, blocked=blocked) if kernel or scans else DEAD
        if n != DEAD and not self.states[n].entries and not self.states[n].accepting:
            n = DEAD
        return n

    # -- stepping -----------------------------------------------------------------------------
    def step(self, sid: int, byte: int) -> int:
        """The state after one more byte, or DEAD."""
        key = (sid, byte)
        n = self._step_memo.get(key)
        if n is not None:
            return n
        new_scans, kernel = self._advance(self.states[sid].entries, byte)
        n = DEAD if new_scans is None else self._closure_state(kernel, new_scans)
        self._step_memo[key] = n
        return n

    def _advance(self, entries, byte: int):
        """(scans still reading a lexeme, kernel of items that completed lexemes advance) after one
        byte from these lexing branches; (None, None) when every branch dies."""
        t = self.t
        new_scans = set()
        kernel = set()
        alive = False
        for term, q, start in entries:
            d = t.dfa(term)
            q2 = int(d.transitions[q, byte])
            if q2 < 0:
                continue
            alive = True
            # A lexeme that can go no further is dropped from the scans (its completion is in the
            # kernel): equal parse situations then hash to one state whatever the lexeme was.
            if t.has_out(term)[q2]:
                new_scans.add((term, q2, start))
            if d.accepting[q2]:
                for w in self.waiting_t(start, term):
                    kernel.add(w + 1)
        return (new_scans, kernel) if alive else (None, None)

    def step_bytes(self, sid: int, data: bytes) -> int:
        """The state after ``data``, or DEAD. Bytes inside a lexeme where nothing completes (most of
        a token inside a string or a name) lead to states of scans alone: those are carried as
        scans and not interned, unless the step is memoized already (49k of 111k steps over 150
        MaskBench schemas were such states, ~6 us each to intern; the state after the whole
        token is interned as ``step`` would). ``step`` byte by byte is the specification."""
        memo = self._step_memo
        i, n = 0, len(data)
        while i < n:
            nxt = memo.get((sid, data[i]))
            if nxt is not None:
                sid = nxt
                i += 1
                if sid == DEAD:
                    return DEAD
                continue
            entries = self.states[sid].entries
            first_key = (sid, data[i])  # memoized when the step ends one byte after ``sid``
            while True:
                new_scans, kernel = self._advance(entries, data[i])
                i += 1
                if new_scans is None:
                    if first_key is not None:
                        memo[first_key] = DEAD
                    return DEAD
                if kernel or i == n:
                    sid = self._closure_state(kernel, new_scans)
                    if first_key is not None:
                        memo[first_key] = sid
                    break
                first_key = None
                entries = new_scans  # (a state of scans alone: its lexing branches are its scans)
        return sid

    def allowed_bytes(self, sid: int) -> np.ndarray:
        """bool[256]: bytes that keep some lexing branch alive."""
        out = np.zeros(256, dtype=bool)
        for term, q, _ in self.states[sid].entries:
            out |= self.t.dfa(term).transitions[q] >= 0
        return out
