#!/usr/bin/python3
"""Train the learned exit controllers (PALBERT's q_exit, JEI-DNN's learned_gate) on a FROZEN
exported model, choose their thresholds and the conformal q-hat on dev, report every policy and
(with --write) add the controllers to the model directory:

    /usr/bin/python3 tools/train/train_controllers.py models/sst2-default            # train + report
    /usr/bin/python3 tools/train/train_controllers.py models/sst2-default --write    # and export

The backbone and its exit heads are never updated (the model's accuracy at every exit is
unchanged); the controllers read its pooled states and temperature-divided exit logits, computed
once per split in eval mode and cached (--cache, default runs/ctrl_cache_<model>.npz at the
repository root, not committed).

--write adds the controllers' float32 tensors to model.safetensors (every existing tensor kept
byte for byte, F16 tables stay F16), the config keys `q_exit`, `learned_gate`, `conformal`,
`thresholds.q_exit`, `thresholds.learned_gate` and dev metrics to config.json and the safetensors
metadata, and `lambdas`, `gate_scores`, `exits.q_exit`, `exits.learned_gate` to every golden
sample (every existing golden field kept as is). model.bex is not touched (reconvert it).
See README.md, "Learned exit controllers".
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

from beex import controllers as C  # noqa: E402
from beex import data as D  # noqa: E402
from beex import safetensors_io  # noqa: E402
from beex.calibration import crossfit_folds, ece  # noqa: E402
from beex.export import load_model_dir  # noqa: E402
from beex.policies import POLICIES, _grid, exit_blocks  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import REPO, repo_path, set_threads  # noqa: E402

POLICY_ORDER = ("entropy_reduction", "entropy", "normalized_entropy", "confidence", "patience")


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


# ------------------------------------------------------------------------------ frozen features

@torch.no_grad()
def pooled_and_logits(model, ids, mask):
    """(pooled [B, L + 1, d], temperature-divided logits [B, L, C]) as BEExformer.forward computes
    them (same ops), with m_0 = pool of the embedding output."""
    key_pad = None if bool(mask.all()) else ~mask
    x = model.embed(ids)
    w = mask.to(x.dtype).unsqueeze(-1)
    count = w.sum(dim=1)
    pooled = [(x * w).sum(dim=1) / count]
    lex = model.lexical_logits(ids, mask)
    logits = []
    for i, block in enumerate(model.blocks):
        x = block(x, key_pad)
        m = (x * w).sum(dim=1) / count
        pooled.append(m)
        logits.append(model.exit_logits(i, m, lex))
    return torch.stack(pooled, 1), torch.stack(logits, 1)


@torch.no_grad()
def precompute(model, seqs, pad_id, batch_size=256):
    model.eval()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    L, d, Cn = model.cfg["n_layers"], model.cfg["d_model"], model.cfg["n_classes"]
    pooled = np.zeros((len(seqs), L + 1, d), dtype=np.float32)
    logits = np.zeros((len(seqs), L, Cn), dtype=np.float32)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        ids, mask = D.collate([seqs[j] for j in idx], pad_id)
        m, z = pooled_and_logits(model, ids, mask)
        pooled[idx] = m.numpy()
        logits[idx] = z.numpy()
        if (i // batch_size) % 20 == 19:
            log(f"  precompute {i + len(idx)}/{len(seqs)}")
    return pooled, logits


def load_cache(model, cfg, tok, path, train_limit=None):
    if os.path.exists(path):
        z = np.load(path)
        log(f"cache {path}: train {z['tr_pooled'].shape}, dev {z['dv_pooled'].shape}")
        return {k: z[k] for k in z.files}
    T = cfg["max_len"]
    out = {}
    for split, fn in (("dv", "data/sst2/dev.tsv"), ("tr", cfg.get("train_data", "data/sst2/train.tsv"))):
        texts, labels = D.read_tsv(repo_path(fn))
        if split == "tr" and train_limit and train_limit < len(texts):
            sel = np.sort(np.random.RandomState(12345).permutation(len(texts))[:train_limit])
            texts, labels = [texts[i] for i in sel], [labels[i] for i in sel]
            out["tr_rows"] = sel
        t0 = time.time()
        pooled, logits = precompute(model, D.encode_all(tok, texts, T), tok.pad_id)
        log(f"precomputed {split}: {len(texts)} texts in {time.time() - t0:.0f}s")
        out[f"{split}_pooled"], out[f"{split}_logits"] = pooled, logits
        out[f"{split}_labels"] = np.asarray(labels, dtype=np.int64)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **out)
    return out


def ce_of(logits, labels):
    """Per-exit cross-entropy [N, L] (float64)."""
    z = logits.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1))
    return lse - np.take_along_axis(z, labels[:, None, None].repeat(z.shape[1], 1), axis=2)[..., 0]


def policy_row(name, params, logits, labels, exits):
    L = logits.shape[1]
    ans = logits[np.arange(len(exits)), exits - 1]
    acc = float((ans.argmax(-1) == labels).mean())
    blocks = float(exits.mean())
    return {"policy": name, "params": params, "acc": acc, "mean_blocks": blocks, "saved": 1 - blocks / L,
            "ece": ece(ans, labels), "exit_hist": np.bincount(exits, minlength=L + 1)[1:].tolist()}


# ------------------------------------------------------------------------------------- q_exit

def train_q_exit(data, d, L, hidden, epochs, lr, beta, lambda_p, eps, seed, batch=256):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prior = C.geometric_prior(lambda_p, L, eps)
    qx = C.QExit(d, L, hidden)
    opt = torch.optim.Adam(qx.parameters(), lr=lr)
    tr_m = torch.from_numpy(data["tr_pooled"])
    tr_ce = torch.from_numpy(ce_of(data["tr_logits"], data["tr_labels"]).astype(np.float32))
    dv_m = torch.from_numpy(data["dv_pooled"])
    dv_ce = torch.from_numpy(ce_of(data["dv_logits"], data["dv_labels"]).astype(np.float32))
    n = len(tr_m)
    steps = epochs * math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    best = None
    for ep in range(epochs):
        qx.train()
        perm = rng.permutation(n)
        tot = 0.0
        for i in range(0, n, batch):
            idx = torch.from_numpy(perm[i:i + batch])
            loss, _, _ = C.q_exit_loss(qx(tr_m[idx]), tr_ce[idx], prior, beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
        qx.eval()
        with torch.no_grad():
            dl, dtask, dkl = C.q_exit_loss(qx(dv_m), dv_ce, prior, beta)
        log(f"q_exit H {hidden} epoch {ep + 1}/{epochs}: train loss {tot / n:.4f}; dev loss {float(dl):.4f} "
            f"(task {float(dtask):.4f}, KL {float(dkl):.4f})")
        if best is None or float(dl) < best[0]:
            best = (float(dl), ep + 1, {k: v.clone() for k, v in qx.state_dict().items()})
    qx.load_state_dict(best[2])
    log(f"q_exit H {hidden}: dev-best epoch {best[1]} (dev loss {best[0]:.4f}); prior {np.round(prior, 4).tolist()}")
    return qx, best[0], best[1]


def q_exit_curve(lam, logits, labels, qs):
    rows = []
    for q in qs:
        ex = C.q_exit_exit_blocks(lam, q)
        rows.append(policy_row("q_exit", {"q": q}, logits, labels, ex))
    return rows


# ------------------------------------------------------------------------------- learned_gate

def train_gate(phi, targets, power, L, steps=300, seed=0):
    """Per-layer logistic regressions with class-balancing weights (measured on the targets):
    positives weighted n / (2 n_pos), negatives n / (2 n_neg), per gate. Full-batch LBFGS."""
    torch.manual_seed(seed)
    gate = C.LearnedGate(L, power)
    x = torch.from_numpy(phi)
    y = torch.from_numpy(targets)
    n = len(y)
    pos = y.sum(0).clamp(1, n - 1)
    w = torch.where(y > 0, n / (2 * pos), n / (2 * (n - pos)))
    opt = torch.optim.LBFGS(gate.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(gate.gate_logits(x), y, weight=w)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = float(F.binary_cross_entropy_with_logits(gate.gate_logits(x), y, weight=w))
    return gate, final, (pos / n).tolist()


def gate_scores_of(gate, phi):
    t = {k: v.detach().numpy() for k, v in gate.state_dict().items()}
    return C.gate_scores_np(t, phi)


# --------------------------------------------------------------------------------------- main

STATIC_SHARE = 0.9


def static(row):
    """The setting acts as a static depth: >= 90% of the samples exit at one block. The threshold
    grids stop short of those (as beex/policies.py's grids stop short of switching a condition off):
    on a backbone whose block 1 is as good as block 6 they win on dev by sending (nearly) everyone
    out at one block, which no longer tells sure samples from unsure ones."""
    return max(row["exit_hist"]) >= STATIC_SHARE * sum(row["exit_hist"])


def choose(settings, logits, labels, idx, max_drop, allow_static=False):
    """The setting with the fewest mean blocks on the rows idx whose accuracy there is >= the
    full-depth accuracy there - max_drop, skipping static ones unless allow_static; ties -> higher
    accuracy, then the setting's own "tie" key. settings: [{"exits": [N] 1-based, "tie": tuple}]."""
    L = logits.shape[1]
    lg, lb = logits[idx], labels[idx]
    full = float((lg[:, L - 1].argmax(-1) == lb).mean())
    best = None
    for st in settings:
        ex = st["exits"][idx]
        acc = float((lg[np.arange(len(idx)), ex - 1].argmax(-1) == lb).mean())
        if acc + 1e-9 < full - max_drop:
            continue
        if not allow_static and np.bincount(ex).max() >= STATIC_SHARE * len(ex):
            continue
        key = (float(ex.mean()), -acc) + tuple(st["tie"])
        if best is None or key < best[0]:
            best = (key, st)
    return None if best is None else best[1]


def crossfit_choice(settings, logits, labels, max_drop, allow_static=False, seed=0):
    """Selection measured honestly on dev: choose on one half (as on all of dev), score the other
    half, both ways. Returns acc and mean blocks over the scored halves and the two choices."""
    correct = blocks = 0.0
    picks = []
    for fit, test in crossfit_folds(len(labels), 2, seed):
        st = choose(settings, logits, labels, fit, max_drop, allow_static)
        if st is None:
            st = settings[-1]
        ex = st["exits"][test]
        correct += float((logits[test, ex - 1].argmax(-1) == labels[test]).sum())
        blocks += float(ex.sum())
        picks.append(st["name"])
    return {"acc": correct / len(labels), "mean_blocks": blocks / len(labels), "choices": picks}


def pick_min_blocks(rows, floor):
    ok = [r for r in rows if r["acc"] + 1e-9 >= floor and not static(r)]
    if not ok:
        return None
    return min(ok, key=lambda r: (r["mean_blocks"], -r["acc"]))


def fmt_row(r):
    return (f"{r['policy']:18s} {json.dumps(r['params']):34s} acc {100 * r['acc']:6.2f}  blocks {r['mean_blocks']:.3f}  "
            f"saved {100 * r['saved']:5.1f}%  ECE {r['ece']:.4f}  exits {r['exit_hist']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", default="models/sst2-default")
    ap.add_argument("--cache")
    ap.add_argument("--train-limit", type=int, default=30000,
                    help="a seeded random subset of train rows for the controllers (0 = all; CPU time)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 64], help="q_exit hidden sizes to try")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--betas", type=float, nargs="+", default=[0.5, 0.05, 0.005],
                    help="KL weights to try (the authors': 0.5)")
    ap.add_argument("--lambda-p", type=float, default=0.1)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--q", type=float, default=0.5, help="q_exit's default threshold (in the grid; wins ties)")
    ap.add_argument("--powers", type=float, nargs="+", default=[2.0, 1.0, 0.5, 4.0])
    ap.add_argument("--lambda-costs", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5])
    ap.add_argument("--tau", type=float, default=0.5, help="learned_gate's default threshold (in the grid; wins ties)")
    ap.add_argument("--max-drop", type=float, default=0.003)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write every number to this JSON file")
    ap.add_argument("--md", help="write the report (tables) as markdown to this file")
    ap.add_argument("--write", action="store_true", help="export into the model directory")
    args = ap.parse_args()
    set_threads(1)

    mdir = repo_path(args.model_dir)
    model, cfg = load_model_dir(mdir)
    L, d = cfg["n_layers"], cfg["d_model"]
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"), lowercase=cfg.get("lowercase", True))
    cache = args.cache or os.path.join(REPO, "runs", f"ctrl_cache_{os.path.basename(mdir.rstrip('/'))}_{args.train_limit}.npz")
    data = load_cache(model, cfg, tok, cache, args.train_limit)
    dv_logits, dv_labels = data["dv_logits"], data["dv_labels"]
    tr_logits, tr_labels = data["tr_logits"], data["tr_labels"]
    accs = [float((dv_logits[:, i].argmax(-1) == dv_labels).mean()) for i in range(L)]
    full = accs[-1]
    floor = full - args.max_drop
    log(f"dev static depth acc {' '.join(f'{100 * a:.2f}' for a in accs)}; full {100 * full:.2f}, floor {100 * floor:.2f}")
    out = {"model": args.model_dir, "static_depth_acc": accs, "args": vars(args), "policies": {}}

    # existing policies at the config's thresholds
    rows = []
    for pol in POLICY_ORDER:
        params = cfg["thresholds"][pol]
        rows.append(policy_row(pol, params, dv_logits, dv_labels, exit_blocks(pol, params, dv_logits)))
    rows.append(policy_row("none", {}, dv_logits, dv_labels, np.full(len(dv_labels), L)))

    # ---- q_exit: train every (beta, hidden); choose (beta, hidden, q) on dev: the fewest mean blocks
    # with dev acc >= full depth - max_drop, among settings that do not act as a static depth (see
    # `static`); ties -> higher acc, q nearest the default, the authors' beta, the larger hidden.
    qs = sorted({round(float(q), 2) for q in np.arange(0.05, 1.0, 0.05)} | {args.q})
    q_runs = []
    for beta in args.betas:
        for H in args.hidden:
            qx, dl, ep = train_q_exit(data, d, L, H, args.epochs, args.lr, beta, args.lambda_p, args.eps, args.seed)
            qt = {k: v.detach().numpy() for k, v in qx.state_dict().items()}
            lam = C.q_exit_lambdas_np(qt, data["dv_pooled"])
            curve = q_exit_curve(lam, dv_logits, dv_labels, qs)
            at = next(r for r in curve if r["params"]["q"] == args.q)
            run = {"beta": beta, "hidden": H, "dev_loss": dl, "epoch": ep, "curve": curve, "at_q": at,
                   "lambda_mean": lam.mean(0).tolist(), "lambda_std": lam.std(0).tolist(), "model": qx, "lam": lam}
            q_runs.append(run)
            log(f"q_exit beta {beta} H {H}: dev lambda mean {np.round(lam.mean(0), 3).tolist()} std "
                f"{np.round(lam.std(0), 3).tolist()}; at q {args.q}: " + fmt_row(at))
            for r in curve:
                log("    " + fmt_row(r))
    q_settings = [{"name": f"beta {r['beta']} H {r['hidden']} q {row['params']['q']}", "run": r, "row": row,
                   "exits": C.q_exit_exit_blocks(r["lam"], row["params"]["q"]),
                   "tie": (abs(row["params"]["q"] - args.q), abs(r["beta"] - 0.5), -r["hidden"])}
                  for r in q_runs for row in r["curve"]]
    st = choose(q_settings, dv_logits, dv_labels, np.arange(len(dv_labels)), args.max_drop)
    if st is not None:
        qrun, q_row = st["run"], st["row"]
    else:
        qrun = next(r for r in q_runs if r["beta"] == 0.5)
        q_row = qrun["at_q"]
        log("q_exit: no setting qualifies; keeping the authors' beta 0.5 at the default q")
    crossfit = {"q_exit": crossfit_choice(q_settings, dv_logits, dv_labels, args.max_drop)}
    qx, H, q, dv_lam = qrun["model"], qrun["hidden"], q_row["params"]["q"], qrun["lam"]
    with torch.no_grad():
        torch_lam = qx(torch.from_numpy(data["dv_pooled"])).numpy()
    log(f"q_exit chosen: beta {qrun['beta']} H {H} q {q}; |torch - numpy lambda| max {np.abs(torch_lam - dv_lam).max():.2e}: "
        + fmt_row(q_row))
    out["q_exit_runs"] = [{k: v for k, v in r.items() if k not in ("model", "lam")} for r in q_runs]
    out["q_exit_choice"] = {"beta": qrun["beta"], "hidden": H, "q": q}
    out["q_exit_curve"] = qrun["curve"]

    # ---- learned_gate
    tr_ce = ce_of(tr_logits, tr_labels)
    gate_runs = []
    taus = sorted({round(float(t), 3) for t in np.concatenate([np.arange(0.05, 0.95, 0.05), [0.97, 0.99]])} | {args.tau})
    for k in args.powers:
        tr_phi = C.gate_features_np(tr_logits, k)
        dv_phi = C.gate_features_np(dv_logits, k)
        for lc in args.lambda_costs:
            oracle = C.oracle_exits(tr_ce, lc)
            tgt = C.gate_targets(oracle, L)
            gate, bce, pos_frac = train_gate(tr_phi, tgt, k, L, seed=args.seed)
            g = gate_scores_of(gate, dv_phi)
            grows = [policy_row("learned_gate", {"tau": t}, dv_logits, dv_labels, C.learned_gate_exit_blocks(g, t))
                     for t in taus]
            at05 = next(r for r in grows if r["params"]["tau"] == 0.5)
            pick = pick_min_blocks(grows, floor)
            run = {"power": k, "lambda_cost": lc, "train_bce": bce, "target_pos_frac": pos_frac,
                   "oracle_hist": np.bincount(oracle, minlength=L + 1)[1:].tolist(), "curve": grows,
                   "at_0.5": at05, "pick": pick, "gate": gate, "g": g}
            gate_runs.append(run)
            log(f"gate k {k} lambda_cost {lc}: oracle exits {run['oracle_hist']}; tau 0.5: acc {100 * at05['acc']:.2f} "
                f"blocks {at05['mean_blocks']:.3f}; best within floor: "
                + (f"tau {pick['params']['tau']} acc {100 * pick['acc']:.2f} blocks {pick['mean_blocks']:.3f}" if pick else "none"))
    # choose (power, lambda_cost, tau) as q_exit's: fewest dev blocks within the floor among settings
    # that do not act as a static depth; ties -> higher acc, tau nearest the default, k = 2, smaller lambda_cost
    g_settings = []
    for r in gate_runs:
        r["at_tau"] = next(x for x in r["curve"] if x["params"]["tau"] == args.tau)
        for row in r["curve"]:
            g_settings.append({"name": f"k {r['power']} lambda_cost {r['lambda_cost']} tau {row['params']['tau']}",
                               "run": r, "row": row, "exits": C.learned_gate_exit_blocks(r["g"], row["params"]["tau"]),
                               "tie": (abs(row["params"]["tau"] - args.tau), abs(r["power"] - 2), r["lambda_cost"])})
    st = choose(g_settings, dv_logits, dv_labels, np.arange(len(dv_labels)), args.max_drop)
    if st is not None:
        grun, g_row = st["run"], st["row"]
    else:
        grun = next(r for r in gate_runs if r["power"] == 2.0)
        g_row = grun["at_tau"]
        log("learned_gate: no setting qualifies; keeping k 2, the first lambda_cost, the default tau")
    crossfit["learned_gate"] = crossfit_choice(g_settings, dv_logits, dv_labels, args.max_drop)
    # the entropy family and patience as beex/policies.py calibrates them (its grids, no static rule)
    for pol in POLICY_ORDER:
        grid = _grid(pol, L, dv_logits.shape[2])
        sts = [{"name": json.dumps(pr), "exits": exit_blocks(pol, pr, dv_logits), "tie": (i,)} for i, pr in enumerate(grid)]
        crossfit[pol] = crossfit_choice(sts, dv_logits, dv_labels, args.max_drop, allow_static=True)
    for pol, cf in crossfit.items():
        log(f"cross-fitted selection {pol}: acc {100 * cf['acc']:.2f} blocks {cf['mean_blocks']:.3f} (choices {cf['choices']})")
    out["crossfit_selection"] = crossfit
    gate, power, tau = grun["gate"], grun["power"], g_row["params"]["tau"]
    log(f"learned_gate chosen: k {power}, lambda_cost {grun['lambda_cost']}: " + fmt_row(g_row))
    gt = {k: v.detach().numpy() for k, v in gate.state_dict().items()}
    dv_phi = C.gate_features_np(dv_logits, power)
    dv_g = C.gate_scores_np(gt, dv_phi)
    with torch.no_grad():
        tg = gate(torch.from_numpy(dv_phi)).numpy()
    log(f"|torch - numpy gate| max {np.abs(tg - dv_g).max():.2e}; w {gt['weight'].round(3).tolist()} b {gt['bias'].round(3).tolist()}")
    out["gate_runs"] = [{k: v for k, v in r.items() if k not in ("gate", "g")} for r in gate_runs]
    out["learned_gate_choice"] = {"power": power, "lambda_cost": grun["lambda_cost"], "tau": tau}
    out["learned_gate_curve_chosen"] = grun["curve"]

    rows += [q_row, g_row]
    # ---- conformal
    conf = {}
    for pol, ex in (("learned_gate", C.learned_gate_exit_blocks(dv_g, tau)),
                    ("entropy_reduction", exit_blocks("entropy_reduction", cfg["thresholds"]["entropy_reduction"], dv_logits)),
                    ("q_exit", C.q_exit_exit_blocks(dv_lam, q))):
        probs = C.answer_probs(dv_logits, ex)
        qh = C.conformal_qhat(probs, dv_labels, args.alpha)
        sets = C.conformal_sets(probs, qh)
        cf = C.conformal_crossfit(probs, dv_labels, args.alpha)
        conf[pol] = {"alpha": args.alpha, "qhat": qh,
                     "in_sample_coverage": float(sets[np.arange(len(dv_labels)), dv_labels].mean()),
                     "in_sample_mean_size": float(sets.sum(1).mean()), "crossfit": cf}
        log(f"conformal {pol}: alpha {args.alpha} qhat {qh:.6f}; in-sample coverage {conf[pol]['in_sample_coverage']:.4f} "
            f"size {conf[pol]['in_sample_mean_size']:.3f}; 2-fold coverage {cf['coverage']:.4f} size {cf['mean_size']:.3f} "
            f"(qhats {[round(x, 4) for x in cf['qhats']]})")
    out["conformal"] = conf
    out["policies"] = rows
    log("dev, every policy:")
    for r in rows:
        log("  " + fmt_row(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.md:
        write_md(args.md, out, cfg, H)
    if args.write:
        write_model(mdir, cfg, model, tok, qx, H, gate, power, q, tau, conf, q_row, g_row, args.alpha)


# ------------------------------------------------------------------------------------- report

def write_md(path, out, cfg, hidden):
    L = len(out["static_depth_acc"])
    cmd = "/usr/bin/python3 tools/train/train_controllers.py " + out["model"] + " " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in sorted(out["args"].items())
        if k not in ("model_dir", "json", "md", "write", "cache") and v is not None and v is not False)
    lines = [f"# Learned exit controllers on {out['model']} (SST-2 dev, 872 sentences)", "",
             "Frozen backbone and exit heads; controllers trained on train rows, every threshold chosen on dev.",
             "Reproduce (add `--write` to export into the model directory):", "", "    " + cmd, "",
             "Static depth (every sample answers at exit k): "
             + " ".join(f"{100 * a:.2f}" for a in out["static_depth_acc"]), "",
             "| policy | thresholds | dev acc | mean blocks | compute saved | ECE (answering exit) | exits at block 1..L |",
             "|---|---|---|---|---|---|---|"]
    for r in out["policies"]:
        lines.append(f"| {r['policy']} | `{json.dumps(r['params'])}` | {100 * r['acc']:.2f} | {r['mean_blocks']:.3f} | "
                     f"{100 * r['saved']:.1f}% | {r['ece']:.4f} | {' '.join(map(str, r['exit_hist']))} |")
    lines += ["", f"q_exit runs (KL weight beta, hidden H), dev lambda per block (mean / std over dev), dev at q {out['args']['q']}:", "",
              "| beta | H | dev loss | lambda mean | lambda std | acc / blocks at q | exits at block 1..L |", "|---|---|---|---|---|---|---|"]
    for r in out["q_exit_runs"]:
        a = r["at_q"]
        lines.append(f"| {r['beta']} | {r['hidden']} | {r['dev_loss']:.4f} | {' '.join(f'{v:.3f}' for v in r['lambda_mean'])} | "
                     f"{' '.join(f'{v:.3f}' for v in r['lambda_std'])} | {100 * a['acc']:.2f} / {a['mean_blocks']:.3f} | "
                     f"{' '.join(map(str, a['exit_hist']))} |")
    qc = out["q_exit_choice"]
    lines += ["", f"Chosen q_exit: beta {qc['beta']}, hidden {hidden}; its dev curve over q:", "",
              "| q | dev acc | mean blocks | ECE | exits at block 1..L |", "|---|---|---|---|---|"]
    for r in out["q_exit_curve"]:
        lines.append(f"| {r['params']['q']} | {100 * r['acc']:.2f} | {r['mean_blocks']:.3f} | {r['ece']:.4f} | "
                     f"{' '.join(map(str, r['exit_hist']))} |")
    ch = out["learned_gate_choice"]
    lines += ["", f"learned_gate runs (power k, lambda_cost): oracle exits on train, dev at tau 0.5, and the fewest-blocks tau "
              f"within {100 * out['args']['max_drop']:.1f} point of full depth:", "",
              "| k | lambda_cost | oracle exits (train) | tau 0.5: acc / blocks | best tau: acc / blocks |", "|---|---|---|---|---|"]
    for r in out["gate_runs"]:
        a, p = r["at_0.5"], r["pick"]
        lines.append(f"| {r['power']} | {r['lambda_cost']} | {' '.join(map(str, r['oracle_hist']))} | "
                     f"{100 * a['acc']:.2f} / {a['mean_blocks']:.3f} | "
                     + (f"{p['params']['tau']}: {100 * p['acc']:.2f} / {p['mean_blocks']:.3f} |" if p else "none |"))
    lines += ["", f"Chosen learned_gate: k {ch['power']}, lambda_cost {ch['lambda_cost']}; its dev curve over tau:", "",
              "| tau | dev acc | mean blocks | ECE | exits at block 1..L |", "|---|---|---|---|---|"]
    for r in out["learned_gate_curve_chosen"]:
        lines.append(f"| {r['params']['tau']} | {100 * r['acc']:.2f} | {r['mean_blocks']:.3f} | {r['ece']:.4f} | "
                     f"{' '.join(map(str, r['exit_hist']))} |")
    lines += ["", "Threshold selection measured honestly (2-fold on dev: each policy's settings chosen on one half by "
              "the same rule, scored on the other half, both ways; the entropy family and patience over beex/policies.py's "
              "grids, q_exit over (beta, hidden, q), learned_gate over (k, lambda_cost, tau)):", "",
              "| policy | cross-fitted dev acc | mean blocks | choices on the two halves |", "|---|---|---|---|"]
    for pol, cf in out["crossfit_selection"].items():
        lines.append(f"| {pol} | {100 * cf['acc']:.2f} | {cf['mean_blocks']:.3f} | {'; '.join(cf['choices'])} |")
    lines += ["", "Split-conformal sets (score 1 - p_y of the answering exit; set = {c : 1 - p_c <= qhat}); qhat on all "
              "of dev (the shipped value, in-sample coverage) and 2-fold cross-fitted (qhat from one half, measured on the other, "
              "both ways):", "", "| policy | alpha | qhat (all dev) | in-sample coverage / size | cross-fitted coverage / mean size | half qhats |",
              "|---|---|---|---|---|---|"]
    for pol, c in out["conformal"].items():
        cf = c["crossfit"]
        lines.append(f"| {pol} | {c['alpha']} | {c['qhat']:.4f} | {c['in_sample_coverage']:.4f} / {c['in_sample_mean_size']:.3f} | "
                     f"{cf['coverage']:.4f} / {cf['mean_size']:.3f} | {' '.join(f'{q:.4f}' for q in cf['qhats'])} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------- export

def single_sample(model, ids):
    x = torch.tensor([ids], dtype=torch.int64)
    m, z = pooled_and_logits(model, x, torch.ones_like(x, dtype=torch.bool))
    return m[0].numpy(), z[0].numpy()


def write_model(mdir, cfg, model, tok, qx, hidden, gate, power, q, tau, conf, q_row, g_row, alpha):
    st_path = os.path.join(mdir, "model.safetensors")
    with open(st_path, "rb") as f:
        old_blob = f.read()
    tensors, _ = safetensors_io.load(st_path)
    new = C.export_tensors(qx, gate)
    clash = set(new) & set(tensors)
    base = {k: v for k, v in tensors.items() if k not in new}
    if clash:
        log(f"replacing the controller tensors already in the file: {sorted(clash)}")
    cfg = json.loads(json.dumps(cfg))
    cfg["q_exit"] = {"hidden": int(hidden)}
    cfg["learned_gate"] = {"power": float(power)}
    cfg.setdefault("thresholds", {})
    cfg["thresholds"]["q_exit"] = {"q": float(q)}
    cfg["thresholds"]["learned_gate"] = {"tau": float(tau)}
    cfg["conformal"] = {p: {"alpha": float(alpha), "qhat": float(conf[p]["qhat"])}
                        for p in ("learned_gate", "entropy_reduction")}
    m = dict(cfg.get("metrics", {}))
    m.update({"dev_acc_q_exit": round(q_row["acc"], 4), "mean_blocks_q_exit": round(q_row["mean_blocks"], 4),
              "dev_acc_learned_gate": round(g_row["acc"], 4), "mean_blocks_learned_gate": round(g_row["mean_blocks"], 4),
              "dev_ece_learned_gate": round(g_row["ece"], 4),
              "conformal_crossfit_coverage_learned_gate": round(conf["learned_gate"]["crossfit"]["coverage"], 4),
              "conformal_crossfit_mean_size_learned_gate": round(conf["learned_gate"]["crossfit"]["mean_size"], 4)})
    cfg["metrics"] = m
    all_t = dict(base)
    all_t.update(new)
    safetensors_io.save(all_t, st_path, metadata={"config": json.dumps(cfg, sort_keys=True)})
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    check_tensors_unchanged(old_blob, st_path, set(base))

    # golden: every existing field kept; the new ones added per sample
    gpath = os.path.join(mdir, "golden.json")
    with open(gpath) as f:
        golden = json.load(f)
    qt = {k: v.detach().numpy() for k, v in qx.state_dict().items()}
    gt = {k: v.detach().numpy() for k, v in gate.state_dict().items()}
    model2, cfg2 = load_model_dir(mdir)
    for s in golden["samples"]:
        pooled, logits = single_sample(model2, s["ids"])
        old = np.asarray(s["logits"], dtype=np.float32)
        if not np.array_equal(old.view(np.uint32), logits.view(np.uint32)):
            raise SystemExit(f"golden logits changed for {s['text'][:40]!r}: {old} vs {logits}")
        lam = C.q_exit_lambdas_np(qt, pooled[None])[0]
        g = C.gate_scores_np(gt, C.gate_features_np(logits[None], power))[0]
        s["lambdas"] = [float(v) for v in lam]
        s["gate_scores"] = [float(v) for v in g]
        s["exits"]["q_exit"] = int(C.q_exit_exit_blocks(lam[None], q)[0])
        s["exits"]["learned_gate"] = int(C.learned_gate_exit_blocks(g[None], tau)[0])
    golden["config"] = cfg2
    golden["policies"]["q_exit"] = {"q": float(q)}
    golden["policies"]["learned_gate"] = {"tau": float(tau)}
    with open(gpath, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    ex = {p: sorted({s["exits"][p] for s in golden["samples"]}) for p in ("q_exit", "learned_gate")}
    log(f"wrote {mdir}: {len(new)} controller tensors, config, metadata, golden.json (exit blocks taken: {ex})")


def _raw_tensors(blob):
    import struct
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


def check_tensors_unchanged(old_blob, new_path, names):
    with open(new_path, "rb") as f:
        new_raw = _raw_tensors(f.read())
    old_raw = _raw_tensors(old_blob)
    for k in names:
        if old_raw[k] != new_raw[k]:
            raise SystemExit(f"tensor {k} changed in the export")
    log(f"{len(names)} existing tensors byte-identical (dtype, shape, bytes)")


if __name__ == "__main__":
    main()
