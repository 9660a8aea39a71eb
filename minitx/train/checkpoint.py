"""Training checkpoints: everything needed to continue a run bit-identically.

A checkpoint directory ``checkpoint-<step>/`` holds

    config.json, model.safetensors   the model, in HF format (``save_pretrained``)
    optimizer.safetensors            every optimizer buffer (moments, momentum), exact float bits
    trainer_state.json               step, epoch, log history, optimizer hyper-parameters and scalar state,
                                     scheduler state, and the random-generator state (dropout, masking)

It is written to a temporary directory and then renamed into place (``os.replace``), so a run killed
mid-save never leaves a half-written checkpoint that looks complete.
"""
import json
import os
import shutil

import numpy as np

TRAINER_STATE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


def _split_optimizer_state(state_dict: dict) -> tuple:
    """Optimizer state -> (arrays for safetensors, JSON-able rest)."""
    arrays, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"{index}.{name}"] = np.ascontiguousarray(value)
            else:
                scalars.setdefault(str(index), {})[name] = value.item() if hasattr(value, "item") else value
    return arrays, {"scalars": scalars, "param_groups": state_dict["param_groups"]}


def _join_optimizer_state(arrays: dict, rest: dict) -> dict:
    state = {}
    for key, value in arrays.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entry in rest["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": rest["param_groups"]}


def save_checkpoint(directory: str, model, optimizer, scheduler, trainer_state: dict, rng_state: dict) -> str:
    """Write a checkpoint atomically to ``directory`` and return it."""
    from safetensors.numpy import save_file

    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_pretrained(tmp)
    arrays, optimizer_rest = _split_optimizer_state(optimizer.state_dict())
    save_file(arrays, os.path.join(tmp, OPTIMIZER_FILE))
    state = dict(trainer_state, optimizer=optimizer_rest, scheduler=scheduler.state_dict(), rng_state=rng_state)
    with open(os.path.join(tmp, TRAINER_STATE), "w") as f:
        json.dump(state, f, indent=1)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


def load_checkpoint(directory: str, model, optimizer, scheduler) -> dict:
    """Restore model, optimizer and scheduler in place from ``directory``; return the trainer state dict."""
    from safetensors.numpy import load_file

    from minitx.models.hf_io import read_weights

    state_path = os.path.join(directory, TRAINER_STATE)
    if not os.path.isfile(state_path):
        raise FileNotFoundError(f"{directory!r} is not a minitx checkpoint: {TRAINER_STATE} is missing")
    with open(state_path) as f:
        state = json.load(f)
    path, tensors = read_weights(directory)
    model.load_hf_state_dict(tensors, path)
    arrays = load_file(os.path.join(directory, OPTIMIZER_FILE))
    optimizer.load_state_dict(_join_optimizer_state(arrays, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    return state


def latest_checkpoint(output_dir: str):
    """The checkpoint with the highest step in ``output_dir``, or None."""
    if not os.path.isdir(output_dir):
        return None
    steps = [int(d.split("-")[1]) for d in os.listdir(output_dir)
             if d.startswith("checkpoint-") and d.split("-")[1].isdigit()]
    return os.path.join(output_dir, f"checkpoint-{max(steps)}") if steps else None
