"""Training loop: soft-routing + depth-weighted loss, AdamW, warm-up + cosine, clipping,
length-bucketed batches, word dropout, optional distillation, per-epoch dev evaluation with
early stopping, resumable checkpoints, export of the best state."""
import ctypes
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import data as D
from . import safetensors_io
from .export import CONTROLLER_PREFIXES, export, pick_golden, round_weights_to_f16, size_report
from .model import BEExformer, MODEL_KEYS, entropy
from .policies import POLICIES, calibrate, evaluate_policy
from .tokenizer import WordPieceTokenizer

TRAIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(TRAIN_DIR))

TRAIN_DEFAULTS = {
    "epochs": 2, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.01, "warmup_steps": 200,
    "min_lr_ratio": 0.0, "clip": 1.0, "seed": 1, "dropout": 0.1, "attn_dropout": 0.0,
    "word_dropout": 0.0, "lambda_depth": 1.0, "routing_weight": 1.0, "routing_s": 10.0,
    "routing_tau": 0.1, "early_stop_patience": 2, "evals_per_epoch": 1, "log_every": 50,
    "ckpt_every": 200, "max_steps": None, "train_limit": None, "threads": 2,
    "distill_teacher": None, "distill_alpha": 0.5, "distill_temperature": 2.0, "lexical_offset": None,
    "len_weight_power": 0.0, "exit_loss": "all", "self_distill": 0.0, "stochastic_depth": 0.0, "init_from": None,
}


def repo_path(p):
    return p if os.path.isabs(p) else os.path.join(REPO, p)


def distill_kl(teacher_logp, logits, tt):
    """T² KL(p_teacher ‖ softmax(logits / T)) per sample, teacher_logp = log_softmax(teacher / T) (computed once by the
    caller for all the students it teaches): Hinton's distillation term, T² keeping its gradient at the CE's scale."""
    return (teacher_logp.exp() * (teacher_logp - torch.log_softmax(logits / tt, dim=-1))).sum(-1) * (tt * tt)


def routing_loss(logits, labels, cfg_train, sample_w=None, teacher=None):
    """sum_i pi_i CE_i + lambda * sum_i i CE_i / sum_i i (docs: shared spec, Training loss).

    logits [L, B, C]. pi comes from r_i = sigmoid(s (tau - delta_i)), detached, where delta_i is
    the fractional entropy reduction of block i; pi_L takes the remaining mass."""
    L, B, C = logits.shape
    ce = torch.stack([F.cross_entropy(logits[i], labels, reduction="none") for i in range(L)])  # [L, B]
    if teacher is not None:
        # Distillation: mix each exit's CE with the KL to the teacher's (temperature-softened) output.
        tt = cfg_train["distill_temperature"]
        a = cfg_train["distill_alpha"]
        tlogp = torch.log_softmax(teacher / tt, dim=-1)
        ce = (1 - a) * ce + a * torch.stack([distill_kl(tlogp, logits[i], tt) for i in range(L)])
    a_self = cfg_train.get("self_distill", 0.0)
    if a_self > 0:
        # Self-distillation (FastBERT; here jointly with the backbone, as in "Be Your Own Teacher"): every earlier
        # exit also matches the last exit's softened output, T² KL(p_L/T ‖ p_i/T) with p_L detached, so the
        # student terms move the early exits towards the last one and never pull the last one back.
        tt = cfg_train["distill_temperature"]
        tlogp = torch.log_softmax(logits[L - 1].detach() / tt, dim=-1)
        kd = torch.stack([distill_kl(tlogp, logits[i], tt) for i in range(L - 1)])
        ce = torch.cat([(1 - a_self) * ce[: L - 1] + a_self * kd, ce[L - 1:]])
    if cfg_train.get("exit_loss", "all") == "early":
        # DeeBERT's second stage: the exits before the last learn on the frozen backbone (build_model froze every other
        # parameter), each with its own CE, unweighted: with nothing shared between them, a weighting changes nothing.
        loss_b = ce[: L - 1].mean(0)
        return (loss_b * sample_w).sum() / sample_w.sum() if sample_w is not None else loss_b.mean()
    if cfg_train.get("exit_loss", "all") == "final":
        # DeeBERT's first stage: the backbone learns for the last exit alone; the other heads get no gradient
        # (fit them afterwards on the frozen backbone). Measures what the exits' loss terms cost full depth.
        loss_b = ce[L - 1]
        return (loss_b * sample_w).sum() / sample_w.sum() if sample_w is not None else loss_b.mean()
    depth = torch.arange(1, L + 1, dtype=ce.dtype).unsqueeze(1)
    depth_term = (depth * ce).sum(0) / depth.sum()
    loss_b = cfg_train["lambda_depth"] * depth_term
    if cfg_train["routing_weight"] > 0:
        with torch.no_grad():
            H = entropy(logits.detach())  # [L, B]
            h_prev = torch.cat([torch.full((1, B), math.log(C)), H[:-1]], 0)
            delta = (h_prev - H) / h_prev.clamp_min(1e-12)
            r = torch.sigmoid(cfg_train["routing_s"] * (cfg_train["routing_tau"] - delta))
            pi = torch.zeros_like(r)
            keep = torch.ones(B)
            for i in range(L - 1):
                pi[i] = r[i] * keep
                keep = keep * (1 - r[i])
            pi[L - 1] = 1 - pi[: L - 1].sum(0)
        loss_b = loss_b + cfg_train["routing_weight"] * (pi * ce).sum(0)
    if sample_w is not None:
        return (loss_b * sample_w).sum() / sample_w.sum()
    return loss_b.mean()


@torch.no_grad()
def predict_all(model, seqs, pad_id, batch_size=128):
    """Per-exit logits [N, L, C] in float32. Batched with padding; the padding is masked, so
    the results equal one-at-a-time evaluation up to float rounding."""
    model.eval()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    out = [None] * len(seqs)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        ids, mask = D.collate([seqs[j] for j in idx], pad_id)
        lg = model(ids, mask).permute(1, 0, 2).numpy()
        for k, j in enumerate(idx):
            out[j] = lg[k]
    return np.stack(out).astype(np.float32)


def exit_accuracies(logits, labels):
    labels = np.asarray(labels)
    return [float((logits[:, i].argmax(-1) == labels).mean()) for i in range(logits.shape[1])]


def lr_at(step, total, cfg_t):
    w = cfg_t["warmup_steps"]
    if step < w:
        return cfg_t["lr"] * (step + 1) / w
    prog = min(1.0, (step - w) / max(1, total - w))
    lo = cfg_t["min_lr_ratio"]
    return cfg_t["lr"] * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * prog)))


class Logger:
    def __init__(self, path):
        self.path = path

    def __call__(self, msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(line + "\n")


def set_threads(n):
    """Runs training on n cores. Debian's torch does its GEMMs in libopenblas (the pthread build), whose pool
    torch.set_num_threads does not reach, and which spins beside torch's own pool: a training step of the default's
    recipe (64 x 20 tokens, 20 steps, 2-vCPU AMD host, 2026-12-02) took 8.9 s with torch 1 + OpenBLAS 2 threads, 11.5 s
    with 2 + 1, 15.4 s with 2 + 2 (what train.threads = 2 used to give: both pools on both cores) and 21.1 s with 1 + 1
    (FP32: 7.3 / 12.1 / 14.6 s for 1 + 2, 2 + 2, 1 + 1). So the BLAS gets the n threads and torch's pool one; before this,
    train.threads = 1 left OpenBLAS on both cores (CPU/wall 1.98), which is why one-thread runs disturbed benchmarks.
    The loaded OpenBLAS is found in /proc/self/maps; where there is none (another BLAS, another OS) torch's pool gets
    the n threads."""
    n = int(n)
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.split()[-1]})
        for path in paths:
            ctypes.CDLL(path).openblas_set_num_threads(n)
    except (OSError, AttributeError):
        paths = []
    torch.set_num_threads(1 if paths else n)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_config(path, overrides=()):
    """The config file with the training defaults filled in, then each "SECTION.KEY=JSON" override (the scripts' --set)."""
    with open(path) as f:
        cfg = json.load(f)
    t = dict(TRAIN_DEFAULTS)
    t.update(cfg.get("train", {}))
    cfg["train"] = t
    for s in overrides:
        key, val = s.split("=", 1)
        sec, k = key.split(".", 1)
        cfg.setdefault(sec, {})[k] = json.loads(val)
    return cfg


class Splits:
    """The tokenized data of one run: train (to fit), dev (to select and calibrate), and an optional
    test set that is only reported (TREC, whose dev is a holdout of train)."""

    def __init__(self, tok, tr_ids, tr_labels, dv_texts, dv_labels, dv_ids, test, train_rows):
        self.tok, self.tr_ids, self.tr_labels = tok, tr_ids, tr_labels
        self.dv_texts, self.dv_labels, self.dv_ids = dv_texts, dv_labels, dv_ids
        self.test = test              # (texts, labels) or None
        self.train_rows = train_rows  # row numbers in the train file (train_limit, holdout), for the teacher cache
        self.tr_offset = self.dv_offset = None  # cache_lexical.py's logits added to every exit (train.lexical_offset)


def load_splits(cfg, log):
    """Reads, splits and tokenizes the data the config names."""
    ct, mc, dc = cfg["train"], cfg["model"], cfg["data"]
    tok = WordPieceTokenizer(repo_path(dc["vocab"]), lowercase=mc.get("lowercase", True))
    T = mc["max_len"]
    tr_texts, tr_labels = D.read_tsv(repo_path(dc["train"]))
    dv_texts, dv_labels = D.read_tsv(repo_path(dc["dev"]))
    sel, test = None, None
    if ct["train_limit"]:
        sel = np.random.RandomState(ct["seed"]).permutation(len(tr_texts))[: ct["train_limit"]]
        tr_texts = [tr_texts[i] for i in sel]
        tr_labels = [tr_labels[i] for i in sel]
    if dc.get("holdout"):
        # No separate dev set (TREC): hold out the last `holdout` rows of a seeded shuffle of
        # train for selection and thresholds (data/trec/holdout.tsv holds the same rows);
        # data.dev is then the reported test set.
        perm = np.random.RandomState(12345).permutation(len(tr_texts))
        ho, keep = perm[-int(dc["holdout"]):], perm[:-int(dc["holdout"])]
        sel = keep if sel is None else sel[keep]  # the kept rows' numbers in the train file
        test = (dv_texts, dv_labels)
        dv_texts, dv_labels = [tr_texts[i] for i in ho], [tr_labels[i] for i in ho]
        tr_texts, tr_labels = [tr_texts[i] for i in keep], [tr_labels[i] for i in keep]
    if dc.get("dev_limit"):
        dv_texts, dv_labels = dv_texts[: dc["dev_limit"]], dv_labels[: dc["dev_limit"]]
    t0 = time.time()
    tr_ids = D.encode_all(tok, tr_texts, T)
    dv_ids = D.encode_all(tok, dv_texts, T)
    log(f"tokenized {len(tr_ids)} train / {len(dv_ids)} dev texts in {time.time() - t0:.1f}s; "
        f"mean length train {np.mean([len(s) for s in tr_ids]):.1f}, dev {np.mean([len(s) for s in dv_ids]):.1f}")
    return Splits(tok, tr_ids, tr_labels, dv_texts, dv_labels, dv_ids, test, sel)


def build_model(cfg, data, log):
    """The model (vocabulary pruned to the train ids when asked), its optimizer and an optional teacher cache."""
    ct, dc = cfg["train"], cfg["data"]
    mc = dict(cfg["model"])
    tok = data.tok
    mc["vocab_size"] = len(tok)
    tok_map = None
    if dc.get("prune_vocab", False):
        tok_map = D.build_tok_map(data.tr_ids, len(tok), tok.unk_id, keep_ids=(tok.cls_id, tok.sep_id, tok.pad_id),
                                  min_count=int(dc.get("prune_min_count", 1)))
        log(f"vocabulary pruned to {int(tok_map.max()) + 1} rows (ids seen >= {dc.get('prune_min_count', 1)}x in train)")
    model = BEExformer(mc, tok_map=tok_map, dropout=ct["dropout"], attn_dropout=ct["attn_dropout"])
    model.layer_drop = float(ct.get("stochastic_depth", 0.0))
    if not 0.0 <= model.layer_drop < 1.0:
        raise ValueError(f"train.stochastic_depth must be in [0, 1), got {model.layer_drop}")
    if ct.get("init_from"):
        init_from(model, repo_path(ct["init_from"]), log)
    if ct.get("exit_loss", "all") not in ("all", "final", "early"):
        raise ValueError(f"train.exit_loss must be all, final or early, got {ct['exit_loss']}")
    if ct.get("exit_loss") == "early":
        # DeeBERT's second stage: only the heads of exits 1 … L−1 learn; the backbone and the last exit stay as loaded.
        if not ct.get("init_from"):
            raise ValueError('train.exit_loss "early" trains heads on a frozen backbone: set train.init_from')
        trainable = {f"exits.{i}." for i in range(len(model.exits) - 1)}
        for n, p in model.named_parameters():
            p.requires_grad_(any(n.startswith(t) for t in trainable))
    sizes = size_report(model)
    log(f"model {json.dumps(model.cfg)}; params {sizes['params']}, FP32 {sizes['fp32_bytes'] / 1e6:.2f} MB, "
        f"packed {sizes['packed_bytes'] / 1e6:.3f} MB, ratio {sizes['ratio']:.2f}x")

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and not n.startswith("exits.") else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ct["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=ct["lr"])

    teacher = None
    if ct["distill_teacher"]:
        teacher = torch.load(repo_path(ct["distill_teacher"]))  # [N_train, C] cached logits
        if data.train_rows is not None:
            teacher = teacher[torch.as_tensor(data.train_rows)]
        log(f"distilling from {ct['distill_teacher']} (alpha {ct['distill_alpha']}, T {ct['distill_temperature']})")
    return model, opt, sizes, teacher


# The model keys that only choose the quantizers, not a tensor's shape.
BIT_KEYS = ("weight_bits", "act_bits", "emb_bits")


def init_from(model, path, log):
    """Loads an exported model directory's weights (model.safetensors) into model: the same architecture and the same
    pruned vocabulary (its tok_map must equal the one this run built from the same training data). The bit widths may
    differ: every width keeps the same latent float tensors (the quantizers act in the forward pass), so a float
    start can be fine-tuned binarized (a float self-pretraining, tools/train/README.md)."""
    tensors, meta = safetensors_io.load(os.path.join(path, "model.safetensors"))
    loaded = json.loads(meta["config"])
    differs = [k for k in MODEL_KEYS if k not in BIT_KEYS and loaded.get(k) != model.cfg.get(k)]
    if differs:
        raise SystemExit(f"{path}: config differs from this run's in {', '.join(differs)}")
    widths = [f"{k} {loaded.get(k)} -> {model.cfg.get(k)}" for k in BIT_KEYS if loaded.get(k) != model.cfg.get(k)]
    if widths:
        log(f"{path}: other bit widths ({', '.join(widths)}): its latent weights start this run's quantizers")
    own = model.embed.tok_map
    theirs = tensors.get("embed.tok_map")
    if (own is None) != (theirs is None) or (own is not None and not torch.equal(own, theirs)):
        raise SystemExit(f"{path}: its vocabulary map is not this run's (prune_vocab and the training file must match)")
    state = {k: v for k, v in tensors.items() if not k.startswith(CONTROLLER_PREFIXES) and k != "embed.tok_map"}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "embed.tok_map"]
    if missing or unexpected:
        raise SystemExit(f"{path}: missing {missing}, unexpected {unexpected}")
    log(f"initialised from {path}")


def run(cfg, run_dir=None, log=print, resume=True, export_only=False):
    """One training run: load the data, build the model, train (resumable), then finish (calibrate, export)."""
    ct = cfg["train"]
    set_threads(ct["threads"])
    set_seed(ct["seed"])
    data = load_splits(cfg, log)
    if ct["lexical_offset"]:
        # Stacking on the lexical head: its cross-fitted train logits (and full-fit dev logits) are added to every
        # exit's logits in training and in dev selection, so the backbone learns the head's residual. The exported
        # model has no head: fit one with train_lexical.py afterwards (tools/train/README.md, "The lexical n-gram head").
        cache = torch.load(repo_path(ct["lexical_offset"]))
        # the cache holds the whole train file in file order; the run indexes it by its rows' numbers when it selects
        if data.train_rows is None:
            fits = len(cache["train"]) == len(data.tr_ids)
        else:
            fits = len(cache["train"]) > int(np.max(data.train_rows))
        if not fits or len(cache["dev"]) != len(data.dv_ids):
            raise SystemExit(f"{ct['lexical_offset']}: {len(cache['train'])} train / {len(cache['dev'])} dev rows, not the "
                             f"train file's rows and the run's {len(data.dv_ids)} dev rows")
        tr_off = cache["train"] if data.train_rows is None else cache["train"][torch.as_tensor(data.train_rows)]
        data.tr_offset, data.dv_offset = tr_off, cache["dev"].numpy()
        log(f"adding the lexical offsets of {ct['lexical_offset']} ({cache['settings']}) to every exit")
    model, opt, sizes, teacher = build_model(cfg, data, log)
    state = train_model(cfg, model, opt, data, teacher, run_dir, log, resume, export_only)
    return finish(cfg, model, data, state, sizes, run_dir, log)


def train_model(cfg, model, opt, data, teacher, run_dir, log, resume, export_only):
    """The training loop with dev evaluation, early stopping and checkpoints; leaves the dev-best state in the model."""
    ct = cfg["train"]
    tok, tr_ids, tr_labels, dv_ids, dv_labels = data.tok, data.tr_ids, data.tr_labels, data.dv_ids, data.dv_labels
    lengths = [len(s) for s in tr_ids]
    steps_per_epoch = math.ceil(len(tr_ids) / ct["batch_size"])
    total = steps_per_epoch * ct["epochs"]
    if ct["max_steps"]:
        total = min(total, int(ct["max_steps"]))
    evals_per_epoch = max(1, int(ct["evals_per_epoch"]))
    eval_points = sorted({min(steps_per_epoch, round(steps_per_epoch * (k + 1) / evals_per_epoch))
                          for k in range(evals_per_epoch)})

    state = {"step": 0, "epoch": 0, "step_in_epoch": 0, "best_acc": -1.0, "best_step": -1,
             "bad_evals": 0, "train_seconds": 0.0, "history": [], "stopped": False}
    best_state = None
    ckpt_path = os.path.join(run_dir, "ckpt.pt") if run_dir else None
    if resume and ckpt_path and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        best_state = ck["best_model"]
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed from {ckpt_path} at step {state['step']} (epoch {state['epoch']}, "
            f"step {state['step_in_epoch']} of it), best dev {state['best_acc']:.4f}")

    def save_ckpt():
        if not ckpt_path:
            return
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                    "best_model": best_state, "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, ckpt_path)

    def evaluate():
        logits = predict_all(model, dv_ids, tok.pad_id)
        if data.dv_offset is not None:
            logits = logits + data.dv_offset[:, None, :]
        accs = exit_accuracies(logits, dv_labels)
        return logits, accs

    t_start = time.time()
    seconds_before = state["train_seconds"]
    steps_at_start = state["step"]
    run_loss, run_n, run_tokens, t_last = 0.0, 0, 0, time.time()
    if export_only and best_state is None:
        raise SystemExit(f"--export-only: no checkpoint with a dev-selected state in {run_dir}")
    while not export_only and not state["stopped"] and state["epoch"] < ct["epochs"] and state["step"] < total:
        ep = state["epoch"]
        rng = np.random.default_rng(ct["seed"] * 1000 + ep)
        batches = D.bucketed_batches(lengths, ct["batch_size"], rng)
        wd_rng = np.random.default_rng(ct["seed"] * 1000 + ep + 500000 + state["step_in_epoch"])
        model.train()
        for bi in range(state["step_in_epoch"], len(batches)):
            if state["step"] >= total:
                break
            idx = batches[bi]
            ids, mask = D.collate([tr_ids[j] for j in idx], tok.pad_id, ct["word_dropout"], tok.unk_id, wd_rng)
            labels = torch.tensor([tr_labels[j] for j in idx], dtype=torch.int64)
            sample_w = None
            if ct["len_weight_power"]:
                sample_w = mask.sum(1).float() ** ct["len_weight_power"]
            lr = lr_at(state["step"], total, ct)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(ids, mask)
            if data.tr_offset is not None:
                logits = logits + data.tr_offset[torch.as_tensor(idx)]
            tl = teacher[torch.as_tensor(idx)] if teacher is not None else None
            loss = routing_loss(logits, labels, ct, sample_w, tl)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if ct["clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), ct["clip"])
            opt.step()
            state["step"] += 1
            state["step_in_epoch"] = bi + 1
            run_loss += float(loss) * len(idx)
            run_n += len(idx)
            run_tokens += int(mask.sum())
            if state["step"] % ct["log_every"] == 0:
                now = time.time()
                el = now - t_start
                rate = (state["step"] - steps_at_start) / max(el, 1e-9)
                eta = (total - state["step"]) / max(rate, 1e-9)
                state.setdefault("loss_log", []).append([state["step"], run_loss / run_n])
                log(f"ep {ep + 1}/{ct['epochs']} step {state['step']}/{total} loss {run_loss / run_n:.4f} "
                    f"lr {lr:.2e} {run_n / (now - t_last):.0f} samples/s {run_tokens / (now - t_last):.0f} tok/s "
                    f"ETA {eta / 60:.1f} min (train only)")
                run_loss, run_n, run_tokens, t_last = 0.0, 0, 0, now
            last_of_run = state["step"] >= total
            if state["step_in_epoch"] in eval_points or last_of_run:
                state["train_seconds"] = seconds_before + time.time() - t_start
                _, accs = evaluate()
                model.train()
                state["history"].append({"step": state["step"], "epoch": ep + state["step_in_epoch"] / len(batches),
                                         "dev_acc_per_exit": accs})
                log(f"dev @ step {state['step']}: per-exit acc {' '.join(f'{a:.4f}' for a in accs)}")
                # the last exit selects, except in DeeBERT's second stage, where it is frozen: the exits that learn do
                crit = float(np.mean(accs[:-1])) if ct.get("exit_loss") == "early" else accs[-1]
                if crit > state["best_acc"]:
                    state["best_acc"], state["best_step"], state["bad_evals"] = crit, state["step"], 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if v is not None}
                    log(f"new best dev acc {crit:.4f}" + (" (mean of the exits before the last)" if ct.get("exit_loss") == "early" else ""))
                else:
                    state["bad_evals"] += 1
                    if state["bad_evals"] >= ct["early_stop_patience"]:
                        log(f"early stop: no dev improvement in {state['bad_evals']} evaluations")
                        state["stopped"] = True
                        save_ckpt()
                        break
            if ckpt_path and state["step"] % ct["ckpt_every"] == 0:
                state["train_seconds"] = seconds_before + time.time() - t_start
                save_ckpt()
        else:
            state["epoch"] += 1
            state["step_in_epoch"] = 0
            state["train_seconds"] = seconds_before + time.time() - t_start
            save_ckpt()
            continue
        if state["step"] >= total:
            break
    if not export_only:
        state["train_seconds"] = seconds_before + time.time() - t_start
        save_ckpt()
    if best_state is not None:
        model.load_state_dict(best_state)
    log(f"training done: {state['step']} steps, {state['train_seconds'] / 60:.1f} min, best dev {state['best_acc']:.4f} "
        f"at step {state['best_step']}")
    return state


def finish(cfg, model, data, state, sizes, run_dir, log):
    """Calibrates every policy on dev, reports the test set when there is one, writes result.json and exports."""
    tok, dv_texts, dv_labels, dv_ids = data.tok, data.dv_texts, data.dv_labels, data.dv_ids
    exp = cfg.get("export") or {}
    weight_dtype = exp.get("weight_dtype", "F32")
    if exp.get("dir") and weight_dtype == "F16":
        round_weights_to_f16(model)
        log("weight tables rounded to float16 (the export stores them as F16); metrics below are of the rounded model")
    logits = predict_all(model, dv_ids, tok.pad_id)
    accs = exit_accuracies(logits, dv_labels)
    thresholds, policy_results = {}, {}
    for pol in POLICIES:
        if pol == "none":
            continue
        override = cfg.get("thresholds_override", {}).get(pol)
        if override is not None:
            # Hand-set (tiny parity models: thresholds that make the exits vary on the golden set).
            params = override
            acc, blocks, _ = evaluate_policy(pol, params, logits, dv_labels)
        else:
            params, acc, blocks = calibrate(pol, logits, dv_labels, cfg.get("calibration_max_drop", 0.005))
        thresholds[pol] = params
        policy_results[pol] = {"params": params, "acc": acc, "mean_blocks": blocks}
        log(f"policy {pol} {json.dumps(params)}: dev acc {acc:.4f}, mean blocks {blocks:.3f}")
    L = model.cfg["n_layers"]
    test_metrics = None
    if data.test is not None:
        te_texts, te_labels = data.test
        te_logits = predict_all(model, D.encode_all(tok, te_texts, model.cfg["max_len"]), tok.pad_id)
        te_accs = exit_accuracies(te_logits, te_labels)
        test_metrics = {"acc_per_exit": te_accs, "acc_full": te_accs[-1], "policies": {}}
        for pol, params in thresholds.items():
            acc, blocks, _ = evaluate_policy(pol, params, te_logits, te_labels)
            test_metrics["policies"][pol] = {"acc": acc, "mean_blocks": blocks}
        log(f"test: per-exit acc {' '.join(f'{a:.4f}' for a in te_accs)}; entropy_reduction acc "
            f"{test_metrics['policies']['entropy_reduction']['acc']:.4f}, mean blocks "
            f"{test_metrics['policies']['entropy_reduction']['mean_blocks']:.3f}")
    metrics = {"test": test_metrics, "dev_acc_per_exit": accs, "dev_acc_full": accs[-1], "policies": policy_results,
               "train_seconds": round(state["train_seconds"], 1), "steps": state["step"],
               "best_step": state["best_step"], "sizes": sizes,
               "block_savings_entropy_reduction": 1 - policy_results["entropy_reduction"]["mean_blocks"] / L}
    mc = cfg["model"]
    extra = {"labels": cfg["data"].get("labels", mc.get("labels")), "policy": "entropy_reduction",
             "thresholds": thresholds, "lowercase": mc.get("lowercase", True),
             "task": cfg["data"].get("task", ""), "train_data": cfg["data"]["train"],
             "metrics": {"dev_acc_full": round(accs[-1], 4),
                         "dev_acc_entropy_reduction": round(policy_results["entropy_reduction"]["acc"], 4),
                         "mean_blocks_entropy_reduction": round(policy_results["entropy_reduction"]["mean_blocks"], 4)}}
    result = {"name": cfg.get("name"), "model": model.cfg, "train": cfg["train"], "metrics": metrics}
    if run_dir:
        with open(os.path.join(run_dir, "result.json"), "w") as f:
            json.dump(result, f, indent=2)
    if exp.get("dir"):
        gt, gl = pick_golden(dv_texts, dv_labels, int(exp.get("golden_n", 32)))
        export(model, repo_path(exp["dir"]), extra, tok, gt, gl, weight_dtype, bool(exp.get("write_pt", True)))
        log(f"exported to {exp['dir']}")
    return model, result
