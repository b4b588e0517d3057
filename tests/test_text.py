"""Text cases of ../shared/cases through the one text-input module and the MiniLM encoder."""
from __future__ import annotations

import pytest
import torch

from engine.inputs.text import MAX_TEXT_CHARS, TextInputError, clean_text


@pytest.mark.parametrize("key", ["empty", "whitespace"])
def test_empty_text_is_refused_with_a_message(case_texts, key):
    with pytest.raises(TextInputError, match="empty"):
        clean_text(case_texts[key], field="instruction")


def test_unicode_passes_through_unharmed(case_texts):
    out = clean_text(case_texts["emoji_and_rtl"])
    assert out.text == case_texts["emoji_and_rtl"]
    assert not out.truncated


def test_control_characters_are_removed(case_texts):
    assert clean_text(case_texts["control_chars"]).text == "make it red"


def test_very_long_text_is_cut_and_user_told(case_texts):
    out = clean_text(case_texts["very_long"])
    assert out.truncated and len(out.text) <= MAX_TEXT_CHARS
    assert out.text.startswith("make the sky purple")
    assert "characters" in out.notes[0]


def test_minilm_truncates_long_text_and_reports_it(case_texts):
    from engine.models import load_model
    enc = load_model("minilm")
    texts = [case_texts["long_numbers"], case_texts["very_long"], "a cat"]
    out = enc.encode(texts)
    assert out.embeddings.shape == (3, 384)
    assert torch.isfinite(out.embeddings).all()
    assert out.truncated == [False, True, False]
    assert torch.allclose(out.embeddings.norm(dim=-1), torch.ones(3), atol=1e-4)


def test_minilm_similarity_is_semantic():
    from engine.models import load_model
    e = load_model("minilm").encode(["a photo of a cat", "a kitten", "a cup of coffee"]).embeddings
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])
