#!/usr/bin/python3
"""Train one model from a config file:

    /usr/bin/python3 tools/train/train.py tools/train/configs/sst2-default.json

Logs to tools/train/runs/<name>/log.txt, checkpoints there (ckpt.pt) and resumes from it when
started again; --fresh discards it. See README.md."""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from beex.train import TRAIN_DIR, Logger, load_config, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--fresh", action="store_true", help="ignore and delete an existing checkpoint")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                    help="override a config value, e.g. --set train.epochs=1")
    ap.add_argument("--name", help="run name (default: the config's name)")
    ap.add_argument("--export-only", action="store_true",
                    help="no training: take the best state of the run's checkpoint, calibrate and export")
    args = ap.parse_args()
    cfg = load_config(args.config, args.set)
    if args.name:
        cfg["name"] = args.name
    run_dir = os.path.join(TRAIN_DIR, "runs", cfg["name"])
    if args.fresh and os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    log = Logger(os.path.join(run_dir, "log.txt"))
    log(f"run {cfg['name']} from {args.config}")
    run(cfg, run_dir, log, export_only=args.export_only)


if __name__ == "__main__":
    main()
