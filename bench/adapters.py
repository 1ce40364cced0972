"""Engine adapters: one small interface over corral and its peers (xgrammar, llguidance, outlines-core).

The harness only ever talks to an engine through ``EngineAdapter``:

    adapter.check_available()                 # raises EngineUnavailable (with an install hint) if missing
    adapter.setup(tokenizer, stop_token_ids)  # once per process: tokenizer preprocessing (timed apart)
    compiled = adapter.compile(schema_text)   # JSON Schema text -> engine grammar; raises on failure
    matcher = adapter.new_matcher(compiled)
    mask = adapter.allocate_mask()            # MaskBuffer: engine-native buffer + numpy int32 word view
    adapter.fill_mask(matcher, mask)          # bit t%32 of word t//32 set <=> token t allowed
    adapter.accept(matcher, token_id) -> bool
    adapter.is_accepting(matcher) -> bool
    adapter.error_kind(exc) -> "unsupported" | "compile_error"

Peers are configured so that ``json.dumps`` default output (separators ", " and ": ") is legal:
xgrammar with ``any_whitespace=True`` and ``strict_mode=False`` (JSON Schema's own defaults for
additionalProperties), llguidance with its default flexible whitespace, outlines-core with its default
``[ ]?`` whitespace pattern. Engines are looked up by name in ``ENGINES``, or as ``module:Class``.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass

import numpy as np

__all__ = ["ENGINES", "DEFAULT_ENGINES", "EngineAdapter", "EngineUnavailable", "MaskBuffer", "Unsupported",
           "load_adapter", "token_bytes_table"]


class EngineUnavailable(Exception):
    """The engine's package (or corral's JSON Schema compiler) is not importable; the message says why."""


class Unsupported(Exception):
    """The engine declined the schema (a feature it does not implement)."""


@dataclass
class MaskBuffer:
    """An engine-native bitmask (what its fill function writes) and a numpy int32 view of its words."""
    native: object
    words: np.ndarray

    def allows(self, token_id: int) -> bool:
        return bool((int(self.words[token_id >> 5]) >> (token_id & 31)) & 1)


class EngineAdapter:
    """Base class; subclasses implement one engine. Instances live inside one worker process."""

    name = "base"
    package = None  # import name checked by check_available()

    def check_available(self) -> None:
        if self.package and importlib.util.find_spec(self.package) is None:
            raise EngineUnavailable(f"{self.name}: package {self.package!r} is not installed "
                                    f"(pip install corral[bench])")

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package or self.name)
        except Exception:  # noqa: BLE001 - version is informational only
            return "?"

    def setup(self, tokenizer, stop_token_ids: list[int]) -> None:
        self.tokenizer = tokenizer
        self.stop_token_ids = list(stop_token_ids)
        self.vocab_size = len(tokenizer)

    def compile(self, schema_text: str):
        raise NotImplementedError

    def new_matcher(self, compiled):
        raise NotImplementedError

    def allocate_mask(self) -> MaskBuffer:
        words = np.zeros((1, (self.vocab_size + 31) // 32), dtype=np.int32)
        return MaskBuffer(words, words[0])

    def fill_mask(self, matcher, mask: MaskBuffer) -> None:
        raise NotImplementedError

    def accept(self, matcher, token_id: int) -> bool:
        raise NotImplementedError

    def is_accepting(self, matcher) -> bool:
        raise NotImplementedError

    def error_kind(self, exc: BaseException) -> str:
        return "unsupported" if isinstance(exc, Unsupported) else "compile_error"


# ---------------------------------------------------------------------------------------------- corral
class CorralAdapter(EngineAdapter):
    """corral through its public contract (Vocabulary.from_hf, compile_json_schema, Matcher)."""

    name = "corral"
    package = "corral"

    def check_available(self) -> None:
        try:
            import corral  # noqa: PLC0415 - lazy: the engine may be absent or half-built
        except Exception as exc:  # noqa: BLE001 - any import failure means "not usable yet"
            raise EngineUnavailable(f"corral: engine not importable ({type(exc).__name__}: {exc})") from exc
        for needed in ("Vocabulary", "compile_json_schema", "allocate_token_bitmask"):
            if not hasattr(corral, needed):
                raise EngineUnavailable(f"corral: corral.{needed} does not exist yet")
        # compile_json_schema imports its front-end lazily: probe it on a toy vocabulary.
        try:
            corral.compile_json_schema({"type": "object"}, corral.Vocabulary([b"{", b"}", b"a"]))
        except (ImportError, NotImplementedError) as exc:
            raise EngineUnavailable(f"corral: JSON Schema compiler not usable yet "
                                    f"({type(exc).__name__}: {exc})") from exc
        except Exception:  # noqa: BLE001 - a toy vocabulary may fail for unrelated reasons
            pass

    def version(self) -> str:
        import subprocess  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415
        try:
            rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                 capture_output=True, text=True, timeout=5).stdout.strip()
        except Exception:  # noqa: BLE001
            rev = ""
        return f"working tree{(' @' + rev) if rev else ''}"

    def setup(self, tokenizer, stop_token_ids):
        super().setup(tokenizer, stop_token_ids)
        import corral  # noqa: PLC0415
        self.corral = corral
        self.vocab = corral.Vocabulary.from_hf(tokenizer, eos_token_ids=stop_token_ids)
        self.vocab_size = self.vocab.size
        # Per-vocabulary preprocessing (token trie) belongs to setup, not to the first compile.
        from corral.masks.vocab import build_token_trie  # noqa: PLC0415
        build_token_trie(self.vocab)
        # and the vocabulary index of unique-items arrays (~1 s on Llama-3, once per vocabulary)
        from corral.masks.unique import vocab_index  # noqa: PLC0415
        vocab_index(self.vocab)
        # numba's cached machine code, the common slices, the bitmask reserve and the JSON Schema
        # compiler's first use (imports, format automata): here, not inside the first schema's TTFM
        self.corral.warm_up(self.vocab)

    def compile(self, schema_text):
        return self.corral.compile_json_schema(schema_text, self.vocab)

    def new_matcher(self, compiled):
        return compiled.matcher()

    def allocate_mask(self):
        native = self.corral.allocate_token_bitmask(1, self.vocab_size)
        return MaskBuffer(native, native.numpy()[0])

    def fill_mask(self, matcher, mask):
        matcher.fill_next_token_bitmask(mask.native, 0)

    def accept(self, matcher, token_id):
        return bool(matcher.accept_token(token_id))

    def is_accepting(self, matcher):
        return bool(matcher.is_accepting())

    def error_kind(self, exc):
        if isinstance(exc, self.corral.UnsupportedSchemaError):
            return "unsupported"
        if isinstance(exc, self.corral.CompileBudgetError):
            return "timeout"
        return "compile_error"


# -------------------------------------------------------------------------------------------- xgrammar
class XGrammarAdapter(EngineAdapter):
    """xgrammar: TokenizerInfo.from_huggingface + GrammarCompiler.compile_json_schema + GrammarMatcher."""

    name = "xgrammar"
    package = "xgrammar"

    def setup(self, tokenizer, stop_token_ids):
        super().setup(tokenizer, stop_token_ids)
        import xgrammar  # noqa: PLC0415
        self.xgr = xgrammar
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab_size,
                                                       stop_token_ids=self.stop_token_ids)
        # One thread (the machine is shared, and corral compiles single-threaded); no compile cache,
        # so every TTFM is a cold compile.
        self.compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_enabled=False)

    def compile(self, schema_text):
        try:
            return self.compiler.compile_json_schema(schema_text, any_whitespace=True, strict_mode=False)
        except RuntimeError as exc:  # xgrammar reports unsupported keywords/constructs as RuntimeError
            raise Unsupported(str(exc)) from exc

    def new_matcher(self, compiled):
        return self.xgr.GrammarMatcher(compiled)

    def fill_mask(self, matcher, mask):
        matcher.fill_next_token_bitmask(mask.native, 0)

    def accept(self, matcher, token_id):
        return bool(matcher.accept_token(token_id))

    def is_accepting(self, matcher):
        return bool(matcher.is_completed())


# ------------------------------------------------------------------------------------------ llguidance
class LLGuidanceAdapter(EngineAdapter):
    """llguidance: LLTokenizer via llguidance.hf.from_tokenizer, LLMatcher over grammar_from_json_schema."""

    name = "llguidance"
    package = "llguidance"

    def setup(self, tokenizer, stop_token_ids):
        super().setup(tokenizer, stop_token_ids)
        import llguidance  # noqa: PLC0415
        import llguidance.hf  # noqa: PLC0415
        self.llg = llguidance
        self.lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=self.vocab_size,
                                                  eos_token=self.stop_token_ids)

    def compile(self, schema_text):
        # Default options (flexible whitespace, strict about unknown keywords) except oneOf, which
        # llguidance otherwise rejects: approximate it by anyOf, as xgrammar does.
        grammar = self.llg.LLMatcher.grammar_from_json_schema(schema_text, defaults={"coerce_one_of": True})
        # Building the matcher is llguidance's compile step; later matchers are cheap deep copies.
        template = self.llg.LLMatcher(self.lltok, grammar, log_level=0)
        if template.is_error():  # the constructor never raises: errors (unsupported keywords) are a state
            raise Unsupported(template.get_error())
        return template

    def new_matcher(self, compiled):
        return compiled.deep_copy()

    def fill_mask(self, matcher, mask):
        mask.words.fill(0)
        matcher.unsafe_compute_mask_ptr(mask.words.ctypes.data, mask.words.nbytes)
        if matcher.is_error():
            raise RuntimeError(f"llguidance: {matcher.get_error()}")

    def accept(self, matcher, token_id):
        return bool(matcher.consume_token(token_id))

    def is_accepting(self, matcher):
        return bool(matcher.is_accepting())


# ---------------------------------------------------------------------------------------- outlines-core
def token_bytes_table(tokenizer) -> list[bytes | None]:
    """Bytes each token id contributes to the text (None for special/added tokens).

    Written here (not borrowed from corral) so the peers' vocabularies do not depend on corral's.
    Handles GPT-2 byte-level BPE and SentencePiece ("\u2581" spaces, <0xNN> byte fallback).
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # noqa: PLC0415

    unicode_to_byte = {c: b for b, c in bytes_to_unicode().items()}
    added = set(tokenizer.get_added_vocab().values())
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    table: list[bytes | None] = [None] * size
    pieces = [(p, i) for p, i in vocab.items() if i not in added and i not in special]
    byte_level = all(ch in unicode_to_byte for p, _ in pieces[:2000] for ch in p)
    for piece, i in pieces:
        if byte_level:
            table[i] = bytes(unicode_to_byte[ch] for ch in piece)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            table[i] = bytes([int(piece[3:5], 16)])
        else:
            table[i] = piece.replace("\u2581", " ").encode("utf-8")
    return table


class OutlinesCoreAdapter(EngineAdapter):
    """outlines-core: json_schema.build_regex_from_schema -> Index(regex, Vocabulary) -> Guide."""

    name = "outlines-core"
    package = "outlines_core"

    def version(self):
        try:
            return importlib.metadata.version("outlines-core")
        except Exception:  # noqa: BLE001
            return "?"

    def setup(self, tokenizer, stop_token_ids):
        super().setup(tokenizer, stop_token_ids)
        import outlines_core  # noqa: PLC0415
        self.oc = outlines_core
        by_bytes: dict[bytes, list[int]] = {}
        for i, data in enumerate(token_bytes_table(tokenizer)):
            if data:  # outlines-core's Vocabulary holds text tokens only; EOS is separate
                by_bytes.setdefault(data, []).append(i)
        # outlines-core takes exactly one EOS id.
        self.vocabulary = outlines_core.Vocabulary(self.stop_token_ids[0], by_bytes)

    def compile(self, schema_text):
        try:
            regex = self.oc.json_schema.build_regex_from_schema(schema_text)
        except Exception as exc:  # noqa: BLE001 - its schema->regex converter raises ValueError et al.
            raise Unsupported(str(exc)) from exc
        return self.oc.Index(regex, self.vocabulary)

    def new_matcher(self, compiled):
        return self.oc.Guide(compiled)

    def fill_mask(self, matcher, mask):
        mask.words.fill(0)
        matcher.write_mask_into(mask.words.ctypes.data, mask.words.size, 4)

    def accept(self, matcher, token_id):
        try:
            matcher.advance(token_id, return_tokens=False)
        except ValueError:  # "No next state found": the token is not allowed
            return False
        return True

    def is_accepting(self, matcher):
        return bool(matcher.is_finished())


ENGINES = {
    "corral": CorralAdapter,
    "xgrammar": XGrammarAdapter,
    "llguidance": LLGuidanceAdapter,
    "outlines-core": OutlinesCoreAdapter,
}
DEFAULT_ENGINES = tuple(ENGINES)


def load_adapter(spec: str) -> EngineAdapter:
    """An adapter by registry name, or by ``package.module:ClassName`` (test doubles, new engines)."""
    if spec in ENGINES:
        return ENGINES[spec]()
    if ":" in spec:
        module_name, class_name = spec.split(":", 1)
        return getattr(importlib.import_module(module_name), class_name)()
    raise ValueError(f"unknown engine {spec!r}; known: {', '.join(ENGINES)} (or module:Class)")

