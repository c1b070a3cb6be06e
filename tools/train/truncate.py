#!/usr/bin/python3
"""Keep the first N blocks of an exported model and their exits: the model a user gets by always
answering at exit N, as a file that costs N blocks instead of L.

    /usr/bin/python3 tools/train/truncate.py SRC_DIR --blocks N --out DST_DIR

Why this is a model and not a shortcut: in BEExformer every block has its own exit head, trained
jointly with the rest (docs/MODEL.md, Training), so exit N reads block N's output exactly as it did
inside the L-block model; dropping blocks N+1..L and their heads changes no logit of exits 1..N
(checked below against the source model on the golden sentences). Choosing N is a selection on
dev like any other: the static-depth curve of `recalibrate.py` says which exit is as good as the last.

What is kept, byte for byte: the embedding, blocks 0..N-1 and exits 0..N-1 (F16 tables stay F16),
the first N exit temperatures. What is dropped, because it was fitted to L exits: the learned exit
controllers (q_exit, learned_gate tensors and their config keys, conformal q-hats) and the dev
metrics. Run `recalibrate.py DST --write` (thresholds, golden.json) and, for the controllers,
`train_controllers.py DST --write` afterwards; `truncated_from` in the config records the source.
"""
import argparse
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from beex import safetensors_io  # noqa: E402
from beex.export import CONTROLLER_PREFIXES, load_model_dir, sample_outputs  # noqa: E402
from beex.train import set_threads  # noqa: E402

# Config keys that belong to the learned controllers or describe the L-block model's dev behaviour.
DROPPED_KEYS = ("q_exit", "learned_gate", "conformal", "metrics")
DROPPED_THRESHOLDS = ("q_exit", "learned_gate")
LAYER_TENSOR = re.compile(r"^(blocks|exits)\.(\d+)\.")


def truncate(src, blocks, out):
    """Writes the first `blocks` blocks of the model in `src` to `out`. Returns (the max abs difference
    of exits 1..blocks against the source on its golden sentences, 0 unless something is broken; the
    source's block count; tensors written; golden sentences compared)."""
    tensors, meta = safetensors_io.load(os.path.join(src, "model.safetensors"))
    cfg = json.loads(meta["config"])
    layers = cfg["n_layers"]
    if not 1 <= blocks < layers:
        raise ValueError(f"--blocks must be in 1..{layers - 1} for a {layers}-block model, got {blocks}")
    if os.path.abspath(src) == os.path.abspath(out):
        raise ValueError("--out must differ from the source directory")

    kept = {}
    for name, t in tensors.items():
        if name.startswith(CONTROLLER_PREFIXES):
            continue
        m = LAYER_TENSOR.match(name)
        if m and int(m.group(2)) >= blocks:
            continue
        kept[name] = t
    cfg = dict(cfg)
    for key in DROPPED_KEYS:
        cfg.pop(key, None)
    cfg["thresholds"] = {k: v for k, v in cfg.get("thresholds", {}).items() if k not in DROPPED_THRESHOLDS}
    if "exit_temperatures" in cfg:
        cfg["exit_temperatures"] = cfg["exit_temperatures"][:blocks]
    cfg["n_layers"] = blocks
    cfg["truncated_from"] = {"n_layers": layers, "source": os.path.relpath(src)}

    os.makedirs(out, exist_ok=True)
    safetensors_io.save(kept, os.path.join(out, "model.safetensors"),
                        metadata={"config": json.dumps(cfg, sort_keys=True)})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    # recalibrate.py --write regenerates golden.json from the same sentences.
    shutil.copyfile(os.path.join(src, "golden.json"), os.path.join(out, "golden.json"))

    # Exits 1..N must be unchanged: compare with the source model on the golden sentences.
    source, _ = load_model_dir(src)
    short, _ = load_model_dir(out)
    with open(os.path.join(src, "golden.json")) as f:
        samples = json.load(f)["samples"]
    worst = 0.0
    for s in samples:
        a = sample_outputs(source, s["ids"])[:blocks]
        b = sample_outputs(short, s["ids"])
        worst = max(worst, float(abs(a - b).max()))
    return worst, layers, len(kept), len(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("--blocks", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    set_threads(1)
    worst, layers, tensors, samples = truncate(args.src, args.blocks, args.out)
    if worst != 0.0:
        raise SystemExit(f"exits 1..{args.blocks} changed by {worst} after truncation")
    print(f"wrote {args.out}: blocks 1..{args.blocks} of {layers}, {tensors} tensors "
          f"(exit logits on {samples} golden sentences identical to the source's); "
          f"next: recalibrate.py --write, train_controllers.py --write, binengine convert")


if __name__ == "__main__":
    main()
