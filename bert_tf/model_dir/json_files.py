"""Reading the JSON files of model and checkpoint directories, with one-line errors."""

import json
import os

from bert_tf.model_dir.errors import ModelDirError, ModelDirFileNotFoundError


def read_json(path, error=None, what=None):
    """The JSON value in `path`. Errors name the file: ModelDirFileNotFoundError /
    ModelDirError, or `error` (e.g. CheckpointError) for both when given; `what` says
    which file it should have been ("Hugging Face config")."""
    if not os.path.isfile(path):
        text = f"{path}: no such file" + (f" ({what})" if what else "")
        raise (error or ModelDirFileNotFoundError)(text)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise (error or ModelDirError)(f"{path}: invalid JSON ({e})") from None
