import os
import sys

import torch

TRAIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(TRAIN_DIR))
sys.path.insert(0, TRAIN_DIR)
torch.set_num_threads(2)


def tiny_cfg(**over):
    cfg = {"vocab_size": 30522, "max_len": 16, "d_model": 16, "n_heads": 2, "n_layers": 3, "d_ff": 24,
           "n_classes": 3, "weight_bits": 1, "act_bits": 8, "emb_bits": 2, "ln_eps": 1e-5}
    cfg.update(over)
    return cfg
