"""Network slimming numbers of docs/benchmarks.md: ``python tests/slimming_report.py`` (~1-2 min).

(A script beside the tests, like ``prune_report.py``, whose helpers it reuses; no ``test_`` prefix,
so pytest does not collect it.)

Liu et al. 2017 on the digits CNN (its convs are followed by BatchNormalization, so the |gamma|
criterion applies directly):

1. Train the digits CNN from scratch (``train_digits``' layers, ``softmax_xent`` and Adam, cosine
   lr) with the L1 penalty lambda * sum |gamma| on both BN scales (``course.prune.finetune(...,
   slimming=lambda)`` -> ``l1_gamma_penalty``).
2. Per conv, keep the half of the channels with the largest |gamma| (``channels_to_keep(|gamma|,
   0.5, multiple=8)``: conv1 16 -> 8, conv2 32 -> 16, both multiples of 8), i.e. cut the smallest.
3. ``prune_channels`` removes them from the ONNX graph (conv rows, BN entries, the next layer's
   input channels), then fine-tune with hard labels (no penalty).

Compared with the shipped float model and with the same training without the penalty (lambda = 0,
cut by |gamma| the same way), to show what the penalty buys at the cut. Then the latency of the
slimmed model against its float model (``prune_report.latency``: our engine's reference and
default providers, onnxruntime with one thread, A/B interleaved, medians) at batch 1 and at the
450 test images.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prune_report as R  # noqa: E402  (SPLIT, DIGITS, layers_of, acc, adam)

from course import prune as P  # noqa: E402
from course.models import train_digits  # noqa: E402

LAMBDA = float(os.environ.get("SLIM_LAMBDA", "1e-2"))
EPOCHS = int(os.environ.get("SLIM_EPOCHS", "30"))
FT_EPOCHS = int(os.environ.get("SLIM_FT_EPOCHS", "8"))
CONVS = (("conv1", 1), ("conv2", 4))  # conv node name, index of its BN in build_network's layers


def train(lam: float, seed: int = 0):
    layers = train_digits.build_network(seed)
    P.finetune(layers, R.SPLIT.x_train, R.SPLIT.y_train, R.adam(2e-3), train_digits.softmax_xent,
               epochs=EPOCHS, lr=2e-3, seed=seed + 1, slimming=lam)
    return layers


def slim(layers, fraction=0.5, multiple=8):
    """(model, pruned model, {conv: kept}, {conv: cut}, {conv: |gamma|}) for trained ``layers``."""
    model = train_digits.to_onnx(layers)
    gammas = {c: np.abs(layers[b].params["scale"]) for c, b in CONVS}
    keep = {c: P.channels_to_keep(g, fraction, multiple) for c, g in gammas.items()}
    cut = {c: np.setdiff1d(np.arange(len(g)), keep[c]) for c, g in gammas.items()}
    return model, P.prune_channels(model, keep), keep, cut, gammas


def run(lam: float) -> dict:
    t0 = time.time()
    layers = train(lam)
    out = {"lambda": lam, "trained": R.acc(layers)}
    model, pruned, keep, cut, gammas = slim(layers)
    out.update(model=model, pruned=pruned, keep=keep, cut_channels=cut, gammas=gammas,
               cut=R.acc(R.layers_of(pruned)))
    ft = P.finetune(R.layers_of(pruned), R.SPLIT.x_train, R.SPLIT.y_train, R.adam(1e-3),
                    train_digits.softmax_xent, epochs=FT_EPOCHS, lr=1e-3)
    out["fine-tuned"] = R.acc(ft)
    out["final"] = train_digits.to_onnx(ft)
    out["seconds"] = time.time() - t0
    return out


def latency_table(r: dict, repeats=((1, 400), (450, 40))) -> None:
    """Print ms per batch of the float model and the slimmed one, at each batch size: median of
    ``repeats`` ((batch, runs), ...) A/B interleaved runs."""
    models = {"float": r["model"], "slimmed": r["final"]}
    print("\n| batch | model | MFLOP/image | ours ref (ms) | ours default (ms) | onnxruntime 1 thread (ms) |")
    print("|---|---|---|---|---|---|")
    for batch, n in repeats:
        lat = R.latency(models, repeats=n, x=R.SPLIT.x_test[:batch])
        for label, m in models.items():
            print(f"| {batch} | {label} | {P.total_flops(m) / 1e6:.3f} | {lat[label, 'ours (reference)']:.3f} | "
                  f"{lat[label, 'ours (default)']:.3f} | {lat[label, 'onnxruntime']:.3f} |")
        print("| {} | speed-up | | {:.2f}x | {:.2f}x | {:.2f}x |".format(batch, *(
            lat["float", e] / lat["slimmed", e] for e in ("ours (reference)", "ours (default)", "onnxruntime"))))


def main() -> None:
    t0 = time.time()
    print(f"# machine: {R.machine()}; "
          f"lambda {LAMBDA:g}, {EPOCHS} training epochs, {FT_EPOCHS} fine-tuning epochs")
    float_acc = R.acc(R.layers_of(R.DIGITS))
    runs = [run(LAMBDA), run(0.0)]
    f0 = P.total_flops(R.DIGITS)
    print(f"\nshipped float model (30 epochs, no penalty): {float_acc:.2%}, {f0 / 1e6:.3f} MFLOP/image\n")
    print("| training | trained (float) | after the cut | fine-tuned | MFLOP/image | FLOPs cut |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        f = P.total_flops(r["final"])
        print(f"| {EPOCHS} ep, lambda = {r['lambda']:g} | {r['trained']:.2%} | {r['cut']:.2%} | "
              f"{r['fine-tuned']:.2%} | {f / 1e6:.3f} | {f0 / f:.2f}x |")
    for r in runs:
        print(f"\nlambda = {r['lambda']:g} ({r['seconds']:.0f} s):")
        for c, _ in CONVS:
            g = r["gammas"][c]
            k, cut = r["keep"][c], r["cut_channels"][c]
            print(f"  {c}: {len(g)} -> {len(k)} channels; cut {cut.tolist()}")
            print(f"    |gamma| cut: max {g[cut].max():.4f}, mean {g[cut].mean():.4f}; kept: min "
                  f"{g[k].min():.4f}, mean {g[k].mean():.4f}; |gamma| < 1e-2: {(g < 1e-2).sum()}/{len(g)}")
    print(f"\nlatency, lambda = {runs[0]['lambda']:g}: its trained float model against the slimmed, fine-tuned one")
    latency_table(runs[0])
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
