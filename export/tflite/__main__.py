"""`python -m export.tflite` (and the bert-tf-export-tflite console script): the usage is the
package's docstring, the flags are cli.py's."""

from absl import app, flags

import export.tflite as package
from export.tflite import cli

__doc__ = package.__doc__  # absl prints the main module's docstring as the usage

if __name__ == "__main__":
    cli.define_flags()
    flags.adopt_module_key_flags(cli)  # --helpshort lists them, as for a one-file main
    app.run(cli.main)
