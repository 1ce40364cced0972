"""CompiledGrammar (immutable, per grammar x vocabulary) and Matcher (per sequence): the mask engine.

How a mask is computed for a parser state (see docs/engine.md):
1. Every lexing branch (terminal t in DFA state q) contributes the tokens that stay inside t's
   lexeme: one numba walk of the whole token trie with t's DFA from q. That walk depends on (t, q)
   alone, so it is cached on the Vocabulary and shared by every grammar using the same terminal.
2. Where t's DFA accepts in the middle of a token (a boundary node), the rest of the token is
   checked against the parser state after t completes: the same walk, rooted at those nodes, for
   each branch of that state. Boundaries are few (a closing quote followed by `,`/`}`...).
3. The finished mask is memoized per parser state. States are hash-consed (corral.automata.earley),
   so repeated structure (array items, the same key in many objects) hits the memo.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from corral.automata.earley import DEAD, END_OF_RULE, ParserStates, ParserTables
from corral.grammars.ir import Grammar
from corral.gc_untrack import untrack
from corral.masks.mask_walk import (first_byte_index, run_bounds, shift_rows_into, sorted_difference_and_union,
                                     subtree_node_count, unique_roots_and_subtree_size, walk_push_chains,
                                     walk_subtries_by_first_byte, walk_subtries_groups)
from corral.masks.pages import without_huge_pages
from corral.masks.row_pool import row_pool
from corral.masks.slices import class_slices, string_slice
from corral.masks.trie_walk import packed_trie_arrays, walk_trie_packed, walk_trie_residual
from corral.masks.unique import UniqueArrays

MASK_MEMO_SIZE = 2048  # masks kept per compiled grammar (16 KB each for a 128k vocabulary)
ROOT_WALK_CACHE_SIZE = 8192  # (terminal DFA, state) masks kept per vocabulary, shared by all grammars
UNION_MEMO_SIZE = 512  # per compiled grammar: root-walk unions of lexing-branch sets
SUB_WALK_CACHE_SIZE = 4096  # big sub-walks kept per vocabulary (sparse: the nonzero mask words)
MERGE_MEMO_SIZE = 128  # per compiled grammar: unions of cached boundary arrays (~100 KB at most each)
CHAIN_MEMO_SIZE = 4096  # per compiled grammar: push-chain walks that left no exit (sparse words)
BIG_SUB_WALK_NODES = 4096  # trie nodes under a sub-walk's roots from which it is memoized
IDENTITY_KEYED_ROOTS = 1024  # a root walk's boundary array this long keys the sub-walk memo by identity
MAX_FORCED = 256
# bitmask rows faulted in at warm-up (~2,000 first-visit memos on Llama-3: row_pool.py); 0 turns it off
RESERVE_MB = float(os.environ.get("CORRAL_RESERVE_MB", "32"))
_NO_SKIP = np.zeros(0, dtype=np.int32)
_NO_SKIP_UPTO = np.zeros(256, dtype=np.int32)
PUSH_CHAIN_MIN_ROUND = 6  # worklist round of a mask from which push states are walked as chains
PUSH_CHAIN_DEEP_ROUND = 2  # ... from which, once a mask of the grammar has reached the round above
_LOWER, _UPPER, _DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
IDENTIFIER_CLASSES = (_LOWER + "_", _LOWER + _DIGITS + "_", _LOWER + _UPPER + "_", _LOWER + _UPPER + _DIGITS + "_")
_STRING_SLICE_PROBE = np.frombuffer(b"a0 ", dtype=np.uint8).astype(np.intp)  # strings of the string slice
MIN_SLICE_LENGTH = 2  # slice strings of at least this many bytes stay inside the terminal: use the slice


class PackedDfas:
    """Terminal DFAs stacked in one transition table (each at its own row offset, targets shifted),
    shared by every grammar of the process: a DFA is copied in once, however many grammars use it
    (the JSON string body, numbers, punctuation, common keys). Packing per grammar had cost ~0.5 s
    per 75 MaskBench schemas in copies alone. When the table passes ``FRESH_TABLE_BYTES``,
    grammars compiled afterwards start a new one (older grammars keep theirs, with the rest of the
    reservation to grow into before a copy).
    Thread-safe: rows are written past the published views, under a lock."""

    RESERVED_BYTES = 64 << 20
    # 3/4 of the reservation: a table that passed it had to double, copying 64 MB and faulting in
    # 128 MB inside one mask (206 ms, Kubernetes kb_1030 after 60 other MaskBench schemas)
    FRESH_TABLE_BYTES = 48 << 20
    _current: "PackedDfas | None" = None
    _current_lock = threading.Lock()
    # the reserved buffers of a table that died (its grammars, and the sub-walk memos keyed by it,
    # are gone), already faulted in up to where it was filled: the next table reuses them instead
    # of faulting in fresh pages inside its masks (~0.5 ms a MB on the 2-core boxes; a MaskBench
    # run packs ~2 KiB of rows per DFA state it builds, copies for each new table included)
    _spare: list = []
    MAX_SPARE = 1

    def __init__(self, rows: int | None = None):
        # 64 MiB are reserved up front: pages are mapped only when first written, so the
        # reservation costs no memory, and most tables never copy (growing from 1,024 rows by
        # doubling had copied up to 150 MB inside one mask, JsonSchemaStore cryproj). Larger
        # tables grow by doubling. No larger reservation: every live table's reservation counts
        # against an address-space limit (the bench workers' 8 GB RLIMIT_DATA ran out over the full
        # dev split). First writes fault pages in (0.2-3 ms/MB on the 2-core boxes, by whether
        # huge pages are at hand; 4 KB pages now: masks/pages.py): 1 KiB per DFA state is what a big enum
        # costs. Rows are read only once written, so np.empty.
        default = self.RESERVED_BYTES // (256 * 4)
        rows = rows or default
        spare = None
        if rows == default:
            try:  # list.pop and append are atomic: no lock (a finalizer may run inside any lock)
                spare = PackedDfas._spare.pop()
            except IndexError:
                pass
        if spare is None:
            spare = (np.empty((rows, 256), dtype=np.int32), np.zeros(rows, dtype=np.bool_))
            without_huge_pages(spare[0])  # filled a DFA at a time: 4 KB pages (masks/pages.py)
        self._buffers = spare
        self.transitions = self._buffers[0][:0]
        self.accepting = self._buffers[1][:0]
        self._base: dict[int, tuple] = {}  # id(dfa) -> (dfa kept alive so its id stays unique, base)
        self._lock = threading.Lock()
        # rows are read only below the published length, which a new owner starts at 0
        self._owned = [self._buffers if rows == default else None]
        weakref.finalize(self, PackedDfas._recycle, self._owned)

    @staticmethod
    def _recycle(owned: list) -> None:
        buffers = owned[0]
        if buffers is not None and len(PackedDfas._spare) < PackedDfas.MAX_SPARE:
            PackedDfas._spare.append(buffers)

    @classmethod
    def current(cls) -> "PackedDfas":
        with cls._current_lock:
            # past FRESH_TABLE_BYTES in use, new grammars start a fresh table (older ones keep theirs)
            if cls._current is None or cls._current.transitions.nbytes > cls.FRESH_TABLE_BYTES:
                cls._current = PackedDfas()
            return cls._current

    def base_of(self, dfa) -> int:
        hit = self._base.get(id(dfa))
        if hit is not None and hit[0] is dfa:
            return hit[1]
        with self._lock:
            hit = self._base.get(id(dfa))
            if hit is not None and hit[0] is dfa:
                return hit[1]
            base, n = self.transitions.shape[0], dfa.n_states
            buf_t, buf_a = self._buffers
            if base + n > len(buf_t):
                cap = max(2 * len(buf_t), base + n)
                new_t = np.empty((cap, 256), dtype=np.int32)
                without_huge_pages(new_t)
                new_t[:base] = buf_t[:base]
                new_a = np.zeros(cap, dtype=np.bool_)
                new_a[:base] = buf_a[:base]
                buf_t, buf_a = new_t, new_a
                self._buffers = (buf_t, buf_a)
                self._owned[0] = None  # grown past the reservation: not worth keeping
            shift_rows_into(dfa.transitions, base, buf_t[base:base + n])
            buf_a[base:base + n] = dfa.accepting
            self.accepting = buf_a[:base + n]
            self.transitions = buf_t[:base + n]
            entry = self._base[id(dfa)] = (dfa, base)
            untrack(entry)  # (an untracked DFA and an int: the GC need not visit thousands)
            return base


def _bit_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


DUMMY_PREFIX_TERMINAL = "$corral_dummy_prefix"
DUMMY_PREFIX_START = "$corral_start"


def _with_dummy_prefix(grammar: Grammar) -> Grammar:
    """``grammar`` with one optional space before its text: the first token of a generation from a
    tokenizer with a dummy prefix ("▁{" from Llama-2-style SentencePiece) carries a space that its
    decoder drops, so the decoded text is still the grammar's."""
    from dataclasses import replace

    from corral.grammars import regex_ast as rx

    terminals = dict(grammar.terminals)
    terminals[DUMMY_PREFIX_TERMINAL] = rx.literal(" ")
    rules = dict(grammar.rules)
    rules[DUMMY_PREFIX_START] = ((DUMMY_PREFIX_TERMINAL, grammar.start), (grammar.start,))
    return replace(grammar, terminals=terminals, rules=rules, start=DUMMY_PREFIX_START)


class CompiledGrammar:
    """One grammar compiled against one vocabulary. Immutable; thread-safe; any number of matchers.

    Lazily built caches (parser states, masks) live inside but never change what it accepts.
    """

    def __init__(self, grammar: Grammar, vocab, report=None):
        self.grammar = grammar
        self.vocab = vocab
        self.report = list(report or [])
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.tables = ParserTables(_with_dummy_prefix(self.grammar) if self.vocab.dummy_prefix else self.grammar)
        self.states = ParserStates(self.tables)
        v = self.vocab
        self._n_words = _bit_words(v.size)
        self._eos = np.array(sorted(set(v.eos_token_ids)), dtype=np.int64)
        self._eos_set = frozenset(int(e) for e in self._eos)
        self._eos_bits = np.zeros(self._n_words, dtype=np.uint32)
        for e in self._eos:
            self._eos_bits[e >> 5] |= np.uint32(1) << np.uint32(e & 31)
        trie = v.trie
        self._trie_args = (trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start,
                           trie.node_tok_end, trie.tok_ids)
        self._max_depth = trie.max_depth
        # root and sub-walks read the trie packed (byte and depth in one word: trie_walk.packed_trie_arrays)
        packed_trie = v.cache.get("corral.packed_trie_arrays")
        if packed_trie is None:  # (a race builds it twice, harmlessly)
            packed_trie = v.cache["corral.packed_trie_arrays"] = packed_trie_arrays(trie)
        self._packed_trie_args = packed_trie
        self._mask_memo: OrderedDict[int, np.ndarray] = OrderedDict()
        self._union_memo: OrderedDict[tuple, tuple] = OrderedDict()
        self._merge_memo: OrderedDict[tuple, tuple] = OrderedDict()
        self._merge_bytes = 0  # the merged arrays' bytes (memory_bytes is summed over a compile cache)
        self._memo_lock = threading.Lock()
        self._token_step: dict[tuple[int, int], int] = {}
        self._root_walks = v.cache.setdefault("corral.root_walks", OrderedDict())
        self._sub_walks = v.cache.setdefault("corral.sub_walks", OrderedDict())
        self._node_skip = trie.node_skip
        # per-vocabulary (~7 ms on Llama-3, once): built with the first grammar, not in a mask
        self._slice = string_slice(v, by_chars=True) if v.size > 4096 else None
        self._root_walks_lock = v.cache.setdefault("corral.root_walks_lock", threading.Lock())
        # memoized bitmasks come from pre-faulted rows (masks/row_pool.py)
        self._rows = row_pool(v)
        # Every terminal's DFA at its own offset in one table shared by all grammars, so one numba
        # call walks all the lexing branches of a state (sub-walks below lexeme boundaries)
        self._packed = PackedDfas.current()
        self._packed_base: dict[int, int] = {}
        self._state_branches: dict[int, tuple] = {}
        self._packed_branches: dict[tuple, np.ndarray] = {}
        self._first_bytes_memo: dict[int, np.ndarray] = {}
        # push-chain templates (see _template and mask_walk.walk_push_chains)
        self.use_push_chains = True
        self.use_class_slices = True  # (tests compare masks with and without them)
        self.push_chain_min_round = PUSH_CHAIN_MIN_ROUND
        self._template_lock = threading.Lock()
        self._template_ids: dict[tuple, int] = {}
        self._template_waiting: list[dict] = []  # per template: terminal symbol -> positions waiting
        self._n_templates = self._n_branches = 0
        self._t_first = np.zeros(16, dtype=np.int64)
        self._t_count = np.zeros(16, dtype=np.int64)
        self._g_state = np.zeros(64, dtype=np.int32)
        self._g_next = np.full(64, -2, dtype=np.int32)
        self._g_term: list[int] = []
        self._g_template: list[int] = []
        self._chain_memo: OrderedDict[tuple, tuple] = OrderedDict()
        # arrays of distinct strings (a constraint outside the grammar's rules): see masks/unique.py
        self._unique = UniqueArrays(self.grammar, self.tables, self.states, v) if self.grammar.unique_arrays else None

    def __getstate__(self):
        return {"grammar": self.grammar, "vocab": self.vocab, "report": self.report}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_runtime()

    def matcher(self) -> "Matcher":
        return Matcher(self)

    def memory_bytes(self) -> int:
        """Estimated memory held by this compiled grammar's lazily grown state (for cache bounds)."""
        return ((len(self._mask_memo) + len(self._union_memo)) * self._n_words * 4
                + self._merge_bytes
                + 100 * len(self._token_step) + 2000 * len(self.states.states))

    # -- masks ----------------------------------------------------------------------------------
    def _root_walk(self, term: int, q: int):
        dfa = self.tables.dfa(term)
        key = (id(dfa), q)
        hit = self._root_walks.get(key)
        if hit is None or hit[0] is not dfa:
            # nearly full masks (inside strings and key names) take the string slice whole and walk
            # only the subtrees holding other tokens (masks/slices.py)
            sl = self._slice
            if sl is None:
                sl = self._slice = string_slice(self.vocab, by_chars=True)
            # (inside a string whose remaining length is bounded, the slice's tokens up to that
            # many characters: each position of a `maxLength: 40` string is a new DFA state)
            if (dfa.transitions[q, _STRING_SLICE_PROBE] < 0).any():
                # one of the slice's own one-character strings kills the DFA: no safe length, and
                # no product search (~50 us a first visit of a number's or a keyword's state)
                lengths = [(0, False)]
            else:
                lengths = sl.safe_lengths(dfa.transitions, dfa.accepting, q)
            accepting_class = None  # the class of an identifier-like slice: boundaries left out
            if lengths[0][0] < MIN_SLICE_LENGTH and self.use_class_slices:
                # else the slice of the class the state repeats (`[a-z]{1,10}`, `^[a-z0-9-]+$`)
                # or of an identifier's class, every run of which ends the lexeme (a triple)
                chosen = class_slices(self.vocab).choose(dfa.transitions, dfa.accepting, q, MIN_SLICE_LENGTH,
                                                         accepting_runs=True)
                if chosen is not None and len(chosen) == 3:
                    sl, lengths, accepting_class = chosen
                elif chosen is not None:
                    sl, lengths = chosen
            if max(n for n, _ in lengths) >= MIN_SLICE_LENGTH:
                # (exact kinds: their longer tokens all die, so every all-slice subtree is decided)
                bits = sl.bits_for([n for n, _ in lengths], out=self._rows.zeros())
                skip, upto = sl.skip_len, sl.skip_upto(lengths)
            else:
                bits, skip, upto = self._rows.zeros(), _NO_SKIP, _NO_SKIP_UPTO
            # every slice-only subtree skipped: walk the trie without them, not past them
            residual = None
            if len(skip) and sl.decides_every_subtree(upto):
                residual = sl.residual(self.vocab.trie, self._packed_trie_args[0], self._packed_trie_args[2])
            if residual is not None:
                _, _, tok, tok_start, tok_end, tok_ids = self._packed_trie_args
                bounds = walk_trie_residual(*residual, tok, tok_start, tok_end, tok_ids, dfa.transitions,
                                            dfa.accepting, q, bits)
            else:
                bounds = walk_trie_packed(*self._packed_trie_args, dfa.transitions, dfa.accepting, q, 0, bits, skip,
                                          upto)
            # boundary nodes come in pre-order: sorted and distinct, counted here once, so a mask
            # whose roots are exactly these skips sorting them (23k after an identifier)
            roots = None
            if len(bounds) or accepting_class is not None:
                roots = (bounds, int(subtree_node_count(self._node_skip, bounds)), accepting_class)
            hit = (dfa, bits, roots)  # the DFA is kept so its id() cannot be reused while cached
            untrack(hit)  # (a DFA and arrays: 8192 entries the cyclic GC need not visit)
            with self._root_walks_lock:
                self._root_walks[key] = hit
                if len(self._root_walks) > ROOT_WALK_CACHE_SIZE:
                    self._root_walks.popitem(last=False)
        return hit[1], hit[2]

    def _plain_root_bounds(self, term: int, q: int):
        """(boundary nodes, trie nodes below them) of the root walk of ``(term, q)`` without a
        slice, or None: every boundary, where a slice walk left some out (cached per vocabulary)."""
        dfa = self.tables.dfa(term)
        key = ("plain", id(dfa), q)
        hit = self._root_walks.get(key)
        if hit is None or hit[0] is not dfa:
            bounds = walk_trie_packed(*self._packed_trie_args, dfa.transitions, dfa.accepting, q, 0,
                                      np.zeros(self._n_words, dtype=np.uint32), _NO_SKIP, _NO_SKIP_UPTO)
            roots = (bounds, int(subtree_node_count(self._node_skip, bounds))) if len(bounds) else None
            hit = (dfa, None, roots)
            untrack(hit)
            with self._root_walks_lock:
                self._root_walks[key] = hit
                if len(self._root_walks) > ROOT_WALK_CACHE_SIZE:
                    self._root_walks.popitem(last=False)
        return hit[2]

    def _first_bytes(self, sid: int) -> np.ndarray:
        """bool[256]: the bytes some lexing branch of state ``sid`` can read first."""
        packed, _ = self._branches(sid)
        got = self._first_bytes_memo.get(id(packed))
        if got is None:  # (packed branch arrays live as long as the grammar: ids are stable)
            table = self._packed.transitions
            got = (table[packed] >= 0).any(axis=0) if len(packed) else np.zeros(256, dtype=np.bool_)
            self._first_bytes_memo[id(packed)] = got
        return got

    def pack_terminal(self, term: int) -> int:
        """The row offset of terminal ``term``'s DFA in the shared packed table (copied in on first use)."""
        base = self._packed_base.get(term)
        if base is None:
            base = self._packed_base[term] = self._packed.base_of(self.tables.dfa(term))
        return base

    def _branches(self, sid: int) -> tuple:
        """(packed start state per lexing branch, [(start state id, terminal)] per branch) of a state."""
        hit = self._state_branches.get(sid)
        if hit is None:
            entries = self.states.states[sid].entries
            # states differing only in where their lexemes began share the packed array (a chain
            # of nesting levels makes one new state per level, all with the same branches)
            branch_key = tuple([(t, q) for t, q, _ in entries])
            packed = self._packed_branches.get(branch_key)
            if packed is None:
                packed = np.array([self.pack_terminal(t) + q for t, q in branch_key], dtype=np.int32)
                self._packed_branches[branch_key] = packed
            hit = (packed, tuple([(start, t) for t, _, start in entries]))  # tuples: GC-untracked
            self._state_branches[sid] = hit
        return hit

    def mask_bits(self, sid: int) -> np.ndarray:
        """uint32[ceil(V/32)] allowed-token bits of parser state ``sid`` (memoized; do not mutate)."""
        bits = self._mask_memo.get(sid)
        if bits is not None:
            return bits
        bits = self._compute_mask(sid)
        with self._memo_lock:
            self._mask_memo[sid] = bits
            if len(self._mask_memo) > MASK_MEMO_SIZE:
                self._mask_memo.popitem(last=False)
        return bits

    def _compute_mask(self, sid: int) -> np.ndarray:
        states = self.states
        st = states.states[sid]
        # parser state after a lexeme -> arrays of trie nodes (the lexeme ends inside a token) to
        # walk from with that state's branches; big for identifier-like terminals, so kept in numpy.
        # A root walk's boundaries come as (sorted distinct nodes, nodes below them), the array
        # being the cached one, so its identity keys the big sub-walk memo (no 92 KB hash)
        pending: dict[int, list] = {}
        union, bounds_of = self._root_walks_union(st.entries)
        bits = self._rows.copy_of(union)
        for (term, q, start), bounds in zip(st.entries, bounds_of):
            if bounds is not None:
                nxt = states.after_terminal(start, term)
                if nxt != DEAD:
                    if bounds[2] is not None and (self._first_bytes(nxt) & bounds[2]).any():
                        # an identifier-like walk left out the boundaries inside its slice's
                        # subtrees, and what follows the lexeme may start with its class
                        bounds = self._plain_root_bounds(term, q)
                        if bounds is None:
                            continue
                    pending.setdefault(nxt, []).append(bounds[:2])
        done: dict[int, np.ndarray] = {}  # several paths may reach a state: walk each root once
        push_positions = states.push_positions
        rounds = 0
        while pending:
            rounds += 1
            # chains pay from a few levels on; most masks end in a round or two, where the numba
            # call would only add its overhead (in-process A/B on MaskBench: +8% mean mask time).
            # A grammar whose masks do go that deep (nesting chains) takes them from round 2 on.
            if rounds == PUSH_CHAIN_MIN_ROUND and self.push_chain_min_round > PUSH_CHAIN_DEEP_ROUND:
                self.push_chain_min_round = PUSH_CHAIN_DEEP_ROUND
            use_chains = self.use_push_chains and rounds >= self.push_chain_min_round
            entry_chunks, root_chunks, infos = [], [], []
            chain_work: list = []  # (push state, roots): walked by template in numba
            next_pending: dict[int, list[np.ndarray]] = {}
            e_off, r_off = [0], [0]
            for nxt, root_lists in pending.items():
                first = root_lists[0]
                same_roots = None  # the cached root-walk array these roots are, if they are one
                if len(root_lists) == 1 and type(first) is tuple:
                    roots, below = first
                    same_roots = roots
                elif all(type(r) is tuple for r in root_lists):
                    roots, below = self._merged_roots(root_lists)
                    same_roots = roots
                else:
                    roots = np.concatenate([r[0] if type(r) is tuple else r for r in root_lists])
                    # nested roots emit a boundary node once per root above it: left in, the copies
                    # multiply round after round (`x: A x | A` with A = /=+/ ran out of memory)
                    roots, below = unique_roots_and_subtree_size(roots, self._node_skip)
                seen = done.get(nxt)
                if seen is not None:
                    roots, done[nxt] = sorted_difference_and_union(roots, seen)
                    below = subtree_node_count(self._node_skip, roots)
                    same_roots = None
                else:
                    done[nxt] = roots
                if not len(roots):
                    continue
                if use_chains and below < BIG_SUB_WALK_NODES and nxt in push_positions:
                    chain_work.append((nxt, roots))
                    continue
                packed, branch_info = self._branches(nxt)
                if not len(packed):
                    continue
                if below >= BIG_SUB_WALK_NODES:
                    for i, segment in self._big_sub_walk(packed, roots, bits, same_roots):
                        start, term = branch_info[i]
                        after = states.after_terminal(start, term)
                        if after != DEAD:
                            next_pending.setdefault(after, []).append(segment)
                    continue
                entry_chunks.append(packed)
                root_chunks.append(roots)
                infos.extend(branch_info)
                e_off.append(e_off[-1] + len(packed))
                r_off.append(r_off[-1] + len(roots))
            pending = next_pending
            if chain_work:
                self._walk_push_chains(chain_work, bits, pending)
            if not entry_chunks:
                continue
            one = len(entry_chunks) == 1
            b_nodes, b_entries = walk_subtries_groups(
                *self._packed_trie_args, self._packed.transitions, self._packed.accepting,
                entry_chunks[0] if one else np.concatenate(entry_chunks), np.array(e_off, dtype=np.int64),
                (root_chunks[0] if one else np.concatenate(root_chunks)).astype(np.int32, copy=False),
                np.array(r_off, dtype=np.int64), bits, self._max_depth)
            self._continue_boundaries(b_nodes, b_entries, infos, pending)
        if st.accepting:
            bits |= self._eos_bits
        return bits

    # -- push chains (mask_walk.walk_push_chains) ---------------------------------------------
    def _template(self, positions: tuple) -> int:
        """Template id of a push state's kernel positions (``push_closure(positions)`` is not None):
        its lexing branches get global branch indices, their successors are resolved on demand."""
        tid = self._template_ids.get(positions)
        if tid is not None:
            return tid
        predicted, expected = self.tables.push_closure(positions)
        terms = sorted(expected)
        packed = [self.pack_terminal(t) for t in terms]  # may build DFAs: outside the lock
        with self._template_lock:
            tid = self._template_ids.get(positions)
            if tid is not None:
                return tid
            tid, first, n = self._n_templates, self._n_branches, len(terms)
            if tid + 1 > len(self._t_first):
                self._t_first = np.concatenate([self._t_first, np.zeros_like(self._t_first)])
                self._t_count = np.concatenate([self._t_count, np.zeros_like(self._t_count)])
            if first + n > len(self._g_state):
                grow = max(first + n, 2 * len(self._g_state)) - len(self._g_state)
                self._g_state = np.concatenate([self._g_state, np.zeros(grow, dtype=np.int32)])
                self._g_next = np.concatenate([self._g_next, np.full(grow, -2, dtype=np.int32)])
            self._g_state[first:first + n] = packed
            self._g_term.extend(terms)
            self._g_template.extend([tid] * n)
            self._t_first[tid], self._t_count[tid] = first, n
            # the item positions of the template's states (predicted: bare positions, and kernel)
            # by the terminal they wait for: a key position of an object waits for hundreds
            next_sym = self.tables.next_sym
            waiting: dict = {}
            for p in set(predicted) | set(positions):
                sym = next_sym[p]
                if sym != END_OF_RULE and sym < 0:
                    waiting.setdefault(sym, []).append(p)
            self._template_waiting.append(waiting)
            self._n_templates, self._n_branches = tid + 1, first + n
            self._template_ids[positions] = tid  # published last
        return tid

    def _template_next(self, g: int) -> int:
        """Successor of global branch ``g``: a template id, or -1 when the state after the
        terminal is not a push (an item completes there, so it depends on origins)."""
        nxt = int(self._g_next[g])
        if nxt != -2:
            return nxt
        waiting = self._template_waiting[self._g_template[g]][-1 - self._g_term[g]]
        succ = tuple(sorted({p + 1 for p in waiting}))
        nxt = self._template(succ) if self.tables.push_closure(succ) is not None else -1
        self._g_next[g] = nxt
        return nxt

    def _walk_push_chains(self, work: list, bits: np.ndarray, pending: dict) -> None:
        """Sub-walks of push states (and of the chains of push states below them) by template in
        numba; boundaries whose successor completes an item go to ``pending`` under the parser
        state after their lexeme, built here from the chain of terminals that led to them.

        A walk that leaves no such exit depends on the work's templates and roots alone, not on the
        parser states (their origins only matter where an item completes), so it is memoized by
        them: in a nested arithmetic expression every operator and parenthesis position is a new
        parser state, but the chains below it are the same few templates over the same nodes."""
        items = [(self._template(self.states.push_positions[nxt]), roots) for nxt, roots in work]
        memo_key = tuple(sorted((tid, roots.astype(np.int32, copy=False).tobytes()) for tid, roots in items))
        hit = self._chain_memo.get(memo_key)
        if hit is not None:
            bits[hit[0]] |= hit[1]
            return
        own = np.zeros_like(bits)
        if self._walk_push_chains_of(work, items, own, pending):
            words = np.flatnonzero(own)
            with self._memo_lock:
                self._chain_memo[memo_key] = (words, own[words])
                if len(self._chain_memo) > CHAIN_MEMO_SIZE:
                    self._chain_memo.popitem(last=False)
        bits |= own

    def _walk_push_chains_of(self, work: list, items: list, bits: np.ndarray, pending: dict) -> bool:
        """The walk of ``_walk_push_chains``; True when it left no exit (the walk is memoizable)."""
        no_exit = True
        chain_parent: list = []
        chain_branch: list = []
        real: dict = {}  # chain -> parser state id (the work's states, and chains built for exits)
        w_chain, w_template, w_node = [], [], []
        for (nxt, roots), (tid, _) in zip(work, items):
            c = len(chain_parent)
            chain_parent.append(-1)
            chain_branch.append(-1)
            real[c] = nxt
            w_chain.append(np.full(len(roots), c, dtype=np.int64))
            w_template.append(np.full(len(roots), tid, dtype=np.int64))
            w_node.append(roots)
        while w_chain:
            new_parent, new_branch, ex_keys, ex_offsets, ex_nodes, su_keys, su_offsets, su_nodes = walk_push_chains(
                *self._trie_args, self._packed.transitions, self._packed.accepting, self._t_first, self._t_count,
                self._g_state, self._g_next, np.concatenate(w_chain), np.concatenate(w_template),
                np.concatenate(w_node), len(chain_parent), bits, self._max_depth)
            chain_parent.extend(new_parent.tolist())
            chain_branch.extend(new_branch.tolist())
            w_chain, w_template, w_node = [], [], []
            exits = []
            cuts = su_offsets.tolist()
            for k, key in enumerate(su_keys.tolist()):
                c, g = key >> 32, key & 0xFFFFFFFF
                nodes = su_nodes[cuts[k]:cuts[k + 1]]
                nxt = self._template_next(g)
                if nxt < 0:
                    exits.append((c, g, nodes))
                    continue
                child = len(chain_parent)
                chain_parent.append(c)
                chain_branch.append(g)
                w_chain.append(np.full(len(nodes), child, dtype=np.int64))
                w_template.append(np.full(len(nodes), nxt, dtype=np.int64))
                w_node.append(nodes)
            cuts = ex_offsets.tolist()
            exits.extend((key >> 32, key & 0xFFFFFFFF, ex_nodes[cuts[k]:cuts[k + 1]])
                         for k, key in enumerate(ex_keys.tolist()))
            for c, g, nodes in exits:
                no_exit = False
                # the parser state of the chain: its push states, then the one after this terminal
                path = []
                while c not in real:
                    path.append(c)
                    c = chain_parent[c]
                sid = real[c]
                for link in reversed(path):
                    sid = real[link] = self.states.after_terminal(sid, self._g_term[chain_branch[link]])
                after = self.states.after_terminal(sid, self._g_term[g])
                if after != DEAD:
                    pending.setdefault(after, []).append(nodes)
        return no_exit

    def _root_walks_union(self, entries) -> tuple:
        """(OR of the root walks of these lexing branches, per branch its boundary nodes as (sorted
        nodes, trie nodes below them) or None),
        memoized by the (terminal, DFA state) pairs alone: parser states that differ only in where
        their lexemes began share it. A value position of an object with many number-valued keys
        has ~30 branches, and OR-ing their 16 KB root walks was most of its masks' Python time
        (Github_ultra o46322: 8,507 new states, 845 distinct branch sets)."""
        key = tuple((t, q) for t, q, _ in entries)
        hit = self._union_memo.get(key)
        if hit is None:
            union = self._rows.zeros()
            bounds_of = []
            for t, q in key:
                ci_bits, bounds = self._root_walk(t, q)
                union |= ci_bits
                bounds_of.append(bounds)  # (sorted nodes, nodes below) or None
            hit = (union, tuple(bounds_of))
            with self._memo_lock:
                self._union_memo[key] = hit
                if len(self._union_memo) > UNION_MEMO_SIZE:
                    self._union_memo.popitem(last=False)
        return hit

    def _merged_roots(self, root_lists: list) -> tuple:
        """(sorted distinct union, nodes below) of cached boundary arrays (root walks' and big
        sub-walks'), memoized by their identities: a state reached after NUMBER, STRING or an
        identifier (the end of a SQL condition) takes ~23k identifier boundaries with the others,
        and sorting them again took ~50 us a first visit. The memo keeps the arrays it is keyed by,
        so their ids cannot be reused while the entry lives."""
        key = tuple(sorted(id(r[0]) for r in root_lists))
        hit = self._merge_memo.get(key)
        if hit is None:
            parts = tuple(r[0] for r in root_lists)
            roots, below = unique_roots_and_subtree_size(np.concatenate(parts), self._node_skip)
            hit = (roots, int(below), parts)
            with self._memo_lock:
                self._merge_memo[key] = hit
                self._merge_bytes += roots.nbytes
                if len(self._merge_memo) > MERGE_MEMO_SIZE:
                    self._merge_bytes -= self._merge_memo.popitem(last=False)[1][0].nbytes
        return hit[0], hit[1]

    def _continue_boundaries(self, b_nodes, b_entries, infos, pending: dict) -> None:
        """Queue the boundary nodes of a sub-walk under the parser state after their lexeme."""
        if not len(b_nodes):
            return
        # entries come sorted: one run of boundary nodes per branch
        cuts = run_bounds(b_entries).tolist()
        for a, b in zip(cuts, cuts[1:]):
            start, term = infos[int(b_entries[a])]
            after = self.states.after_terminal(start, term)
            if after != DEAD:
                pending.setdefault(after, []).append(b_nodes[a:b])

    def _big_sub_walk(self, packed: np.ndarray, roots: np.ndarray, bits: np.ndarray, same_roots=None) -> list:
        """A sub-walk over many trie nodes, memoized per vocabulary and lexing branch by what it
        depends on: the branch's packed DFA state and the roots (not the parser state). Inside a
        long string every position is a new parser state (the length is counted), but the walk
        below a chunk boundary is the same at every chunk: Github_easy o9772's masks (certificates
        in a maxLength-32767 string) redid a near-full trie walk per token. Per branch, because
        the states after different keywords share the expensive one: an identifier below the
        space that ends ` FROM `, ` WHERE `, ` AND ` (126k nodes, ~0.5 ms on Llama-3) beside
        whichever other branches each has. Returns [(branch index, boundary nodes)], the nodes as
        the memo's own (sorted distinct nodes, nodes below) pair, so that the next round
        keys its walks by their identity instead of sorting and hashing ~23k nodes again."""
        roots = roots.astype(np.int32, copy=False)
        # many roots that are a cached root walk's boundaries are keyed by that array's identity
        # (kept in the entry, so the id cannot be reused while it lives): hashing 23k of them cost
        # ~20 us a mask. Few roots go by their bytes: the same few nodes (the space after a
        # keyword) come from many root walks
        if same_roots is not None and len(roots) < IDENTITY_KEYED_ROOTS:
            same_roots = None
        roots_key = roots.tobytes() if same_roots is None else id(same_roots)
        table = self._packed
        out = []
        for i, state in enumerate(packed.tolist()):
            key = (id(table), state, roots_key)
            hit = self._sub_walks.get(key)
            if hit is None or hit[0]() is not table or hit[4] is not same_roots:
                own = np.zeros(self._n_words, dtype=np.uint32)
                index = self.vocab.cache.get("corral.first_byte_index")
                if index is None:  # ~7 ms on Llama-3, once per vocabulary
                    index = self.vocab.cache.setdefault("corral.first_byte_index", first_byte_index(self.vocab.trie))
                # roots are sorted and distinct (unique_roots_and_subtree_size, sorted_difference_and_union)
                b_nodes, _ = walk_subtries_by_first_byte(
                    *self._packed_trie_args, table.transitions, table.accepting, packed[i:i + 1], roots, *index,
                    own, self._max_depth)
                words = np.flatnonzero(own)
                # (a mask word set this dense ORs whole: fancy indexing cost ~10 us a hit)
                sparse = (words, own[words]) if 4 * len(words) < self._n_words else (None, self._rows.adopt(own))
                segment = None
                if len(b_nodes):
                    nodes, below = unique_roots_and_subtree_size(b_nodes, self._node_skip)
                    segment = (nodes, int(below))
                # weakly: a memo entry must not keep a dead table's 48 MB alive (nor from reuse)
                hit = (weakref.ref(table), sparse[0], sparse[1], segment, same_roots)
                untrack(hit)  # (a weak reference and arrays: no cycle through the entry)
                with self._root_walks_lock:
                    self._sub_walks[key] = hit
                    if len(self._sub_walks) > SUB_WALK_CACHE_SIZE:
                        self._sub_walks.popitem(last=False)
            if hit[1] is None:
                bits |= hit[2]
            else:
                bits[hit[1]] |= hit[2]
            if hit[3] is not None:
                out.append((i, hit[3]))
        return out

    def step_token(self, sid: int, token_id: int) -> int:
        key = (sid, token_id)
        n = self._token_step.get(key)
        if n is None:
            data = self.vocab.token_bytes(token_id)
            n = self.states.step_bytes(sid, data) if data else DEAD
            self._token_step[key] = n
        return n


class Matcher:
    """Per-sequence state over a CompiledGrammar (the contract in DESIGN.md)."""

    __slots__ = ("compiled", "_history", "_terminated", "_frames")

    def __init__(self, compiled: CompiledGrammar, _history=None, _terminated=None, _frames=None):
        self.compiled = compiled
        # one entry per accepted token: the parser state after it; a stop token repeats the state
        self._history: list[int] = _history if _history is not None else [compiled.states.initial]
        self._terminated: list[bool] = _terminated if _terminated is not None else [False]
        # per entry: the open unique-items arrays (masks/unique.py), () for most grammars
        self._frames: list = _frames if _frames is not None else [()]

    @property
    def state_id(self) -> int:
        return self._history[-1]

    def is_terminated(self) -> bool:
        return self._terminated[-1]

    def is_accepting(self) -> bool:
        return self.compiled.states.states[self._history[-1]].accepting

    def num_accepted(self) -> int:
        return len(self._history) - 1

    def accept_token(self, token_id: int) -> bool:
        if self._terminated[-1]:
            return False
        token_id = int(token_id)
        g = self.compiled
        sid = self._history[-1]
        if token_id in g._eos_set:
            if not g.states.states[sid].accepting:
                return False
            self._history.append(sid)
            self._terminated.append(True)
            self._frames.append(self._frames[-1])
            return True
        if token_id < 0 or token_id >= g.vocab.size:
            return False
        frame = ()
        if g._unique is not None and (self._frames[-1] or b"[" in g.vocab.token_bytes(token_id)):
            nxt, frame = g._unique.advance(sid, self._frames[-1], g.vocab.token_bytes(token_id))
        else:
            nxt = g.step_token(sid, token_id)
        if nxt == DEAD:
            return False
        self._history.append(nxt)
        self._terminated.append(False)
        self._frames.append(frame)
        return True

    def accept_string(self, text: str | bytes) -> bool:
        """Accept text (as one step for rollback). False, state unchanged, if it leaves the language."""
        if self._terminated[-1]:
            return False
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        g = self.compiled
        frame = ()
        if g._unique is not None:
            nxt, frame = g._unique.advance(self._history[-1], self._frames[-1], data)
        else:
            nxt = g.states.step_bytes(self._history[-1], data)
        if nxt == DEAD:
            return False
        self._history.append(nxt)
        self._terminated.append(False)
        self._frames.append(frame)
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        if num_tokens < 0 or num_tokens > len(self._history) - 1:
            raise ValueError(f"cannot roll back {num_tokens} tokens: {len(self._history) - 1} accepted")
        if num_tokens:
            del self._history[-num_tokens:]
            del self._terminated[-num_tokens:]
            del self._frames[-num_tokens:]

    def reset(self) -> None:
        del self._history[1:]
        del self._terminated[1:]
        del self._frames[1:]

    def fork(self) -> "Matcher":
        return Matcher(self.compiled, list(self._history), list(self._terminated), list(self._frames))

    def next_token_bits(self) -> np.ndarray:
        """uint32 words of the allowed next tokens (after a stop token: the stop tokens only)."""
        g = self.compiled
        if self._terminated[-1]:
            return g._eos_bits
        bits = g.mask_bits(self._history[-1])
        if self._frames[-1]:
            bits = g._unique.filter_mask(bits, self._history[-1], self._frames[-1])
        return bits

    def fill_next_token_bitmask(self, bitmask: torch.Tensor, index: int = 0) -> None:
        bits = self.next_token_bits()
        _write_row(bitmask, index, bits)

    def allowed_token_ids(self) -> np.ndarray:
        bits = self.next_token_bits()
        unpacked = np.unpackbits(bits.view(np.uint8), bitorder="little")
        return np.flatnonzero(unpacked[: self.compiled.vocab.size])

    def jump_forward_bytes(self) -> bytes:
        """The bytes the grammar alone determines next (empty when the model has a choice)."""
        if self._terminated[-1]:
            return b""
        states = self.compiled.states
        sid = self._history[-1]
        out = bytearray()
        while len(out) < MAX_FORCED:
            st = states.states[sid]
            if st.accepting:
                break
            allowed = states.allowed_bytes(sid)
            if allowed.sum() != 1:
                break
            b = int(np.flatnonzero(allowed)[0])
            out.append(b)
            sid = states.step(sid, b)
        return bytes(out)

    def jump_forward_string(self) -> str:
        data = self.jump_forward_bytes()
        # cut at the last complete UTF-8 character
        for cut in range(len(data), max(len(data) - 4, -1), -1):
            try:
                return data[:cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return ""

    def forced_tokens(self, max_tokens: int = 64) -> list[int]:
        """Tokens the grammar alone determines next: while exactly one token is allowed, take it."""
        probe = self.fork()
        out: list[int] = []
        while len(out) < max_tokens and not probe.is_terminated():
            ids = probe.allowed_token_ids()
            if len(ids) != 1:
                break
            tok = int(ids[0])
            if not probe.accept_token(tok):
                break
            out.append(tok)
        return out


def warm_up_mask_kernels(vocab, reserve_mb: float = RESERVE_MB) -> None:
    """Load the mask path's numba functions (from numba's on-disk cache: ~10-20 ms, once per
    process) with throwaway masks, so serving and benchmarks do not pay it inside a first mask.
    The dash grammar's first mask follows chains of pushes (Llama-3 has tokens of 16+ dashes).
    Then fault in ``reserve_mb`` MB of bitmask rows for the masks' memos (masks/row_pool.py)."""
    from corral.grammars.lark_frontend import lark_to_grammar  # noqa: PLC0415 - front-ends load on use

    for text in ('start: x\nx: "-" x | "a"\n', 'start: "a" /[a-z]+[0-9]{2}/\n'):
        CompiledGrammar(lark_to_grammar(text), vocab).matcher().next_token_bits()
    # a word, then a word or a space: the class slices of `[a-z]` and ` ?[a-z]` (built once per vocabulary)
    words = CompiledGrammar(lark_to_grammar('start: /[a-z]{1,8}( [a-z]{1,8})+[.]/\n'), vocab).matcher()
    words.next_token_bits()
    if words.accept_string("ab"):
        words.next_token_bits()
    # identifiers' classes (lark's common.CNAME and its lower-case form): ~1.3 ms each to build,
    # ~0.2 ms to count and ~1 ms for each residual trie, which a grammar's first name would otherwise pay inside a mask
    slices = class_slices(vocab)
    packed = vocab.cache["corral.packed_trie_arrays"]
    for chars in IDENTIFIER_CLASSES:
        byte_class = np.zeros(256, dtype=np.bool_)
        byte_class[list(chars.encode())] = True
        slices.prepare(byte_class, packed[0], packed[2])
    # the JSON string body's residual trie: every string and key name walks it
    strings = string_slice(vocab, by_chars=True)
    strings.residual(vocab.trie, packed[0], packed[2])
    strings.prepare_checkpoints()
    # (walk_trie_residual's first call; a string bounded in characters asked about twice)
    for pattern in ('start: /"[^"\\\\]*"/\n', 'start: /"[^"\\\\]{0,20}"/\n'):
        inside = CompiledGrammar(lark_to_grammar(pattern), vocab).matcher()
        for _ in range(3):
            if inside.accept_string('"' if inside.num_accepted() == 0 else "a"):
                inside.next_token_bits()
    reserve_rows(vocab, reserve_mb)


def reserve_rows(vocab, reserve_mb: float) -> None:
    """Top the vocabulary's pre-faulted bitmask rows up to ``reserve_mb`` MB (masks/row_pool.py)."""
    pool = row_pool(vocab)
    pool.reserve(int(reserve_mb * 2**20) // (4 * pool.n_words) - (pool.rows_reserved - pool.rows_taken))


def _write_row(bitmask: torch.Tensor, index: int, bits: np.ndarray) -> None:
    if bitmask.dtype != torch.int32 or bitmask.dim() != 2:
        raise ValueError(f"bitmask must be a 2-D torch.int32 tensor, got {bitmask.dtype} {tuple(bitmask.shape)}")
    n = bits.shape[0]
    width = bitmask.shape[1]
    if width < n:
        raise ValueError(f"bitmask has {width} words per row, the vocabulary needs {n}")
    src = torch.from_numpy(bits.view(np.int32))
    if bitmask.device.type == "cpu":
        row = bitmask.numpy()[index]
        row[:n] = bits.view(np.int32)
        row[n:] = 0
    else:
        bitmask[index, :n].copy_(src, non_blocking=False)
        bitmask[index, n:] = 0


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def fill_next_token_bitmask_batch(matchers, bitmask: torch.Tensor, indices=None, max_workers: int | None = None):
    """Fill row ``indices[i]`` (default i) for each matcher; masks are computed on a thread pool
    (the numba walks release the GIL)."""
    global _POOL
    matchers = list(matchers)
    rows = list(range(len(matchers))) if indices is None else [int(i) for i in indices]
    if len(rows) != len(matchers):
        raise ValueError(f"{len(matchers)} matchers but {len(rows)} indices")
    if len(matchers) <= 1:
        for m, r in zip(matchers, rows):
            m.fill_next_token_bitmask(bitmask, r)
        return
    with _POOL_LOCK:
        if _POOL is None:
            import os

            _POOL = ThreadPoolExecutor(max_workers=max_workers or min(8, os.cpu_count() or 2))
    bits = list(_POOL.map(lambda m: m.next_token_bits(), matchers))
    for b, r in zip(bits, rows):
        _write_row(bitmask, r, b)
