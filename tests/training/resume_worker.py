"""A fine-tune or pre-training job in a subprocess, for the kill-and-resume tests.

    python -m tests.training.resume_worker JOB SETTINGS_JSON [--mirrored]

JOB is "finetune" (bert_tf.finetune(FinetuneConfig(**SETTINGS))) or "pretrain"
(bert_tf.pretrain(PretrainConfig(**SETTINGS))). With
--mirrored the job runs under MirroredStrategy on 2 logical CPU devices (the apps' "mirrored"
uses local GPUs, which this machine has not). Progress lines go to stdout, flushed.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def use_two_cpu_replicas():
    import tensorflow as tf

    from bert_tf.training import distribute

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    distribute.create_strategy = lambda *a, **k: tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"]
    )


def main(job, settings, mirrored):
    if mirrored:
        use_two_cpu_replicas()

    def progress(line):
        print(line, flush=True)

    import bert_tf

    if job == "finetune":
        bert_tf.finetune(bert_tf.FinetuneConfig(**settings), progress=progress)
    else:
        bert_tf.pretrain(bert_tf.PretrainConfig(**settings), progress=progress)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], json.loads(sys.argv[2]), "--mirrored" in sys.argv[3:]))
