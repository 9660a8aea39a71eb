"""Data for pretraining and fine-tuning: corpora, BERT MLM+NSP instances, GLUE loaders, batching."""
from minitx.data.collate import batches, collate
from minitx.data.corpus import builtin_corpus, corpus_stats, read_corpus, split_sentences, write_corpus
from minitx.data.glue import GLUE_TASKS, InputExample, encode_examples, load_glue_examples, task_info
from minitx.data.pretraining import (DynamicMaskingDataset, PretrainingConfig, StaticMaskingDataset,
                                     create_masked_lm_predictions, create_segment_pairs, truncate_seq_pair)
