"""Benchmark: stock ``SentenceTransformer.encode`` vs mmseq's encode path on the same sentences.

mmseq's path is what the topic stage runs: identical sentences embedded once (hashing), then
:meth:`topics.encoder.SentenceTransformerEncoder.encode` (token-length batches under a token budget,
bf16 autocast, torch threads set). Both use the packaged all-MiniLM-L6-v2 loaded once.

Two samples of ``--sentences N`` training-review sentences are timed: a uniform random sample and
the first N sentences in corpus (file) order. The dedupe gain depends on the sample, so both are
printed; the LAST line is one JSON object for the RANDOM sample (keys stock_sentences_per_s,
mmseq_sentences_per_s, ratio, mean_cosine; the corpus-order numbers sit under "corpus_order").

``--end-to-end`` instead times the whole topic stage on the training split (ratio-80-20 ``fit``)
of the data set, twice: a cold run (cache folder empty) and a warm run (cache hit).

Usage::

    OMP_NUM_THREADS=2 python scripts/bench_topics.py --sentences 1500
    OMP_NUM_THREADS=2 python scripts/bench_topics.py --end-to-end
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from mmseq.data.schema import Interactions
from topics import MiniLMEncoder, TopicConfig, TopicExtractor, split_sentences, unique_sentences

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
    encoder: MiniLMEncoder, sentences: list[str], stock_batch: int, rounds: int
) -> dict[str, float]:
    """Time both paths on ``sentences``, interleaved in ``rounds`` chunks (order alternating)
    so that both see the same background load on a shared machine."""
    model = encoder.model
    start = time.perf_counter()
    unique, inverse = unique_sentences(sentences)  # mmseq dedupes over the whole sample
    ours_s = time.perf_counter() - start
    stock_chunks = np.array_split(np.arange(len(sentences)), rounds)
    ours_chunks = np.array_split(np.arange(len(unique)), rounds)
    stock = np.empty((len(sentences), 384), dtype=np.float32)
    ours_unique = np.empty((len(unique), 384), dtype=np.float32)
    stock_s = 0.0
    for r, (sc, oc) in enumerate(zip(stock_chunks, ours_chunks)):
        for path in ("stock", "ours") if r % 2 == 0 else ("ours", "stock"):
            start = time.perf_counter()
            if path == "stock":
                stock[sc] = model.encode([sentences[i] for i in sc], batch_size=stock_batch)
                stock_s += time.perf_counter() - start
            else:
                ours_unique[oc] = encoder.encode([unique[i] for i in oc])
                ours_s += time.perf_counter() - start
    ours = ours_unique[inverse]  # (N, 384)

    cosine = (stock * ours).sum(1) / np.linalg.norm(stock, axis=1) / np.linalg.norm(ours, axis=1)
    n = len(sentences)
    return {
        "sentences": n,
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
    encoder = MiniLMEncoder(threads=args.threads)
    warm = list(sentences[-64:])  # outside both samples' timing: load + first-call overheads
    encoder.model.encode(warm)
    encoder.encode(warm)
    print(f"{len(reviews)} reviews -> {len(sentences)} sentences; timing {n} per sample")
    results = {}
    for name, sample in samples.items():
        res = time_pair(encoder, sample, args.stock_batch_size, args.rounds)
        results[name] = res
        print(
            f"{name:>12}: stock {res['stock_sentences_per_s']:.0f}/s, mmseq "
            f"{res['mmseq_sentences_per_s']:.0f}/s, ratio {res['ratio']:.2f}x, mean cosine "
            f"{res['mean_cosine']:.6f} (min {res['min_cosine']:.6f}), "
            f"{res['unique_sentences']} unique of {res['sentences']}"
        )
    line = dict(results["random"])
    line.update(
        sample="random", corpus_order=results["corpus_order"], threads=args.threads or "all"
    )
    print(json.dumps(line))


def bench_end_to_end(args: argparse.Namespace) -> None:
    from mmseq.data.readers import load_interactions
    from mmseq.data.split import split_interactions

    data: Interactions = load_interactions(args.data)
    fit = split_interactions(data, "ratio-80-20").fit
    cfg = TopicConfig(threads=args.threads)
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for run in ("cold", "warm"):
            start = time.perf_counter()
            ex = TopicExtractor(cfg, progress=True)
            topics = ex.fit(fit, cache_dir=cache)
            times.append(time.perf_counter() - start)
            print(
                f"{run}: {times[-1]:.1f}s, cache hit {ex.cache_hit_}, stages "
                f"{ {k: round(v, 1) for k, v in ex.timings_.items()} }"
            )
    meta = topics.meta
    print(
        json.dumps(
            {
                "fit_rows": len(fit),
                "sentences": meta["sentences"]["sentences"],
                "unique_sentences": meta["unique_sentences"],
                "topics": topics.num_topics,
                "outlier_share": round(meta["outlier_share"], 4),
                "cold_s": round(times[0], 1),
                "warm_s": round(times[1], 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000, help="sentences per sample")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Amazon reviews .json.gz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sample")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all usable)")
    parser.add_argument("--stock-batch-size", type=int, default=32, help="stock encode batch size")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved chunks per sample")
    parser.add_argument("--end-to-end", action="store_true", help="time the whole topic stage")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the stock run uses torch's global setting
    (bench_end_to_end if args.end_to_end else bench_encode)(args)


if __name__ == "__main__":
    main()
