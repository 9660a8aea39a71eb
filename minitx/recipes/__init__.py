"""End-to-end recipes that the ``minitx`` command runs: each a readable script of library calls.

    pretrain_bert.py   WordPiece vocab -> MLM + NSP data -> BertForPreTraining
    pretrain_gpt2.py   byte-level BPE -> token blocks -> GPT2LMHeadModel
    finetune.py        BERT -> sentence classification (GLUE TSVs or the built-in shuffled-sentence task)
    fill_mask.py       top-k predictions at [MASK]
    demo.py            all of the above on the built-in corpus (``minitx demo``)
"""
