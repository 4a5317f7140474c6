"""The quality classifier is fit for small labelled folders, and its accuracy is measured honestly:

* the rows it is scored on never fit it nor early-stop it, whatever splits the store has;
* an unlearnable labelling (random labels) is reported unfit: the classifier metrics are unreliable;
* the small-data model is scikit-learn's shrinkage LDA, exactly, with a discriminant embedding;
* a folder of 140 spoken words in 10 labelled sub-folders (eSpeak NG, several voices) and 165 built-in
  notes (15 per family) reach the accuracy threshold, reported with a Wilson 95 % interval, and the
  Fréchet distance in the small-data embedding tells real held-out clips from a collapsed set and noise.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from wavegan.cli.app import compose
from wavegan.data.store import open_store
from wavegan.metrics import classifier as classifier_module
from wavegan.metrics.classifier import (
    ClassifierSettings,
    CnnSettings,
    SummarySettings,
    cross_validate,
    predict,
)
from wavegan.metrics.classifier_fit import held_out_indices, plan_rows
from wavegan.metrics.evaluator import CLASSIFIER_METRICS, Evaluator

ACCURACY_FIELDS = (
    "classifier_accuracy",
    "classifier_accuracy_ci_low",
    "classifier_accuracy_ci_high",
    "accuracy_n",
    "accuracy_split",
)


def plan(splits, labels):
    settings = ClassifierSettings()
    splits = np.asarray(splits)
    y = np.asarray(labels)
    groups = np.arange(len(y)).astype(str)
    train_idx, held_idx, desc = held_out_indices(splits, seed=0)
    return plan_rows(splits, y, groups, train_idx, held_idx, desc, settings, 0), train_idx, held_idx


def assert_disjoint(rows, train_idx, held_idx):
    fit, stop, acc, cv = (set(r.tolist()) for r in (rows.fit, rows.stop, rows.accuracy, rows.cross_validated))
    assert not fit & stop
    assert not acc & (fit | stop)
    assert acc <= set(held_idx.tolist())  # accuracy rows are held-out clips, never fitted on
    assert fit <= set(train_idx.tolist())  # only training-split clips are fitted on
    assert cv <= fit and not cv & acc


@pytest.mark.parametrize(
    ("counts", "mode", "model"),
    [
        ({"train": 1600, "valid": 200, "test": 200}, "test split", "cnn"),  # the built-in data set
        ({"train": 126, "valid": 14}, "cross-validation", "discriminant"),  # a small labelled folder
        ({"train": 40, "valid": 5, "test": 5}, "cross-validation", "discriminant"),
        ({"train": 1500, "valid": 150}, "carved from train", "cnn"),  # large, no test split
        ({"train": 1000}, "carved from train", "cnn"),  # no held-out split at all: carved twice
    ],
)
def test_accuracy_rows_never_fit_or_early_stop_the_classifier(counts, mode, model):
    splits = np.concatenate([np.full(n, name) for name, n in counts.items()])
    splits = np.random.default_rng(0).permutation(splits)
    labels = np.arange(len(splits)) % 5
    labels[::17] = -1  # a class the classifier was not trained on
    rows, train_idx, held_idx = plan(splits, labels)
    assert mode in rows.description and rows.model == model
    assert_disjoint(rows, train_idx, held_idx)
    assert len(rows.accuracy) + len(rows.cross_validated) > 0
    assert np.all(labels[np.concatenate([rows.fit, rows.stop, rows.accuracy])] >= 0)
    if mode == "test split":
        assert set(splits[rows.accuracy]) == {"test"} and set(splits[rows.stop]) == {"valid"}


def test_cross_validation_scores_each_row_with_a_model_not_fitted_on_it(monkeypatch):
    """A fake model records the rows it was fitted on (x holds the row number)."""
    n = 60
    x = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1)
    y = np.arange(n) % 3
    fitted = []

    def fake_fit(x_fit, y_fit):
        fitted.append(set(x_fit.ravel().astype(int)))
        return fitted[-1]

    def fake_predict(rows_fitted, x_acc, batch_size=256):
        assert not set(x_acc.ravel().astype(int)) & rows_fitted
        return None, np.eye(3)[np.zeros(len(x_acc), int)]

    monkeypatch.setattr(classifier_module, "predict", fake_predict)
    cv = cross_validate(x, y, np.arange(n).astype(str), fake_fit, k=5, seed=0)
    assert len(fitted) == 5 and np.all(cv.predicted >= 0)  # every row predicted exactly once, out of fold
    assert sorted(np.bincount(cv.folds).tolist()) == [12] * 5
    assert all(len(rows) == 48 for rows in fitted)


def test_the_cnn_is_seeded_and_keeps_the_best_epoch():
    from wavegan.metrics.cnn import _StoppingScore, train_cnn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 8, 8, 1)).astype(np.float32)
    y = np.arange(48) % 2
    x[y == 1, :4] += 1.5  # learnable
    settings = CnnSettings(epochs=4, patience=2, batch_size=16, channels=(4, 8))
    runs = [train_cnn(x[:36], y[:36], x[36:], y[36:], 2, settings, seed=3) for _ in range(2)]
    (model_a, report_a), (model_b, _) = runs
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    scores = [h["valid_score"] for h in report_a.history]
    assert report_a.best_epoch == int(np.argmax(scores)) + 1
    # the monitored score orders by accuracy, then by lower loss, never across one example's accuracy
    stop = _StoppingScore(12)
    logs = [{"val_accuracy": a, "val_loss": v} for a, v in ((0.5, 0.1), (0.5, 9.0), (7 / 12, 50.0))]
    for entry in logs:
        stop.on_epoch_end(0, entry)
    assert logs[0]["val_score"] > logs[1]["val_score"] and logs[2]["val_score"] > logs[0]["val_score"]


def test_the_small_data_model_is_shrinkage_lda_with_a_discriminant_embedding(tmp_path):
    import keras
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from wavegan.metrics.discriminant import fit_discriminant

    rng = np.random.default_rng(0)
    classes, frames, bands = 4, 12, 16
    y = np.arange(80) % classes
    x = rng.standard_normal((80, frames, bands, 1)).astype(np.float32)
    x[:, :, :, 0] += 1.5 * np.eye(classes, bands)[y][:, None, :]  # each class louder in its own band
    settings = SummarySettings(patch_frames=8, patch_pool=2, n_mfcc=6)
    model = fit_discriminant(x[:60], y[:60], classes, settings)
    summary = keras.Model(model.input, model.get_layer("summary").output)
    features = np.asarray(summary(x), np.float64)
    mean, std = features[:60].mean(0), features[:60].std(0)
    standardised = (features - mean) / std
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(standardised[:60], y[:60])
    embedding, probs = predict(model, x[60:])
    np.testing.assert_allclose(probs, lda.predict_proba(standardised[60:]), atol=1e-4)
    assert embedding.shape == (20, classes - 1)
    assert np.mean(np.argmax(probs, 1) == y[60:]) >= 0.9
    # the embedding is whitened for the within-class spread: about unit variance around each class mean
    fitted, _ = predict(model, x[:60])
    within = np.concatenate([fitted[y[:60] == c] - fitted[y[:60] == c].mean(0) for c in range(classes)])
    assert np.all((within.std(0) > 0.5) & (within.std(0) < 1.5))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    for a, b in zip(predict(loaded, x[60:]), (embedding, probs), strict=True):
        np.testing.assert_array_equal(a, b)
    # a class absent from the fitted rows (a cross-validation fold can lack one) is never predicted
    without = fit_discriminant(x[:60][y[:60] != 2], y[:60][y[:60] != 2], classes, settings)
    assert 2 not in np.argmax(predict(without, x)[1], axis=1)
    # two classes (a folder with two labels, or a fold with two present): sklearn's one-row binary form
    two = np.isin(y, (1, 3))
    pair = fit_discriminant(x[:60][two[:60]], y[:60][two[:60]], classes, settings)
    pair_embedding, pair_probs = predict(pair, x[60:][two[60:]])
    f_fit, f_new = features[:60][two[:60]], features[60:][two[60:]]
    lda_pair = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto")
    lda_pair.fit((f_fit - f_fit.mean(0)) / f_fit.std(0), y[:60][two[:60]])
    expected = lda_pair.predict_proba((f_new - f_fit.mean(0)) / f_fit.std(0))
    np.testing.assert_allclose(pair_probs[:, [1, 3]], expected, atol=1e-4)
    assert pair_embedding.shape == (int(two[60:].sum()), 1) and np.all(pair_probs[:, [0, 2]] < 1e-6)


@pytest.mark.parametrize(
    "override",
    [
        "eval.classifier.cv_folds=1",
        "eval.classifier.min_accuracy=1.5",
        "eval.classifier.small_data_max_clips=-1",
    ],
)
def test_classifier_settings_out_of_range_are_refused_naming_the_key(override):
    from wavegan.config.checks import validate_training_config
    from wavegan.errors import ConfigError

    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_training_config(compose([override]))
    validate_training_config(compose([f"{key}=0"]))  # 0 is allowed for each (off / never small)


class ArrayStore:
    """The parts of a DataStore the evaluator reads, over arrays."""

    def __init__(self, root: Path, waveforms, labels, splits, sample_rate=16000):
        self.root, self._w = root, np.asarray(waveforms, np.float32)
        self._cols = {
            "label": np.asarray(labels, dtype=object),
            "split": np.asarray(splits, dtype=object),
            "note_id": np.array([f"clip{i}.wav#0" for i in range(len(labels))], dtype=object),
        }
        self.summary = {"sample_rate": sample_rate, "slice_len": self._w.shape[1]}

    def waveforms(self, split=None):
        return self._w if split is None else self._w[self._cols["split"] == split]

    def column(self, name, split=None):
        col = self._cols[name]
        return col if split is None else col[self._cols["split"] == split]


def test_an_unlearnable_labelling_is_reported_unfit(tmp_path, caplog):
    rng = np.random.default_rng(0)
    n = 90
    waves = 0.3 * rng.standard_normal((n, 4096)).astype(np.float32)  # noise: nothing to tell apart
    labels = rng.choice(["a", "b", "c"], n)
    splits = np.where(np.arange(n) % 10 == 0, "valid", "train")
    store = ArrayStore(tmp_path / "store", waves, labels, splits)
    cfg = compose(["eval.ndb_k=4", "eval.classifier.cv_folds=3"]).eval
    with caplog.at_level(logging.WARNING):
        evaluator = Evaluator.for_store(store, cfg)
    assert evaluator.labels_available and not evaluator.classifier_reliable
    assert evaluator.unreliable == [f"eval/{m}" for m in CLASSIFIER_METRICS]
    assert "below eval.classifier.min_accuracy=0.8" in evaluator.unreliable_reason
    assert caplog.text.count("quality classifier unfit") == 1
    summary = evaluator.summary
    assert summary["classifier_reliable"] is False and summary["unreliable"] == evaluator.unreliable
    info = json.loads(next(store.root.glob("classifier/*/info.json")).read_text())
    assert all(info[k] is not None for k in ACCURACY_FIELDS)
    assert info["accuracy_n"] == n  # 3-fold cross-validation on train + the final model on valid
    assert (
        info["classifier_accuracy_ci_low"]
        <= info["classifier_accuracy"]
        <= info["classifier_accuracy_ci_high"]
    )
    assert info["classifier_accuracy_ci_high"] < 0.8  # clearly unfit, not merely unlucky
    # the same cache judged again in this process: no second warning
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Evaluator.for_store(store, cfg)
    assert "quality classifier unfit" not in caplog.text


@pytest.fixture(scope="module")
def spoken_words(tmp_path_factory):
    from tests.speech_data import EspeakUnavailable, write_spoken_words

    folder = tmp_path_factory.mktemp("spoken_words")
    try:
        write_spoken_words(folder, num_labels=10, clips_per_label=14, seed=0)
    except EspeakUnavailable as exc:
        pytest.skip(str(exc))
    return folder


def assert_fit_and_meaningful(evaluator, store, num_classes, num_clips):
    info = evaluator.info
    assert len(evaluator.class_names) == num_classes and info["classifier_model"] == "discriminant"
    assert info["accuracy_n"] == num_clips and "cross-validation" in info["accuracy_split"]
    assert evaluator.classifier_accuracy >= 0.8, evaluator.summary
    assert evaluator.classifier_reliable and evaluator.unreliable == []
    low, high = info["classifier_accuracy_ci_low"], info["classifier_accuracy_ci_high"]
    assert low < evaluator.classifier_accuracy < high
    assert info["build_seconds"] < 120  # the budget is a few tens of seconds on 2 idle cores
    # The Fréchet distance in the discriminant embedding: held-out real clips are closer to the training
    # clips than the same number of copies of one clip, or of noise.
    held = evaluator.held_out_waveforms(store)
    real = evaluator.reference()["eval/reference/frechet_distance"]
    collapsed = evaluator.score(np.repeat(held[:1], len(held), axis=0))["eval/frechet_distance"]
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, held.shape).astype(np.float32)
    assert 3 * real < collapsed and 3 * real < evaluator.score(noise)["eval/frechet_distance"]


@pytest.mark.slow
def test_a_small_folder_of_spoken_words_gets_a_fit_classifier(spoken_words, tmp_path):
    cfg = compose(
        [
            "data=audio_dir",
            f"data.path={spoken_words}",
            f"data.store_dir={tmp_path / 'stores'}",
            "data.slice_len=16384",  # one word per clip (each file is 16384 samples)
        ]
    )
    store = open_store(cfg.data, progress=False)
    assert_fit_and_meaningful(Evaluator.for_store(store, cfg.eval), store, num_classes=10, num_clips=140)


@pytest.mark.slow
def test_fifteen_built_in_notes_per_family_get_a_fit_classifier(tmp_path):
    cfg = compose(["data.num_samples=165", f"data.store_dir={tmp_path / 'stores'}"])  # 0.26 s slices
    store = open_store(cfg.data, progress=False)
    assert_fit_and_meaningful(Evaluator.for_store(store, cfg.eval), store, num_classes=11, num_clips=165)
