"""The transformers + PyTorch side of `benchmarks.parity`: Hugging Face's example recipes
(run_glue / run_ner / run_qa / run_swag), written as their careful users run them.

Input: a spec (see benchmarks/parity.py) holding the recipe and the examples as plain JSON,
read from the task files by bert-tf's own readers, so both sides train and evaluate on the
same examples. The model and tokenizer come from the same Hugging Face directory
(AutoTokenizer, AutoModelFor<Task>). Training: dynamic padding (DataCollatorWithPadding /
DataCollatorForTokenClassification / a multiple-choice collator), random batches from a
seeded generator, torch AdamW (eps 1e-8, no decay on biases and LayerNorm weights, as the HF
Trainer), get_linear_schedule_with_warmup (warmup = ceil(ratio * steps), as the Trainer),
gradient-norm clipping. After each epoch the eval examples are predicted; predictions go out
as plain lists (label ids, tag ids per word, answer text + null-score difference per question,
choice ids) for the parent to score with bert-tf's metric code.

torch and transformers are imported only inside `run` (an optional extra).
"""

import math
import time

import numpy as np


class _Classify:
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, spec, tokenizer):
        self.spec, self.tok = spec, tokenizer

    def model_kwargs(self):
        return {"num_labels": len(self.spec["label_names"])}

    def _encode(self, row):
        return self.tok(
            row["a"], row.get("b"), truncation=True, max_length=self.spec["max_seq_length"]
        )

    def train_features(self):
        return [dict(self._encode(r), labels=r["label"]) for r in self.spec["train"]]

    def eval_features(self):
        return [dict(self._encode(r)) for r in self.spec["eval"]]

    def collator(self):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(self.tok)

    def decode(self, logits_per_batch):
        return [int(i) for lg in logits_per_batch for i in np.argmax(lg[0], -1)]


class _Tag(_Classify):
    """run_ner: each word's first piece is labelled, the other pieces get -100."""

    auto_class = "AutoModelForTokenClassification"

    def _encode(self, words):
        return self.tok(
            words, is_split_into_words=True, truncation=True, max_length=self.spec["max_seq_length"]
        )

    def train_features(self):
        out = []
        for r in self.spec["train"]:
            enc = self._encode(r["words"])
            labels, previous = [], None
            for w in enc.word_ids():
                labels.append(-100 if w is None or w == previous else r["tags"][w])
                previous = w
            out.append(dict(enc, labels=labels))
        return out

    def eval_features(self):
        self.word_ids = []
        out = []
        for r in self.spec["eval"]:
            enc = self._encode(r["words"])
            self.word_ids.append(enc.word_ids())
            out.append(dict(enc))
        return out

    def collator(self):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(self.tok)

    def decode(self, logits_per_batch):
        """Per eval sentence, one tag id per word (its first piece's); words cut off by
        truncation (or with no piece) get tag 0 ("O")."""
        ids = [row for lg in logits_per_batch for row in np.argmax(lg[0], -1)]
        out = []
        for r, row, word_ids in zip(self.spec["eval"], ids, self.word_ids):
            tags, previous = [0] * len(r["words"]), None
            for t, w in enumerate(word_ids):
                if w is not None and w != previous:
                    tags[w] = int(row[t])
                previous = w
            out.append(tags)
        return out


class _Choice(_Classify):
    """run_swag: C (context, choice) pairs per example, padded together."""

    auto_class = "AutoModelForMultipleChoice"

    def model_kwargs(self):
        return {}

    def _encode(self, row):
        c = len(row["choices"])
        return self.tok(
            [row["context"]] * c,
            row["choices"],
            truncation=True,
            max_length=self.spec["max_seq_length"],
        )

    def collator(self):
        import torch

        tok = self.tok

        def collate(features):
            labels = [f["labels"] for f in features] if "labels" in features[0] else None
            c = len(features[0]["input_ids"])
            flat = [
                {k: v[i] for k, v in f.items() if k != "labels"} for f in features for i in range(c)
            ]
            batch = tok.pad(flat, return_tensors="pt")
            batch = {k: v.view(len(features), c, -1) for k, v in batch.items()}
            if labels is not None:
                batch["labels"] = torch.tensor(labels, dtype=torch.int64)
            return batch

        return collate


class _Squad(_Classify):
    """run_qa: windows of the context (`stride` tokens of overlap), the answer's token span
    or [CLS] when the window does not hold it; n-best decoding with the null score."""

    auto_class = "AutoModelForQuestionAnswering"

    def model_kwargs(self):
        return {}

    def _windows(self, row):
        s = self.spec
        return self.tok(
            row["question"],
            row["context"],
            truncation="only_second",
            max_length=s["max_seq_length"],
            stride=s["doc_stride"],
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )

    def train_features(self):
        out = []
        for r in self.spec["train"]:
            enc = self._windows(r)
            for i in range(len(enc["input_ids"])):
                feature = {k: enc[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")}
                start, end = self._positions(r, enc.sequence_ids(i), enc["offset_mapping"][i])
                out.append(dict(feature, start_positions=start, end_positions=end))
        return out

    @staticmethod
    def _positions(row, sequence_ids, offsets):
        if row["answer_start"] < 0:
            return 0, 0
        first, last = row["answer_start"], row["answer_start"] + len(row["answer_text"])
        ctx = [t for t, s in enumerate(sequence_ids) if s == 1]
        if not ctx or offsets[ctx[0]][0] > first or offsets[ctx[-1]][1] < last:
            return 0, 0
        start = next(t for t in ctx if offsets[t][1] > first)
        end = next(t for t in reversed(ctx) if offsets[t][0] < last)
        return start, end

    def eval_features(self):
        self.windows = []  # (example index, offsets with None outside the context)
        out = []
        for e, r in enumerate(self.spec["eval"]):
            enc = self._windows(r)
            for i in range(len(enc["input_ids"])):
                seq = enc.sequence_ids(i)
                offsets = [
                    o if seq[t] == 1 else None for t, o in enumerate(enc["offset_mapping"][i])
                ]
                self.windows.append((e, offsets))
                out.append(
                    {k: enc[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")}
                )
        return out

    def decode(self, logits_per_batch):
        starts = [row for lg in logits_per_batch for row in lg[0]]
        ends = [row for lg in logits_per_batch for row in lg[1]]
        best = [(-math.inf, "") for _ in self.spec["eval"]]
        null = [math.inf for _ in self.spec["eval"]]
        n, longest = self.spec["n_best_size"], self.spec["max_answer_length"]
        for (e, offsets), s, t in zip(self.windows, starts, ends):
            null[e] = min(null[e], float(s[0] + t[0]))
            context = self.spec["eval"][e]["context"]
            for i in np.argsort(s[: len(offsets)])[::-1][:n]:
                for j in np.argsort(t[: len(offsets)])[::-1][:n]:
                    if offsets[i] is None or offsets[j] is None or j < i or j - i + 1 > longest:
                        continue
                    score = float(s[i] + t[j])
                    if score > best[e][0]:
                        best[e] = (score, context[offsets[i][0] : offsets[j][1]])
        return {
            "text": [b[1] for b in best],
            "score_diff": [nl - b[0] if math.isfinite(b[0]) else None for nl, b in zip(null, best)],
        }


TASKS = {"classify": _Classify, "tag": _Tag, "squad": _Squad, "multiple_choice": _Choice}


def _optimizer(model, spec):
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": spec["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=spec["learning_rate"],
        eps=1e-8,
    )


def _predict(model, task, features, batch_size):
    import torch

    collate = task.collator()
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(features), batch_size):
            result = model(**collate([dict(f) for f in features[i : i + batch_size]]))
            if hasattr(result, "start_logits"):
                out.append((result.start_logits.numpy(), result.end_logits.numpy()))
            else:
                out.append((result.logits.numpy(),))
    return task.decode(out)


def run(spec, progress=print):
    """Trains and evaluates; returns {"epochs": [{epoch, predictions, train_seconds,
    eval_seconds, train_loss}], "startup_seconds", "train_features"}."""
    started = time.perf_counter()
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.set_seed(spec["seed"])
    tok = transformers.AutoTokenizer.from_pretrained(spec["model_dir"])
    task = TASKS[spec["task"]](spec, tok)
    model = getattr(transformers, task.auto_class).from_pretrained(
        spec["model_dir"], **task.model_kwargs()
    )
    train, evaluation = task.train_features(), task.eval_features()
    generator = torch.Generator()
    generator.manual_seed(spec["seed"])
    loader = torch.utils.data.DataLoader(
        train,
        batch_size=spec["batch_size"],
        shuffle=True,
        generator=generator,
        collate_fn=task.collator(),
    )
    total = len(loader) * spec["epochs"]
    optimizer = _optimizer(model, spec)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, math.ceil(total * spec["warmup_ratio"]), total
    )
    result = {
        "startup_seconds": time.perf_counter() - started,
        "epochs": [],
        "train_features": len(train),
    }
    for epoch in range(1, spec["epochs"] + 1):
        t0, losses = time.perf_counter(), []
        model.train()
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            if spec["clip_norm"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip_norm"])
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        t1 = time.perf_counter()
        predictions = _predict(model, task, evaluation, spec["eval_batch_size"])
        entry = {
            "epoch": epoch,
            "predictions": predictions,
            "train_seconds": t1 - t0,
            "eval_seconds": time.perf_counter() - t1,
            "train_loss": float(np.mean(losses)) if losses else None,
        }
        result["epochs"].append(entry)
        progress(
            f"transformers epoch {epoch}: loss {entry['train_loss']:.4f}, "
            f"train {entry['train_seconds']:.1f} s, eval {entry['eval_seconds']:.1f} s"
        )
    return result
