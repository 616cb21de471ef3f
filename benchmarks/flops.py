"""Analytic matmul FLOP counts (one multiply-add = 2 FLOPs). Element-wise work is not counted.

Shape legend: B batch, T sequence length, H hidden, I intermediate, L layers, P masked
positions, V vocab size. A training step counts 3x the forward (forward + two backward matmuls).
"""


def encoder_flops(config, batch_size, seq_length, training=False):
    """Per-step matmul FLOPs of the encoder: per layer 2*B*T*(4H^2 + 2HI) for the projections
    and feed-forward plus 4*B*T^2*H for scores and context; plus the [CLS] pooler."""
    b, t, h, i = batch_size, seq_length, config.hidden_size, config.intermediate_size
    per_layer = 2 * b * t * (4 * h * h + 2 * h * i) + 4 * b * t * t * h
    forward = config.num_layers * per_layer + 2 * b * h * h
    return 3 * forward if training else forward


def mlm_head_flops(config, batch_size, num_predictions, training=False):
    """The masked-LM head at P positions: transform [H, H] and tied decoder [H, V]; NSP [H, 2]."""
    b, p, h, v = batch_size, num_predictions, config.hidden_size, config.vocab_size
    forward = 2 * b * p * (h * h + h * v) + 2 * b * h * 2
    return 3 * forward if training else forward
