"""Benchmark: stock ``SentenceTransformer.encode`` vs mmseq's encode path on the same sentences.

mmseq's path is what the topic stage runs: identical sentences embedded once (hashing), then
:meth:`topics.encoder.SentenceTransformerEncoder.encode` (token-length batches under a token budget,
bf16 autocast, one forked single-thread worker per core). Both use the packaged all-MiniLM-L6-v2
loaded once; a warm-up call of each path (64 sentences outside the samples) is not timed.

Each path embeds each sample ``--rounds`` times (default 2), in ``--chunks`` calls per pass
(default 1: the whole sample in one call, as the stage calls its encoder); the paths alternate at
every call (ABBA...), so both see the same background load. ``--rounds 1 --chunks 6`` is the
older method (six 250-sentence calls per path for N = 1500), which splits mmseq's length sort.

Two samples of ``--sentences N`` training-review sentences are timed: a uniform random sample and
the first N sentences in corpus (file) order. The dedupe gain depends on the sample, so both are
printed; the LAST line is one JSON object for the RANDOM sample (keys stock_sentences_per_s,
mmseq_sentences_per_s, ratio, mean_cosine; the corpus-order numbers sit under "corpus_order").

``--end-to-end`` instead times the whole topic stage of an experiment config (default: the
Musical Instruments SD-MTMP config: its data, split and ``topics:`` section, e.g.
``min_topic_size`` 30) on the ``fit`` rows, twice: a cold run (topic cache folder empty: a fresh
temporary folder, or ``--cache-dir``) and a warm run (cache hit). It prints the stage times
(split, embed, reduce = UMAP, hdbscan, represent = c-TF-IDF), the cold run's peak PSS summed over
the process and its children, and a hash of the sentence topics (``--save-assignments`` writes
them) to compare two versions of the code. UMAP's compiled numba kernels live in a separate
JIT cache (topics/jit_cache.py); ``MMSEQ_JIT_CACHE=<empty folder>`` measures a first run.

Usage::

    OMP_NUM_THREADS=2 python scripts/bench_topics.py --sentences 1500
    python scripts/bench_topics.py --end-to-end --no-progress
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from topics import MiniLMEncoder, TopicConfig, TopicExtractor, split_sentences, unique_sentences

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / (
    "configs/experiments/sdmtmp_musical_instruments.yaml"
)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / (
    "shared/data/amazon2014-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"
)


def load_reviews(path: Path) -> np.ndarray:
    """Review texts in file order (mmseq's reader when present, else plain gzip + json)."""
    try:
        from mmseq.data.readers import load_interactions
    except ImportError:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            texts = [json.loads(line).get("reviewText", "") for line in fh]
        out = np.empty(len(texts), dtype=object)
        out[:] = texts
        return out
    data = load_interactions(path)
    assert data.review is not None, f"{path} has no review text"
    return data.review


def time_pair(
    stock_model: Any,
    encoder: MiniLMEncoder,
    sentences: list[str],
    stock_batch: int,
    *,
    rounds: int,
    chunks: int,
) -> dict[str, float]:
    """Time both paths on ``sentences``: ``rounds`` passes, each pass in ``chunks`` calls per
    path, the two paths alternating at every call (stock first, then mmseq first, ...), so both
    see the same background load on a shared machine. ``chunks=1`` calls each path once per pass
    on the whole sample, as the topic stage calls its encoder (on every unique sentence)."""
    n = len(sentences)
    stock = np.empty((n, 384), dtype=np.float32)
    stock_s = ours_s = 0.0
    step = 0
    for _ in range(rounds):
        start = time.perf_counter()
        unique, inverse = unique_sentences(sentences)  # mmseq dedupes over the whole sample
        ours_s += time.perf_counter() - start
        ours_unique = np.empty((len(unique), 384), dtype=np.float32)
        stock_chunks = np.array_split(np.arange(n), chunks)
        ours_chunks = np.array_split(np.arange(len(unique)), chunks)
        for sc, oc in zip(stock_chunks, ours_chunks):
            for path in ("stock", "ours") if step % 2 == 0 else ("ours", "stock"):
                start = time.perf_counter()
                if path == "stock":
                    texts = [sentences[i] for i in sc]
                    stock[sc] = stock_model.encode(texts, batch_size=stock_batch)
                    stock_s += time.perf_counter() - start
                else:
                    ours_unique[oc] = encoder.encode([unique[i] for i in oc])
                    ours_s += time.perf_counter() - start
            step += 1
        ours = ours_unique[inverse]  # (N, 384)
    n *= rounds  # sentences embedded per path

    cosine = (stock * ours).sum(1) / np.linalg.norm(stock, axis=1) / np.linalg.norm(ours, axis=1)
    return {
        "sentences": len(sentences),
        "unique_sentences": len(unique),
        "stock_sentences_per_s": round(n / stock_s, 1),
        "mmseq_sentences_per_s": round(n / ours_s, 1),
        "ratio": round(stock_s / ours_s, 3),
        "mean_cosine": round(float(cosine.mean()), 6),
        "min_cosine": round(float(cosine.min()), 6),
    }


def bench_encode(args: argparse.Namespace) -> None:
    reviews = load_reviews(args.data)
    sentences = split_sentences(reviews).text
    n = min(args.sentences, len(sentences))
    rng = np.random.default_rng(args.seed)
    samples = {
        "random": list(sentences[rng.choice(len(sentences), n, replace=False)]),
        "corpus_order": list(sentences[:n]),
    }
    encoder = MiniLMEncoder(
        threads=args.threads,
        workers=args.workers,
        batch_tokens=args.batch_tokens,
        max_batch_size=args.max_batch_size,
        attn_implementation=args.attn,
    )
    from sentence_transformers import SentenceTransformer  # after topics: HF hub offline

    # Stock: a plain SentenceTransformer as a user loads it (mmseq's own copy runs eager attention).
    stock_model = SentenceTransformer(str(encoder.model_path), device="cpu", local_files_only=True)
    warm = list(sentences[-64:])  # outside both samples' timing: load + first-call overheads
    stock_model.encode(warm)
    encoder.encode(warm)
    print(f"{len(reviews)} reviews -> {len(sentences)} sentences; timing {n} per sample")
    load_before = os.getloadavg()[0]
    results = {}
    for name, sample in samples.items():
        res = time_pair(
            stock_model,
            encoder,
            sample,
            args.stock_batch_size,
            rounds=args.rounds,
            chunks=args.chunks,
        )
        results[name] = res
        print(
            f"{name:>12}: stock {res['stock_sentences_per_s']:.0f}/s, mmseq "
            f"{res['mmseq_sentences_per_s']:.0f}/s, ratio {res['ratio']:.2f}x, mean cosine "
            f"{res['mean_cosine']:.6f} (min {res['min_cosine']:.6f}), "
            f"{res['unique_sentences']} unique of {res['sentences']}"
        )
    line = dict(results["random"])
    line.update(
        sample="random",
        corpus_order=results["corpus_order"],
        threads=args.threads or "all",
        workers=args.workers,
        batch_tokens=args.batch_tokens,
        max_batch_size=args.max_batch_size,
        attn=args.attn,
        rounds=args.rounds,
        chunks=args.chunks,
        load_avg=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    print(json.dumps(line))


class PeakPss:
    """Samples the PSS summed over this process and all its children (``psutil``, which reads
    ``/proc/<pid>/smaps_rollup``) every ``interval`` seconds in a thread; ``peak`` in bytes and
    ``peak_at`` in seconds since the sampling started."""

    def __init__(self, interval: float = 0.5) -> None:
        import threading

        self.interval, self.peak, self.peak_at, self._stop = interval, 0, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        start = time.perf_counter()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            if total > self.peak:
                self.peak, self.peak_at = total, time.perf_counter() - start
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakPss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_end_to_end(args: argparse.Namespace) -> None:
    """The topic stage of ``args.config`` (its data, split and ``topics:`` section) on the fit
    rows, cold (empty cache folder) then warm (cache hit)."""
    from mmseq.config import load_experiment
    from mmseq.data.prepare import prepare_data
    from mmseq.stages import stage_configs

    exp = load_experiment(args.config, args.set)
    fit = prepare_data(exp).split.fit
    cfg = dataclasses.replace(
        stage_configs(exp, ["topics"])["topics"],
        threads=args.threads,
        workers=args.workers,
    )
    print(f"{args.config}: {len(fit)} fit rows; {cfg}")
    if args.cache_dir is not None and any(args.cache_dir.iterdir()):
        raise SystemExit(f"--cache-dir {args.cache_dir} must be empty (a cold run)")
    cache_ctx = (
        contextlib.nullcontext(str(args.cache_dir))
        if args.cache_dir is not None
        else tempfile.TemporaryDirectory(prefix="mmseq-topics-bench-")
    )
    load_before = os.getloadavg()
    with cache_ctx as cache:
        times, peaks, timings = [], [], []
        for run in ("cold", "warm"):
            start = time.perf_counter()
            with PeakPss() as pss:
                ex = TopicExtractor(cfg, progress=not args.no_progress)
                topics = ex.fit(fit, cache_dir=cache)
            times.append(time.perf_counter() - start)
            peaks.append(pss)
            timings.append({k: round(v, 2) for k, v in ex.timings_.items()})
            print(f"{run}: {times[-1]:.1f}s, cache hit {ex.cache_hit_}, stages {timings[-1]}")
            if run == "cold" and args.save_assignments is not None:
                np.save(args.save_assignments, ex.result_.sentence_topic)
    meta = topics.meta
    sentence_topic = ex.result_.sentence_topic  # (S,) the warm run's = the cold run's (cached)
    print(
        json.dumps(
            {
                "config": str(args.config),
                "fit_rows": len(fit),
                "sentences": meta["sentences"]["sentences"],
                "unique_sentences": meta["unique_sentences"],
                "topics": topics.num_topics,
                "outlier_share": round(meta["outlier_share"], 4),
                "cold_s": round(times[0], 1),
                "cold_stages_s": timings[0],
                "warm_s": round(times[1], 2),
                "cold_sentences_per_s": round(meta["sentences"]["sentences"] / times[0], 1),
                "cold_peak_pss_gib": round(peaks[0].peak / 2**30, 3),
                "cold_peak_pss_at_s": round(peaks[0].peak_at, 1),
                "sentence_topic_sha": hashlib.sha256(
                    np.ascontiguousarray(sentence_topic, dtype=np.int64).tobytes()
                ).hexdigest()[:16],
                "topic_sizes_sha": hashlib.sha256(str(meta["topic_sizes"]).encode()).hexdigest(),
                "jit_cache": os.environ.get("MMSEQ_JIT_CACHE", "default"),
                "load_avg": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000, help="sentences per sample")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Amazon reviews .json.gz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sample")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all usable)")
    defaults = TopicConfig()
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="mmseq encoder processes (-1 = auto)"
    )
    parser.add_argument("--batch-tokens", type=int, default=defaults.batch_tokens)
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size)
    parser.add_argument("--attn", default="eager", help="mmseq's attention kernel ('' = default)")
    parser.add_argument("--stock-batch-size", type=int, default=32, help="stock encode batch size")
    parser.add_argument("--rounds", type=int, default=2, help="timed passes over each sample")
    parser.add_argument(
        "--chunks", type=int, default=1, help="calls per path and pass (1 = whole sample)"
    )
    parser.add_argument("--end-to-end", action="store_true", help="time the whole topic stage")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="--end-to-end: experiment YAML whose data, split and topics section are used",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="--end-to-end: an EMPTY topic cache folder"
    )
    parser.add_argument(
        "--save-assignments", type=Path, default=None, help="--end-to-end: sentence topics .npy"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.rounds < 1 or args.chunks < 1:
        parser.error(f"--rounds and --chunks must be >= 1 (got {args.rounds}, {args.chunks})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the stock run uses torch's global setting
    (bench_end_to_end if args.end_to_end else bench_encode)(args)


if __name__ == "__main__":
    main()
