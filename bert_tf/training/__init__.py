"""Training machinery shared by pre-training and fine-tuning (knows nothing about BERT):

  optimization   AdamW / LAMB, warmup + linear decay, decay exclusion by variable path,
                 global-norm clipping after the replica sum, layer-wise LR decay
  distribute     strategies, per-replica batch sizes, mixed precision, chief-only writing
  trainer        the custom training loop: accumulation, checkpoints + resume, NaN stop,
                 progress lines and TensorBoard scalars
"""
