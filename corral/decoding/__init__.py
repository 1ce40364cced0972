"""Decoders on top of the engine: corral's own decode loop, the transformers LogitsProcessor, model loading."""
from corral.decoding.generate import (
    GenerationResult,
    IncompleteGenerationError,
    StepTiming,
    generate,
    generate_json,
)
from corral.decoding.logits_processor import LogitsProcessor
from corral.decoding.models import ModelNotAvailableError, cache_dir, format_prompt, load_model

__all__ = [
    "GenerationResult",
    "IncompleteGenerationError",
    "LogitsProcessor",
    "ModelNotAvailableError",
    "StepTiming",
    "cache_dir",
    "format_prompt",
    "generate",
    "generate_json",
    "load_model",
]
