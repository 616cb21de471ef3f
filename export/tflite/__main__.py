"""`python -m export.tflite` (and the bert-tf-export-tflite console script)."""

from absl import app

from export.tflite.cli import define_flags, main

if __name__ == "__main__":
    define_flags()
    app.run(main)
