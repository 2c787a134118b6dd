"""Import time and peak RSS of ``import mmseq.models`` with and without torch_geometric.

    python scripts/bench_imports.py [--repeats 5]

Each measurement is a fresh interpreter that imports ``mmseq.models`` (every built-in model) and
then reports its own wall time for the imports, its peak RSS (``ru_maxrss``) and which of the
text/topic stack's modules it loaded. ``now`` is mmseq as it is; ``with_pyg`` additionally imports
``torch_geometric`` (what ``mmseq.models`` did before LightGCN stopped importing PyG's
``LGConv``; importing it loads transformers and numba). Runs alternate; medians. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("transformers", "numba", "bertopic", "umap", "hdbscan", "torch_geometric")
CHILD = """
import json, resource, sys, time
start = time.perf_counter()
import torch
torch_s = time.perf_counter() - start
import mmseq.models
{extra}
total = time.perf_counter() - start
print(json.dumps({{"import_s": total, "after_torch_s": total - torch_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def child(extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = CHILD.format(extra=extra, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    variants = {"now": "", "with_pyg": "import torch_geometric.nn"}
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, extra in variants.items():
            runs[name].append(child(extra))
    out: dict = {"bench": "imports", "repeats": args.repeats}
    for name, rs in runs.items():
        out[name] = {
            "after_torch_s": round(statistics.median(r["after_torch_s"] for r in rs), 3),
            "import_s": round(statistics.median(r["import_s"] for r in rs), 3),
            "peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in rs), 1),
            "heavy_modules": rs[-1]["heavy"],
        }
        print(
            f"{name:8s} import torch + mmseq.models {out[name]['import_s']:.2f} s "
            f"({out[name]['after_torch_s']:.2f} s after torch), peak RSS "
            f"{out[name]['peak_rss_mib']:.0f} MiB, loaded {out[name]['heavy_modules']}"
        )
    out["rss_saved_mib"] = round(out["with_pyg"]["peak_rss_mib"] - out["now"]["peak_rss_mib"], 1)
    out["import_s_saved"] = round(out["with_pyg"]["import_s"] - out["now"]["import_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
