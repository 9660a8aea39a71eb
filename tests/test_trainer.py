"""The Trainer: learning, gradient accumulation, NaN detection, atomic checkpoints, bit-identical resume."""
import json
import os

import numpy as np
import pytest

import minitx
from minitx.models.bert import BertConfig, BertForSequenceClassification
from minitx.nn import Linear, Module
from minitx.train.arguments import TrainingArguments
from minitx.train.checkpoint import latest_checkpoint
from minitx.train.metrics import accuracy
from minitx.train.trainer import Trainer, TrainingDiverged

pytestmark = pytest.mark.train


def tiny_bert(dropout=0.1, seed=0):
    minitx.manual_seed(seed)
    config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, num_labels=2)
    return BertForSequenceClassification(config)


def parity_dataset(n=64, length=6, seed=0):
    """Label = whether token 5 appears in the sequence: learnable from the [CLS] representation."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(n):
        ids = rng.integers(6, 20, size=length)
        label = int(rng.random() < 0.5)
        if label:
            ids[rng.integers(1, length)] = 5
        ids[0] = 1
        data.append({"input_ids": ids, "attention_mask": np.ones(length, dtype=np.int64), "labels": label})
    return data


def args(tmp_path, **overrides):
    defaults = dict(output_dir=str(tmp_path), per_device_train_batch_size=8, learning_rate=3e-3, max_steps=6,
                    logging_steps=2, disable_tqdm=True, plot=False, seed=3)
    return TrainingArguments(**{**defaults, **overrides})


def metrics(prediction):
    return {"accuracy": accuracy(prediction.predictions.argmax(-1), prediction.label_ids[0])}


def params(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


@pytest.mark.hw1_autograd
def test_trainer_learns_and_logs(tmp_path):
    train, held_out = parity_dataset(192, seed=1), parity_dataset(64, seed=2)
    trainer = Trainer(tiny_bert(dropout=0.0), args(tmp_path, max_steps=120, logging_steps=20, plot=True),
                      train_dataset=train, eval_dataset=held_out, compute_metrics=metrics)
    result = trainer.train()
    evaluation = trainer.evaluate()
    losses = [e["loss"] for e in trainer.log_history if "loss" in e]
    assert result["global_step"] == 120
    assert losses[-1] < losses[0] * 0.7
    assert evaluation["eval_accuracy"] >= 0.85  # majority baseline is ~0.5
    lines = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    assert [e["step"] for e in lines if "loss" in e] == [20, 40, 60, 80, 100, 120]
    assert os.path.getsize(tmp_path / "curves.png") > 5000


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_resume_is_bit_identical(tmp_path):
    data = parity_dataset(40)
    uninterrupted = Trainer(tiny_bert(), args(tmp_path / "a", max_steps=8, save_steps=3), train_dataset=data)
    uninterrupted.train()
    assert sorted(os.listdir(tmp_path / "a")) == ["checkpoint-3", "checkpoint-6", "log.jsonl"]

    resumed = Trainer(tiny_bert(seed=99), args(tmp_path / "a", max_steps=8), train_dataset=data)
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    expected, got = params(uninterrupted.model), params(resumed.model)
    assert expected.keys() == got.keys()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name


@pytest.mark.hw1_autograd
def test_gradient_accumulation_matches_a_bigger_batch(tmp_path):
    data = parity_dataset(32)
    big = Trainer(tiny_bert(dropout=0.0), args(tmp_path / "big", per_device_train_batch_size=8, max_steps=3),
                  train_dataset=data)
    big.train()
    accumulated = Trainer(tiny_bert(dropout=0.0), args(tmp_path / "acc", per_device_train_batch_size=4,
                                                       gradient_accumulation_steps=2, max_steps=3), train_dataset=data)
    accumulated.train()
    a, b = params(big.model), params(accumulated.model)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


class ExplodingModel(Module):
    """Its loss becomes NaN from the third call on."""

    def __init__(self):
        super().__init__()
        self.linear = Linear(2, 1)
        self.calls = 0

    def forward(self, input_ids, labels=None, attention_mask=None):
        self.calls += 1
        out = self.linear(minitx.tensor(input_ids[:, :2].astype(np.float32)))
        loss = (out * out).mean() * (float("nan") if self.calls >= 3 else 1.0)
        return type("Output", (), {"loss": loss})()


@pytest.mark.hw1_autograd
def test_nan_loss_stops_with_the_step_number(tmp_path):
    with pytest.raises(TrainingDiverged, match="step 3"):
        Trainer(ExplodingModel(), args(tmp_path), train_dataset=parity_dataset(32)).train()


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_checkpoint_contents_and_atomicity(tmp_path):
    trainer = Trainer(tiny_bert(), args(tmp_path, max_steps=2, save_steps=2), train_dataset=parity_dataset(16))
    trainer.train()
    checkpoint = tmp_path / "checkpoint-2"
    assert sorted(os.listdir(checkpoint)) == ["config.json", "model.safetensors", "optimizer.safetensors",
                                             "trainer_state.json"]
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
    state = json.load(open(checkpoint / "trainer_state.json"))
    assert state["global_step"] == 2 and state["scheduler"]["last_epoch"] == 2


@pytest.mark.hw1_autograd
@pytest.mark.hw3_attention
def test_a_save_killed_midway_leaves_the_previous_checkpoint_readable(tmp_path, monkeypatch):
    """A crash while writing checkpoint-4 (simulated: the weights file write raises) leaves only its .tmp folder;
    checkpoint-2 stays whole, latest_checkpoint ignores the partial one, and resuming from it works."""
    trainer = Trainer(tiny_bert(), args(tmp_path, max_steps=4, save_steps=2), train_dataset=parity_dataset(16))
    real_save = type(trainer.model).save_pretrained

    def dies_on_the_second_save(model, directory, *a, **k):
        if directory.endswith("checkpoint-4.tmp"):
            raise KeyboardInterrupt("killed while saving")
        return real_save(model, directory, *a, **k)

    monkeypatch.setattr(type(trainer.model), "save_pretrained", dies_on_the_second_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "checkpoint-2")) == ["config.json", "model.safetensors",
                                                            "optimizer.safetensors", "trainer_state.json"]
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-2")
    resumed = Trainer(tiny_bert(), args(tmp_path, max_steps=4, save_steps=2), train_dataset=parity_dataset(16))
    resumed.train(resume_from_checkpoint=True)
    assert resumed.global_step == 4


def test_invalid_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        TrainingArguments(output_dir=str(tmp_path), gradient_accumulation_steps=0)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(tiny_bert(), args(tmp_path), train_dataset=parity_dataset(8)).train(resume_from_checkpoint=True)


def test_load_best_model_at_end_restores_the_best_evaluation(tmp_path):
    model = tiny_bert(dropout=0.0)
    scores, snapshots = iter([0.5, 0.9, 0.7, 0.6]), []

    def scripted(prediction):  # evaluations at steps 2, 4, 6, 8: the best (0.9) is at step 4
        snapshots.append(params(model))
        return {"score": next(scores)}

    trainer = Trainer(model, args(tmp_path, max_steps=8, eval_steps=2, load_best_model_at_end=True,
                                  metric_for_best_model="score"),
                      train_dataset=parity_dataset(), eval_dataset=parity_dataset(16, seed=5), compute_metrics=scripted)
    assert trainer.args.greater_is_better  # HF's default for a metric that is not a loss
    trainer.train()
    assert trainer.best_metrics["step"] == 4 and trainer.best_metrics["eval_score"] == 0.9
    for name, value in params(model).items():
        np.testing.assert_array_equal(value, snapshots[1][name], err_msg=name)
    assert not np.array_equal(snapshots[1]["classifier.weight"], snapshots[3]["classifier.weight"])
    assert trainer.final_metrics() is trainer.best_metrics and len(snapshots) == 4  # no fifth evaluation


def test_best_model_arguments_are_checked(tmp_path):
    assert args(tmp_path, eval_steps=2, metric_for_best_model="eval_loss").greater_is_better is False
    with pytest.raises(ValueError, match="load_best_model_at_end needs eval_steps"):
        args(tmp_path, load_best_model_at_end=True)
    trainer = Trainer(tiny_bert(), args(tmp_path, max_steps=2, eval_steps=2, load_best_model_at_end=True,
                                        metric_for_best_model="f1"),
                      train_dataset=parity_dataset(), eval_dataset=parity_dataset(16, seed=5))
    with pytest.raises(KeyError, match=r"metric_for_best_model='f1': the evaluation gave \['eval_loss'\]"):
        trainer.train()
