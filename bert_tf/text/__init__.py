"""Text: original-BERT tokenization in the TF graph, packing, vocab files and vocab building.

tokenizer.BertTokenizer      strings -> WordPiece ids (+ byte offsets, words), in-graph
packer.pack_inputs           segments -> input_word_ids / input_mask / input_type_ids
preprocessor.BertPreprocessor, load_preprocessor(path)   tokenizer + packer
vocab                        vocab files, special tokens, casing
vocab_builder                learn a WordPiece vocab from text files
masking                      masked-LM masking for pre-training
"""
