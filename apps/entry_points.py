"""Console scripts (pyproject.toml `[project.scripts]`): each runs a main exactly as
`python -m <module>` does, from any directory, e.g. `bert-tf-pretrain` = `python -m apps.pretrain`.

The module runs as `__main__` (its `if __name__ == "__main__":` block parses the flags), so the
absl and argparse mains need no second entry function, and `--help` lists the same flags."""

import runpy


def _main_of(module):
    def run():
        runpy.run_module(module, run_name="__main__", alter_sys=False)

    run.__doc__ = f"Runs `python -m {module}`."
    return run


pretrain = _main_of("apps.pretrain")
finetune = _main_of("apps.finetune")
build_vocab = _main_of("apps.build_vocab")
create_pretraining_data = _main_of("apps.create_pretraining_data")
convert = _main_of("apps.convert")
predict = _main_of("apps.predict")
benchmark = _main_of("apps.benchmark")
export_saved_model = _main_of("export.saved_model")
export_hub = _main_of("export.hub")
export_tflite = _main_of("export.tflite")
export_verify = _main_of("export.verify")
fetch_assets = _main_of("demo_data.fetch")
