"""Tokenizers: BERT's WordPiece (with its BasicTokenizer) and GPT-2's byte-level BPE, both trainable.

    from minitx.tokenizers import WordPieceTokenizer, train_wordpiece, train_bpe
    tok = WordPieceTokenizer.from_pretrained(model_dir)       # vocab.txt (+ tokenizer_config.json)
    tok("Hello world!", padding="max_length", max_length=8)   # input_ids, token_type_ids, attention_mask
    bpe = train_bpe(lines, vocab_size=4000)                   # GPT-2 style; .save_pretrained(dir)
"""
from minitx.tokenizers.basic import BasicTokenizer
from minitx.tokenizers.bpe import ByteLevelBPETokenizer, bytes_to_unicode, pretokenize, train_bpe
from minitx.tokenizers.encoding import BatchEncoding
from minitx.tokenizers.merges import learn_merges
from minitx.tokenizers.wordpiece import WordPieceTokenizer, train_wordpiece, wordpiece_split

__all__ = ["BasicTokenizer", "BatchEncoding", "ByteLevelBPETokenizer", "WordPieceTokenizer", "bytes_to_unicode",
           "learn_merges", "pretokenize", "train_bpe", "train_wordpiece", "wordpiece_split"]
