"""The numba trie walks equal their plain-Python specification on the full Llama-3 vocabulary."""
from __future__ import annotations

import numpy as np
import pytest

from corral.automata.dfa import regex_to_dfa
from corral.grammars.regex_parser import parse_regex
from corral.masks.mask_walk import walk_subtries_multi, walk_subtries_reference
from corral.masks.trie_walk import packed_trie_arrays
from corral.masks.trie_walk import walk_trie_with_dfa

PATTERNS = [r"[0-9]+", r'"([^"\\]|\\.)*"[,}]?', r" ?[a-z]+", r"\(+[0-9]*\)?"]


def _unpack(bits, size):
    return set(np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little")[:size]).tolist())


@pytest.mark.parametrize("pattern", PATTERNS)
def test_walk_subtries_multi_one_branch_matches_reference(llama3_vocab, pattern):
    trie = llama3_vocab.trie
    dfa = regex_to_dfa(parse_regex(pattern))
    rng = np.random.default_rng(0)
    inner = rng.choice(np.flatnonzero(trie.node_skip > np.arange(trie.num_nodes) + 1), 25, replace=False)
    for roots in (np.array([0], dtype=np.int32), np.sort(inner).astype(np.int32)):
        for q in range(min(dfa.n_states, 3)):
            bits = np.zeros((llama3_vocab.size + 31) // 32, dtype=np.uint32)
            entry = np.array([q], dtype=np.int32)
            bounds, _ = walk_subtries_multi(*packed_trie_arrays(trie), dfa.transitions, dfa.accepting, entry, roots, bits,
                                            trie.max_depth)
            allowed, ref_bounds = walk_subtries_reference(trie, dfa.transitions, dfa.accepting, q, roots,
                                                          llama3_vocab.size)
            assert _unpack(bits, llama3_vocab.size) == allowed
            assert sorted(bounds.tolist()) == ref_bounds


def test_walk_subtries_multi_matches_single_walks(llama3_vocab):
    trie = llama3_vocab.trie
    dfas = [regex_to_dfa(parse_regex(p)) for p in PATTERNS]
    bases, tables, accepts = [], [], []
    offset = 0
    for d in dfas:
        bases.append(offset)
        tables.append(np.where(d.transitions >= 0, d.transitions + offset, -1))
        accepts.append(d.accepting)
        offset += d.n_states
    packed = np.concatenate(tables).astype(np.int32)
    accept = np.concatenate(accepts)
    roots = np.array([0, trie.find(b"("), trie.find(b'"')], dtype=np.int32)
    entries = np.array([b + min(1, d.n_states - 1) for b, d in zip(bases, dfas)], dtype=np.int32)
    bits = np.zeros((llama3_vocab.size + 31) // 32, dtype=np.uint32)
    nodes, which = walk_subtries_multi(*packed_trie_arrays(trie), packed, accept, entries, roots, bits, trie.max_depth)
    expected_bits = np.zeros_like(bits)
    for e, d in enumerate(dfas):
        q = int(entries[e] - bases[e])
        single = [walk_trie_with_dfa(*trie.arrays(), d.transitions, d.accepting, q, int(r), expected_bits)[:, 0]
                  for r in roots]
        assert sorted(nodes[which == e].tolist()) == sorted(np.concatenate(single).tolist())
    assert np.array_equal(bits, expected_bits)


def test_walk_subtries_groups_equals_one_call_per_group(llama3_vocab):
    """Several parser states' walks in one call: the same bits, and the same boundaries per branch,
    as one ``walk_subtries_multi`` call per group (global branch indices, sorted by branch)."""
    from corral.masks.mask_walk import walk_subtries_groups

    trie = llama3_vocab.trie
    dfas = [regex_to_dfa(parse_regex(p)) for p in PATTERNS]
    bases, tables, accepts, offset = [], [], [], 0
    for d in dfas:
        bases.append(offset)
        tables.append(np.where(d.transitions >= 0, d.transitions + offset, -1))
        accepts.append(d.accepting)
        offset += d.n_states
    packed = np.concatenate(tables).astype(np.int32)
    accept = np.concatenate(accepts)
    starts = [b + min(1, d.n_states - 1) for b, d in zip(bases, dfas)]
    groups = [  # (branch start states, roots) per parser state
        (starts[:2], [0]),
        (starts[1:], [trie.find(b"("), trie.find(b'"')]),
        (starts[::2], [trie.find(b'"')]),
    ]
    entry_states = np.array([s for g, _ in groups for s in g], dtype=np.int32)
    entry_offsets = np.cumsum([0] + [len(g) for g, _ in groups]).astype(np.int64)
    roots = np.array([r for _, rs in groups for r in rs], dtype=np.int32)
    root_offsets = np.cumsum([0] + [len(rs) for _, rs in groups]).astype(np.int64)
    bits = np.zeros((llama3_vocab.size + 31) // 32, dtype=np.uint32)
    nodes, which = walk_subtries_groups(*packed_trie_arrays(trie), packed, accept, entry_states, entry_offsets, roots,
                                        root_offsets, bits, trie.max_depth)
    assert np.all(np.diff(which) >= 0)
    expected_bits = np.zeros_like(bits)
    for g, (branch_starts, rs) in enumerate(groups):
        n, w = walk_subtries_multi(*packed_trie_arrays(trie), packed, accept, np.array(branch_starts, dtype=np.int32),
                                   np.array(rs, dtype=np.int32), expected_bits, trie.max_depth)
        for local in range(len(branch_starts)):
            global_index = entry_offsets[g] + local
            assert sorted(nodes[which == global_index].tolist()) == sorted(n[w == local].tolist())
    assert np.array_equal(bits, expected_bits)


def test_packed_dfas_hold_each_dfa_shifted_and_outgrow_their_reservation():
    """Every packed DFA reads back as itself (targets shifted by its base); a table smaller than
    what is packed falls back to a copy without losing earlier rows."""
    from corral.masks.matcher import PackedDfas

    dfas = [regex_to_dfa(parse_regex(p)) for p in PATTERNS + [r"[a-f]{2,9}x", r"(ab|cd)*e"]]
    packed = PackedDfas(rows=8)  # smaller than the DFAs: every few packs take the copy path
    bases = [packed.base_of(d) for d in dfas]
    assert [packed.base_of(d) for d in dfas] == bases  # packed once
    for d, base in zip(dfas, bases):
        rows = packed.transitions[base:base + d.n_states]
        assert np.array_equal(rows, np.where(d.transitions >= 0, d.transitions + base, -1))
        assert np.array_equal(packed.accepting[base:base + d.n_states], d.accepting)
    assert packed.transitions.shape[0] == sum(d.n_states for d in dfas)
    # the default reservation is lazily mapped: creating one is cheap and holds every row
    assert PackedDfas()._buffers[0].shape[0] * 256 * 4 == PackedDfas.RESERVED_BYTES
    # past FRESH_TABLE_BYTES in use, grammars compiled afterwards get a fresh table, long before
    # the reservation runs out (a doubling copies the table inside some mask)
    assert PackedDfas.FRESH_TABLE_BYTES <= PackedDfas.RESERVED_BYTES * 3 // 4
    current = PackedDfas.current()
    assert PackedDfas.current() is current
    saved = PackedDfas.FRESH_TABLE_BYTES
    try:
        PackedDfas.FRESH_TABLE_BYTES = current.transitions.nbytes - 1
        fresh = PackedDfas.current()
        assert fresh is not current and fresh.transitions.shape[0] == 0
    finally:
        PackedDfas.FRESH_TABLE_BYTES = saved


def test_a_dead_tables_buffers_serve_the_next_table():
    """The reserved buffers of a table nobody holds any more (already faulted in) are reused by
    the next default-size table, which reads back its own DFAs, not the old rows."""
    import gc

    from corral.masks.matcher import PackedDfas

    saved = list(PackedDfas._spare)
    PackedDfas._spare.clear()
    try:
        first = PackedDfas()
        buffer = first._buffers[0]
        old = regex_to_dfa(parse_regex(r"[a-f]{2,9}x"))
        first.base_of(old)
        del first
        gc.collect()
        assert PackedDfas._spare and PackedDfas._spare[0][0] is buffer
        second = PackedDfas()
        assert second._buffers[0] is buffer and second.transitions.shape[0] == 0
        new = regex_to_dfa(parse_regex(r"(ab|cd)*e"))
        base = second.base_of(new)
        assert base == 0
        assert np.array_equal(second.transitions[:new.n_states], np.where(new.transitions >= 0, new.transitions, -1))
        assert np.array_equal(second.accepting, new.accepting)
        assert not PackedDfas(rows=8)._buffers[0] is buffer  # odd sizes never take a spare
    finally:
        PackedDfas._spare[:] = saved


def test_dfa_table_is_advised_small_pages_and_stays_usable():
    """The shared DFA table is filled a DFA at a time: on Linux it is advised 4 KB pages (first
    writes into fresh huge pages stalled ~4.7 ms inside masks), and rows written read back."""
    import sys

    from corral.masks.pages import without_huge_pages

    buf = np.empty((8192, 256), dtype=np.int32)
    assert without_huge_pages(buf) == sys.platform.startswith("linux")
    buf[100:300] = 7
    buf[8000:] = -1
    assert (buf[100:300] == 7).all() and (buf[8000:] == -1).all()
    assert without_huge_pages(np.empty(10, dtype=np.int32)) is False  # no whole page inside


def test_memoized_big_sub_walks_give_the_masks_of_fresh_walks(llama3_vocab, llama3_tokenizer, monkeypatch):
    """Inside a long length-bounded string every position is a new parser state, but the sub-walk
    below a chunk boundary is the same at every chunk and is memoized per vocabulary by branches and
    roots. Masks along documents equal those of grammars compiled with the memo off, and a sample of
    tokens stepped through the parser agrees with each mask."""
    import json
    import random

    import corral
    from corral.masks import matcher as matcher_module

    schema = {"type": "object", "properties": {"cert": {"type": "string", "minLength": 20, "maxLength": 300},
                                               "tags": {"type": "array", "items": {"type": "string", "maxLength": 90}}},
              "additionalProperties": False}
    rnd = random.Random(3)
    docs = [json.dumps({"cert": "-----BEGIN-----\n" + "MIIDdTCCAl2gAwIBAgIVAMIIujU9wQ" * 3, "tags": ["a" * 89, "é x"]}),
            json.dumps({"tags": ["".join(rnd.choice("ab c\"\\é") for _ in range(80))], "cert": "z" * 300})]

    def masks(memo: bool):
        monkeypatch.setattr(matcher_module, "BIG_SUB_WALK_NODES", 4096 if memo else 1 << 40)
        llama3_vocab.cache.setdefault("corral.sub_walks", {}).clear()
        # a grammar of its own (not the compile cache's): its mask memo starts empty
        compiled = corral.CompiledGrammar(corral.compile_json_schema(schema, llama3_vocab).grammar, llama3_vocab)
        out = []
        for doc in docs:
            m = compiled.matcher()
            for tok in llama3_tokenizer.encode(doc, add_special_tokens=False):
                out.append((m.fork(), m.next_token_bits().copy()))
                assert m.accept_token(tok)
            assert m.is_accepting()
        return out

    fresh = masks(False)
    memo = masks(True)
    assert len(llama3_vocab.cache["corral.sub_walks"]) > 0
    sample = rnd.sample(range(llama3_vocab.size), 400)
    for (m, want), (_, got) in zip(fresh, memo):
        assert np.array_equal(want, got)
        for tok in sample:
            allowed = bool((int(got[tok >> 5]) >> (tok & 31)) & 1)
            assert m.fork().accept_token(tok) == allowed, tok


IDENTIFIERS = r"""
start: "SELECT " NAME (", " NAME)* " FROM " NAME (" WHERE " NAME " = " value)? ";"
value: NAME | NUMBER
NAME: /[a-z_][a-z0-9_]*/
NUMBER: /[0-9]+/
"""


@pytest.mark.parametrize("identity_keyed", [0, 1 << 40])
def test_memoized_identifier_sub_walks_give_the_masks_of_fresh_walks(llama3_vocab, llama3_tokenizer, monkeypatch,
                                                                      identity_keyed):
    """After an identifier a lexeme may end at every byte: ~23k boundary nodes whose sub-walk is
    memoized per vocabulary and branch, keyed by the root walk's own array (``identity_keyed=0``:
    every such array) or by the roots' bytes; the boundaries of NAME and NUMBER meet in the state
    after ``value`` and are merged once per grammar (``_merged_roots``). Masks equal those with the memo off, along sampled
    sentences, and tokens stepped through the parser agree with them."""
    import random

    import corral
    from corral.grammars.lark_frontend import lark_to_grammar
    from corral.grammars.sampling import sample_grammar
    from corral.masks import matcher as matcher_module

    rnd = random.Random(7)
    ir = lark_to_grammar(IDENTIFIERS)
    sentences = ["SELECT a, bc_9, d FROM t_1 WHERE x = y2;", "SELECT _ FROM __;"]
    sentences += [sample_grammar(ir, rnd, max_depth=6) for _ in range(4)]

    def masks(memo: bool):
        monkeypatch.setattr(matcher_module, "BIG_SUB_WALK_NODES", 4096 if memo else 1 << 40)
        monkeypatch.setattr(matcher_module, "IDENTITY_KEYED_ROOTS", identity_keyed)
        llama3_vocab.cache.setdefault("corral.sub_walks", {}).clear()
        llama3_vocab.cache.setdefault("corral.root_walks", {}).clear()
        compiled = corral.CompiledGrammar(corral.compile_lark(IDENTIFIERS, llama3_vocab).grammar, llama3_vocab)
        out = []
        for sentence in sentences:
            m = compiled.matcher()
            for tok in llama3_tokenizer.encode(sentence, add_special_tokens=False):
                out.append((m.fork(), m.next_token_bits().copy()))
                assert m.accept_token(tok), sentence
            assert m.is_accepting()
        # (the state after `value` is reached from NAME's and NUMBER's boundaries: merged once)
        assert compiled._merge_memo or not memo
        return out

    fresh = masks(False)
    memo = masks(True)
    assert len(llama3_vocab.cache["corral.sub_walks"]) > 0
    sample = rnd.sample(range(llama3_vocab.size), 150)
    for (m, want), (_, got) in zip(fresh, memo):
        assert np.array_equal(want, got)
        for tok in sample:
            allowed = bool((int(got[tok >> 5]) >> (tok & 31)) & 1)
            assert m.fork().accept_token(tok) == allowed, tok


def test_subtree_node_count_and_run_bounds_equal_their_numpy_definitions(llama3_vocab):
    from corral.masks.mask_walk import run_bounds, subtree_node_count

    rnd = np.random.default_rng(3)
    skip = llama3_vocab.trie.node_skip
    for n in (0, 1, 5, 200):
        roots = np.sort(rnd.choice(len(skip), n, replace=False)).astype(np.int32)
        assert subtree_node_count(skip, roots) == int((skip[roots] - roots).sum())
        values = np.sort(rnd.integers(0, 4, n)).astype(np.int32)
        want = [0] + (np.flatnonzero(values[1:] != values[:-1]) + 1).tolist() + [n]
        assert run_bounds(values).tolist() == want


def test_node_set_helpers_equal_numpy_set_operations():
    from corral.masks.mask_walk import (sorted_difference_and_union, sorted_unique_nodes,
                                        sorted_unique_nodes_reference)

    rng = np.random.default_rng(1)
    cases = [np.array([], dtype=np.int32), np.array([5], dtype=np.int32), np.arange(50, dtype=np.int32),
             np.array([3, 3, 3], dtype=np.int32), np.arange(50, 0, -1, dtype=np.int64)]
    for _ in range(200):
        n = int(rng.integers(0, 300))
        nodes = rng.integers(0, 400, n)
        cases.append(nodes.astype(np.int32 if rng.random() < 0.5 else np.int64))
        # concatenated sorted runs: nested roots of one walk, several branches' runs
        cases.append(np.concatenate([np.sort(rng.integers(0, 400, 30)) for _ in range(3)]).astype(np.int32))
    for nodes in cases:
        got = sorted_unique_nodes(nodes)
        assert got.dtype == np.int32
        assert got.tolist() == sorted_unique_nodes_reference(nodes).tolist()
    for a, b in zip(cases[::2], cases[1::2]):
        a, b = sorted_unique_nodes(a), sorted_unique_nodes(b)
        diff, union = sorted_difference_and_union(a, b)
        assert diff.tolist() == np.setdiff1d(a, b).tolist()
        assert union.tolist() == np.union1d(a, b).tolist()


def test_shift_rows_into_equals_its_reference():
    """The packed table's copy kernel: targets moved by the shift, dead entries kept -1."""
    from corral.masks.mask_walk import shift_rows_into, shifted_rows_reference

    rng = np.random.default_rng(3)
    for n, shift in [(0, 5), (1, 0), (7, 1_000_000), (300, 12_345)]:
        src = np.where(rng.random((n, 256)) < 0.6, -1, rng.integers(0, max(n, 1), (n, 256))).astype(np.int32)
        dst = np.full((n + 2, 256), 99, dtype=np.int32)
        shift_rows_into(src, shift, dst[1:n + 1])
        assert np.array_equal(dst[1:n + 1], shifted_rows_reference(src, shift))
        assert (dst[0] == 99).all() and (dst[n + 1] == 99).all()  # rows outside untouched


@pytest.mark.parametrize("pattern", [r"[.,]", r"( FROM |, |\.)[a-z]*", r"[a-z0-9_]+", r"[ \n]*[\]},]", r"[a-z ]+|\."])
def test_walk_by_first_byte_equals_the_sub_walk(llama3_vocab, pattern):
    """Entering roots' children through the (byte, parent) index visits the same tokens and finds
    the same boundary nodes as scanning the children, for many roots (identifier boundaries) and few."""
    from corral.masks.mask_walk import first_byte_index, walk_subtries_by_first_byte

    trie = llama3_vocab.trie
    offsets, parents, children, n_children = first_byte_index(trie)
    assert np.array_equal(np.sort(children), np.arange(1, trie.num_nodes))
    assert np.array_equal(trie.node_parent[children], parents)
    assert all((np.diff(parents[offsets[b]:offsets[b + 1]]) > 0).all() for b in range(256))
    assert np.array_equal(n_children, np.bincount(trie.node_parent[1:], minlength=trie.num_nodes))
    dfa = regex_to_dfa(parse_regex(pattern))
    ident = regex_to_dfa(parse_regex(r"[a-z_][a-z0-9_]*"))
    bits = np.zeros((llama3_vocab.size + 31) // 32, dtype=np.uint32)
    many = walk_trie_with_dfa(*trie.arrays(), ident.transitions, ident.accepting, 0, 0, bits)[:, 0]
    rng = np.random.default_rng(5)
    few = np.sort(rng.choice(np.flatnonzero(trie.node_skip > np.arange(trie.num_nodes) + 1), 40, replace=False))
    for roots in (np.asarray(many, dtype=np.int32), few.astype(np.int32)):
        assert len(roots) > 30
        entries = np.arange(min(dfa.n_states, 3), dtype=np.int32)
        expected_bits = np.zeros_like(bits)
        nodes, which = walk_subtries_multi(*packed_trie_arrays(trie), dfa.transitions, dfa.accepting, entries, roots,
                                           expected_bits, trie.max_depth)
        got_bits = np.zeros_like(bits)
        got_nodes, got_which = walk_subtries_by_first_byte(*packed_trie_arrays(trie), dfa.transitions, dfa.accepting, entries,
                                                           roots, offsets, parents, children, n_children, got_bits,
                                                           trie.max_depth)
        assert np.array_equal(got_bits, expected_bits)
        assert (np.diff(got_which) >= 0).all()
        for e in range(len(entries)):
            assert sorted(got_nodes[got_which == e].tolist()) == sorted(nodes[which == e].tolist())
