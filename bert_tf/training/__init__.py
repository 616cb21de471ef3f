"""Training machinery shared by pre-training and fine-tuning; it knows nothing about BERT
(layer names, heads, objectives: those come from bert_tf.models and bert_tf.tasks):

  trainer          the custom training loop: accumulation, NaN stop, train/eval steps
  objective        the objective contract (loss forms, Ratio, metrics) and its reductions
  checkpointing    restore-or-init at start (falling back to older checkpoints), saving
  checkpoint_state which checkpoints a directory holds, partial-save cleanup
  reporting        progress lines with ETA, TensorBoard scalars (chief only)
  distribute       strategies, per-replica batch sizes, mixed precision, dataset distribution,
                   chief-only writing
  optimization     AdamW / LAMB, warmup + linear decay, decay exclusion by variable path,
                   global-norm clipping after the replica sum, layer-wise LR decay (the
                   depths given by the model side)
  keras_internals  the one class relying on private Keras optimizer internals (guarded)
"""
