"""Step-level parity harness: a bert-tf task model and the transformers (PyTorch) model of the
same task, built from the same MiniLM weights and the same freshly initialised head, fed the
same batch, trained with each library's standard AdamW recipe.

    pair = build_pair("tag", minilm_dir)
    tf_run, hf_run = TfRun(pair, recipe), HfRun(pair, recipe)
    tf_loss, tf_grads = tf_run.step(batch)        # grads by HF parameter name
    hf_loss, hf_grads = hf_run.step(batch)

bert-tf: `optimization.create_optimizer` (its clipping, decay exclusions and schedule) and
the task's own objective, reduced as the Trainer reduces it. transformers: torch.optim.AdamW
with HF Trainer's parameter groups (no decay for biases and LayerNorm weights),
get_linear_schedule_with_warmup, clip_grad_norm_, and the model's own loss.

Needs torch and transformers (the tests skip without them). Dropout is off on both sides.
Shape legend: B batch, T sequence length, C classes / choices, H hidden, P masked positions.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import torch
import transformers

from bert_tf.checkpoints import mapping
from bert_tf.checkpoints import names as tensor_names
from bert_tf.checkpoints.loader import assign_from_source
from bert_tf.checkpoints.sources import read_source
from bert_tf.models import BertEncoder, BertPretrainer
from bert_tf.tasks import classify, get_task, squad, tag
from bert_tf.tasks.pretraining import PretrainingObjective
from bert_tf.training import objective as objective_lib
from bert_tf.training import optimization

TASKS = ("classify", "regression", "tag", "squad_v1", "squad_v2", "multiple_choice", "pretraining")

SENTENCES = [
    "The film's second half drags, but the cast keeps it watchable.",
    "Shares of the company fell 4% after the quarterly report on Tuesday.",
    "Barack Obama met Angela Merkel in Berlin to discuss climate policy.",
    "I can't believe the train was late again this morning!",
]
QUESTIONS = [
    "Who met Angela Merkel?",
    "Where did they meet?",
    "What fell after the report?",
    "When was the train late?",
]

# the HF class and the bert-tf task name of each parity task
HF_CLASSES = {
    "classify": "BertForSequenceClassification",
    "regression": "BertForSequenceClassification",
    "tag": "BertForTokenClassification",
    "squad_v1": "BertForQuestionAnswering",
    "squad_v2": "BertForQuestionAnswering",
    "multiple_choice": "BertForMultipleChoice",
    "pretraining": "BertForPreTraining",
}
NUM_LABELS = {"classify": 3, "regression": 1, "tag": 5}


@dataclasses.dataclass
class Recipe:
    """AdamW with linear warmup/decay, weight decay and global-norm clipping."""

    learning_rate: float = 5e-5
    total_steps: int = 10
    warmup_steps: int = 2
    weight_decay: float = 0.01
    epsilon: float = 1e-8
    clip_norm: float = 1.0
    optimizer: str = "adamw"


@dataclasses.dataclass
class Pair:
    task: str
    tf_model: object
    hf_model: object
    objective: object
    specs: list  # [(tf variable, [(hf name, tf value -> hf array)])]


# ----------------------------------------------------------------------------- models


def _no_dropout_encoder(minilm_dir):
    source = read_source(minilm_dir)
    config = dataclasses.replace(source.config, hidden_dropout=0.0, attention_dropout=0.0)
    return source, config


def _tf_model(task, minilm_dir):
    source, config = _no_dropout_encoder(minilm_dir)
    encoder = BertEncoder(config)
    if task == "pretraining":
        model = BertPretrainer(encoder)
        assign_from_source(model, source)
        return model, PretrainingObjective()
    assign_from_source(encoder, source)
    name = {"regression": "classify", "squad_v1": "squad", "squad_v2": "squad"}.get(task, task)
    cls = get_task(name)
    if name == "classify":
        info = {
            "type": "classify",
            "label_names": [str(i) for i in range(NUM_LABELS[task])],
            "regression": task == "regression",
            "dropout": 0.0,
        }
    elif name == "tag":
        info = {
            "type": "tag",
            "label_names": [f"L{i}" for i in range(NUM_LABELS[task])],
            "dropout": 0.0,
        }
    else:
        info = {"type": name, "dropout": 0.0}
    model = cls.model_from_info(encoder, info)
    objective = _objective(task)
    return model, objective


def _objective(task):
    return {
        "classify": classify.ClassifyObjective,
        "regression": classify.RegressionObjective,
        "tag": tag.TagObjective,
        "squad_v1": squad.SpanObjective,
        "squad_v2": squad.SpanObjective,
        "multiple_choice": classify.ClassifyObjective,
    }[task]()


def _hf_model(task, minilm_dir):
    config = transformers.BertConfig.from_pretrained(
        minilm_dir,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=NUM_LABELS.get(task, 2),
    )
    config.classifier_dropout = 0.0
    config._attn_implementation = "eager"
    if task == "regression":
        config.problem_type = "regression"
    model = getattr(transformers, HF_CLASSES[task])(config)
    return model.float()


def _linear(kernel_name, bias_name):
    """A Keras Dense [in, out] kernel + bias -> torch Linear [out, in] weight + bias."""
    return [(kernel_name, lambda v: v.T), (bias_name, lambda v: v)]


def _head_specs(task, model):
    """(tf variable, [(hf name, convert)]) for the task head's variables."""
    if task == "pretraining":
        specs = mapping.mlm_specs(model.mlm_head) + mapping.nsp_specs(model.nsp_head)
        return _canonical(specs, prefix="")
    dense = model.head.dense
    hf = {"squad_v1": "qa_outputs", "squad_v2": "qa_outputs"}.get(task, "classifier")
    kernel, bias = _linear(f"{hf}.weight", f"{hf}.bias")
    return [(dense.kernel, [kernel]), (dense.bias, [bias])]


def _canonical(specs, prefix):
    """mapping.VariableSpecs -> (variable, [(hf name, convert)]) through the TF1 names."""
    by_google = {n.google: n for n in tensor_names.all_names(64)}
    out = []
    for spec in specs:
        convs = []
        for i, google in enumerate(spec.sources):
            name = by_google[google]
            hf = (prefix if google.startswith("bert/") else "") + name.hf

            def convert(v, i=i, spec=spec, t=name.transpose):
                a = spec.split(np.asarray(v))[i]
                return a.T if t else a

            convs.append((hf, convert))
        out.append((spec.variable, convs))
    return out


def build_pair(task, minilm_dir):
    """The two models of `task` with identical weights (the head copied bert-tf -> HF)."""
    tf_model, objective = _tf_model(task, minilm_dir)
    hf_model = _hf_model(task, minilm_dir)
    specs = _canonical(mapping.encoder_specs(tf_model.encoder), prefix="bert.")
    specs += _head_specs(task, tf_model)
    hf_params = dict(hf_model.named_parameters())
    # Heads without a pooler in HF (tagging, QA): the pooler gets no gradient in bert-tf either.
    specs = [(v, convs) for v, convs in specs if all(n in hf_params for n, _ in convs)]
    state = {
        n: torch.from_numpy(np.ascontiguousarray(c(v.numpy()), np.float32))
        for v, convs in specs
        for n, c in convs
    }
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    untied = [m for m in missing if "decoder" not in m and "position_ids" not in m]
    if untied or unexpected:
        raise AssertionError(f"weights not copied to HF: {untied} unexpected: {unexpected}")
    return Pair(task, tf_model, hf_model, objective, specs)


# ----------------------------------------------------------------------------- batches


def make_batch(task, tokenizer, seed=0):
    """{"tf": (features, labels), "hf": kwargs} for one batch of `task` (numpy inputs)."""
    rng = np.random.default_rng(seed)
    if task == "multiple_choice":
        enc = tokenizer(
            [s for s in SENTENCES[:2] for _ in range(3)],
            [c for c in SENTENCES[1:4] + SENTENCES[::-1][:3]],
            padding=True,
            return_tensors="np",
        )
        ids = {
            k: enc[k].reshape(2, 3, -1) for k in ("input_ids", "token_type_ids", "attention_mask")
        }
        labels = np.array([1, 2])
        return _pack(ids, labels, {"labels": labels})
    if task in ("squad_v1", "squad_v2"):
        # No padding: HF's QA head scores padding positions too (their logits enter its
        # softmax); bert-tf's gives them -1e4 (SpanHead). Full rows make the two the same.
        enc = tokenizer(
            QUESTIONS,
            SENTENCES,
            padding="max_length",
            truncation="only_second",
            max_length=20,
            return_tensors="np",
        )
        assert enc["attention_mask"].all()
        lengths = enc["attention_mask"].sum(1)
        start = np.array([int(rng.integers(6, n - 4)) for n in lengths])
        end = start + rng.integers(0, 3, size=len(start))
        if task == "squad_v2":
            start[1] = end[1] = 0  # "no answer": [CLS]
        labels = {"start_positions": start, "end_positions": end}
        return _pack(enc, labels, dict(labels))
    enc = tokenizer(SENTENCES, padding=True, return_tensors="np")
    if task == "classify":
        labels = np.array([0, 2, 1, 2])
        return _pack(enc, labels, {"labels": labels})
    if task == "regression":
        labels = np.array([0.5, 3.2, 1.7, 4.9], np.float32)
        return _pack(enc, labels, {"labels": labels})
    if task == "tag":
        labels = _first_piece_labels(enc, rng)
        hf = np.where(labels < 0, -100, labels)
        return _pack(enc, labels, {"labels": hf})
    if task == "pretraining":
        return _pretraining_batch(enc, rng)
    raise ValueError(task)


def _first_piece_labels(enc, rng):
    """[B, T]: a tag on each word's first piece, -1 on later pieces, [CLS]/[SEP], padding."""
    labels = np.full(enc["input_ids"].shape, -1, np.int64)
    for b in range(labels.shape[0]):
        seen = set()
        for t, word in enumerate(enc.word_ids(b)):
            if word is not None and word not in seen:
                seen.add(word)
                labels[b, t] = int(rng.integers(0, NUM_LABELS["tag"]))
    return labels


def _pretraining_batch(enc, rng, predictions=3):
    ids = enc["input_ids"].copy()
    b = ids.shape[0]
    lengths = enc["attention_mask"].sum(1)
    positions = np.stack(
        [np.sort(rng.choice(np.arange(1, n - 1), predictions, replace=False)) for n in lengths]
    )  # [B, P]
    originals = np.take_along_axis(ids, positions, 1)
    np.put_along_axis(ids, positions, 103, 1)  # [MASK]
    nsp = np.array([0, 1, 1, 0][:b])
    mlm_hf = np.full(ids.shape, -100, np.int64)
    np.put_along_axis(mlm_hf, positions, originals, 1)
    enc = dict(enc, input_ids=ids)
    tf_labels = {
        "masked_lm_ids": originals,
        "masked_lm_weights": np.ones_like(originals, np.float32),
        "next_sentence_labels": nsp,
    }
    features, _ = _pack(enc, None, {})["tf"]
    features["masked_lm_positions"] = positions.astype(np.int32)
    hf = {"labels": mlm_hf, "next_sentence_label": nsp}
    return {"tf": (features, tf_labels), "hf": _hf_inputs(enc, hf)}


def _pack(enc, tf_labels, hf_labels):
    features = {
        "input_word_ids": np.asarray(enc["input_ids"], np.int32),
        "input_mask": np.asarray(enc["attention_mask"], np.int32),
        "input_type_ids": np.asarray(enc["token_type_ids"], np.int32),
    }
    return {"tf": (features, tf_labels), "hf": _hf_inputs(enc, hf_labels)}


def _hf_inputs(enc, labels):
    out = {
        k: torch.from_numpy(np.asarray(enc[k], np.int64))
        for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    for k, v in labels.items():
        v = np.asarray(v)
        out[k] = torch.from_numpy(v.astype(np.float32 if v.dtype.kind == "f" else np.int64))
    return out


# ----------------------------------------------------------------------------- training


class TfRun:
    """bert-tf: the task objective reduced as the Trainer does, create_optimizer's AdamW."""

    def __init__(self, pair, recipe):
        self.pair = pair
        self.optimizer = optimization.create_optimizer(
            recipe.optimizer,
            recipe.learning_rate,
            recipe.total_steps,
            recipe.warmup_steps,
            recipe.weight_decay,
            epsilon=recipe.epsilon,
            clip_norm=recipe.clip_norm,
        )
        self.variables = [v for v, _ in pair.specs]
        self.optimizer.build(self.variables)

    def loss_and_grads(self, batch):
        features, labels = batch["tf"]
        with tf.GradientTape() as tape:
            outputs = self.pair.tf_model(features, training=True)
            loss, _ = self.pair.objective.compute_loss(labels, outputs)
            n = objective_lib.local_batch_size(features)
            loss = objective_lib.loss_share(loss, n, n)
        grads = tape.gradient(loss, self.variables)
        return float(loss), grads

    def step(self, batch):
        """One optimizer step; returns (loss, {hf name: gradient before clipping})."""
        loss, grads = self.loss_and_grads(batch)
        grads = [
            tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for v, g in zip(self.variables, grads)
        ]
        self.optimizer.apply(grads, self.variables)
        return loss, self._by_hf_name([g.numpy() for g in grads])

    def weights(self):
        return self._by_hf_name([v.numpy() for v in self.variables])

    def _by_hf_name(self, values):
        return {n: c(v) for (_, convs), v in zip(self.pair.specs, values) for n, c in convs}


class HfRun:
    """transformers: torch AdamW, HF Trainer's decay groups, linear warmup/decay, clipping."""

    def __init__(self, pair, recipe):
        self.model = pair.hf_model
        self.recipe = recipe
        named = [(n, p) for n, p in self.model.named_parameters()]
        no_decay = [n for n, _ in named if n.endswith("bias") or "LayerNorm" in n]
        groups = [
            {
                "params": [p for n, p in named if n not in no_decay],
                "weight_decay": recipe.weight_decay,
            },
            {"params": [p for n, p in named if n in no_decay], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(
            groups, lr=recipe.learning_rate, eps=recipe.epsilon, betas=(0.9, 0.999)
        )
        self.scheduler = transformers.get_linear_schedule_with_warmup(
            self.optimizer, recipe.warmup_steps, recipe.total_steps
        )
        self.model.train()

    def step(self, batch):
        self.optimizer.zero_grad()
        out = self.model(**batch["hf"])
        out.loss.backward()
        grads = {
            n: p.grad.detach().numpy().copy()
            for n, p in self.model.named_parameters()
            if p.grad is not None
        }
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        return float(out.loss.detach()), grads

    def weights(self):
        return {n: p.detach().numpy().copy() for n, p in self.model.named_parameters()}


def relative_errors(tf_values, hf_values, floor=1e-3):
    """{name: max |a - b| / (max |b| + floor * the largest |b| of all)} over HF's names:
    tensors whose true value is ~0 (e.g. attention key biases, whose gradient vanishes
    mathematically) are measured against the scale of the whole set."""
    scale = max(float(np.max(np.abs(b))) for b in hf_values.values()) or 1.0
    return {
        name: float(np.max(np.abs(tf_values[name] - b)) / (np.max(np.abs(b)) + floor * scale))
        for name, b in hf_values.items()
        if name in tf_values
    }


def updates(after, before):
    return {name: after[name] - before[name] for name in after}


# ----------------------------------------------------------------------------- loop data


def name_tags(words):
    """IOB2 tags from capitals: a run of capitalised words not at the sentence's start is
    a NAME, a number a NUM (the uncased model must learn which words are names)."""
    tags, prev = [], "O"
    for i, word in enumerate(words):
        if word[0].isdigit():
            tag = "B-NUM"
        elif i > 0 and word[0].isupper() and word != "I":
            tag = "I-NAME" if prev in ("B-NAME", "I-NAME") else "B-NAME"
        else:
            tag = "O"
        tags.append(tag)
        prev = tag
    return tags


def write_bbc_conll(path, bbc_dir, count, max_words=20):
    """`count` real BBC News sentences of 6..max_words words as a CoNLL file (name_tags)."""
    import glob
    import re

    sentences = []
    for name in sorted(glob.glob(f"{bbc_dir}/*/*.txt")):
        with open(name, encoding="latin-1") as f:
            text = f.read().split("\n", 1)[-1].replace("\n", " ")
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            words = re.findall(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[^\sA-Za-z\d]", sentence)
            if 6 <= len(words) <= max_words:
                sentences.append(words)
        if len(sentences) >= count:
            break
    with open(path, "w") as f:
        for words in sentences[:count]:
            f.write("".join(f"{w} {t}\n" for w, t in zip(words, name_tags(words))) + "\n")
    return path
