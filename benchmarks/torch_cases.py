"""The transformers + PyTorch peer of the benchmark cases (benchmarks/cases.py), where torch
and transformers are installed: the same config (random weights), batch, sequence length and
optimizer maths (torch AdamW, weight decay 0.01 except biases / LayerNorm, eps 1e-6 as ours,
global-norm clipping 1.0), eager PyTorch as its users run it; mixed_bfloat16 runs under
`torch.autocast("cpu", torch.bfloat16)`. Each step returns a detached scalar to sync on.
"""

import contextlib
import importlib.util


def available():
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _hf_config(config, num_labels=2):
    import transformers

    return transformers.BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=config.hidden_dropout,
        attention_probs_dropout_prob=config.attention_dropout,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        num_labels=num_labels,
    )


def _autocast(precision):
    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _optimizer(model):
    import torch

    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-5,
        eps=1e-6,
    )


def _train_step(model, loss_fn, precision):
    import torch

    optimizer = _optimizer(model)
    model.train()

    def step(*args):
        with _autocast(precision):
            loss = loss_fn(*args)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def encoder_step(setup, ids, mask, types, training):
    """BertModel on the case's inputs (numpy int32 [B, T]); training: the same stand-in loss
    as the other implementations (mean square of the sequence output + mean pooled)."""
    import torch
    import transformers

    torch.manual_seed(setup.seed)
    model = transformers.BertModel(_hf_config(setup.config))
    feed = {
        "input_ids": torch.from_numpy(ids).long(),
        "attention_mask": torch.from_numpy(mask).long(),
        "token_type_ids": torch.from_numpy(types).long(),
    }

    def loss_fn():
        out = model(**feed)
        return out.last_hidden_state.float().square().mean() + out.pooler_output.float().mean()

    if training:
        return _train_step(model, loss_fn, setup.precision)
    model.eval()

    def infer():
        with torch.inference_mode(), _autocast(setup.precision):
            return model(**feed).pooler_output.float().sum()

    return infer


def finetune_step(setup, max_length):
    """Strings in: the fast BERT tokenizer of the case's vocab, dynamic padding (each batch
    padded to its longest), BertForSequenceClassification training step."""
    import torch
    import transformers

    torch.manual_seed(setup.seed)
    tokenizer = transformers.BertTokenizerFast(vocab_file=setup.vocab_file, do_lower_case=True)
    model = transformers.BertForSequenceClassification(_hf_config(setup.config))

    def loss_fn(strings, labels):
        batch = tokenizer(
            strings, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
        return model(**batch, labels=torch.tensor(labels, dtype=torch.int64)).loss.float()

    return _train_step(model, loss_fn, setup.precision)
