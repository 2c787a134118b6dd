"""Batch top-k export: every user's recommendations streamed to Parquet or CSV.

Users are scored one batch at a time (:meth:`mmseq.recommend.TrainedRun.iter_recommend`) and each
batch is appended to the file as it comes, so memory stays at one batch of scores whatever the
number of users. The file is long format: ``user, rank, item, score`` (rank 1 = best).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmseq.errors import ConfigError
from mmseq.io import atomic_write
from mmseq.recommend import Exclude, TrainedRun

SCHEMA = pa.schema(
    [("user", pa.string()), ("rank", pa.int64()), ("item", pa.string()), ("score", pa.float32())]
)
FORMATS = (".parquet", ".csv")


def export_format(path: str | Path) -> str:
    """``".parquet"`` or ``".csv"`` from the file name; anything else is a ConfigError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"Expected --out to end in {' or '.join(FORMATS)} (got '{path}')")
    return suffix


def write_recommendations(
    run: TrainedRun,
    path: str | Path,
    *,
    k: int = 10,
    exclude: Exclude = "all",
    batch_size: int | None = None,
    progress: bool | None = None,
) -> int:
    """Write top-``k`` items of every user to ``path`` (atomically); returns the rows written.

    Args:
        run: from :func:`mmseq.recommend.load_run`.
        path: ``*.parquet`` or ``*.csv``.
        k: items per user (default: 10).
        exclude: ``"all"`` or ``"eval"`` (see :mod:`mmseq.recommend`).
        batch_size: users per batch (default: the run's ``eval_batch_size``).
        progress: a progress bar on stderr (default: None = only when stderr is a terminal).
    """
    fmt = export_format(path)
    if progress is None:
        progress = sys.stderr.isatty()

    def write(tmp: Path) -> int:
        from tqdm import tqdm

        rows = 0
        writer: Any
        if fmt == ".parquet":
            import pyarrow.parquet as pq

            writer = pq.ParquetWriter(tmp, SCHEMA)
        else:
            import pyarrow.csv as pcsv

            writer = pcsv.CSVWriter(tmp, SCHEMA)
        try:
            with tqdm(
                total=len(run.user_ids), desc="recommend", unit="user", disable=not progress
            ) as bar:
                for recs in run.iter_recommend(None, k, exclude=exclude, batch_size=batch_size):
                    table = pa.table(recs.to_columns(), schema=SCHEMA)
                    writer.write_table(table)
                    rows += table.num_rows
                    bar.update(len(recs))
        finally:
            writer.close()
        return rows

    result: list[int] = []
    atomic_write(Path(path), lambda tmp: result.append(write(tmp)))
    return result[0]


__all__ = ["FORMATS", "SCHEMA", "export_format", "write_recommendations"]
