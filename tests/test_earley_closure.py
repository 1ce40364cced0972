"""The Earley closure's fast path (cached per-nonterminal predictions, int items) against the
item-by-item reference closure: on random byte walks both must build the same states."""
from __future__ import annotations

import random

import numpy as np
import pytest

from corral.automata.earley import DEAD, END_OF_RULE, ParserStates, ParserTables, item_origin, item_pos, make_item
from corral.grammars.json_schema import json_schema_to_grammar
from corral.grammars.lark_frontend import lark_to_grammar

from test_engine import LARK_GRAMMARS

SCHEMAS = {
    "object": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {
        "type": "string", "maxLength": 3}}}, "required": ["a"]},
    "recursive": {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "number"}, "kids": {
        "type": "array", "items": {"$ref": "#/$defs/node"}}}, "additionalProperties": False}},
        "$ref": "#/$defs/node"},
    "anyof": {"anyOf": [{"type": "null"}, {"type": "boolean"}, {"enum": ["x", 1, [2]]},
                        {"type": "array", "minItems": 2, "items": {"type": "integer", "minimum": -5}}]},
}


class ReferenceStates(ParserStates):
    """Every closure computed item by item: the specification."""

    def _closure_state(self, kernel, scans, initial=False, blocked=frozenset()):
        return self._closure_state_reference(kernel, scans, initial, blocked)


def _grammars():
    for name, text in sorted(LARK_GRAMMARS.items()):
        yield f"lark-{name}", lark_to_grammar(text)
    for name, schema in sorted(SCHEMAS.items()):
        yield f"schema-{name}", json_schema_to_grammar(schema).grammar


@pytest.mark.parametrize("name,grammar", list(_grammars()), ids=lambda v: v if isinstance(v, str) else "")
def test_fast_closure_builds_the_reference_states(name, grammar):
    rnd = random.Random(7)
    fast_tables, ref_tables = ParserTables(grammar), ParserTables(grammar)
    fast, ref = ParserStates(fast_tables), ReferenceStates(ref_tables)
    compared = 0
    for _ in range(30):
        sf, sr = fast.initial, ref.initial
        for _ in range(60):
            a, b = fast.states[sf], ref.states[sr]
            assert a.items == b.items and a.scans == b.scans
            assert a.entries == b.entries and a.accepting == b.accepting
            compared += 1
            allowed = np.flatnonzero(fast.allowed_bytes(sf))
            assert np.array_equal(allowed, np.flatnonzero(ref.allowed_bytes(sr)))
            if len(allowed) == 0:
                break
            byte = int(rnd.choice(allowed))
            sf, sr = fast.step(sf, byte), ref.step(sr, byte)
            assert (sf == DEAD) == (sr == DEAD)
            if sf == DEAD:
                break
    assert compared > 100
    assert len(fast.states) == len(ref.states)


@pytest.mark.parametrize("name,grammar", list(_grammars()), ids=lambda v: v if isinstance(v, str) else "")
def test_step_bytes_reaches_the_states_of_byte_by_byte_steps(name, grammar):
    """``step_bytes`` carries the scans through bytes where nothing completes instead of interning
    a state per byte: the state after each chunk is the one ``step`` reaches byte by byte (the same
    id in one hash-consing table: the same items, scans and acceptance), and a chunk that dies
    midway is DEAD both ways. Chunks come from a second table's allowed bytes (a byte-level walk)."""
    rnd = random.Random(11)
    tables = ParserTables(grammar)
    walker, states = ParserStates(tables), ParserStates(tables)
    compared = carried = 0
    for _ in range(40):
        w, sid = walker.initial, states.initial
        for _ in range(20):
            chunk = []
            for _ in range(rnd.randint(1, 7)):  # mostly viable, sometimes a byte that kills it
                allowed = np.flatnonzero(walker.allowed_bytes(w))
                byte = int(rnd.choice(allowed)) if len(allowed) and rnd.random() < 0.95 else rnd.randrange(256)
                chunk.append(byte)
                w = walker.step(w, byte)
                if w == DEAD:
                    break
            before = len(states.states)
            fast = states.step_bytes(sid, bytes(chunk))  # first: no step of the chunk memoized yet
            made = len(states.states) - before
            slow = sid
            for byte in chunk:
                slow = states.step(slow, byte)
                if slow == DEAD:
                    break
            assert fast == slow, (name, chunk)
            carried += len(chunk) - made
            compared += 1
            if fast == DEAD:
                break
            sid = fast
    assert compared > 100 and carried > 0


@pytest.mark.parametrize("name,grammar", [g for g in _grammars() if g[0] in ("lark-json", "lark-arith")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_waiting_items_by_scan_equal_the_index(name, grammar, monkeypatch):
    """Small states answer ``waiting_nt`` by scanning their items, large ones by an index: both
    give, in item order, the items whose next symbol is asked for, origins resolved."""
    import corral.automata.earley as earley

    rnd = random.Random(3)
    states = ParserStates(ParserTables(grammar))
    for _ in range(20):
        sid = states.initial
        for _ in range(40):
            allowed = np.flatnonzero(states.allowed_bytes(sid))
            if len(allowed) == 0:
                break
            sid = states.step(sid, int(rnd.choice(allowed)))
            if sid == DEAD:
                break
    ns = states.t.next_sym
    symbols = sorted({ns[item_pos(it)] for st in states.states for it in st.items} - {END_OF_RULE})
    scanned = {(sid, sym): states.waiting_nt(sid, sym) for sid in range(len(states.states)) for sym in symbols}
    monkeypatch.setattr(earley, "SMALL_STATE_ITEMS", -1)
    states._waiting.clear()
    for (sid, sym), got in scanned.items():
        want = tuple(it if item_origin(it) != -1 else make_item(item_pos(it), sid)
                     for it in states.states[sid].items if ns[item_pos(it)] == sym)
        assert got == want == states.waiting_nt(sid, sym)
    assert any(got for got in scanned.values())
    sizes = [len(st.items) for st in states.states]  # both paths were taken
    assert min(sizes) <= 8 < max(sizes)


def test_item_encoding_round_trips():
    for pos, origin in [(0, -1), (5, 0), (123456, 7), ((1 << 32) - 1, 10 ** 6)]:
        it = make_item(pos, origin)
        assert item_pos(it) == pos and item_origin(it) == origin
        if pos < (1 << 32) - 1:
            assert item_pos(it + 1) == pos + 1 and item_origin(it + 1) == origin
    assert make_item(9, -1) == 9  # a SELF item is its bare position


@pytest.mark.parametrize("seed", range(20))
def test_least_fixpoint_equals_sweeping_until_nothing_changes(seed):
    """Productive and nullable nonterminals by worklist equal the sweep-until-stable definition on
    random grammars (repeated body symbols, failing terminals, nonterminals assumed to hold)."""
    import random

    from corral.automata.earley import least_fixpoint

    rnd = random.Random(seed)
    n_nt, n_t = rnd.randint(1, 12), 4
    ok_terminal = [rnd.random() < 0.7 for _ in range(n_t)]
    rules = [(rnd.randrange(n_nt), tuple(rnd.choice([rnd.randrange(n_nt), -1 - rnd.randrange(n_t)])
                                         for _ in range(rnd.randint(0, 3)))) for _ in range(rnd.randint(0, 25))]
    initial = [rnd.random() < 0.1 for _ in range(n_nt)]
    want = list(initial)
    changed = True
    while changed:
        changed = False
        for lhs, rhs in rules:
            if not want[lhs] and all((s < 0 and ok_terminal[-1 - s]) or (s >= 0 and want[s]) for s in rhs):
                want[lhs] = changed = True
    assert least_fixpoint(rules, initial, lambda t: ok_terminal[t]) == want


def test_parser_states_and_regex_nodes_stay_out_of_the_cyclic_gc():
    """Parser states (named tuples of ints) and regex AST nodes are acyclic by construction, and a
    long process keeps hundreds of thousands of them: they are untracked when made (CPython
    untracks only exact tuples by itself), and they still hash, compare and pickle as before."""
    import gc
    import pickle
    import platform

    from corral.grammars import regex_ast as rx

    states = ParserStates(ParserTables(lark_to_grammar(LARK_GRAMMARS["arith"])))
    sid = states.initial
    for b in b"(1+2)*3":
        sid = states.step(sid, b)
    assert sid != DEAD and len(states.states) > 5
    node = rx.seq(rx.chars([(97, 122)]), rx.repeat(rx.literal("xy"), 1, None))
    again = pickle.loads(pickle.dumps(node))
    assert again == node and hash(again) == hash(node)
    if platform.python_implementation() == "CPython":
        assert not any(gc.is_tracked(st) for st in states.states)
        assert not gc.is_tracked(node) and not gc.is_tracked(again) and not gc.is_tracked(node.items[1])
        # their child tuples and the instance dict that holds the cached hash, too
        assert not gc.is_tracked(node.items) and not gc.is_tracked(node.__dict__)
    gc.collect()  # (freeing untracked objects later is plain reference counting)
    del states, node, again
    gc.collect()


def test_memoized_code_point_automata_keep_tuples_the_gc_skips():
    """combine's memo keeps its DFAs with tuple rows (tuples of ints leave the cyclic GC, lists
    never do: the memos' list rows were most of what a full collection visited in a long run),
    and a kept DFA answers as before."""
    import gc
    import platform

    from corral.grammars import regex_ast as rx
    from corral.grammars.json_schema import cpdfa

    words = rx.alt(rx.literal("alpha"), rx.literal("beta"), rx.literal("gamma"))
    no_b = rx.seq(rx.star(rx.chars([(97, 97), (99, 122)])))
    first = cpdfa.combine([words], [rx.seq(rx.literal("b"), rx.star(rx.any_char()))])
    again = cpdfa.combine([words], [rx.seq(rx.literal("b"), rx.star(rx.any_char()))])
    assert again is first and type(first.trans) is tuple and all(type(r) is tuple for r in first.trans)
    assert first.accepts("alpha") and first.accepts("gamma") and not first.accepts("beta")
    assert cpdfa.combine([words, no_b]).accepts("gamma") and not cpdfa.combine([words, no_b]).accepts("beta")
    if platform.python_implementation() == "CPython":
        gc.collect()
        gc.collect()  # (a tuple of tuples leaves once its items have: a pass may meet it first)
        assert not any(gc.is_tracked(r) for r in first.trans) and not gc.is_tracked(first.accept)
        atoms = first.atoms
        assert not gc.is_tracked(atoms.intervals) and not gc.is_tracked(atoms.of_class(((97, 98),)))


def test_compiles_pause_automatic_collection_and_restore_it():
    """No automatic GC pass inside a compile (one pause shared by nested and concurrent compiles),
    the collector enabled again after it, even when the compile fails, and left disabled when the
    caller had disabled it; what a compile leaves behind is still collectable."""
    import gc
    import threading
    import weakref

    import corral
    from corral.gc_untrack import gc_paused

    vocab = corral.Vocabulary([b"{", b"}", b'"', b"a", b":", b",", b" ", b"1"])
    passes = []
    callback = lambda phase, info: passes.append(phase) if phase == "start" else None  # noqa: E731
    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(callback)
    try:
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner pause ended, the outer one holds
            junk = [[[] for _ in range(50)] for _ in range(2000)]  # far past the young threshold
            del junk
            assert passes == []

            class Cyclic:
                pass

            cycle = Cyclic()
            cycle.me = cycle
            ref = weakref.ref(cycle)
            del cycle
        assert gc.isenabled() and ref() is not None
        gc.collect()
        assert ref() is None
        corral.compile_json_schema({"type": "object", "properties": {"a": {"type": "integer"}}}, vocab)
        assert gc.isenabled()
        with pytest.raises(corral.SchemaError):
            corral.compile_json_schema({"type": "object", "minProperties": "x"}, vocab)
        assert gc.isenabled()
        # concurrent compiles: the collector comes back once the last one ends
        barrier = threading.Barrier(4)

        def work(k):
            with gc_paused():
                barrier.wait()
                corral.compile_json_schema({"type": "array", "maxItems": k + 1}, vocab)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gc.isenabled()
        gc.disable()
        corral.compile_json_schema({"type": "string", "maxLength": 3}, vocab)
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.callbacks.remove(callback)
        (gc.enable if was_enabled else gc.disable)()
