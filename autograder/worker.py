"""Child process of ``grade``/``check``: execute one notebook with the hardened client.

``python -m autograder.worker IN OUT CWD [--progress P] [--limits JSON]``
"""
from __future__ import annotations

import argparse
import json
import sys

import nbformat

from autograder.execute import HardenedClient
from autograder.settings import Limits


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m autograder.worker")
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("cwd")
    ap.add_argument("--progress")
    ap.add_argument("--limits", help="JSON of settings.Limits fields")
    args = ap.parse_args(argv)
    nb = nbformat.read(args.src, as_version=4)
    limits = Limits(**json.loads(args.limits)) if args.limits else Limits.from_env()
    client = HardenedClient(nb, limits, cwd=args.cwd, progress_path=args.progress)
    client.execute()
    nbformat.write(nb, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
