"""corral: structured output and constrained decoding for LLMs (public facade).

Re-exports the public names of every layer; decoders (which import transformers) load lazily.
"""
from corral.errors import CompileBudgetError, CorralError, GrammarError, SchemaError, UnsupportedSchemaError
from corral.grammars.ir import Grammar, GrammarBuilder
from corral.masks.vocab import Vocabulary
from corral.masks.matcher import CompiledGrammar, Matcher, fill_next_token_bitmask_batch
from corral.masks.compile import compile_grammar, compile_json_schema, compile_lark, compile_regex, warm_up
from corral.kernels import allocate_token_bitmask, apply_token_bitmask_inplace, masked_log_softmax

_LAZY_DECODING = {"LogitsProcessor", "generate", "generate_json", "GenerationResult", "IncompleteGenerationError",
                  "load_model"}

__all__ = [
    "CompileBudgetError", "CorralError", "GrammarError", "SchemaError", "UnsupportedSchemaError",
    "Grammar", "GrammarBuilder", "Vocabulary", "CompiledGrammar", "Matcher",
    "allocate_token_bitmask", "fill_next_token_bitmask_batch", "apply_token_bitmask_inplace", "masked_log_softmax",
    "compile_grammar", "compile_json_schema", "compile_lark", "compile_regex", "warm_up", *sorted(_LAZY_DECODING),
]


def __getattr__(name):
    if name in _LAZY_DECODING:
        import corral.decoding as decoding

        return getattr(decoding, name)
    raise AttributeError(f"module 'corral' has no attribute {name!r}")
