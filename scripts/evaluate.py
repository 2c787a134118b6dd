"""Re-score a finished run from its saved weights (same as ``python -m mmseq evaluate``).

    python scripts/evaluate.py --run runs/<run name> [--stage valid]
"""

import sys

from mmseq.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]]))
