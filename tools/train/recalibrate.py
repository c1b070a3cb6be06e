#!/usr/bin/python3
"""Static-depth curve, calibration and exit thresholds of an exported model, on dev only:

    /usr/bin/python3 tools/train/recalibrate.py models/sst2-default            # report only
    /usr/bin/python3 tools/train/recalibrate.py models/sst2-default --write    # and re-export

Reports, from the model's raw exit logits (its stored temperatures ignored):
- dev accuracy at every static depth k = 1..L (every sample answers at exit k);
- ECE (15 bins) per exit before and after temperature scaling (in-sample on dev, and 2-fold
  cross-fitted on dev: T fitted on one half, ECE scored on the other);
- every policy at thresholds calibrated on the temperature-scaled dev logits (fewest mean blocks
  with accuracy >= full depth - --max-drop), and the compute-matched static depth.

--write stores one temperature per exit (config key exit_temperatures), the recalibrated
thresholds and metrics in model.safetensors' config, config.json, and regenerates golden.json on
the same golden sentences. The tensors are written back unchanged (F16 tables stay F16).
--no-temperatures keeps the exits uncalibrated (T = 1, no key). Models without a dev split (TREC)
use the trainer's 500 held-out training rows for everything above, and report the test set too.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from beex import safetensors_io  # noqa: E402
from beex.calibration import apply_temperatures, crossfit_ece, ece, fit_temperatures  # noqa: E402
from beex.data import encode_all, read_tsv  # noqa: E402
from beex.export import golden_samples, load_model_dir  # noqa: E402
from beex.policies import POLICIES, calibrate, evaluate_policy  # noqa: E402
from beex.tokenizer import WordPieceTokenizer  # noqa: E402
from beex.train import exit_accuracies, predict_all, repo_path, set_threads  # noqa: E402


def dev_split(cfg):
    """(dev texts, labels, test texts or None, labels) as the trainer selected them."""
    train = cfg.get("train_data", "data/sst2/train.tsv")
    if "trec" in train:
        tr, trl = read_tsv(repo_path(train))
        perm = np.random.RandomState(12345).permutation(len(tr))  # beex/train.py's holdout
        ho = perm[-500:]
        te, tel = read_tsv(repo_path("data/trec/test.tsv"))
        return [tr[i] for i in ho], [trl[i] for i in ho], te, tel
    dv, dvl = read_tsv(repo_path("data/sst2/dev.tsv"))
    return dv, dvl, None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-temperatures", action="store_true")
    ap.add_argument("--max-drop", type=float, default=0.003,
                    help="calibration: accuracy may fall this far below full depth (default 0.003 = 0.3 points)")
    ap.add_argument("--keep-thresholds", action="store_true",
                    help="keep the config's thresholds (the parity models' hand-set ones) instead of recalibrating")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args()
    set_threads(1)
    mdir = repo_path(args.model_dir)
    model, cfg = load_model_dir(mdir)
    model.set_temperatures(None)
    L = model.cfg["n_layers"]
    tok = WordPieceTokenizer(repo_path("data/vocab/bert-base-uncased-vocab.txt"), lowercase=cfg.get("lowercase", True))
    texts, labels, te_texts, te_labels = dev_split(cfg)
    labels = np.asarray(labels)
    raw = predict_all(model, encode_all(tok, texts, cfg["max_len"]), tok.pad_id)
    accs = exit_accuracies(raw, labels)
    temps = [1.0] * L if args.no_temperatures else fit_temperatures(raw, labels)
    scaled = raw if args.no_temperatures else apply_temperatures(raw, temps)
    ece_before = [ece(raw[:, i], labels) for i in range(L)]
    ece_after = [ece(scaled[:, i], labels) for i in range(L)]
    ece_cross = [crossfit_ece(raw[:, i], labels) for i in range(L)]
    out = {"model": args.model_dir, "static_depth_acc": accs, "temperatures": temps,
           "ece_before": ece_before, "ece_after_in_sample": ece_after, "ece_after_crossfit": ece_cross,
           "policies": {}}
    name = "held-out" if te_texts is not None else "dev"
    print(f"{args.model_dir}: {len(labels)} {name} rows")
    print("static depth k:   " + " ".join(f"{k:>6d}" for k in range(1, L + 1)))
    print(f"{name} acc:          " + " ".join(f"{100 * a:6.2f}" for a in accs))
    print("temperature:      " + " ".join(f"{t:6.3f}" for t in temps))
    print("ECE before:       " + " ".join(f"{e:6.4f}" for e in ece_before))
    print("ECE after (dev):  " + " ".join(f"{e:6.4f}" for e in ece_after))
    print("ECE after (2-fold)" + " ".join(f"{e:6.4f}" for e in ece_cross))
    thresholds = {}
    for pol in POLICIES:
        if pol == "none":
            continue
        if args.keep_thresholds and pol in cfg.get("thresholds", {}):
            params = cfg["thresholds"][pol]
            acc, blocks, _ = evaluate_policy(pol, params, scaled, labels)
        else:
            params, acc, blocks = calibrate(pol, scaled, labels, args.max_drop)
        thresholds[pol] = params
        # the static depth of equal compute: the deepest k <= mean blocks (and the next one up)
        k_lo = max(1, int(np.floor(blocks + 1e-9)))
        k_hi = min(L, int(np.ceil(blocks - 1e-9)))
        out["policies"][pol] = {"params": params, "acc": acc, "mean_blocks": blocks}
        print(f"policy {pol:18s} {json.dumps(params):32s} acc {100 * acc:6.2f}  mean blocks {blocks:.3f}  "
              f"(static depth {k_lo}: {100 * accs[k_lo - 1]:.2f}, {k_hi}: {100 * accs[k_hi - 1]:.2f})")
    if te_texts is not None:
        te_raw = predict_all(model, encode_all(tok, te_texts, cfg["max_len"]), tok.pad_id)
        te_scaled = te_raw if args.no_temperatures else apply_temperatures(te_raw, temps)
        te_accs = exit_accuracies(te_raw, te_labels)
        er = evaluate_policy("entropy_reduction", thresholds["entropy_reduction"], te_scaled, te_labels)
        out["test"] = {"static_depth_acc": te_accs, "entropy_reduction": {"acc": er[0], "mean_blocks": er[1]},
                       "ece_before": [ece(te_raw[:, i], te_labels) for i in range(L)],
                       "ece_after": [ece(te_scaled[:, i], te_labels) for i in range(L)]}
        print("test acc:         " + " ".join(f"{100 * a:6.2f}" for a in te_accs))
        print(f"test entropy_reduction: acc {100 * er[0]:.2f}, mean blocks {er[1]:.3f}; test ECE last exit "
              f"{out['test']['ece_before'][-1]:.4f} -> {out['test']['ece_after'][-1]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if not args.write:
        return
    er = out["policies"]["entropy_reduction"]
    cfg = dict(cfg)
    cfg["thresholds"] = thresholds
    if args.no_temperatures:
        cfg.pop("exit_temperatures", None)
    else:
        cfg["exit_temperatures"] = temps
    metrics = dict(cfg.get("metrics", {}))
    metrics.update({"dev_acc_full": round(accs[-1], 4), "dev_acc_entropy_reduction": round(er["acc"], 4),
                    "mean_blocks_entropy_reduction": round(er["mean_blocks"], 4),
                    "dev_ece_last_exit_before": round(ece_before[-1], 4),
                    "dev_ece_last_exit_after": round(ece_after[-1], 4)})
    cfg["metrics"] = metrics
    tensors, _ = safetensors_io.load(os.path.join(mdir, "model.safetensors"))
    safetensors_io.save(tensors, os.path.join(mdir, "model.safetensors"),
                        metadata={"config": json.dumps(cfg, sort_keys=True)})
    if os.path.exists(os.path.join(mdir, "model.pt")):
        torch.save(tensors, os.path.join(mdir, "model.pt"))
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    model, cfg2 = load_model_dir(mdir)  # the model as now stored (temperatures applied)
    with open(os.path.join(mdir, "golden.json")) as f:
        old = json.load(f)
    policies = {"none": {}}
    policies.update({k: v for k, v in cfg["thresholds"].items() if k in POLICIES})
    gt = [s["text"] for s in old["samples"]]
    gl = [s["label"] for s in old["samples"]]
    golden = {"config": cfg2, "policies": policies, "samples": golden_samples(model, tok, gt, gl, policies)}
    with open(os.path.join(mdir, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    exits = {p: sorted({s["exits"][p] for s in golden["samples"]}) for p in policies}
    print(f"wrote {args.model_dir}: config, safetensors metadata, golden.json (exit blocks taken per policy: {exits})")


if __name__ == "__main__":
    main()
