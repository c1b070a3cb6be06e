#!/usr/bin/python3
"""DYNAMAX's Mamba exit classifiers (docs/MODEL.md, `mamba_exits`) on a FROZEN exported backbone:

    /usr/bin/python3 tools/train/train_dynamax.py                      # train, calibrate, export
    /usr/bin/python3 tools/train/train_dynamax.py --export-only        # re-export the run's best state

1. The backbone (models/sst2-default by default) runs once, in eval mode without gradients, over a
   seeded subsample of the training sentences (--train-limit) and over dev; the block outputs
   x_1..x_L are cached (train in float16, dev in float32) with the linear exits' logits (the
   final one, divided by its temperature, is the teacher).
2. One Mamba exit per block (beex/mamba.py; out_proj starts at zero, so every exit starts as the
   shipped linear exit) is trained together with the linear heads E_i, c_i it feeds, by
   distillation from the final exit: KL(p_teacher || softmax(z_i / T_i)) with per-exit weights
   decaying linearly with depth (L, L-1, ..., 1, normalised), optionally mixed with cross-entropy on
   the labels (--ce). The dev state with the best mean accuracy over the exits is kept.
3. On dev only: one temperature per exit refitted (beex/calibration.py), every policy's thresholds
   calibrated (fewest mean blocks with accuracy >= full depth - --max-drop), the same for the
   shipped linear exits as the baseline.
4. Export to --out: the backbone tensors copied exactly from the source file (F16 tables stay F16),
   the retrained exits.{i}.weight/bias and the exits.{i}.mamba.* tensors in F32, config.json (the
   source's config + mamba_exits, thresholds, temperatures, metrics) and golden.json (the numpy
   float32 reference, one sample at a time). No model.bex: the converter writes it.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from beex import data as D  # noqa: E402
from beex import safetensors_io  # noqa: E402
from beex.calibration import apply_temperatures, ece, fit_temperatures  # noqa: E402
from beex.export import load_model_dir, pick_golden  # noqa: E402
from beex.mamba import (MAMBA_KEYS, from_backbone, head_macs, load_dynamax_dir,  # noqa: E402
                        sample_outputs_np)
from beex.policies import POLICIES, calibrate, entropies_np, evaluate_policy, exit_blocks  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import exit_accuracies, repo_path, set_threads  # noqa: E402


class Log:
    def __init__(self, path):
        self.path = path

    def __call__(self, msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


class Cache:
    """Block outputs of a set of sentences, flat: x [n_tokens, L, d], offsets [n + 1]; the linear
    exits' logits [n, L, C] (divided by the source temperatures) and the labels."""

    def __init__(self, x, offsets, linear, labels):
        self.x, self.offsets, self.linear, self.labels = x, offsets, linear, labels

    def __len__(self):
        return len(self.labels)

    def lengths(self):
        return (self.offsets[1:] - self.offsets[:-1]).numpy()

    def batch(self, idx):
        """(xs: L tensors [B, T, d] float32, mask [B, T])."""
        lens = [int(self.offsets[i + 1] - self.offsets[i]) for i in idx]
        T = max(lens)
        L, d = self.x.shape[1], self.x.shape[2]
        out = torch.zeros(len(idx), T, L, d, dtype=torch.float32)
        mask = torch.zeros(len(idx), T, dtype=torch.bool)
        for k, (i, n) in enumerate(zip(idx, lens)):
            out[k, :n] = self.x[self.offsets[i]:self.offsets[i] + n].float()
            mask[k, :n] = True
        return list(out.unbind(2)), mask

    def state(self):
        return {"x": self.x, "offsets": self.offsets, "linear": self.linear, "labels": self.labels}


@torch.no_grad()
def build_cache(dm, base_temps, seqs, labels, pad_id, dtype, log, what, batch_size=128):
    L, d = dm.cfg["n_layers"], dm.cfg["d_model"]
    lens = np.array([len(s) for s in seqs])
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
    x = torch.empty(int(lens.sum()), L, d, dtype=dtype)
    linear = torch.empty(len(seqs), L, dm.cfg["n_classes"])
    temps = torch.tensor(base_temps, dtype=torch.float32) if base_temps else None
    order = np.argsort(lens, kind="stable")
    t0 = time.time()
    for bi, s in enumerate(range(0, len(order), batch_size)):
        idx = order[s:s + batch_size]
        ids, mask = D.collate([seqs[j] for j in idx], pad_id)
        xs, _ = dm.block_outputs(ids, mask)
        w = mask.float().unsqueeze(-1)
        for k, j in enumerate(idx):
            n = lens[j]
            x[offsets[j]:offsets[j] + n] = torch.stack([xi[k, :n] for xi in xs], dim=1).to(dtype)
        for i, xi in enumerate(xs):
            pooled = (xi * w).sum(1) / w.sum(1)
            z = F.linear(pooled, dm.exits[i].weight, dm.exits[i].bias)  # the untouched linear heads
            linear[torch.as_tensor(idx), i] = z if temps is None else z / temps[i]
        if bi % 20 == 0:
            log(f"cache {what}: {s + len(idx)}/{len(order)} sentences, {time.time() - t0:.0f}s")
    return Cache(x, offsets, linear, torch.as_tensor(labels, dtype=torch.int64))


@torch.no_grad()
def predict(dm, cache, batch_size=128):
    """Per-exit logits [N, L, C] (divided by dm's temperatures, if set) in float32."""
    dm.eval()
    order = np.argsort(cache.lengths(), kind="stable")
    out = None
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        xs, mask = cache.batch(idx)
        z = dm.head_logits(xs, mask).permute(1, 0, 2).numpy()
        if out is None:
            out = np.zeros((len(cache), z.shape[1], z.shape[2]), dtype=np.float32)
        out[idx] = z
    return out


def param_groups(dm, lr, head_lr, wd):
    decay, no_decay, heads = [], [], []
    for n, p in dm.exits.named_parameters():
        if ".mamba." not in "." + n:
            heads.append(p)
        elif p.dim() >= 2 and not n.endswith("A_log"):
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "lr": lr, "weight_decay": wd, "base_lr": lr},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0, "base_lr": lr},
            {"params": heads, "lr": head_lr, "weight_decay": 0.0, "base_lr": head_lr}]


def depth_weights(L):
    w = torch.arange(L, 0, -1, dtype=torch.float32)  # L, L-1, ..., 1: decaying linearly with depth
    return w / w.sum()


def loss_fn(z, teacher, labels, ce_weight):
    """z [L, B, C] (after the temperatures), teacher [B, C] logits (after its temperature)."""
    L = z.shape[0]
    tlogp = torch.log_softmax(teacher, dim=-1)
    tp = tlogp.exp()
    w = depth_weights(L)
    total = 0.0
    parts = []
    for i in range(L):
        logp = torch.log_softmax(z[i], dim=-1)
        kl = (tp * (tlogp - logp)).sum(-1).mean()
        li = kl
        if ce_weight > 0:
            li = (1 - ce_weight) * kl + ce_weight * F.nll_loss(logp, labels)
        parts.append(float(li))
        total = total + w[i] * li
    return total, parts


def lr_factor(step, total, warmup):
    if step < warmup:
        return (step + 1) / warmup
    prog = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * prog))


def calibrate_all(logits, labels, max_drop):
    out = {}
    for pol in POLICIES:
        if pol == "none":
            continue
        params, acc, blocks = calibrate(pol, logits, labels, max_drop)
        out[pol] = {"params": params, "acc": acc, "mean_blocks": blocks}
    return out


def fmt_accs(accs):
    return " ".join(f"{100 * a:6.2f}" for a in accs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/sst2-default", help="the frozen backbone (an exported model dir)")
    ap.add_argument("--out", default="models/sst2-dynamax", help="export dir ('' = no export)")
    ap.add_argument("--run-dir", default="tools/train/runs/dynamax-e128")
    ap.add_argument("--cache", default=None, help="cache file (default runs/dynamax-cache-<limit>-s<seed>.pt)")
    ap.add_argument("--d-inner", type=int, default=128)
    ap.add_argument("--d-state", type=int, default=16)
    ap.add_argument("--d-conv", type=int, default=4)
    ap.add_argument("--dt-rank", type=int, default=16)
    ap.add_argument("--train-limit", type=int, default=20000, help="seeded subsample of train (0 = all)")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--stop-after", type=int, default=None,
                    help="stop after this many steps (the lr schedule still spans --steps)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="Mamba blocks")
    ap.add_argument("--head-lr", type=float, default=3e-4, help="the linear heads E_i, c_i")
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ce", type=float, default=0.0, help="weight of cross-entropy on the labels (0 = pure distillation)")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-drop", type=float, default=0.003, help="calibration: allowed dev drop below full depth")
    ap.add_argument("--policy", default="confidence", help="the config's default policy")
    ap.add_argument("--golden-n", type=int, default=32)
    ap.add_argument("--export-only", action="store_true", help="skip training: export the run's best.pt")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    run_dir = repo_path(args.run_dir)
    os.makedirs(run_dir, exist_ok=True)
    log = Log(os.path.join(run_dir, "log.txt"))
    log("args " + json.dumps(vars(args)))
    t_start = time.time()

    src = repo_path(args.model)
    base, base_cfg = load_model_dir(src)
    base_temps = base_cfg.get("exit_temperatures")
    L, C = base.cfg["n_layers"], base.cfg["n_classes"]
    mcfg = {"d_inner": args.d_inner, "d_state": args.d_state, "d_conv": args.d_conv, "dt_rank": args.dt_rank}
    torch.manual_seed(args.seed)
    dm = from_backbone(base, mcfg, seed=args.seed)
    for p in dm.parameters():
        p.requires_grad_(False)
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"), lowercase=base_cfg.get("lowercase", True))
    T = base.cfg["max_len"]
    dv_texts, dv_labels = D.read_tsv(repo_path("data/sst2/dev.tsv"))
    dv_labels = np.asarray(dv_labels)

    cache_path = repo_path(args.cache or f"tools/train/runs/dynamax-cache-{args.train_limit}-s{args.seed}.pt")
    if os.path.exists(cache_path):
        st = torch.load(cache_path)
        train, dev, info = Cache(**st["train"]), Cache(**st["dev"]), st["info"]
        log(f"cache {cache_path}: {info}")
    else:
        tr_texts, tr_labels = D.read_tsv(repo_path(base_cfg.get("train_data", "data/sst2/train.tsv")))
        sel = np.arange(len(tr_texts))
        if args.train_limit:
            sel = np.sort(np.random.RandomState(args.seed).permutation(len(tr_texts))[:args.train_limit])
        tr_ids = D.encode_all(tok, [tr_texts[i] for i in sel], T)
        dv_ids = D.encode_all(tok, dv_texts, T)
        t0 = time.time()
        train = build_cache(dm, base_temps, tr_ids, [tr_labels[i] for i in sel], tok.pad_id, torch.float16, log, "train")
        dev = build_cache(dm, base_temps, dv_ids, dv_labels, tok.pad_id, torch.float32, log, "dev")
        info = {"train_sentences": len(sel), "train_tokens": int(train.x.shape[0]), "dev_sentences": len(dv_ids),
                "seconds": round(time.time() - t0, 1)}
        torch.save({"train": train.state(), "dev": dev.state(), "info": info}, cache_path)
        log(f"cache written {cache_path}: {info}")
    teacher_train_acc = float((train.linear[:, -1].argmax(-1) == train.labels).float().mean())
    lin_dev = dev.linear.numpy()
    lin_dev_accs = exit_accuracies(lin_dev, dev.labels.numpy())
    log(f"teacher (final linear exit) train acc {100 * teacher_train_acc:.2f}; linear exits dev acc: {fmt_accs(lin_dev_accs)}")

    for p in dm.exits.parameters():
        p.requires_grad_(True)
    best_path = os.path.join(run_dir, "best.pt")
    history = []
    train_seconds = 0.0
    if not args.export_only:
        opt = torch.optim.AdamW(param_groups(dm, args.lr, args.head_lr, args.wd))
        rng = np.random.default_rng(args.seed)
        lens = train.lengths()
        batches, bpos, epoch = [], 0, 0
        best = None
        t0 = time.time()
        run_loss = None
        dev0 = predict(dm, dev)
        accs0 = exit_accuracies(dev0, dv_labels)
        log(f"step 0 (= the linear exits): dev acc {fmt_accs(accs0)} mean {100 * np.mean(accs0):.2f}")
        n_steps = min(args.steps, args.stop_after or args.steps)
        for step in range(n_steps):
            if bpos >= len(batches):
                batches, bpos = D.bucketed_batches(lens, args.batch, rng), 0
                epoch += 1
            idx = batches[bpos]
            bpos += 1
            dm.train()
            xs, mask = train.batch(idx)
            z = dm.head_logits(xs, mask)
            ti = torch.as_tensor(idx)
            loss, parts = loss_fn(z, train.linear[ti, -1], train.labels[ti], args.ce)
            f = lr_factor(step, args.steps, args.warmup)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * f
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dm.exits.parameters(), 1.0)
            opt.step()
            run_loss = float(loss) if run_loss is None else 0.95 * run_loss + 0.05 * float(loss)
            if (step + 1) % 25 == 0:
                el = time.time() - t0
                log(f"step {step + 1}/{args.steps} epoch {epoch} loss {run_loss:.4f} (exits {' '.join(f'{p:.3f}' for p in parts)}) "
                    f"{el / (step + 1):.2f}s/step ETA {el / (step + 1) * (args.steps - step - 1) / 60:.1f} min")
            if (step + 1) % args.eval_every == 0 or step + 1 == n_steps:
                dv = predict(dm, dev)
                accs = exit_accuracies(dv, dv_labels)
                score = float(np.mean(accs))
                history.append({"step": step + 1, "dev_acc": accs, "mean": score})
                log(f"eval step {step + 1}: dev acc {fmt_accs(accs)} mean {100 * score:.2f}")
                if best is None or score > best:
                    best = score
                    torch.save({"exits": dm.exits.state_dict(), "step": step + 1, "mcfg": mcfg}, best_path)
                    log(f"  new best (mean {100 * score:.2f}) saved")
        train_seconds = time.time() - t0
        log(f"training done in {train_seconds / 60:.1f} min")
    ck = torch.load(best_path)
    dm.exits.load_state_dict(ck["exits"])
    best_step = ck["step"]
    log(f"best state from step {best_step}")

    # ---- dev: temperatures, static depth, policies (Mamba vs the shipped linear exits) ----
    dm.set_temperatures(None)
    raw = predict(dm, dev)
    accs = exit_accuracies(raw, dv_labels)
    temps = fit_temperatures(raw, dv_labels)
    scaled = apply_temperatures(raw, temps)
    pols = calibrate_all(scaled, dv_labels, args.max_drop)
    lin_raw = lin_dev * np.asarray(base_temps, dtype=np.float32)[None, :, None] if base_temps else lin_dev
    lin_temps = fit_temperatures(lin_raw, dv_labels)
    lin_pols = calibrate_all(apply_temperatures(lin_raw, lin_temps), dv_labels, args.max_drop)
    log(f"dev static depth 1..{L}  linear: {fmt_accs(lin_dev_accs)}")
    log(f"dev static depth 1..{L}  mamba:  {fmt_accs(accs)}")
    log(f"temperatures mamba {temps}; linear {lin_temps}")
    for pol in pols:
        a, b = pols[pol], lin_pols[pol]
        log(f"policy {pol:18s} mamba {json.dumps(a['params']):30s} acc {100 * a['acc']:6.2f} blocks {a['mean_blocks']:.3f} | "
            f"linear {json.dumps(b['params']):30s} acc {100 * b['acc']:6.2f} blocks {b['mean_blocks']:.3f}")
    parts, macs = head_macs(base.cfg["d_model"], args.d_inner, args.d_state, args.d_conv, args.dt_rank)
    d, ff = base.cfg["d_model"], base.cfg["d_ff"]
    block_macs = 4 * d * d + 4 * d * ff
    log(f"Mamba head MACs/token {macs} ({json.dumps(parts)}) = {100 * macs / block_macs:.1f}% of a block's "
        f"{block_macs} binary MACs/token (products only)")
    result = {"args": vars(args), "cache": info, "best_step": best_step, "history": history,
              "train_seconds": round(train_seconds, 1),
              "dev_static_depth_acc": accs, "dev_static_depth_acc_linear": lin_dev_accs,
              "temperatures": temps, "temperatures_linear": lin_temps, "policies": pols, "policies_linear": lin_pols,
              "head_macs_per_token": macs, "head_macs_parts": parts, "block_macs_per_token": block_macs,
              "ece_last_before": ece(raw[:, -1], dv_labels), "ece_last_after": ece(scaled[:, -1], dv_labels)}
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    if not args.out:
        return

    # ---- export ----
    out_dir = repo_path(args.out)
    os.makedirs(out_dir, exist_ok=True)
    dm.set_temperatures(temps)
    tensors, _ = safetensors_io.load(os.path.join(src, "model.safetensors"))
    for k, v in dm.exits.state_dict().items():
        tensors[f"exits.{k}"] = v.detach().float().contiguous()
    thresholds = {p: v["params"] for p, v in pols.items()}
    cfg = dict(base_cfg)
    cfg.update({"mamba_exits": mcfg, "exit_temperatures": temps, "thresholds": thresholds, "policy": args.policy,
                "task": base_cfg.get("task", "sst2"), "train_data": base_cfg.get("train_data", "data/sst2/train.tsv")})
    metrics = {"dev_acc_full": round(accs[-1], 4), "dev_static_depth_acc": [round(a, 4) for a in accs],
               "dev_static_depth_acc_linear": [round(a, 4) for a in lin_dev_accs],
               "dev_ece_last_exit_before": round(result["ece_last_before"], 4),
               "dev_ece_last_exit_after": round(result["ece_last_after"], 4),
               "mamba_head_macs_per_token": macs, "block_macs_per_token": block_macs,
               "train_sentences": info["train_sentences"], "train_steps": best_step,
               "backbone": os.path.relpath(src, repo_path("."))}
    for p, v in pols.items():
        metrics[f"dev_acc_{p}"] = round(v["acc"], 4)
        metrics[f"mean_blocks_{p}"] = round(v["mean_blocks"], 4)
    cfg["metrics"] = metrics
    safetensors_io.save(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"config": json.dumps(cfg, sort_keys=True)})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    # the model as stored, re-imported: golden by the numpy reference, one sample at a time
    dm2, cfg2 = load_dynamax_dir(out_dir)
    policies = {"none": {}}
    policies.update({k: v for k, v in thresholds.items() if k in POLICIES})
    gt, gl = pick_golden(dv_texts, list(dv_labels), args.golden_n)
    samples, worst = [], 0.0
    for text, label in zip(gt, gl):
        ids = tok.encode(text, T)
        logits = sample_outputs_np(dm2, ids)
        with torch.no_grad():
            lt = dm2(torch.tensor([ids]))[:, 0].numpy()
        worst = max(worst, float(np.abs(lt - logits).max()))
        H = entropies_np(logits[None])[0]
        exits = {name: int(exit_blocks(name, prm, logits[None], H[None])[0]) for name, prm in policies.items()}
        samples.append({"text": text, "ids": [int(i) for i in ids], "label": int(label),
                        "logits": [[float(v) for v in row] for row in logits],
                        "entropies": [float(h) for h in H], "exits": exits})
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump({"config": cfg2, "policies": policies, "samples": samples}, f, indent=1)
        f.write("\n")
    # check: the re-imported model on dev gives the numbers above
    dv2 = predict(dm2, dev)
    re_accs = exit_accuracies(dv2, dv_labels)
    pa = evaluate_policy(args.policy, thresholds[args.policy], dv2, dv_labels)
    taken = {p: sorted({s["exits"][p] for s in samples}) for p in policies}
    log(f"exported {out_dir}: re-imported dev acc {fmt_accs(re_accs)}; {args.policy} acc {100 * pa[0]:.2f} blocks {pa[1]:.3f}; "
        f"golden numpy vs torch max |diff| {worst:.2e}; golden exits per policy {taken}")
    log(f"total {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
