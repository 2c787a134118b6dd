"""Train and evaluate one experiment (same as ``python -m mmseq train``).

    python scripts/train.py --config configs/experiments/demo.yaml [--set train.epochs=5]
"""

import sys

from mmseq.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
