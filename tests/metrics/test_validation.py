"""The metrics measure what they claim, on the built-in data set (issue #4's validation list):

* real held-out vs real training data: small Fréchet distances, NDB/K near the test's false-positive
  rate, every class covered, IS near the number of (well-separated) classes;
* a collapsed "generator" (one repeated clip, or one class only): large distances, high NDB/K, one
  class covered, IS near 1;
* noise: worse than real data on every metric;
* every metric moves monotonically as a growing fraction of the set is replaced by a collapsed clip
  (or, for the distance to the training set, by noise).

The store and the classifier cache live in the session's data-store folder, so tests/cli/test_evaluate.py's
subprocesses reuse them.
"""

import numpy as np
import pytest

from wavegan.cli.app import compose
from wavegan.data.store import open_store
from wavegan.metrics.evaluator import METRICS, Evaluator
from wavegan.metrics.quality import lower_is_better

# Enough notes (~600 training, ~175 held-out) for the classifier to learn all 11 families.
DATA_OVERRIDES = ["data.num_samples=800"]
NUM_CLASSES = 11
FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def validation_config(tmp_path_factory):
    # Module-scoped fixtures run before conftest's per-test environment: name the store folder it uses.
    store_dir = tmp_path_factory.getbasetemp() / "data_store"
    return compose([*DATA_OVERRIDES, f"data.store_dir={store_dir}"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = validation_config(tmp_path_factory)
    store = open_store(cfg.data, progress=False)
    evaluator = Evaluator.for_store(store, cfg.eval)
    splits = store.column("split", None).astype(str)
    held = store.waveforms(None)[splits != "train"]
    train = store.waveforms("train")
    labels = store.column("label", "train").astype(str)
    n = len(held)
    organ = train[labels == "organ"]
    rng = np.random.default_rng(0)
    sets = {
        "real": held,
        "collapsed": np.repeat(held[:1], n, axis=0),
        # one family only, at the held-out N (NDB's power depends on N: issue #8): its ~60 training
        # clips repeated to fill the set
        "one_class": np.resize(organ, (n, *organ.shape[1:])),
        "noise": rng.uniform(-1, 1, held.shape).astype(np.float32),
    }
    return evaluator, sets


@pytest.fixture(scope="module")
def scores(setup):
    evaluator, sets = setup
    return {name: evaluator.score(w) for name, w in sets.items()}


def degraded(evaluator, sets, kind):
    """Scores as a growing fraction of the real set is replaced by `kind` clips."""
    out = []
    for fraction in FRACTIONS:
        w = sets["real"].copy()
        k = int(round(fraction * len(w)))
        w[:k] = sets[kind][:k]
        out.append(evaluator.score(w))
    return out


@pytest.fixture(scope="module")
def collapse_series(setup):
    return degraded(*setup, "collapsed")


@pytest.fixture(scope="module")
def noise_series(setup):
    return degraded(*setup, "noise")


def test_classifier_learns_the_families(setup):
    evaluator, _ = setup
    assert evaluator.labels_available and evaluator.unavailable == []
    assert evaluator.headline_key("eval/frechet_distance") == "eval/frechet_distance"
    assert len(evaluator.class_names) == NUM_CLASSES
    assert evaluator.classifier_accuracy >= 0.9


def test_scoring_held_out_clips_reproduces_the_cached_reference(setup, scores):
    evaluator, sets = setup
    saved = evaluator.num_samples
    try:
        evaluator.num_samples, evaluator._reference = len(sets["real"]), None  # every held-out clip
        reference = evaluator.reference()
    finally:
        evaluator.num_samples, evaluator._reference = saved, None
    assert reference["eval/reference/num_samples"] == len(sets["real"])
    for name in METRICS:
        assert scores["real"][f"eval/{name}"] == pytest.approx(reference[f"eval/reference/{name}"], rel=1e-3)


def test_real_held_out_data_scores_like_real_data(scores):
    real, collapsed = scores["real"], scores["collapsed"]
    assert real["eval/inception_score"] > 0.75 * NUM_CLASSES
    assert real["eval/class_coverage"] == 1.0 and real["eval/class_entropy"] > 0.95
    assert real["eval/frechet_distance"] < 0.1 * collapsed["eval/frechet_distance"]
    assert real["eval/mel_frechet_distance"] < 0.1 * collapsed["eval/mel_frechet_distance"]
    assert real["eval/ndb_over_k"] <= 0.12  # the z-test's false-positive rate is 0.05
    assert real["eval/ndb_js"] < 0.1


def test_a_collapsed_generator_scores_as_collapsed(scores):
    real, collapsed, one_class = scores["real"], scores["collapsed"], scores["one_class"]
    for out in (collapsed, one_class):
        assert out["eval/class_coverage"] == pytest.approx(1 / NUM_CLASSES)
        assert out["eval/class_entropy"] == pytest.approx(0.0, abs=1e-9)
        assert out["eval/inception_score"] < 1.1
        assert out["eval/frechet_distance"] > 10 * real["eval/frechet_distance"]
        assert out["eval/ndb_over_k"] >= 0.2 and out["eval/ndb_js"] > 0.5
    assert collapsed["eval/nn_to_generated"] == pytest.approx(0.0, abs=1e-3)
    assert one_class["eval/nn_to_train"] == pytest.approx(0.0, abs=1e-3)  # training clips: memorised


def test_noise_is_worse_than_real_data_on_every_metric(scores):
    real, noise, collapsed = scores["real"], scores["noise"], scores["collapsed"]
    for name in METRICS:
        key = f"eval/{name}"
        if name == "nn_to_generated":  # white noise all sounds alike: low diversity, like collapse
            assert noise[key] < 0.5 * real[key]
        elif name == "nn_to_train":
            assert noise[key] > 2 * real[key]
        elif lower_is_better(key):
            assert noise[key] > real[key], name
        else:
            assert noise[key] < real[key], name
    # and the worst of the three sets on the Fréchet distances (the collapsed clip's distance to the
    # training set depends on which clip it is, so nn_to_train is not ranked against it)
    for key in ("eval/frechet_distance", "eval/mel_frechet_distance"):
        assert noise[key] > collapsed[key] > real[key]
    # White noise is none of the families: the classifier's guesses on it spread over a few classes
    # (measured: IS 1.24, 5 of 11 classes), far from real data's IS of about 9.
    assert noise["eval/inception_score"] < min(1.5, 0.2 * real["eval/inception_score"])


def assert_monotone(values, worse_upwards, name):
    values = np.asarray(values)
    steps = np.diff(values) if worse_upwards else -np.diff(values)
    tolerance = 1e-9 + 1e-6 * np.abs(values).max()
    assert np.all(steps >= -tolerance), f"{name} not monotone: {values}"
    assert steps.sum() > 0, f"{name} does not move: {values}"


@pytest.mark.parametrize("name", [m for m in METRICS if m != "nn_to_train"])
def test_each_metric_is_monotone_in_the_fraction_of_collapsed_samples(collapse_series, name):
    values = [s[f"eval/{name}"] for s in collapse_series]
    worse_upwards = lower_is_better(name) and name != "nn_to_generated"  # less diversity: smaller
    assert_monotone(values, worse_upwards, name)


@pytest.mark.parametrize("name", METRICS)
def test_each_metric_is_monotone_in_the_fraction_of_noise(noise_series, name):
    values = [s[f"eval/{name}"] for s in noise_series]
    worse_upwards = lower_is_better(name) and name != "nn_to_generated"
    assert_monotone(values, worse_upwards, name)


# -- a data set without labels, and the cache ---------------------------------------------------------


def unlabelled_store(tmp_path):
    """40 built-in notes as WAV files directly in one folder: `data=audio_dir` gives them no label."""
    import soundfile as sf

    from wavegan.data.sources.builtin import iter_builtin_notes

    folder = tmp_path / "clips"
    folder.mkdir()
    for i, (audio, _) in enumerate(iter_builtin_notes(40, slice_len=4096, seed=5)):
        sf.write(folder / f"{i:02d}.wav", audio, 16000)
    cfg = compose(
        [
            "data=audio_dir",
            f"data.path={folder}",
            "data.slice_len=4096",
            f"data.store_dir={tmp_path / 'store'}",
        ]
    )
    return cfg, open_store(cfg.data, progress=False)


LABEL_FREE = {
    "eval/mel_frechet_distance",
    "eval/ndb_over_k",
    "eval/ndb_js",
    "eval/nn_to_train",
    "eval/nn_to_generated",
}


def test_without_labels_the_classifier_metrics_are_unavailable_and_the_rest_computed(tmp_path, caplog):
    cfg, store = unlabelled_store(tmp_path)
    evaluator = Evaluator.for_store(store, cfg.eval)
    assert not evaluator.labels_available and evaluator.classifier_accuracy is None
    assert set(evaluator.unavailable) == {
        "eval/inception_score",
        "eval/frechet_distance",
        "eval/class_coverage",
        "eval/class_entropy",
    }
    assert "no labels" in evaluator.unavailable_reason
    assert evaluator.headline_key("eval/frechet_distance") == "eval/mel_frechet_distance"
    assert "metrics unavailable" in caplog.text and "eval/inception_score" in caplog.text
    scores = evaluator.score(store.waveforms(None)[:16])
    # the label-free figures, N, and NDB's interval (the only label-free figure with one)
    extra = {"eval/num_samples", "eval/ndb_over_k_ci_low", "eval/ndb_over_k_ci_high"}
    assert set(scores) == LABEL_FREE | extra and all(np.isfinite(v) for v in scores.values())
    reference = evaluator.reference()
    assert {k.replace("reference/", "") for k in reference} == LABEL_FREE | extra
    assert not list(store.root.glob("classifier/*/classifier.keras"))  # no invented labels, no classifier


def test_the_cache_is_reused_and_an_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    from wavegan.metrics import evaluator as evaluator_module

    cfg, store = unlabelled_store(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(evaluator_module.quality, "fit_kmeans", interrupted)
        with pytest.raises(KeyboardInterrupt):
            Evaluator.for_store(store, cfg.eval)
    assert list((store.root / "classifier").iterdir()) == []  # no half-built cache, no leftovers

    first = Evaluator.for_store(store, cfg.eval)
    with monkeypatch.context() as m:
        m.setattr(evaluator_module, "_build_cache", lambda *a, **k: pytest.fail("the cache was rebuilt"))
        second = Evaluator.for_store(store, cfg.eval)
    clips = store.waveforms(None)[:8]
    assert second.score(clips) == first.score(clips)
