"""Evaluation metrics for the fine-tuning tasks, written against their reference definitions.

classification  accuracy, F1 (binary / macro), Matthews correlation, Pearson, Spearman
tagging         entity-level precision/recall/F1 exactly as conlleval / seqeval
squad           the official SQuAD v1.1 / v2.0 exact-match and F1, best null threshold
span_decoding   n-best start/end decoding of SQuAD logits back to context characters
"""
