"""Value constraints no context-free rule can state: arrays of pairwise distinct JSON strings.

``Grammar.unique_arrays`` names, per such array, the terminal that opens it and the nonterminals of
its own structure. The grammar accepts the array with repeats; this module owns what the Matcher
adds on top:

* a per-sequence ``Frame`` (immutable, one per accepted token, so rollback and fork stay cheap):
  the decoded items of the innermost open unique array and the raw bytes of the item being
  written;
* ``advance``: stepping the parser over bytes while keeping the frame. When an item closes with a
  value seen before, the parses of that array are removed from the parser state
  (``ParserStates.without``); what is left (an overlapping branch without uniqueItems) goes on, and
  nothing left means the bytes are rejected. This is exact: the unique parse dies, the others do
  not;
* ``filter_mask``: the grammar's (memoized) mask minus the tokens whose bytes close a repeated
  item. Candidates come from an index of the vocabulary (tokens by their bytes before the first
  quote, plus the few tokens with two quotes or an escape) and each candidate is checked exactly
  with ``advance``, so the filter never walks the vocabulary in Python.

Why this is enough for exact masks: the compiler only emits unique arrays whose item language is
open-ended (every item prefix has infinitely many completions, ``Compiler._open_ended``), so a
prefix can never be forced into a repeat before its closing quote; repeats are decided exactly there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from corral.automata.earley import DEAD

_QUOTE, _BACKSLASH, _LBRACKET = 0x22, 0x5C, 0x5B
_BETWEEN_ITEMS = frozenset(b" \t\n\r,")


@dataclass(frozen=True)
class Frame:
    blocked: frozenset  # nonterminal ids of the unique arrays this '[' may have opened
    values: frozenset  # decoded items so far
    item: bytes | None  # raw bytes of the open item after its quote; None between items


def _decode(raw: bytes) -> str | None:
    """The string a complete raw JSON string body spells (None: incomplete escape or UTF-8)."""
    try:
        return json.loads(b'"' + raw + b'"')
    except ValueError:
        return None


def _quote_closes(raw: bytes) -> bool:
    """A quote after ``raw`` ends the string (it is not escaped)."""
    n = 0
    while n < len(raw) and raw[len(raw) - 1 - n] == _BACKSLASH:
        n += 1
    return n % 2 == 0


@dataclass(frozen=True)
class _VocabIndex:
    by_prefix: dict  # bytes before the first quote (no backslash in them) -> int64 token ids
    slow: np.ndarray  # tokens with two quotes or more, or a backslash and a quote: always checked
    quoted: np.ndarray  # every token with a quote (an open escape: all of them are checked)


def _vocab_index(vocab) -> _VocabIndex:
    hit = vocab.cache.get("corral.unique_index")
    if hit is None:
        by_prefix: dict[bytes, list[int]] = {}
        slow, quoted = [], []
        for tok in range(vocab.size):
            data = vocab.token_bytes(tok)
            k = data.find(b'"')
            if k < 0:
                continue
            quoted.append(tok)
            if data.count(b'"') > 1 or b"\\" in data:
                slow.append(tok)
            if b"\\" not in data[:k]:
                by_prefix.setdefault(data[:k], []).append(tok)
        hit = _VocabIndex({k: np.array(v, dtype=np.int64) for k, v in by_prefix.items()},
                          np.array(slow, dtype=np.int64), np.array(quoted, dtype=np.int64))
        vocab.cache["corral.unique_index"] = hit
    return hit


class UniqueArrays:
    """The value-constraint half of one CompiledGrammar (immutable after construction)."""

    def __init__(self, grammar, tables, states, vocab):
        self.states = states
        self.vocab = vocab
        # dotted positions right after an opening terminal -> the nonterminals of that array
        self.after_open: dict[int, frozenset] = {}
        for term_name, nts in grammar.unique_arrays.items():
            sym = -1 - tables.terminal_index[term_name]
            ids = frozenset(tables._encode(n) for n in nts)
            for nt in ids:
                for first in tables.rules_for(nt):
                    if tables.next_sym[first] == sym:
                        self.after_open[first + 1] = ids
        self._open_memo: dict[int, Frame | None] = {}

    def _open(self, sid: int) -> Frame | None:
        """The frame of a '[' just read in state ``sid`` (None: no unique array opened)."""
        if sid in self._open_memo:
            return self._open_memo[sid]
        blocked = frozenset().union(*(self.after_open[p] for p, _ in self.states.states[sid].items
                                      if p in self.after_open))
        frame = Frame(blocked, frozenset(), None) if blocked else None
        self._open_memo[sid] = frame
        return frame

    def advance(self, sid: int, frame: Frame | None, data: bytes) -> tuple[int, Frame | None]:
        """Parser state and frame after ``data`` (DEAD when rejected, repeats included)."""
        step = self.states.step
        for b in data:
            sid = step(sid, b)
            if sid == DEAD:
                return DEAD, None
            if frame is not None:
                if frame.item is not None:
                    if b == _QUOTE and _quote_closes(frame.item):
                        value = _decode(frame.item)
                        if value is not None and value in frame.values:
                            sid = self.states.without(sid, frame.blocked)
                            if sid == DEAD:
                                return DEAD, None
                            frame = None  # the unique parses are gone; others go on
                        else:
                            values = frame.values if value is None else frame.values | {value}
                            frame = Frame(frame.blocked, values, None)
                    else:
                        frame = Frame(frame.blocked, frame.values, frame.item + bytes((b,)))
                    continue
                if b == _QUOTE:
                    frame = Frame(frame.blocked, frame.values, b"")
                    continue
                if b in _BETWEEN_ITEMS:
                    continue
                frame = None  # ']' or an item that is not a string: this array's items are over
            if b == _LBRACKET:
                frame = self._open(sid)
        return sid, frame

    def filter_mask(self, bits: np.ndarray, sid: int, frame: Frame | None) -> np.ndarray:
        """``bits`` without the tokens that would close a repeated item (a copy when any)."""
        if frame is None:
            return bits  # (no values yet: one token may still close two equal items, e.g. `"",""`)
        index = _vocab_index(self.vocab)
        chunks = [index.slow]
        if frame.item is not None:
            current = _decode(frame.item) if _quote_closes(frame.item) else None
            if current is None:  # inside an escape or a UTF-8 sequence: every quote token
                chunks.append(index.quoted)
            else:
                for v in frame.values:
                    if v.startswith(current):
                        rest = json.dumps(v[len(current):], ensure_ascii=False)[1:-1].encode("utf-8")
                        hit = index.by_prefix.get(rest)
                        if hit is not None:
                            chunks.append(hit)
        cands = np.unique(np.concatenate(chunks)) if len(chunks) > 1 else chunks[0]
        if not len(cands):
            return bits
        allowed = (bits[cands >> 5] >> (cands & 31).astype(np.uint32)) & 1
        out = None
        for tok in cands[allowed.astype(bool)].tolist():
            if self.advance(sid, frame, self.vocab.token_bytes(tok))[0] == DEAD:
                if out is None:
                    out = bits.copy()
                out[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        return bits if out is None else out
