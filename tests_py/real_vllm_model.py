"""Writes the tiny random-weight Llama model that the vLLM real-server tests serve.

Runs with the vLLM venv's python (torch, transformers, tokenizers live there, not in the
test interpreter): ``python real_vllm_model.py OUT_DIR``. No hub: the byte-level BPE
tokenizer is trained here on generated text, the weights are seeded noise. The same
seed gives the same files, in a few seconds.

Random weights produce arbitrary tokens, and a JSON-schema grammar allows whitespace
between JSON tokens, so an unbiased model may emit whitespace until max_tokens. The
residual stream therefore carries a constant component (embedding dimension 0, which no
layer writes to) and the output rows of every token that is not printable ASCII without
spaces weigh it strongly negatively: such tokens are picked only where a grammar allows
nothing else, so an answer to an enum-only schema ends as soon as the grammar allows the
end-of-turn token, and free text is readable (no lone UTF-8 bytes).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 20261126
VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
HIDDEN = 128
HEADS = 2  # head_dim 64: a size vLLM's CPU attention accepts
KV_HEADS = 2
LAYERS = 2
INTERMEDIATE = 256
MAX_POSITIONS = 8192
INIT_STD = 0.02
CONSTANT = 1.0  # embedding dimension 0: dominates the RMS-normalised hidden state
SUPPRESS_WEIGHT = -2.0  # output weight of suppressed tokens on that dimension

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS = (
    "the invoice total date name label cat dog bird fish amount due paid customer order "
    "item price tax number address city country yes no true false null value key text "
    "extract field answer model json schema sample test alpha beta gamma delta"
).split()


def training_text(rng: random.Random, lines: int = 3000) -> list[str]:
    """English-like words, numbers and JSON fragments, so common pieces get merges."""
    out = []
    for _ in range(lines):
        kind = rng.randrange(3)
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 12))]
        if kind == 0:
            out.append(" ".join(words).capitalize() + rng.choice(".!?:"))
        elif kind == 1:
            pairs = ", ".join(f'"{w}": "{rng.choice(_WORDS)}"' for w in words[:4])
            out.append("{" + pairs + "}")
        else:
            out.append(f"{rng.choice(_WORDS)} {rng.randint(0, 99999)} {rng.random():.3f}\n")
    return out


def build_tokenizer(rng: random.Random):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: any UTF-8 encodes
        show_progress=False,
    )
    tok.train_from_iterator(training_text(rng), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS,
    )


def suppressed_token_ids(tokenizer) -> list[int]:
    """Tokens holding whitespace, control characters, non-ASCII or part of a UTF-8
    sequence (decoded alone as U+FFFD); never the special tokens (the end of turn)."""
    special = set(tokenizer.all_special_ids)
    ids = []
    for token_id in range(len(tokenizer)):
        if token_id in special:
            continue
        text = tokenizer.decode([token_id])
        if not text or any(not 33 <= ord(ch) <= 126 for ch in text):
            ids.append(token_id)
    return ids


def write_model(out_dir: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    rng = random.Random(SEED)
    tokenizer = build_tokenizer(rng)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HIDDEN // HEADS,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=False,
        initializer_range=INIT_STD,
    )
    config.dtype = torch.float32
    model = LlamaForCausalLM(config)

    # Every weight from one seeded generator: independent of transformers' init scheme.
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * INIT_STD)
        model.model.embed_tokens.weight[:, 0] = CONSTANT
        for layer in model.model.layers:  # nothing writes to dimension 0 of the residual
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.lm_head.weight[suppressed_token_ids(tokenizer), 0] = SUPPRESS_WEIGHT

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    GenerationConfig(bos_token_id=pad, eos_token_id=eos, pad_token_id=pad).save_pretrained(out_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    write_model(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
