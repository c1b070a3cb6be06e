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


def test_lexical_offset_is_added_to_every_exit_and_checked(tmp_path):
    """train.lexical_offset (cache_lexical.py's layout): a huge offset towards class 1 on every train and dev row makes
    dev selection see class 1 everywhere (accuracy = the share of positive dev rows); a cache of the wrong length is
    refused by name."""
    import pytest
    import torch
    from beex.data import read_tsv
    from conftest import REPO
    n_train = len(read_tsv(os.path.join(REPO, "data/sst2/train.tsv"))[0])
    dev_labels = read_tsv(os.path.join(REPO, "data/sst2/dev.tsv"))[1][:100]
    push = torch.tensor([[-100.0, 100.0]])
    path = tmp_path / "offsets.pt"
    torch.save({"train": push.repeat(n_train, 1), "dev": push.repeat(100, 1), "settings": {}}, path)
    cfg = cfg_for(tmp_path, 10)
    cfg["train"]["lexical_offset"] = str(path)
    logs = []
    run(cfg, None, logs.append)
    dev_lines = [line for line in logs if line.startswith("dev @ step")]
    assert dev_lines and f"{np.mean(dev_labels):.4f}" in dev_lines[-1], dev_lines
    torch.save({"train": push.repeat(5, 1), "dev": push.repeat(100, 1), "settings": {}}, path)
    with pytest.raises(SystemExit, match="5 train"):
        run(cfg, None, logs.append)


def test_deebert_second_stage_trains_only_the_earlier_exits(tmp_path):
    """exit_loss "early" with init_from (DeeBERT's second stage): starting from a first-stage export, only the heads of
    exits 1..L-1 change; the backbone and the last exit are exported as loaded."""
    from beex import safetensors_io
    first = cfg_for(tmp_path / "first", 20)
    first["train"]["exit_loss"] = "final"
    run(first, None, lambda *_: None)
    second = cfg_for(tmp_path / "second", 20)
    second["train"].update({"exit_loss": "early", "init_from": first["export"]["dir"]})
    run(second, None, lambda *_: None)
    before, _ = safetensors_io.load(os.path.join(first["export"]["dir"], "model.safetensors"))
    after, _ = safetensors_io.load(os.path.join(second["export"]["dir"], "model.safetensors"))
    assert set(before) == set(after)
    changed = {name for name in before if not np.array_equal(before[name].numpy(), after[name].numpy())}
    assert changed and all(name.startswith("exits.0.") for name in changed), changed


def test_masking_never_picks_special_tokens_and_targets_the_original_rows():
    import torch
    from pretrain_mlm import mask_batch
    rng = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (64, 40))
    ids[:, 0] = 101                       # [CLS]
    lengths = torch.randint(5, 41, (64,))
    mask = torch.arange(40)[None, :] < lengths[:, None]
    ids[torch.arange(64), lengths - 1] = 102  # [SEP]
    ids[~mask] = 0                        # [PAD]
    rows = torch.arange(30522) * 3 % 30522  # any id → row map
    inputs, targets = mask_batch(ids, mask, rows, 100, torch.arange(1000, 1010), rng)
    chosen = targets != -100
    special = (ids == 101) | (ids == 102) | ~mask
    assert not (chosen & special).any()
    assert torch.equal(targets[chosen], rows[ids[chosen]])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    rate = chosen.sum().item() / (~special).sum().item()
    assert 0.12 < rate < 0.18, rate
    assert (inputs[chosen] == 100).float().mean().item() > 0.7  # ≈ 80 % [UNK]


def test_self_pretraining_lowers_the_masked_token_loss_and_initialises_a_run(tmp_path):
    """pretrain_mlm.py writes a backbone that train.init_from accepts (same config and vocabulary map)."""
    from pretrain_mlm import pretrain
    cfg = cfg_for(tmp_path / "mlm", 5)
    curve = pretrain(cfg, str(tmp_path / "mlm" / "export"), steps=60, lr=3e-3, log=lambda *_: None, eval_every=60)
    assert curve[-1][1] < curve[0][1] - 0.5, curve
    logs = []
    ft = cfg_for(tmp_path / "ft", 5)
    ft["train"]["init_from"] = str(tmp_path / "mlm" / "export")
    run(ft, None, logs.append)
    assert any("initialised from" in line for line in logs)


def test_a_float_start_initialises_a_binarized_run(tmp_path):
    """init_from takes an export of other bit widths (the latent tensors are the same) and says so; another shape is refused."""
    import pytest
    import torch
    from beex import safetensors_io
    from pretrain_mlm import pretrain
    cfg = cfg_for(tmp_path / "mlm", 5)
    cfg["model"].update({"weight_bits": 32, "act_bits": 32, "emb_bits": 32})
    pretrain(cfg, str(tmp_path / "mlm" / "export"), steps=10, lr=3e-3, log=lambda *_: None, eval_every=10)
    logs = []
    ft = cfg_for(tmp_path / "ft", 2)
    ft["train"].update({"init_from": str(tmp_path / "mlm" / "export"), "lr": 0.0})  # lr 0: the start is exported as loaded
    run(ft, None, logs.append)
    assert any("other bit widths (weight_bits 32 -> 1, act_bits 32 -> 8, emb_bits 32 -> 2)" in line for line in logs), logs
    start, _ = safetensors_io.load(str(tmp_path / "mlm" / "export" / "model.safetensors"))
    tuned, _ = safetensors_io.load(str(tmp_path / "ft" / "export" / "model.safetensors"))
    assert torch.equal(start["blocks.0.attn.q.weight"].float(), tuned["blocks.0.attn.q.weight"].float())
    wide = cfg_for(tmp_path / "wide", 2)
    wide["model"]["d_ff"] = 48
    wide["train"]["init_from"] = str(tmp_path / "mlm" / "export")
    with pytest.raises(SystemExit, match="config differs from this run's in d_ff"):
        run(wide, None, lambda *_: None)
