"""Recommendations from a trained run: top-k items, scores and explanations by raw id.

:func:`load_run` reloads a run directory written by ``mmseq train`` (through the same loader as
``mmseq evaluate``, :func:`mmseq.train.experiment.load_trained_run`) and returns a
:class:`TrainedRun`. Users and items go in and come out as the raw ids of the data file; an unknown
id is a one-line :class:`~mmseq.errors.DataError` naming it and its closest known ids.

Scoring uses the inputs the test stage was scored with (history = fit + valid). The items a user
already has are excluded with the evaluation code's masking
(:func:`mmseq.eval.protocol.mask_rows`). Which items count as "already has" is a choice:

* ``exclude="all"`` (default): every item the user interacted with anywhere in the data set
  (fit, valid and test): what a practitioner wants to show;
* ``exclude="eval"``: the test stage's history (fit + valid) exactly as evaluation masks it, so
  that the ranking is the one the test metrics were computed on.

Scores are the model's ``score_all`` values (higher is better); ties keep ``torch.topk``'s order.
Recommendations always rank the whole catalogue, also for runs evaluated under ``loo-sampled99``
(whose metrics rank 100 sampled candidates only).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from mmseq.data.prepare import graph_bundle_file
from mmseq.data.schema import Interactions
from mmseq.errors import ArtifactError, ConfigError, DataError
from mmseq.eval.protocol import mask_rows
from mmseq.explain import Explanation, RankBy, explain_pair
from mmseq.runs import LoadedRun, load_trained_run

Exclude = Literal["all", "eval"]
IdLike = str | int | np.str_ | np.integer
Ids = IdLike | Sequence[IdLike] | np.ndarray


class IdIndex:
    """Raw id -> dense index, vectorised (one sort at construction, a binary search per query).

    Args:
        ids: (N,) raw ids of the data set (index = dense id); compared as strings.
        kind: ``"user"`` or ``"item"``, for messages.
    """

    def __init__(self, ids: np.ndarray, kind: str) -> None:
        self.kind = kind
        self.known = np.asarray(ids, dtype=object).astype(str)  # (N,)
        self.order = np.argsort(self.known, kind="stable")
        self.sorted = self.known[self.order]

    def __call__(self, values: Ids) -> np.ndarray:
        """Dense indices of ``values`` (one raw id or a sequence): (Q,) int64, in input order.

        Raises:
            DataError: naming the first unknown id and up to three close matches.
        """
        query = np.atleast_1d(np.asarray(values, dtype=object)).astype(str)  # (Q,)
        n = len(self.known)
        pos = np.minimum(np.searchsorted(self.sorted, query), max(n - 1, 0))
        found = self.sorted[pos] == query if n else np.zeros(len(query), dtype=bool)
        if not found.all():
            bad = str(query[np.flatnonzero(~found)[0]])
            close = difflib.get_close_matches(bad, self.known.tolist(), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise DataError(
                f"Unknown {self.kind} id '{bad}' ({n} {self.kind}s in this run's data){hint}"
            )
        return self.order[pos].astype(np.int64)


def lookup_ids(ids: np.ndarray, values: Ids, kind: str) -> np.ndarray:
    """Dense indices of raw ids ``values`` in ``ids``; see :class:`IdIndex` (built per call)."""
    return IdIndex(ids, kind)(values)


def history_csr(data: Interactions, num_users: int, num_items: int) -> tuple[Tensor, Tensor]:
    """Distinct items per user as CSR ``(indptr (num_users + 1,), indices (nnz,))`` int64."""
    keys = np.unique(data.user.astype(np.int64) * num_items + data.item.astype(np.int64))
    user, item = np.divmod(keys, num_items)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=num_users))])
    return torch.from_numpy(indptr.astype(np.int64)), torch.from_numpy(item.astype(np.int64))


def gather_rows(indptr: Tensor, indices: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The CSR sub-matrix of ``rows`` (any order, repeats allowed), without a Python loop.

    Shapes:
        indptr (R + 1,), indices (nnz,), rows (B,) -> ``(indptr (B + 1,), indices (nnz_B,))``.
    """
    starts, stops = indptr[rows], indptr[rows + 1]
    lengths = stops - starts  # (B,)
    sub_indptr = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
    total = int(sub_indptr[-1])
    # position j of the output reads indices[starts[row(j)] + (j - sub_indptr[row(j)])]
    row_of = torch.repeat_interleave(torch.arange(len(rows)), lengths, output_size=total)
    offset = torch.arange(total) - sub_indptr[:-1][row_of] + starts[row_of]
    return sub_indptr, indices[offset]


@dataclass(frozen=True, eq=False)
class Recommendations:
    """Top-k items for a batch of users, by raw id.

    Attributes:
        users: (U,) raw user ids.
        items: (U, k) raw item ids, best first; ``None`` where the user has fewer than k items
            left to recommend.
        scores: (U, k) float32 model scores; ``-inf`` where ``items`` is ``None``.
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def for_user(self, user: str) -> list[tuple[str, float]]:
        """``[(item_id, score), ...]`` of one user of this batch, best first."""
        row = int(lookup_ids(self.users, user, "user")[0])
        return [
            (str(i), float(s)) for i, s in zip(self.items[row], self.scores[row]) if i is not None
        ]

    def to_columns(self) -> dict[str, np.ndarray]:
        """Long format, one row per (user, rank): columns user, rank (1-based), item, score."""
        k = self.items.shape[1]
        keep = (self.items != None).ravel()  # noqa: E711 (element-wise on an object array)
        return {
            "user": np.repeat(self.users.astype(str), k)[keep],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), len(self.users))[keep],
            "item": self.items.ravel()[keep].astype(str),
            "score": self.scores.ravel()[keep].astype(np.float32),
        }


class TrainedRun:
    """A trained model with its data: recommend, score and explain by raw id.

    Build it with :func:`load_run`. Attributes: ``run_dir``, ``config`` (the resolved
    ExperimentConfig), ``user_ids`` (num_users,), ``item_ids`` (num_items,), ``user_index`` and
    ``item_index`` (:class:`IdIndex`: raw ids -> dense indices), ``results`` (the run's
    results.json), ``metrics`` (its test metrics).
    """

    def __init__(self, loaded: LoadedRun, *, batch_size: int | None = None) -> None:
        self._run = loaded
        data = loaded.prepared.data
        self.run_dir = loaded.run_dir
        self.config = loaded.cfg
        self.user_ids: np.ndarray = data.user_ids
        self.item_ids: np.ndarray = data.item_ids
        self.user_index, self.item_index = (
            IdIndex(data.user_ids, "user"),
            IdIndex(data.item_ids, "item"),
        )
        self.batch_size = batch_size or loaded.cfg.train.eval_batch_size
        split = loaded.prepared.split
        self._exclude = {
            "all": history_csr(split.all_interactions(), data.num_users, data.num_items),
            "eval": history_csr(split.history("test"), data.num_users, data.num_items),
        }
        results = loaded.run_dir / "results.json"
        self.results: dict[str, Any] = (
            json.loads(results.read_text(encoding="utf-8")) if results.is_file() else {}
        )
        self._bundle: Any = None

    @property
    def metrics(self) -> dict[str, float]:
        """The test metrics of ``results.json`` (empty when the test part was never scored)."""
        return dict(self.results.get("metrics") or {})

    @property
    def split(self) -> Any:
        """The run's :class:`~mmseq.data.split.Split` (loaded again from its config)."""
        return self._run.prepared.split

    @property
    def model(self) -> torch.nn.Module:
        return self._run.model

    def _scores(self, users: np.ndarray) -> Tensor:
        """(B, num_items) scores of dense ``users`` on the model's device."""
        run = self._run
        index = torch.as_tensor(users, dtype=torch.int64, device=run.device)
        return run.model.score_all(index, run.test_inputs)

    def _check_exclude(self, exclude: str) -> tuple[Tensor, Tensor]:
        if exclude not in self._exclude:
            raise ConfigError(f"Expected 'exclude' in {sorted(self._exclude)} (got {exclude!r})")
        return self._exclude[exclude]

    def iter_recommend(
        self,
        users: Ids | None = None,
        k: int = 10,
        *,
        exclude: Exclude = "all",
        batch_size: int | None = None,
    ) -> Iterator[Recommendations]:
        """Top-``k`` items for ``users`` (default: every user), one batch of users at a time.

        Memory stays at one (batch_size, num_items) score matrix.

        Args:
            users: raw user ids (None = all users, in dense-id order).
            k: items per user (default: 10).
            exclude: ``"all"`` or ``"eval"`` (see the module docstring).
            batch_size: users per scoring batch (default: the run's ``eval_batch_size``).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"Expected 'k' to be a positive integer (got {k!r})")
        indptr, indices = self._check_exclude(exclude)
        dense = (
            np.arange(len(self.user_ids), dtype=np.int64)
            if users is None
            else self.user_index(users)
        )
        step = batch_size or self.batch_size
        model, device = self._run.model, self._run.device
        k = min(k, len(self.item_ids))
        with torch.no_grad():
            model.begin_eval(self._run.test_inputs)
            try:
                for start in range(0, len(dense), step):  # a loop over user batches
                    batch = dense[start : start + step]
                    sub_indptr, sub_indices = gather_rows(indptr, indices, torch.from_numpy(batch))
                    scores = mask_rows(
                        self._scores(batch), sub_indptr, sub_indices.to(device), 0, len(batch)
                    )
                    top = torch.topk(scores, k, dim=1)
                    values = top.values.float().cpu().numpy()  # (B, k)
                    items = self.item_ids[top.indices.cpu().numpy()].astype(object)  # (B, k)
                    items[~np.isfinite(values)] = None
                    values[~np.isfinite(values)] = -np.inf
                    yield Recommendations(self.user_ids[batch].astype(object), items, values)
            finally:
                model.end_eval()

    def recommend(
        self, users: Ids | None = None, k: int = 10, *, exclude: Exclude = "all"
    ) -> Recommendations:
        """Top-``k`` items for ``users`` (one raw id or several; None = all users).

        Returns:
            :class:`Recommendations` with one row per requested user, in request order.
        """
        chunks = list(self.iter_recommend(users, k, exclude=exclude))
        if not chunks:
            return Recommendations(
                np.empty(0, dtype=object),
                np.empty((0, k), dtype=object),
                np.empty((0, k), dtype=np.float32),
            )
        return Recommendations(
            np.concatenate([c.users for c in chunks]),
            np.concatenate([c.items for c in chunks]),
            np.concatenate([c.scores for c in chunks]),
        )

    def score(self, users: Ids, items: Ids) -> np.ndarray:
        """Model scores of ``items`` for ``users``: (U, I) float32, no item excluded."""
        dense_users = self.user_index(users)
        dense_items = torch.as_tensor(self.item_index(items), device=self._run.device)
        model = self._run.model
        out = []
        with torch.no_grad():
            model.begin_eval(self._run.test_inputs)
            try:
                for start in range(0, len(dense_users), self.batch_size):
                    batch = dense_users[start : start + self.batch_size]
                    out.append(self._scores(batch)[:, dense_items].float().cpu().numpy())
            finally:
                model.end_eval()
        return np.concatenate(out) if out else np.empty((0, len(dense_items)), dtype=np.float32)

    def graph_parts(self) -> dict[str, Any]:
        """Every part of the run's graph bundle (the model's parts when no bundle file exists)."""
        if self._bundle is None:
            parts = dict(self._run.parts)
            path = graph_bundle_file(self.config, self._run.prepared.split)
            if path.is_file():
                from mmseq.data.graph_bundle import GraphBundle

                parts = {**GraphBundle.load(path).parts, **parts}
            self._bundle = parts
        return self._bundle

    def explain(
        self, user: IdLike, item: IdLike, *, top: int = 10, rank_by: RankBy | None = None
    ) -> Explanation:
        """The review topics that connect ``user`` and ``item`` (needs the topic hypergraphs).

        Args:
            user, item: raw ids.
            top: links kept (default: 10; 0 = all).
            rank_by: ``"model"`` (the model's topic affinity; default when the model has one) or
                ``"membership"`` (product of membership weights).

        Raises:
            ArtifactError: if the run's graph bundle has no topic hypergraphs.
        """
        u = int(self.user_index(user)[0])
        i = int(self.item_index(item)[0])
        parts = self.graph_parts()
        affinity_fn = getattr(self._run.model, "topic_affinity", None)
        affinity = None
        if callable(affinity_fn) and {"user_topic_hypergraph", "item_topic_hypergraph"} <= set(
            self._run.parts
        ):
            with torch.no_grad():
                affinity = affinity_fn(u, i, self._run.test_inputs)
        if rank_by is None:
            rank_by = "model" if affinity is not None else "membership"
        score = float(self.score(str(self.user_ids[u]), str(self.item_ids[i]))[0, 0])
        return explain_pair(
            parts,
            u,
            i,
            user_id=str(self.user_ids[u]),
            item_id=str(self.item_ids[i]),
            artifacts_dir=self.config.artifacts_dir,
            affinity=affinity,
            score=score,
            rank_by=rank_by,
            top=top,
        )

    @property
    def has_topics(self) -> bool:
        """True when the run's bundle holds both topic hypergraphs (``explain`` works)."""
        return {"user_topic_hypergraph", "item_topic_hypergraph"} <= set(self.graph_parts())


def load_run(path: str | Path, *, device: str | None = None) -> TrainedRun:
    """Reload the trained run in directory ``path`` (written by ``mmseq train``).

    Args:
        path: the run directory (holds ``model.pt`` and ``results.json``).
        device: overrides the run's ``train.device`` (default: None = the run's setting).

    Example:
        >>> run = load_run("runs/sdmtmp-ratio-80-20-1a2b3c4d-seed0")  # doctest: +SKIP
        >>> run.recommend("u00001", k=5).for_user("u00001")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"Run directory not found: {path}")
    return TrainedRun(load_trained_run(path, device=device))


__all__ = [
    "IdIndex",
    "Recommendations",
    "TrainedRun",
    "gather_rows",
    "history_csr",
    "load_run",
    "lookup_ids",
]
