"""The pre-faulted bitmask rows (corral/masks/row_pool.py) and the memos that take them."""
from __future__ import annotations

import resource
import threading

import numpy as np

import corral
from corral.masks.matcher import CompiledGrammar
from corral.masks.row_pool import RowPool, row_pool


def test_rows_are_zeroed_distinct_and_outlive_the_reserve():
    pool = RowPool(100)
    pool.reserve(3)
    assert pool.rows_reserved == 3
    rows = [pool.zeros() for _ in range(3 + 5)]  # past the reserve: plain arrays
    for k, row in enumerate(rows):
        assert row.shape == (100,) and row.dtype == np.uint32 and not row.any()
        row[:] = k + 1
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))  # no row handed out twice
    for a, b in zip(rows, rows[1:]):
        assert not np.shares_memory(a, b)
    src = np.arange(100, dtype=np.uint32)
    got = pool.copy_of(src)
    assert np.array_equal(got, src) and not np.shares_memory(got, src)
    assert pool.rows_taken == 3
    mine = np.ones(100, dtype=np.uint32)
    assert pool.adopt(mine) is mine  # past the reserve: kept as it is
    pool.reserve(1)
    adopted = pool.adopt(mine)
    assert adopted is not mine and np.array_equal(adopted, mine) and pool.rows_taken == 4
    assert rows[2].base is rows[0].base and rows[3].base is None  # reserved rows share the slab


def test_reserved_rows_do_not_fault_when_written():
    pool = RowPool(1 << 16)  # 256 KB rows: 64 pages each
    pool.reserve(8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        pool.zeros()[:] = 7
    # (a few faults may come from the interpreter itself; 8 fresh rows would be 512)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 64


def test_threads_take_distinct_rows():
    pool = RowPool(8)
    pool.reserve(50)
    taken: list[list[np.ndarray]] = [[] for _ in range(4)]

    def take(k):
        for _ in range(200):
            taken[k].append(pool.zeros())

    threads = [threading.Thread(target=take, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [r for rs in taken for r in rs]
    for k, row in enumerate(rows):
        row[0] = k + 1
    assert sorted(int(r[0]) for r in rows) == list(range(1, len(rows) + 1))


def test_memoized_masks_come_from_the_vocabulary_pool_and_match_plain_arrays(llama3_vocab):
    pool = row_pool(llama3_vocab)
    pool.reserve(16)
    regex = r"[a-z]{1,6}(, [a-z]{1,6}){0,3}\."
    compiled = corral.compile_regex(regex, llama3_vocab)
    m = compiled.matcher()
    text = "ab, cd."
    seen = []
    taken = pool.rows_taken
    for ch in text:
        bits = m.next_token_bits()
        seen.append(bits)
        assert m.accept_string(ch)
    assert pool.rows_taken > taken
    for a, b in zip(seen, seen[1:]):  # each state's memo is its own row
        assert a is b or not np.shares_memory(a, b)
    # the same masks from a grammar compiled afresh with the pool taking fresh rows
    again = CompiledGrammar(compiled.grammar, llama3_vocab).matcher()
    for ch, bits in zip(text, seen):
        assert np.array_equal(again.next_token_bits(), bits)
        again.accept_string(ch)


def test_warm_up_tops_up_the_reserve_and_loads_the_schema_compiler(llama3_vocab):
    import sys

    corral.warm_up(llama3_vocab, reserve_mb=1)
    pool = row_pool(llama3_vocab)
    assert pool.rows_reserved - pool.rows_taken >= (1 << 20) // (4 * pool.n_words)
    assert "corral.grammars.json_schema.compiler" in sys.modules
    # the warm-up schema is a throwaway: not left in the compile cache
    assert not [k for k in llama3_vocab.cache.get("corral.compiled", {}) if '"when"' in str(k)]
    m = corral.compile_json_schema({"type": "object", "properties": {"n": {"type": "integer"}}}, llama3_vocab).matcher()
    assert m.accept_string('{"n": 12}') and m.is_accepting()
