"""Pre-training data: creating the records (google-research/bert's recipe) and reading them.

create.py          text files -> masked LM + next-sentence records (streamed, worker
                   processes); config.py, tokenizers.py, instances.py, example.py,
                   outputs.py, windows.py and sentences.py are its parts
beam_pipeline.py   the same records as an Apache Beam pipeline
dataset.py         records -> tf.data batches for BertPretrainer (record_checks.py checks
                   the files first; record_scan.py finds a damaged record)
packing.py         several sequences per row: the layout and best-fit decreasing;
                   packed_dataset.py does it in tf.data, pack_records.py on record files
"""
