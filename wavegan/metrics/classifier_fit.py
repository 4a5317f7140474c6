"""Fitting the quality classifier on a store's labelled rows and measuring its accuracy honestly.

The accuracy is measured only on clips that neither fitted the classifier nor early-stopped it, whatever
splits the store has, and comes with a Wilson 95 % interval; only training-split clips are ever fitted
on, so the held-out clips stay unseen for the reference metrics. `plan_rows` says which rows do what,
`fit_and_measure` fits the model the plan names and scores it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from wavegan.data.store import DataStore
from wavegan.metrics.classifier import ClassifierSettings, cross_validate, fold_assignment, predict
from wavegan.metrics.intervals import wilson_interval

log = logging.getLogger(__name__)

__all__ = ["CARVE_FRACTION", "ClassifierRows", "fit_and_measure", "held_out_indices", "plan_rows"]

# Held-out fraction carved from the training split when a store has no valid/test clips.
CARVE_FRACTION = 0.1


def held_out_indices(splits: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(train rows, held-out rows, description): valid+test, or a seeded 10 % of train if none."""
    held = np.flatnonzero(splits != "train")
    train = np.flatnonzero(splits == "train")
    if len(held):
        return train, held, "valid+test splits"
    n_carve = max(1, int(round(CARVE_FRACTION * len(train)))) if len(train) > 2 else 0
    carved = np.sort(np.random.default_rng(seed).permutation(train)[:n_carve])
    return np.setdiff1d(train, carved), carved, f"{n_carve} clips carved from train (no valid/test split)"


def recording_groups(store: DataStore, n: int) -> np.ndarray:
    """Recording of each row: audio_dir names a file's slices `<file>#<i>`, so slices of one recording
    stay in one cross-validation fold (the store keeps only the note id)."""
    try:
        ids = np.asarray(store.column("note_id", None)).astype(str)
    except Exception:  # a store without note ids: every row its own recording
        return np.arange(n).astype(str)
    return np.array([i.rsplit("#", 1)[0] for i in ids], dtype=object)


@dataclass
class ClassifierRows:
    """Store rows for the quality classifier and the model they get ("discriminant" for a small data set,
    "cnn" otherwise). `fit` and `stop` (the CNN's early stopping) never overlap, and no `accuracy` row is
    in either; `cross_validated` rows (a subset of `fit`) are scored out of fold, each by a model not
    fitted on it, before the final model fits them all."""

    model: str
    fit: np.ndarray
    stop: np.ndarray
    accuracy: np.ndarray
    cross_validated: np.ndarray
    description: str


def plan_rows(
    splits: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    train_idx: np.ndarray,
    held_idx: np.ndarray,
    held_desc: str,
    settings: ClassifierSettings,
    seed: int,
) -> ClassifierRows:
    """Which labelled rows fit, early-stop and measure the classifier:

    * A small training split (<= classifier.small_data_max_clips labelled clips): the discriminant model,
      scored by k-fold cross-validation on the training split plus the final model (fitted on all of it)
      on every labelled held-out clip. A small data set's held-out split is a dozen clips: too few for an
      accuracy worth reporting (0.5 on 12 clips is anything from 0.25 to 0.75). cv_folds=0: the
      held-out clips alone.
    * Otherwise the CNN; with a test split: fit on train, early-stop on valid, accuracy on test.
    * Otherwise: early-stop on ~10 % of train (by recording, stratified), accuracy on the held-out clips.
    """
    empty = np.zeros(0, np.int64)
    fit = train_idx[y[train_idx] >= 0]
    held = held_idx[y[held_idx] >= 0]
    if settings.is_small(len(fit)):
        folds = int(settings.cv_folds)
        if folds >= 2 and len(fit) >= 2 * folds:
            desc = (
                f"{folds}-fold cross-validation on {len(fit)} training clips + {len(held)} held-out clips "
                f"({held_desc})"
            )
            return ClassifierRows("discriminant", fit, empty, held, fit, desc)
        return ClassifierRows("discriminant", fit, empty, held, empty, f"{held_desc} ({len(held)} clips)")
    test = held[splits[held] == "test"]
    valid = held[splits[held] != "test"]
    if len(test) and len(valid):
        desc = f"test split ({len(test)} clips; early stopping on valid)"
        return ClassifierRows("cnn", fit, valid, test, empty, desc)
    n_parts = max(2, int(round(1 / CARVE_FRACTION)))
    if len(fit) < 2 * n_parts:  # too few to carve: train without early stopping
        return ClassifierRows("cnn", fit, empty, held, empty, f"{held_desc}; no early stopping")
    part = fold_assignment(y[fit], groups[fit], n_parts, seed) == 0
    desc = f"{held_desc} ({len(held)} clips; early stopping on {int(part.sum())} clips carved from train)"
    return ClassifierRows("cnn", fit[~part], fit[part], held, empty, desc)


def fit_and_measure(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    rows: ClassifierRows,
    num_classes: int,
    settings: ClassifierSettings,
    seed: int,
):
    """(model, info): the model `rows.model` fitted on `rows.fit` (x: normalised log-mels of every row
    [N, frames, n_mels, 1]), and what info.json records of it: the accuracy over every accuracy and
    cross-validated row, each predicted by a model that never fitted or stopped on it, with its Wilson
    interval; the rows; the training history."""
    info: dict[str, Any] = {
        "classifier_model": rows.model,
        "classifier_rows": {
            "fit": int(len(rows.fit)),
            "early_stopping": int(len(rows.stop)),
            "accuracy": int(len(rows.accuracy)),
            "cross_validated": int(len(rows.cross_validated)),
        },
    }
    correct: list[np.ndarray] = []  # per accuracy row: right or wrong
    if rows.model == "discriminant":
        from wavegan.metrics.discriminant import fit_discriminant

        def fit(x_fit: np.ndarray, y_fit: np.ndarray):
            return fit_discriminant(x_fit, y_fit, num_classes, settings.summary)

        if len(rows.cross_validated):
            cv_rows = rows.cross_validated
            cv = cross_validate(x[cv_rows], y[cv_rows], groups[cv_rows], fit, int(settings.cv_folds), seed)
            correct.append(cv.predicted == y[cv_rows])
            info["cross_validation"] = {"folds": int(settings.cv_folds), "seconds": round(cv.seconds, 3)}
        model = fit(x[rows.fit], y[rows.fit])
    else:
        from wavegan.metrics.cnn import train_cnn

        model, report = train_cnn(
            x[rows.fit], y[rows.fit], x[rows.stop], y[rows.stop], num_classes, settings.cnn, seed
        )
        info["classifier_training"] = {
            "epochs_run": report.epochs_run,
            "best_epoch": report.best_epoch,
            "early_stopping_accuracy": report.valid_accuracy,
            "history": report.history,
        }
    if len(rows.accuracy):
        _, probs = predict(model, x[rows.accuracy])
        correct.append(np.argmax(probs, axis=1) == y[rows.accuracy])
    k = int(sum(int(c.sum()) for c in correct))
    n = int(sum(len(c) for c in correct))
    if n:
        low, high = wilson_interval(k, n)
        info.update(
            classifier_accuracy=k / n,
            classifier_accuracy_ci_low=low,
            classifier_accuracy_ci_high=high,
            accuracy_n=n,
            accuracy_split=rows.description,
        )
    return model, info
