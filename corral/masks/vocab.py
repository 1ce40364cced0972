"""The tokenizer vocabulary as corral sees it: exact token bytes, stop/special tokens, and the token trie.

Owns:
- ``Vocabulary``: ``Vocabulary.from_hf(tokenizer)`` recovers, for every token id, the exact bytes the
  token contributes to the decoded text (byte-level BPE via the GPT-2 byte map; SentencePiece via
  "▁" -> " " and ``<0xNN>`` byte-fallback pieces; non-special added tokens through the same
  decoder), which ids are special (never allowed as text), which ids stop generation, a fingerprint
  (the cache key of everything derived from the vocabulary) and a ``cache`` dict other layers
  memoize per-vocabulary artefacts in.
- ``TokenTrie``: the byte trie of all token byte strings as flat numpy arrays in pre-order DFS with
  skip pointers, so a numba walk can prune a whole subtree at its first dead byte
  (see ``corral.masks.trie_walk``). Built with one sort plus a numba pass; cached in memory and on
  disk (npz keyed by the vocabulary fingerprint).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numba import njit

from corral.errors import CorralError

__all__ = ["Vocabulary", "TokenTrie", "VocabularyError", "gpt2_unicode_to_byte", "build_token_trie"]

TRIE_FORMAT_VERSION = 1


class VocabularyError(CorralError):
    """A tokenizer whose token bytes cannot be recovered."""


@lru_cache(maxsize=1)
def gpt2_unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: the printable char standing for each byte -> that byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    shift = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + shift)
            shift += 1
    return {chr(c): b for b, c in zip(printable, codes)}


@lru_cache(maxsize=1)
def _gpt2_translate_table() -> dict[int, str]:
    """str.translate table: byte-alphabet char -> chr(byte); other chars below U+0100 -> U+FFFF so that
    the following latin-1 encode fails and the piece takes the exact fallback path."""
    table = {c: "\uffff" for c in range(256)}
    table.update({ord(ch): chr(b) for ch, b in gpt2_unicode_to_byte().items()})
    return table


# Stop tokens that chat/instruct models emit besides the tokenizer's declared EOS. Added to
# eos_token_ids only when present in the vocabulary AND flagged special.
_KNOWN_STOP_TOKENS = (
    "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>", "<|end|>",
    "<end_of_turn>", "<eos>", "</s>", "<｜end▁of▁sentence｜>", "<|return|>",
    "<|EOT|>", "<end_of_sentence>", "<end_of_document>",  # DeepSeek-Coder; MiniMax's turn and document ends
)


def _decoder_types(decoder: dict | None) -> list[dict]:
    """Flatten a tokenizer.json decoder (possibly a Sequence) into its components."""
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        out = []
        for sub in decoder.get("decoders", []):
            out.extend(_decoder_types(sub))
        return out
    return [decoder]


def detect_decoder_kind(tokenizer_json: dict) -> str:
    """'byte_level' (GPT-2 byte map), 'sentencepiece' (▁ + optional <0xNN> byte fallback) or 'unknown'."""
    decoders = _decoder_types(tokenizer_json.get("decoder"))
    kinds = {d.get("type") for d in decoders}
    if "ByteLevel" in kinds:
        return "byte_level"
    if "Metaspace" in kinds or "ByteFallback" in kinds:
        return "sentencepiece"
    for d in decoders:
        if d.get("type") == "Replace" and (d.get("pattern") or {}).get("String") == "▁":
            return "sentencepiece"
    pre = tokenizer_json.get("pre_tokenizer") or {}
    pre_kinds = {p.get("type") for p in ([pre] + list(pre.get("pretokenizers", []) or []))}
    if "ByteLevel" in pre_kinds:
        return "byte_level"
    if "Metaspace" in pre_kinds:
        return "sentencepiece"
    return "unknown"


def _strips_dummy_prefix(tokenizer, token_bytes_list) -> bool:
    """The tokenizer encodes "a" as the bytes " a" and decodes them back to "a": a dummy prefix
    (Llama-2-style SentencePiece, Metaspace with prepend_scheme "first"/"always"). A byte-level
    tokenizer with add_prefix_space keeps the space when decoding: not one."""
    try:
        ids = tokenizer.encode("a", add_special_tokens=False)
        ids = [int(i) for i in getattr(ids, "ids", ids)]
        if b"".join(token_bytes_list[i] for i in ids if 0 <= i < len(token_bytes_list)) != b" a":
            return False
        try:
            text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        except TypeError:  # tokenizers.Tokenizer.decode has no clean_up argument
            text = tokenizer.decode(ids, skip_special_tokens=True)
        return text == "a"
    except Exception:  # noqa: BLE001 - a tokenizer that cannot encode or decode "a": no prefix known
        return False


def _looks_like_control(piece: str) -> bool:
    """"<s>", "</s>", "<unk>", "<|endoftext|>", "[PAD]": the shapes of control-token spellings."""
    return len(piece) >= 3 and ((piece[0] == "<" and piece[-1] == ">") or (piece[0] == "[" and piece[-1] == "]"))


def _model_vocab(model: dict) -> dict[str, int]:
    vocab = model.get("vocab")
    if isinstance(vocab, dict):  # BPE / WordPiece / WordLevel
        return vocab
    if isinstance(vocab, list):  # Unigram: [[piece, score], ...], id = position
        return {entry[0]: i for i, entry in enumerate(vocab)}
    raise VocabularyError(f"tokenizer model {model.get('type')!r} has no readable vocab")


# "<0xNN>" byte-fallback pieces (tokenizers' ByteFallback decoder parses the hex case-insensitively).
_BYTE_PIECES = {f"<0x{b:02{case}}>": bytes([b]) for b in range(256) for case in "Xx"}


def _pieces_to_bytes(pieces: list[str], kind: str, byte_fallback: bool) -> list[bytes]:
    """Bytes each piece decodes to, mirroring the tokenizers decoders (bulk: ~0.1 s per 150k pieces)."""
    if kind == "byte_level":
        table = _gpt2_translate_table()
        out = []
        for piece in pieces:
            try:  # str.translate maps each byte-alphabet char to chr(byte): one C pass per piece
                out.append(piece.translate(table).encode("latin-1"))
            except UnicodeEncodeError:
                # Like tokenizers' ByteLevel decoder: a piece with any char outside the byte alphabet
                # (rare, e.g. hand-added) decodes to its own UTF-8.
                out.append(piece.encode("utf-8"))
        return out
    if kind == "sentencepiece":
        byte_pieces = _BYTE_PIECES if byte_fallback else {}
        return [byte_pieces.get(piece) or piece.replace("▁", " ").encode("utf-8") for piece in pieces]
    raise VocabularyError(f"unknown decoder kind {kind!r}")


def _component_json(component) -> dict | None:
    if component is None:
        return None
    try:
        return json.loads(component.__getstate__())
    except Exception:  # noqa: BLE001 - exotic/custom components: treated as absent
        return None


def _tokenizer_json(tokenizer) -> dict | None:
    """The parts of tokenizer.json we need, for a fast HF tokenizer or a ``tokenizers.Tokenizer``.

    Read component by component instead of parsing ``to_str()``: the full JSON holds the BPE merges
    and parsing it costs ~0.45 s on Llama-3, 4x the rest of ``from_hf``. None for slow tokenizers.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None and hasattr(tokenizer, "get_added_tokens_decoder") and hasattr(tokenizer, "model"):
        backend = tokenizer  # a raw tokenizers.Tokenizer
    if backend is None:
        return None
    model = backend.model
    added = [{"id": int(i), "content": tok.content, "special": bool(tok.special)}
             for i, tok in sorted(backend.get_added_tokens_decoder().items())]
    return {
        "decoder": _component_json(backend.decoder),
        "pre_tokenizer": _component_json(backend.pre_tokenizer),
        "normalizer": _component_json(backend.normalizer),
        "model": {"type": type(model).__name__, "byte_fallback": getattr(model, "byte_fallback", None),
                  "unk_token": getattr(model, "unk_token", None),
                  "vocab": backend.get_vocab(with_added_tokens=False)},
        "added_tokens": added,
    }


def _tokenizer_length(tokenizer) -> int:
    """Total ids incl. added tokens: part of the memo key, so adding tokens invalidates the memo."""
    if hasattr(tokenizer, "get_vocab_size"):
        return int(tokenizer.get_vocab_size(with_added_tokens=True))
    try:
        return len(tokenizer)
    except TypeError:
        return -1


class _VocabCacheByTokenizer:
    """Memo of Vocabulary per live tokenizer object (from_hf is ~0.2 s on 128k tokens; callers repeat it)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_id: dict[int, tuple[weakref.ref, dict]] = {}

    def get(self, tokenizer, key):
        with self._lock:
            entry = self._by_id.get(id(tokenizer))
            if entry is None or entry[0]() is not tokenizer:
                return None
            return entry[1].get(key)

    def put(self, tokenizer, key, vocab):
        try:
            ref = weakref.ref(tokenizer, lambda _r, i=id(tokenizer): self._by_id.pop(i, None))
        except TypeError:  # not weak-referenceable: do not memoize
            return
        with self._lock:
            entry = self._by_id.get(id(tokenizer))
            if entry is None or entry[0]() is not tokenizer:
                entry = (ref, {})
                self._by_id[id(tokenizer)] = entry
            entry[1][key] = vocab


_FROM_HF_MEMO = _VocabCacheByTokenizer()
_TRIE_MEMORY_CACHE: dict[str, "TokenTrie"] = {}
_TRIE_LOCK = threading.Lock()


class Vocabulary:
    """Exact per-token bytes + special/stop tokens of a tokenizer. Immutable apart from ``cache``.

    Attributes:
        size: number of token ids the bitmask covers (max id + 1 over the full vocab incl. added tokens).
        eos_token_ids: tuple of stop token ids (allowed exactly when the matcher is accepting).
        special_token_ids: frozenset of ids that never produce text (special/control tokens, stop
            tokens, and ids the tokenizer leaves unassigned); ``token_bytes`` is b"" for them.
        fingerprint: sha256 hex over all token bytes, specials and stop tokens (cache key).
        cache: dict where other layers memoize per-vocabulary artefacts (keyed by their own names).
        kind: how bytes were recovered ('byte_level', 'sentencepiece', 'decode').
        token_bytes_concat / token_offsets: all token bytes as one uint8 array; token i is
            ``token_bytes_concat[token_offsets[i]:token_offsets[i+1]]`` (for numba code).
    """

    def __init__(self, token_bytes_list, eos_token_ids=(), special_token_ids=(), kind: str = "bytes",
                 name: str | None = None, dummy_prefix: bool = False):
        self._token_bytes = [b if b.__class__ is bytes else bytes(b) for b in token_bytes_list]
        self.size = len(self._token_bytes)
        eos = []
        for i in eos_token_ids:
            i = int(i)
            if not 0 <= i < self.size:
                raise VocabularyError(f"stop token id {i} outside the vocabulary (size {self.size})")
            if i not in eos:
                eos.append(i)
        self.eos_token_ids = tuple(eos)
        # A stop token ends the text, it never contributes to it: stop ids are special too.
        specials = frozenset(int(i) for i in special_token_ids) | frozenset(eos)
        for i in specials:
            if not 0 <= i < self.size:
                raise VocabularyError(f"special token id {i} outside the vocabulary (size {self.size})")
            self._token_bytes[i] = b""
        self.special_token_ids = specials
        self.kind = kind
        self.name = name
        lengths = np.array(list(map(len, self._token_bytes)), dtype=np.int64).reshape(self.size)
        self.token_offsets = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.token_offsets[1:])
        self.token_bytes_concat = np.frombuffer(b"".join(self._token_bytes), dtype=np.uint8)
        self.token_lengths = lengths.astype(np.int32)
        digest = hashlib.sha256()
        digest.update(f"corral-vocab-v1|{self.size}|".encode())
        digest.update(self.token_offsets.tobytes())
        digest.update(self.token_bytes_concat.tobytes())
        digest.update(np.array(sorted(specials), dtype=np.int64).tobytes())
        digest.update(b"|eos|")
        digest.update(np.array(sorted(self.eos_token_ids), dtype=np.int64).tobytes())  # order-free set
        # The tokenizer writes a space ("▁") before the first word of a text and its decoder drops
        # it again (SentencePiece's dummy prefix): a generation's first token may carry a space
        # that never reaches the decoded output, so grammars allow one there (CompiledGrammar)
        self.dummy_prefix = bool(dummy_prefix)
        if self.dummy_prefix:
            digest.update(b"|dummy-prefix|")
        self.fingerprint = digest.hexdigest()
        self.cache: dict = {}
        self._trie: TokenTrie | None = None
        self._trie_lock = threading.Lock()

    # ----------------------------------------------------------------------------------------------
    @classmethod
    def from_hf(cls, tokenizer, eos_token_ids=None, extra_stop_token_ids=()) -> "Vocabulary":
        """Build from an HF PreTrainedTokenizer(Fast) or a ``tokenizers.Tokenizer``.

        ``eos_token_ids``: override the detected stop tokens (None = detect: the tokenizer's EOS plus
        known end-of-turn specials present in the vocab). ``extra_stop_token_ids`` are always added.
        """
        key = (None if eos_token_ids is None else tuple(int(i) for i in eos_token_ids),
               tuple(int(i) for i in extra_stop_token_ids), _tokenizer_length(tokenizer))
        memo = _FROM_HF_MEMO.get(tokenizer, key)
        if memo is not None:
            return memo
        vocab = cls._from_hf_uncached(tokenizer, eos_token_ids, extra_stop_token_ids)
        _FROM_HF_MEMO.put(tokenizer, key, vocab)
        return vocab

    @classmethod
    def _from_hf_uncached(cls, tokenizer, eos_token_ids, extra_stop_token_ids) -> "Vocabulary":
        tj = _tokenizer_json(tokenizer)
        if tj is not None:
            pieces, kind, specials, added_text = _pieces_from_tokenizer_json(tj)
        else:
            pieces, kind, specials, added_text = _pieces_from_slow_tokenizer(tokenizer)

        # Special roles declared on the HF wrapper (bos/eos/pad/unk/additional) are special too,
        # unless the role points at an ordinary text piece (a config using e.g. "!" as pad token).
        piece_of_id = None
        for i in getattr(tokenizer, "all_special_ids", None) or ():
            if i is None or i < 0 or i in specials:
                continue
            if i not in added_text:
                if piece_of_id is None:
                    piece_of_id = {v: k for k, v in pieces.items()}
                piece = piece_of_id.get(int(i))
                if piece is not None and not _looks_like_control(piece):
                    continue
            specials.add(int(i))
        size = max([*pieces.values(), *specials, *added_text.keys(), -1]) + 1
        if size == 0:
            raise VocabularyError("empty vocabulary")
        # <0xNN> pieces are single bytes exactly when the decoder has a ByteFallback step.
        byte_fallback = tj is None or any(d.get("type") == "ByteFallback" for d in _decoder_types(tj.get("decoder")))
        token_bytes_list: list[bytes] = [b""] * size
        assigned = np.zeros(size, np.bool_)
        if kind == "decode":
            token_bytes_list = _bytes_by_decoding(tokenizer, size)
            assigned[:] = True
        else:
            ids = list(pieces.values())
            for i, data in zip(ids, _pieces_to_bytes(list(pieces), kind, byte_fallback)):
                token_bytes_list[i] = data
            assigned[ids] = True
        if added_text:
            # Non-special added tokens go through the same decoder as model pieces (tokenizers'
            # decode does that), so "<tool_call>" stays itself; a byte-level tokenizer's added "é"
            # would really come out as the byte 0xE9, and we mirror that rather than the content.
            # ("decode" kind: already decoded above, added tokens included).
            if kind != "decode":
                ids = list(added_text)
                for i, data in zip(ids, _pieces_to_bytes(list(added_text.values()), kind, byte_fallback)):
                    token_bytes_list[i] = data
                assigned[ids] = True
        unassigned = set(np.flatnonzero(~assigned).tolist())
        specials |= unassigned  # ids nobody defines can never be produced as text

        if eos_token_ids is None:
            eos = _detect_stop_tokens(tokenizer, tj, specials)
            if not eos and not extra_stop_token_ids:
                # without one, a finished document has an empty mask and no matcher terminates
                # (a bare tokenizer.json often carries no EOS role: its tokenizer_config.json does)
                warnings.warn("no stop token found in this tokenizer: matchers will never terminate and a "
                              "completed document gets an empty mask; pass eos_token_ids=[...]",
                              stacklevel=3)
        else:
            eos = [int(i) for i in eos_token_ids]
        eos += [int(i) for i in extra_stop_token_ids]
        name = getattr(tokenizer, "name_or_path", None) or None
        return cls(token_bytes_list, eos_token_ids=eos, special_token_ids=specials, kind=kind, name=name,
                   dummy_prefix=_strips_dummy_prefix(tokenizer, token_bytes_list))

    # ----------------------------------------------------------------------------------------------
    def token_bytes(self, token_id: int) -> bytes:
        """Exact bytes token ``token_id`` contributes to the output text (b"" for special tokens)."""
        return self._token_bytes[token_id]

    def all_token_bytes(self) -> list[bytes]:
        """The bytes of every token id (a copy of the list; do not rely on identity)."""
        return list(self._token_bytes)

    def decode_bytes(self, token_ids) -> bytes:
        """Concatenated bytes of ``token_ids`` (special tokens contribute nothing)."""
        return b"".join(self._token_bytes[i] for i in token_ids)

    def validate_against(self, tokenizer, token_ids=None, sample_size: int = 2000, seed: int = 0):
        """Compare token bytes with the tokenizer's own ``decode``; returns the mismatches (empty = ok).

        Checks non-special tokens whose bytes are complete UTF-8 (a partial character decodes to
        U+FFFD and says nothing), ``token_ids`` or a random sample. A SentencePiece decoder that strips
        the leading space of a text (dummy prefix) is handled by decoding after an anchor token:
        decode([anchor, t]) must equal decode([anchor]) + bytes(t).
        """
        import random

        if token_ids is None:
            pool = range(self.size)
            token_ids = random.Random(seed).sample(pool, min(sample_size, self.size))
        anchor = None
        try:
            anchor_ids = tokenizer.encode("a", add_special_tokens=False)
            anchor_ids = getattr(anchor_ids, "ids", anchor_ids)  # tokenizers.Tokenizer returns Encoding
            anchor = [int(anchor_ids[0])] if len(anchor_ids) == 1 else None
        except Exception:  # noqa: BLE001 - a tokenizer that cannot encode "a": direct checks only
            anchor = None

        def decode(ids):
            try:
                return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            except TypeError:  # tokenizers.Tokenizer.decode has no clean_up argument
                return tokenizer.decode(ids, skip_special_tokens=False)

        base = decode(anchor) if anchor else None
        mismatches = []
        for t in token_ids:
            t = int(t)
            if t in self.special_token_ids:
                continue
            try:
                expected = self._token_bytes[t].decode("utf-8")
            except UnicodeDecodeError:
                continue
            got = decode([t])
            if got == expected:
                continue
            if anchor is not None:
                joined = decode(anchor + [t])
                if joined.startswith(base) and joined[len(base):] == expected:
                    continue
            mismatches.append((t, self._token_bytes[t], got))
        return mismatches

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_token_ids

    @property
    def trie(self) -> "TokenTrie":
        """The token trie (built once; cached in memory and on disk by fingerprint)."""
        if self._trie is None:
            with self._trie_lock:
                if self._trie is None:
                    self._trie = TokenTrie.for_vocabulary(self)
        return self._trie

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"Vocabulary(size={self.size}, kind={self.kind!r}, eos={self.eos_token_ids}, "
                f"specials={len(self.special_token_ids)}, fingerprint={self.fingerprint[:12]})")

    # Vocabularies are shared, heavy objects: pickle as token bytes (cache and trie are rebuilt).
    def __getstate__(self):
        return {"token_bytes": self._token_bytes, "eos": self.eos_token_ids,
                "specials": sorted(self.special_token_ids), "kind": self.kind, "name": self.name,
                "dummy_prefix": self.dummy_prefix}

    def __setstate__(self, state):
        self.__init__(state["token_bytes"], eos_token_ids=state["eos"], special_token_ids=state["specials"],
                      kind=state["kind"], name=state["name"], dummy_prefix=state.get("dummy_prefix", False))


def _pieces_from_tokenizer_json(tj: dict):
    """(piece -> id of the model vocab, decoder kind, special ids, non-special added id -> content)."""
    model = tj.get("model") or {}
    kind = detect_decoder_kind(tj)
    pieces = _model_vocab(model)
    specials: set[int] = set()
    added_text: dict[int, str] = {}
    for added in tj.get("added_tokens") or ():
        i = int(added["id"])
        if added.get("special"):
            specials.add(i)
            added_text.pop(i, None)
        else:
            added_text[i] = added["content"]
    if kind == "unknown":
        kind = "decode"
    if kind == "sentencepiece":
        # SentencePiece's <unk> is a model piece, not an added token, in some conversions.
        unk = model.get("unk_token")
        if unk is not None and unk in pieces:
            specials.add(pieces[unk])
    # Added tokens that shadow model pieces keep their added meaning: added bytes are written after
    # the pieces', and special ids are blanked by the constructor (no filtering pass needed here).
    return pieces, kind, specials, added_text


def _pieces_from_slow_tokenizer(tokenizer):
    """Slow (Python) tokenizers: GPT-2 style ones expose byte_decoder, SentencePiece ones sp_model."""
    vocab = tokenizer.get_vocab()
    specials = {int(i) for i in getattr(tokenizer, "all_special_ids", ()) or ()}
    added_text: dict[int, str] = {}
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for i, tok in decoder.items():
        if getattr(tok, "special", False):
            specials.add(int(i))
        else:
            added_text[int(i)] = str(tok)
    if getattr(tokenizer, "byte_decoder", None) is not None:
        kind = "byte_level"
    elif getattr(tokenizer, "sp_model", None) is not None:
        kind = "sentencepiece"
        sp = tokenizer.sp_model
        for i in range(sp.get_piece_size()):
            if sp.is_control(i) or sp.is_unknown(i):
                specials.add(i)
    else:
        kind = "decode"
    pieces = {p: i for p, i in vocab.items() if i not in specials and i not in added_text}
    return pieces, kind, specials, added_text


def _bytes_by_decoding(tokenizer, size: int) -> list[bytes]:
    """Last-resort recovery for unknown decoders: decode([anchor, t]) minus decode([anchor]).

    Only exact for tokens that are complete UTF-8; used when the tokenizer's decoder is neither
    byte-level nor SentencePiece-style (e.g. WordPiece: "##ing" -> b"ing", "hello" -> b" hello").
    """
    encoded = tokenizer.encode("a", add_special_tokens=False)
    anchor = list(getattr(encoded, "ids", encoded))[:1]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None and hasattr(tokenizer, "decode_batch"):
        backend = tokenizer
    if backend is not None:  # one Rust call for the whole vocabulary
        texts = backend.decode_batch([anchor + [i] for i in range(size)], skip_special_tokens=False)
        base = backend.decode(anchor, skip_special_tokens=False)
    else:
        texts = [tokenizer.decode(anchor + [i], clean_up_tokenization_spaces=False) for i in range(size)]
        base = tokenizer.decode(anchor, clean_up_tokenization_spaces=False)
    return [(text[len(base):] if text.startswith(base) else text).encode("utf-8") for text in texts]


def _detect_stop_tokens(tokenizer, tj: dict | None, specials: set[int]) -> list[int]:
    eos: list[int] = []
    declared = getattr(tokenizer, "eos_token_id", None)
    if isinstance(declared, (list, tuple)):
        eos.extend(int(i) for i in declared)
    elif declared is not None:
        eos.append(int(declared))
    by_content: dict[str, int] = {}
    if tj is not None:
        for added in tj.get("added_tokens") or ():
            if added.get("special"):
                by_content[added["content"]] = int(added["id"])
    else:
        for i, tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
            if getattr(tok, "special", False):
                by_content[str(tok)] = int(i)
    for content in _KNOWN_STOP_TOKENS:
        i = by_content.get(content)
        if i is not None and i in specials and i not in eos:
            eos.append(i)
    return eos


# ==================================================================================================
# Token trie
# ==================================================================================================

@dataclass(frozen=True, eq=False)
class TokenTrie:
    """Byte trie of all non-empty token byte strings, flat arrays in pre-order DFS.

    Node 0 is the root (depth 0, its ``node_byte`` unused). Children appear in increasing byte order.
    ``node_skip[i]`` is the index of the first node after i's subtree, so a walk that prunes node i
    jumps to ``node_skip[i]``; i has children iff ``node_skip[i] > i + 1``. Token ids whose bytes end
    exactly at node i are ``tok_ids[node_tok_start[i]:node_tok_end[i]]`` (several ids can share bytes);
    the ranges are consecutive in node order, so a subtree's tokens are one slice (``subtree_tokens``).
    ``token_node[t]`` is the node where token t ends, -1 for empty/special tokens.
    """

    node_byte: np.ndarray       # uint8[N]
    node_depth: np.ndarray      # int32[N]
    node_skip: np.ndarray       # int32[N]
    node_parent: np.ndarray     # int32[N], -1 for the root
    node_tok_start: np.ndarray  # int32[N]
    node_tok_end: np.ndarray    # int32[N]
    tok_ids: np.ndarray         # int32[T]
    token_node: np.ndarray      # int32[size]
    fingerprint: str = ""

    @property
    def num_nodes(self) -> int:
        return int(self.node_byte.shape[0])

    def __post_init__(self):
        # Computed once: walks size their DFA-state stacks with it (an O(N) max per call would cost
        # ~0.1 ms on Llama-3, as much as a restrictive walk itself).
        object.__setattr__(self, "_max_depth", int(self.node_depth.max()) if self.node_depth.size else 0)

    @property
    def max_depth(self) -> int:
        """Length of the longest token byte string (the deepest node)."""
        return self._max_depth

    def arrays(self) -> tuple:
        """The arrays numba walks take, in the order of ``trie_walk`` signatures."""
        return (self.node_byte, self.node_depth, self.node_skip, self.node_tok_start, self.node_tok_end,
                self.tok_ids)

    def node_bytes(self, node: int) -> bytes:
        """The byte string spelled by the path root -> node."""
        out = []
        while node > 0:
            out.append(int(self.node_byte[node]))
            node = int(self.node_parent[node])
        return bytes(reversed(out))

    def find(self, data: bytes) -> int:
        """Node spelling ``data`` exactly, or -1 (binary search among each node's sorted children)."""
        node = 0
        for b in data:
            child = node + 1
            end = int(self.node_skip[node])
            found = -1
            while child < end:  # children are in increasing byte order; hop between siblings
                cb = int(self.node_byte[child])
                if cb == b:
                    found = child
                    break
                if cb > b:
                    break
                child = int(self.node_skip[child])
            if found < 0:
                return -1
            node = found
        return node

    def tokens_at(self, node: int) -> np.ndarray:
        """Token ids whose bytes end exactly at ``node``."""
        return self.tok_ids[self.node_tok_start[node]:self.node_tok_end[node]]

    def subtree_tokens(self, node: int) -> np.ndarray:
        """Token ids whose bytes start with ``node``'s string (the node itself included).

        A contiguous slice: tokens are numbered in node (pre-)order, so ``node_tok_start[i + 1] ==
        node_tok_end[i]`` and a subtree's tokens run from ``node_tok_start[node]`` to the
        ``node_tok_end`` of its last node, ``node_skip[node] - 1``.
        """
        return self.tok_ids[self.node_tok_start[node]:self.node_tok_end[self.node_skip[node] - 1]]

    # ----------------------------------------------------------------------------------------------
    @classmethod
    def for_vocabulary(cls, vocab: Vocabulary, use_disk_cache: bool = True) -> "TokenTrie":
        """The trie of ``vocab``: memory cache, then disk cache (npz by fingerprint), then build."""
        fp = vocab.fingerprint
        with _TRIE_LOCK:
            trie = _TRIE_MEMORY_CACHE.get(fp)
        if trie is not None:
            return trie
        path = _trie_cache_path(fp) if use_disk_cache else None
        trie = None
        if path is not None and path.is_file():
            trie = _load_trie(path, fp)
        if trie is None:
            trie = build_token_trie(vocab)
            if path is not None:
                _save_trie(trie, path)
        with _TRIE_LOCK:
            _TRIE_MEMORY_CACHE.setdefault(fp, trie)
            return _TRIE_MEMORY_CACHE[fp]


def _trie_cache_path(fingerprint: str) -> Path | None:
    try:
        from corral.masks.tokenizers_offline import cache_dir
        return cache_dir() / "tries" / f"trie-v{TRIE_FORMAT_VERSION}-{fingerprint[:40]}.npz"
    except OSError:  # unwritable home: in-memory caching only
        return None


_TRIE_FIELDS = ("node_byte", "node_depth", "node_skip", "node_parent", "node_tok_start", "node_tok_end",
                "tok_ids", "token_node")


def _save_trie(trie: TokenTrie, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(tmp, fingerprint=np.array(trie.fingerprint), **{f: getattr(trie, f) for f in _TRIE_FIELDS})
        os.replace(tmp, path)
    except OSError:
        pass  # the disk cache is an optimisation only


def _load_trie(path: Path, fingerprint: str) -> TokenTrie | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["fingerprint"]) != fingerprint:
                return None
            arrays = {f: np.ascontiguousarray(data[f]) for f in _TRIE_FIELDS}
    except Exception:  # noqa: BLE001 - a truncated/corrupt cache file (BadZipFile, ...) means rebuild
        return None
    return TokenTrie(fingerprint=fingerprint, **arrays)


def build_token_trie(vocab: Vocabulary) -> TokenTrie:
    """Build the trie: sort the distinct non-empty byte strings, then one numba pass creates nodes.

    In sorted order, string k shares its first lcp(k-1, k) bytes with the path already built, so it
    adds exactly len(k) - lcp nodes, and emitting them in that order *is* the pre-order DFS with
    children in increasing byte order.
    """
    size = vocab.size
    tb = vocab._token_bytes
    ids = [i for i in range(size) if tb[i]]
    ids.sort(key=tb.__getitem__)  # bytes compare lexicographically, a prefix before its extensions
    order = np.array(ids, dtype=np.int64)
    lengths = vocab.token_lengths[order].astype(np.int64) if len(ids) else np.zeros(0, np.int64)
    starts = vocab.token_offsets[order] if len(ids) else np.zeros(0, np.int64)
    (node_byte, node_depth, node_skip, node_parent, node_tok_start, node_tok_end,
     token_node) = _build_trie_arrays(vocab.token_bytes_concat, starts, lengths, order.astype(np.int32), size)
    return TokenTrie(node_byte=node_byte, node_depth=node_depth, node_skip=node_skip, node_parent=node_parent,
                     node_tok_start=node_tok_start, node_tok_end=node_tok_end,
                     tok_ids=order.astype(np.int32), token_node=token_node, fingerprint=vocab.fingerprint)


@njit(cache=True, nogil=True)
def _build_trie_arrays(data, starts, lengths, sorted_ids, size):  # pragma: no cover - numba
    n = sorted_ids.shape[0]
    # Pass 1: longest common prefix with the previous string -> node count and max depth.
    lcp = np.zeros(n, np.int64)
    total = 1
    max_len = 0
    for k in range(n):
        length = lengths[k]
        if length > max_len:
            max_len = length
        if k > 0:
            a = starts[k - 1]
            b = starts[k]
            m = min(lengths[k - 1], length)
            j = 0
            while j < m and data[a + j] == data[b + j]:
                j += 1
            lcp[k] = j
        total += length - lcp[k]
    node_byte = np.zeros(total, np.uint8)
    node_depth = np.zeros(total, np.int32)
    node_skip = np.zeros(total, np.int32)
    node_parent = np.full(total, -1, np.int32)
    node_tok_start = np.zeros(total, np.int32)
    node_tok_end = np.zeros(total, np.int32)
    token_node = np.full(size, -1, np.int32)
    path = np.zeros(max_len + 1, np.int32)  # path[d] = open node at depth d (path[0] = root)
    open_depth = 0
    nxt = 1
    k = 0
    while k < n:
        length = lengths[k]
        common = lcp[k]
        # Identical byte strings (several ids with the same bytes) share the node: group them.
        group_end = k + 1
        while group_end < n and lcp[group_end] == length and lengths[group_end] == length:
            group_end += 1
        # Close the open nodes deeper than the shared prefix: their subtrees end here.
        while open_depth > common:
            node_skip[path[open_depth]] = nxt
            open_depth -= 1
        base = starts[k]
        for d in range(common + 1, length + 1):
            node = nxt
            nxt += 1
            node_byte[node] = data[base + d - 1]
            node_depth[node] = d
            node_parent[node] = path[d - 1]
            node_tok_start[node] = k  # empty slice at the running position (monotone)
            node_tok_end[node] = k
            path[d] = node
        open_depth = length
        end_node = path[length]
        node_tok_start[end_node] = k
        node_tok_end[end_node] = group_end
        for g in range(k, group_end):
            token_node[sorted_ids[g]] = end_node
        k = group_end
    while open_depth > 0:
        node_skip[path[open_depth]] = nxt
        open_depth -= 1
    node_skip[0] = nxt
    return node_byte, node_depth, node_skip, node_parent, node_tok_start, node_tok_end, token_node
