"""Build a tiny, randomly initialised Llama model that vLLM can load, entirely offline.

The model is useless as a language model (its weights are random) but it exercises every
generation code path of vLLM: loading a local folder, tokenising, sampling ``n`` candidates,
stop on EOS, chat templates, detokenising. It builds in about a second and loads in vLLM's CPU
build in seconds.

Shape: hidden size 128, 2 attention heads of head dim 64 (the CPU attention kernel rejects head
dim 16), 2 layers, intermediate size 256. The tokenizer is a byte-level BPE with no merges (one
token per byte) plus a few ChatML special tokens, built locally with ``tokenizers``: nothing is
downloaded from a hub.

Usage::

    from tests.tinymodel import make_tiny_model
    path = make_tiny_model(tmp_path / "tiny")   # -> str path of a folder vLLM / transformers load
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_tiny_model", "CHAT_TEMPLATE", "SPECIAL_TOKENS"]

BOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [BOS, IM_START, IM_END]

# ChatML, the format SmolLM2-Instruct uses too. ``add_generation_prompt`` opens an assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SEED = 1234


def _build_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # the 256 printable byte stand-ins
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=IM_END,
        pad_token=BOS,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )


def make_tiny_model(path: str | os.PathLike[str], *, seed: int = _SEED) -> str:
    """Write a tiny random Llama + byte-level tokenizer to ``path`` and return it as a string.

    Deterministic for a given ``seed``. If ``path`` already holds a model built by this function
    (``config.json`` and ``model.safetensors`` present), it is returned as it is.
    """
    out = Path(path)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return str(out)

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _build_tokenizer()
    vocab_size = len(tokenizer)
    bos_id = tokenizer.convert_tokens_to_ids(BOS)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=bos_id,
        torch_dtype="float32",
    )
    # Seed and build on CPU, so the weights are bit-identical from run to run.
    gen = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(gen)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=bos_id
    )

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return str(out)


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/tinymodel.py DIR
    import sys

    print(make_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "tiny-llama"))
