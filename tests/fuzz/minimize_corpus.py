#!/usr/bin/env python3
"""Picks a small corpus for fuzz-abi out of many inputs.

    python3 tests/fuzz/minimize_corpus.py FUZZ_ABI_BINARY INPUT_DIR... --out DIR [--max N]

Runs every input once with --feedback, then keeps inputs greedily (each
time the one that adds the most (call site, result) pairs not yet reached)
until nothing new is added or N inputs are kept. Inputs that fail are
skipped (and listed). This is how tests/fuzz/corpus was made from the
inputs `fuzz-abi --save-new DIR` kept during long runs (`make fuzz`).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile


def feedback(binary, path, env):
    with tempfile.NamedTemporaryFile() as fb:
        r = subprocess.run([binary, "--input", path, "--feedback", fb.name],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, env=env, timeout=60)
        if r.returncode != 0:
            return None
        data = open(fb.name, "rb").read()
    return {i for i, b in enumerate(data) if b}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max", type=int, default=60)
    a = ap.parse_args()
    env = dict(os.environ)
    files = []
    for d in a.inputs:
        files += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    bits = {}
    for f in files:
        try:
            fb = feedback(a.binary, f, env)
        except subprocess.TimeoutExpired:
            fb = None
        if fb is None:
            print("skipped (fails or hangs):", f, file=sys.stderr)
            continue
        bits[f] = fb
    covered, kept = set(), []
    while len(kept) < a.max:
        best = max(bits, key=lambda f: (len(bits[f] - covered), -os.path.getsize(f)),
                   default=None)
        if best is None or not bits[best] - covered:
            break
        covered |= bits[best]
        kept.append(best)
        del bits[best]
    os.makedirs(a.out, exist_ok=True)
    for f in kept:
        data = open(f, "rb").read()
        name = hashlib.sha1(data).hexdigest()[:16]
        open(os.path.join(a.out, name), "wb").write(data)
    print(f"kept {len(kept)} inputs of {len(files)}, {len(covered)} (call site, result) pairs")


if __name__ == "__main__":
    main()
