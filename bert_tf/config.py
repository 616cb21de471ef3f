"""BertConfig: the hyper-parameters of a BERT encoder, its presets, and JSON I/O."""

import dataclasses
import json
import os
from typing import Any

# name -> (num_layers, hidden_size, num_heads). The "tiny".."medium" sizes are the
# compact BERTs of Turc et al. (2019); "base" and "large" are the original paper's.
_PRESETS = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}

_ACTIVATIONS = ("gelu", "gelu_approximate", "relu", "tanh")


@dataclasses.dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder (names follow google-research/bert)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # exact erf GELU, as the original BERT
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    # Training runs dropout/residual/LayerNorm, GELU and softmax as XLA-fused kernels in
    # encoders at least bert_tf.layers.kernels.MIN_FUSED_WIDTH wide (the same maths, faster
    # on CPU); False = plain TF ops. Inference and exports are the plain ops either way.
    # Configs written before this field load with the default.
    fused_kernels: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"BertConfig.{name}: expected a positive int, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"BertConfig.hidden_size={self.hidden_size} is not divisible by "
                f"num_heads={self.num_heads}"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(
                f"BertConfig.hidden_act: expected one of {_ACTIVATIONS}, got {self.hidden_act!r}"
            )
        if not isinstance(self.fused_kernels, bool):
            raise ValueError(
                f"BertConfig.fused_kernels: expected true or false, got {self.fused_kernels!r}"
            )
        for name in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"BertConfig.{name}: expected a value in [0, 1), got {value!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "BertConfig":
        """A config for one of the standard sizes: tiny, mini, small, medium, base, large."""
        if name not in _PRESETS:
            raise ValueError(f"Unknown BERT preset {name!r}; expected one of {sorted(_PRESETS)}")
        layers, hidden, heads = _PRESETS[name]
        values: dict[str, Any] = dict(
            num_layers=layers, hidden_size=hidden, num_heads=heads, intermediate_size=4 * hidden
        )
        values.update(overrides)
        return cls(**values)

    @staticmethod
    def preset_names() -> list[str]:
        return list(_PRESETS)

    # ---- dict / JSON ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "BertConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"BertConfig: unknown field(s) {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BertConfig":
        return cls.from_dict(json.loads(text))

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str) -> "BertConfig":
        if not os.path.exists(path):
            raise FileNotFoundError(f"BertConfig: no such file {path}")
        with open(path) as f:
            try:
                values = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"BertConfig: {path} is not valid JSON: {e}") from None
        return cls.from_dict(values)

    @classmethod
    def from_hf_dict(cls, values: dict[str, Any]) -> "BertConfig":
        """Maps a Hugging Face `BertConfig` dict (config.json) onto ours."""
        act = values.get("hidden_act", "gelu")
        act = {"gelu_new": "gelu_approximate", "gelu_pytorch_tanh": "gelu_approximate"}.get(
            act, act
        )
        return cls(
            vocab_size=values["vocab_size"],
            hidden_size=values["hidden_size"],
            num_layers=values["num_hidden_layers"],
            num_heads=values["num_attention_heads"],
            intermediate_size=values["intermediate_size"],
            hidden_act=act,
            hidden_dropout=values.get("hidden_dropout_prob", 0.1),
            attention_dropout=values.get("attention_probs_dropout_prob", 0.1),
            max_position_embeddings=values.get("max_position_embeddings", 512),
            type_vocab_size=values.get("type_vocab_size", 2),
            layer_norm_eps=values.get("layer_norm_eps", 1e-12),
            initializer_range=values.get("initializer_range", 0.02),
        )

    from_google_dict = from_hf_dict  # google-research/bert's bert_config.json uses the same keys
