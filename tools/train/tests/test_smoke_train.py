"""A short training run on a slice of SST-2 must lower the loss, checkpoint, resume and export."""
import json
import os

import numpy as np

from beex.train import TRAIN_DEFAULTS, run


def cfg_for(tmp_path, max_steps):
    train = dict(TRAIN_DEFAULTS)
    train.update({"epochs": 3, "max_steps": max_steps, "train_limit": 1200, "batch_size": 32, "lr": 3e-3,
                  "warmup_steps": 10, "dropout": 0.0, "word_dropout": 0.05, "log_every": 10, "ckpt_every": 20,
                  "evals_per_epoch": 1, "threads": 1, "early_stop_patience": 10})
    return {"name": "smoke",
            "model": {"max_len": 32, "d_model": 24, "n_heads": 2, "n_layers": 2, "d_ff": 32, "n_classes": 2,
                      "weight_bits": 1, "act_bits": 8, "emb_bits": 2, "ln_eps": 1e-5},
            "data": {"task": "sst2", "train": "data/sst2/train.tsv", "dev": "data/sst2/dev.tsv", "dev_limit": 100,
                     "vocab": "data/vocab/bert-base-uncased-vocab.txt", "labels": ["negative", "positive"],
                     "prune_vocab": True},
            "train": train,
            "export": {"dir": str(tmp_path / "export"), "golden_n": 8}}


def test_training_lowers_loss_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    logs = []
    # first 40 steps, then resume to 100: the resumed run continues from the checkpoint
    run(cfg_for(tmp_path, 40), str(run_dir), logs.append)
    _, result = run(cfg_for(tmp_path, 100), str(run_dir), logs.append)
    assert any("resumed from" in line for line in logs)
    import torch
    state = torch.load(run_dir / "ckpt.pt")["state"]
    losses = [l for _, l in state["loss_log"]]
    assert state["step"] == 100 and len(losses) == 10
    first, last = np.mean(losses[:2]), np.mean(losses[-3:])
    assert last < first - 0.05, (first, last)
    acc = result["metrics"]["dev_acc_full"]
    assert 0.0 <= acc <= 1.0
    golden = json.load(open(tmp_path / "export" / "golden.json"))
    assert len(golden["samples"]) == 8 and set(golden["policies"]) >= {"entropy_reduction", "none"}
