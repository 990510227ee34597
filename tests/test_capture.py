import pytest
import torch
from torch import nn
from transformers import (GemmaConfig, GemmaForCausalLM, GPT2Config, GPT2LMHeadModel, GPTNeoXConfig,
                          GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

from denser.capture import capture_hidden_states, completion_states, find_decoder_layers

DECODER = dict(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
               num_key_value_heads=1)
FAMILIES = {
    "llama": lambda: LlamaForCausalLM(LlamaConfig(**DECODER)),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**DECODER)),
    "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(**DECODER, head_dim=8)),
    "mistral": lambda: MistralForCausalLM(MistralConfig(**DECODER)),
    "gemma": lambda: GemmaForCausalLM(GemmaConfig(**DECODER, head_dim=8)),
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=48, n_embd=16, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)),
    "gpt_neox": lambda: GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=48, hidden_size=16, intermediate_size=32,
                                                          num_hidden_layers=2, num_attention_heads=2)),
}


@pytest.fixture(params=sorted(FAMILIES))
def model(request):
    torch.manual_seed(0)
    return FAMILIES[request.param]().eval()


def test_each_family_captures_what_the_layer_outputs(model):
    ids = torch.randint(0, 48, (2, 5))
    with torch.no_grad(), capture_hidden_states(model, layer=0) as first, capture_hidden_states(model) as last:
        out = model(ids, output_hidden_states=True)
    assert len(find_decoder_layers(model)) == 2
    torch.testing.assert_close(first.last, out.hidden_states[1])  # layer 0's output is hidden_states[1]
    assert last.last.shape == (2, 5, 16)
    assert not last.last.requires_grad


def test_capture_through_peft_and_only_inside_the_block():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(FAMILIES["qwen3"](), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    ids = torch.randint(0, 48, (1, 4))
    with capture_hidden_states(model) as capture:
        model(input_ids=ids)
    model(input_ids=ids)
    assert len(capture.states) == 1


def test_every_forward_call_inside_the_block_is_recorded():
    model = FAMILIES["llama"]()
    with torch.no_grad(), capture_hidden_states(model) as capture:
        model(torch.randint(0, 48, (1, 3)))
        model(torch.randint(0, 48, (2, 7)))
    assert [tuple(s.shape) for s in capture.states] == [(1, 3, 16), (2, 7, 16)]
    capture.clear()
    with pytest.raises(RuntimeError, match="no hidden states were captured"):
        capture.last


def test_unknown_architecture_and_bad_layer_are_explained():
    class Mystery(nn.Module):
        blocks = nn.ModuleList([nn.Linear(2, 2)])

    with pytest.raises(ValueError, match="cannot find the decoder layers of Mystery.*layer="):
        with capture_hidden_states(Mystery()):
            pass
    custom = Mystery()
    with capture_hidden_states(custom, layer=custom.blocks[0]) as capture:
        custom.blocks[0](torch.ones(1, 1, 2))
    assert capture.last.shape == (1, 1, 2)
    with pytest.raises(ValueError, match="valid indices are -2..1"):
        with capture_hidden_states(FAMILIES["llama"](), layer=2):
            pass
    with pytest.raises(ValueError, match="must be an int index or an nn.Module"):
        with capture_hidden_states(FAMILIES["llama"](), layer="last"):
            pass


def test_completion_states_are_the_states_that_predict_each_completion_token():
    model = FAMILIES["qwen3"]().eval()
    prompt, completion = torch.randint(0, 48, (2, 4)), torch.randint(0, 48, (2, 3))
    with torch.no_grad(), capture_hidden_states(model) as capture:
        model(torch.cat([prompt, completion], 1))
    states = completion_states(capture.last, completion.shape[1])
    # state t predicts completion token t: it is the last state of the model run on prompt + completion[:t]
    for t in range(3):
        with torch.no_grad(), capture_hidden_states(model) as prefix:
            model(torch.cat([prompt, completion[:, :t]], 1))
        torch.testing.assert_close(states[:, t], prefix.last[:, -1], atol=1e-5, rtol=1e-5)
