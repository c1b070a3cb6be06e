#!/usr/bin/python3
"""SmartBERT's layer-skipping gates on the shipped default model (docs/MODEL.md, `skip_gates`):

    /usr/bin/python3 tools/train/train_smartbert.py                 # train, calibrate, export models/sst2-smart
    /usr/bin/python3 tools/train/train_smartbert.py --measure 20    # seconds per stage-1 step only

Stage 1 starts from models/sst2-default (backbone + exits; gates initialised not to skip, b1 < 0)
and fine-tunes backbone + gates + final exit on a seeded subsample of SST-2 train:
    CE(final exit) + lam_skip * (mean g - skip_target)^2 + lam_con * InfoNCE(adjacent layers)
with soft gates h' = (1 - g) Block(h) + g h for the first --soft-frac of the steps, then hard
gates with the straight-through estimator. The dev-best state of the hard phase (dev accuracy
of the hard-gated model at full depth) is kept.
Stage 2 freezes everything but the intermediate exits and trains them on the hard-gated path's
pooled states (CE + distillation from the final exit), cached once for a train subsample.
Then the F16-stored tables are rounded, temperatures are refitted on dev (exit i on the dev
samples that ran block i), every policy is calibrated on dev with the skip-aware replay
(beex/smartbert.py: exits_with_skips), and the model is exported (no model.bex).
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
from beex.calibration import apply_temperatures, ece, fit_temperature  # noqa: E402
from beex.export import load_model_dir, pick_golden  # noqa: E402
from beex.policies import POLICIES  # noqa: E402
from beex.smartbert import (calibrate_skip, contrastive_loss, evaluate_policy_skip, export_smart,  # noqa: E402
                            from_beexformer, predict_all_skip, round_weights_to_f16, skip_regulariser)
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import Logger, TRAIN_DIR, distill_kl, repo_path, set_threads  # noqa: E402


def dev_report(model, dv_ids, dv_labels, pad_id):
    lg, ran, g = predict_all_skip(model, dv_ids, pad_id, gates="hard")
    acc = float((lg[:, -1].argmax(-1) == dv_labels).mean())
    return acc, float(ran.sum(1).mean()), lg, ran, g


def stage1(args, model, tr_ids, tr_labels, dv_ids, dv_labels, tok, log):
    L = model.cfg["n_layers"]
    gate_params = list(model.skip.parameters())
    gate_ids = {id(p) for p in gate_params}
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if id(p) in gate_ids:
            continue
        (decay if p.dim() >= 2 and not n.startswith("exits.") else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01, "lr0": args.lr},
                             {"params": no_decay, "weight_decay": 0.0, "lr0": args.lr},
                             {"params": gate_params, "weight_decay": 0.0, "lr0": args.gate_lr}], lr=args.lr)
    lengths = [len(s) for s in tr_ids]
    total = args.steps
    soft_steps = int(round(args.soft_frac * total))
    best, best_key, history = None, None, []
    step, ep, t0 = 0, 0, time.time()
    run = {"loss": 0.0, "ce": 0.0, "g": 0.0, "con": 0.0, "n": 0}
    while step < total:
        rng = np.random.default_rng(args.seed * 1000 + ep)
        wd_rng = np.random.default_rng(args.seed * 1000 + ep + 500000)
        for idx in D.bucketed_batches(lengths, args.batch, rng):
            if step >= total:
                break
            model.train()
            mode = "soft" if step < soft_steps else "hard_st"
            warm = min(1.0, (step + 1) / args.warmup)
            cos = 0.5 * (1 + math.cos(math.pi * step / total))
            for grp in opt.param_groups:
                grp["lr"] = grp["lr0"] * warm * cos
            ids, mask = D.collate([tr_ids[j] for j in idx], tok.pad_id, args.word_dropout, tok.unk_id, wd_rng)
            labels = torch.tensor([tr_labels[j] for j in idx], dtype=torch.int64)
            logits, aux = model(ids, mask, gates=mode, return_aux=True)
            ce = F.cross_entropy(logits[-1], labels)
            reg = skip_regulariser(aux["g"], args.skip_target)
            con = contrastive_loss(aux["pooled"]) if args.lam_con > 0 else logits.new_zeros(())
            loss = ce + args.lam_skip * reg + args.lam_con * con
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            run["loss"] += float(loss)
            run["ce"] += float(ce)
            run["g"] += float(aux["g"].mean())
            run["con"] += float(con)
            run["n"] += 1
            if args.measure and step >= args.measure:
                dt = time.time() - t0
                log(f"measure: {step} steps in {dt:.1f}s = {dt / step:.2f} s/step (batch {args.batch})")
                return None
            if step % args.log_every == 0:
                n = run["n"]
                log(f"stage1 step {step}/{total} {mode} loss {run['loss'] / n:.4f} ce {run['ce'] / n:.4f} "
                    f"mean g {run['g'] / n:.3f} con {run['con'] / n:.3f} {(time.time() - t0) / step:.2f} s/step")
                run = {k: 0.0 if k != "n" else 0 for k in run}
            if step % args.eval_every == 0 or step == total:
                acc, blocks, lg, ran, _ = dev_report(model, dv_ids, dv_labels, tok.pad_id)
                skip_rates = [round(1 - float(r), 3) for r in ran.mean(0)[:-1]]
                history.append({"step": step, "mode": mode, "dev_acc_hard": acc, "mean_blocks_run": blocks,
                                "skip_rates": skip_rates})
                log(f"dev @ {step} ({mode}): hard-gated full-depth acc {acc:.4f}, mean blocks run {blocks:.3f}, "
                    f"skip rate per block {skip_rates}")
                key = (acc, -blocks)
                if mode == "hard_st" and (best_key is None or key > best_key):
                    best_key = key
                    best = {k: v.detach().clone() for k, v in model.state_dict().items() if v is not None}
                    log(f"new best (hard phase) {acc:.4f} at {blocks:.3f} blocks")
        ep += 1
    if best is not None:
        model.load_state_dict(best)
    return {"steps": step, "seconds": time.time() - t0, "history": history, "best": best_key}


@torch.no_grad()
def hard_path_features(model, seqs, pad_id, batch_size=128):
    """Pooled block outputs along the hard-gated path [N, L, d] and ran [N, L]."""
    model.eval()
    N, L, d = len(seqs), model.cfg["n_layers"], model.cfg["d_model"]
    feats = torch.zeros(N, L, d)
    ran = torch.ones(N, L, dtype=torch.bool)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for i in range(0, N, batch_size):
        idx = order[i:i + batch_size]
        ids, mask = D.collate([seqs[j] for j in idx], pad_id)
        _, aux = model(ids, mask, gates="hard", return_aux=True)
        feats[torch.as_tensor(idx)] = aux["pooled"].permute(1, 0, 2)
        ran[torch.as_tensor(idx)] = aux["ran"].t()
    return feats, ran


def stage2(args, model, feats, ran, labels, log):
    """Intermediate exits on frozen hard-path features: (1 - a) CE + a T^2 KL(final exit || exit i),
    masked to the samples that ran block i. The final exit (stage 1's) is the teacher, unchanged."""
    L = model.cfg["n_layers"]
    labels = torch.as_tensor(labels)
    with torch.no_grad():
        teacher = model.exits[L - 1](feats[:, L - 1])
    params = [p for i in range(L - 1) for p in model.exits[i].parameters()]
    opt = torch.optim.Adam(params, lr=args.s2_lr)
    a, tt = args.s2_alpha, 2.0
    tlogp = torch.log_softmax(teacher / tt, -1)
    N = len(labels)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for ep in range(args.s2_epochs):
        perm = torch.randperm(N, generator=g)
        tot = 0.0
        for s in range(0, N, 256):
            b = perm[s:s + 256]
            loss = 0.0
            for i in range(L - 1):
                w = ran[b, i].float()
                if w.sum() == 0:
                    continue
                z = model.exits[i](feats[b, i])
                ce = F.cross_entropy(z, labels[b], reduction="none")
                kd = distill_kl(tlogp[b], z, tt)
                loss = loss + (((1 - a) * ce + a * kd) * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss) * len(b)
        log(f"stage2 epoch {ep + 1}/{args.s2_epochs}: loss {tot / N:.4f}")
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="models/sst2-default")
    ap.add_argument("--out", default="models/sst2-smart")
    ap.add_argument("--name", default="sst2-smart")
    ap.add_argument("--train-limit", type=int, default=40000, help="seeded subsample of SST-2 train (stage 1)")
    ap.add_argument("--steps", type=int, default=650)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--gate-lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--soft-frac", type=float, default=0.4)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--gate-init-bias", type=float, default=-2.0)
    ap.add_argument("--lam-skip", type=float, default=1.0)
    ap.add_argument("--skip-target", type=float, default=0.5)
    ap.add_argument("--lam-con", type=float, default=0.1)
    ap.add_argument("--word-dropout", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--s2-limit", type=int, default=12000)
    ap.add_argument("--s2-epochs", type=int, default=8)
    ap.add_argument("--s2-lr", type=float, default=2e-3)
    ap.add_argument("--s2-alpha", type=float, default=0.5)
    ap.add_argument("--max-drop", type=float, default=0.003)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--measure", type=int, default=0, help="only time this many stage-1 steps")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    run_dir = os.path.join(TRAIN_DIR, "runs", args.name)
    os.makedirs(run_dir, exist_ok=True)
    log = Logger(os.path.join(run_dir, "log.txt"))
    log(f"train_smartbert {json.dumps(vars(args))}")
    t_all = time.time()

    base, base_cfg = load_model_dir(repo_path(args.base))
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"), lowercase=True)
    T = base.cfg["max_len"]
    tr_texts, tr_labels = D.read_tsv(repo_path("data/sst2/train.tsv"))
    dv_texts, dv_labels = D.read_tsv(repo_path("data/sst2/dev.tsv"))
    perm = np.random.RandomState(args.seed).permutation(len(tr_texts))
    sel = perm[: args.train_limit]
    tr_ids = D.encode_all(tok, [tr_texts[i] for i in sel], T)
    tr_lab = [tr_labels[i] for i in sel]
    dv_ids = D.encode_all(tok, dv_texts, T)
    dv_labels = np.asarray(dv_labels)
    log(f"{len(tr_ids)} train rows (of {len(tr_texts)}), {len(dv_ids)} dev rows")

    model = from_beexformer(base, args.hidden, rho=0.5, gate_init_bias=args.gate_init_bias,
                            dropout=args.dropout, attn_dropout=0.1, seed=args.seed)
    model.set_temperatures(None)  # trained on raw logits; refitted on dev at the end
    acc0, blocks0, _, _, _ = dev_report(model, dv_ids, dv_labels, tok.pad_id)
    log(f"start: hard-gated dev acc {acc0:.4f}, mean blocks run {blocks0:.3f}")

    s1 = stage1(args, model, tr_ids, tr_lab, dv_ids, dv_labels, tok, log)
    if s1 is None:
        return
    log(f"stage 1: {s1['steps']} steps in {s1['seconds'] / 60:.1f} min; best {s1['best']}")

    round_weights_to_f16(model)  # the stored model from here on (stage 2 trains on it)
    t2 = time.time()
    s2_sel = perm[: args.s2_limit]
    s2_ids = D.encode_all(tok, [tr_texts[i] for i in s2_sel], T)
    feats, ran_tr = hard_path_features(model, s2_ids, tok.pad_id)
    log(f"stage 2 features: {len(s2_ids)} rows in {time.time() - t2:.1f}s")
    stage2(args, model, feats, ran_tr, [tr_labels[i] for i in s2_sel], log)
    s2_seconds = time.time() - t2
    log(f"stage 2: {s2_seconds / 60:.1f} min")

    # ---- dev evaluation of the stored (F16-rounded) model
    L = model.cfg["n_layers"]
    raw, ran, gv = predict_all_skip(model, dv_ids, tok.pad_id, gates="hard")
    raw_all, _, _ = predict_all_skip(model, dv_ids, tok.pad_id, gates="none")
    temps = []
    for i in range(L):
        rows = ran[:, i]
        temps.append(fit_temperature(raw[rows, i], dv_labels[rows]) if rows.sum() >= 50 else 1.0)
    model.set_temperatures(temps)
    scaled = apply_temperatures(raw, temps)
    acc_hard = float((raw[:, -1].argmax(-1) == dv_labels).mean())
    acc_none = float((raw_all[:, -1].argmax(-1) == dv_labels).mean())
    static = [float((raw_all[:, k].argmax(-1) == dv_labels).mean()) for k in range(L)]
    exit_acc_ran = [float((raw[ran[:, k], k].argmax(-1) == dv_labels[ran[:, k]]).mean()) if ran[:, k].any() else None
                    for k in range(L)]
    skip_rates = [float(1 - ran[:, k].mean()) for k in range(L)]
    blocks_full = float(ran.sum(1).mean())
    patterns = {}
    for r in ran:
        key = "".join("1" if v else "0" for v in r)
        patterns[key] = patterns.get(key, 0) + 1
    log(f"dev hard-gated full depth: acc {acc_hard:.4f}, mean blocks run {blocks_full:.3f}; all blocks: acc {acc_none:.4f}")
    log(f"skip rate per block {[round(s, 4) for s in skip_rates]}; run patterns {sorted(patterns.items(), key=lambda kv: -kv[1])[:8]}")
    log(f"static depth (gates off) {[round(a, 4) for a in static]}; exit acc on samples that ran it {exit_acc_ran}")
    log(f"temperatures {temps}; ECE last exit {ece(raw[:, -1], dv_labels):.4f} -> {ece(scaled[:, -1], dv_labels):.4f}")
    thresholds, pol_res = {}, {}
    for pol in POLICIES:
        if pol == "none":
            continue
        params, acc, used = calibrate_skip(pol, scaled, ran, dv_labels, args.max_drop)
        _, _, mean_exit, _ = evaluate_policy_skip(pol, params, scaled, ran, dv_labels)
        thresholds[pol] = params
        pol_res[pol] = {"params": params, "acc": acc, "mean_blocks_run": used, "mean_exit_block": mean_exit}
        log(f"policy {pol:18s} {json.dumps(params):32s} acc {acc:.4f} mean blocks run {used:.3f} mean exit block {mean_exit:.3f}")
    # the same thresholds without skipping (gates off), for comparison
    from beex.policies import evaluate_policy
    scaled_all = apply_temperatures(raw_all, temps)
    noskip = {}
    for pol, params in thresholds.items():
        a, b, _ = evaluate_policy(pol, params, scaled_all, dv_labels)
        noskip[pol] = {"acc": a, "mean_blocks": b}
    log(f"same thresholds, gates off: {json.dumps(noskip)}")

    er = pol_res["entropy_reduction"]
    metrics = {"dev_acc_full": round(acc_hard, 4), "dev_acc_full_no_skip": round(acc_none, 4),
               "mean_blocks_run_full": round(blocks_full, 4),
               "skip_rate_per_block": [round(s, 4) for s in skip_rates[:-1]],
               "dev_acc_entropy_reduction": round(er["acc"], 4),
               "mean_blocks_entropy_reduction": round(er["mean_blocks_run"], 4),
               "dev_ece_last_exit_before": round(ece(raw[:, -1], dv_labels), 4),
               "dev_ece_last_exit_after": round(ece(scaled[:, -1], dv_labels), 4)}
    extra = {"labels": base_cfg.get("labels", ["negative", "positive"]), "policy": "entropy_reduction",
             "thresholds": thresholds, "lowercase": True, "task": "sst2", "train_data": "data/sst2/train.tsv",
             "metrics": metrics}
    gt, gl = pick_golden(dv_texts, list(dv_labels), 32)
    cfg, golden = export_smart(model, repo_path(args.out), extra, tok, gt, gl, "F16")
    exits = {p: sorted({s["exits"][p] for s in golden["samples"]}) for p in golden["policies"]}
    runs = sorted({tuple(s["blocks_run"]) for s in golden["samples"]})
    log(f"exported {args.out}; golden exit blocks per policy {exits}; golden blocks_run patterns {runs}")
    result = {"args": vars(args), "stage1": s1, "stage2_seconds": s2_seconds, "metrics": metrics,
              "static_depth_acc_gates_off": static, "exit_acc_on_ran": exit_acc_ran, "skip_rates": skip_rates,
              "run_patterns": patterns, "temperatures": temps, "policies": pol_res, "policies_gates_off": noskip,
              "total_seconds": time.time() - t_all}
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    log(f"done in {(time.time() - t_all) / 60:.1f} min")


if __name__ == "__main__":
    main()
