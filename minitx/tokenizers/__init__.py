"""Tokenizers: BERT's WordPiece (with its BasicTokenizer) and GPT-2's byte-level BPE, both trainable.

    from minitx.tokenizers import WordPieceTokenizer, train_wordpiece
    tok = WordPieceTokenizer.from_pretrained(model_dir)       # vocab.txt (+ tokenizer_config.json)
    tok("Hello world!", padding="max_length", max_length=8)   # input_ids, token_type_ids, attention_mask
"""
from minitx.tokenizers.basic import BasicTokenizer
from minitx.tokenizers.encoding import BatchEncoding
from minitx.tokenizers.wordpiece import WordPieceTokenizer, train_wordpiece, wordpiece_split

__all__ = ["BasicTokenizer", "BatchEncoding", "WordPieceTokenizer", "train_wordpiece", "wordpiece_split"]
