"""Tiny random backbones for embedder tests: a Llama (decoder, last-token pooling) and a BERT (encoder)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.getbasetemp() / "embed-tiny-llama")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tiny_llama_dir):
    """A random-init 2-layer BERT with the tiny Llama's tokenizer (AutoModel → BertModel)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.getbasetemp() / "embed-tiny-bert"
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, tiny_llama_dir):
    """A random-init GPT-2 (absolute positions: left padding shifts them unless position ids restart)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    path = tmp_path_factory.getbasetemp() / "embed-tiny-gpt2"
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
