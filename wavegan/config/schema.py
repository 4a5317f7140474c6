"""The typed schema of every config group: types, defaults and what each key means, in one place.

Each dataclass is registered in Hydra's ConfigStore (`register()`, called by the entry points before
composing) under `schema/<group>/<option>`, and each YAML option in conf/<group>/ names its schema first
in its defaults list, so Hydra rejects an unknown key or a wrong type (`model.dim=abc`,
`trainer.max_stepz=5`) at composition time, naming the key. The YAML files hold only what makes an option
different from its schema's defaults, with the reference for each choice. Value ranges and checks across
keys live in wavegan/config/checks.py.

One module for every group (over the ~400-line rule on purpose): the schemas side by side are the
reference a user reads to learn what can be set, and they share the small enums.

Choices that double as MLflow tags (model, loss, penalty, d_norm) are plain strings checked against the
registries of the code that implements them; small closed sets are StrEnums, which OmegaConf checks on
composition and which compare and print as their string values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# ---------------------------------------------------------------------------------------------------
# data: a source ingested into the local deeplake store (wavegan/data/)
# ---------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    source: str = MISSING
    num_samples: int | None = None  # clips to ingest; null: all the source has
    sample_rate: int = 16000
    slice_len: int = 16384  # samples per clip: WaveGAN's 16384 at 16 kHz
    valid_fraction: float = 0.1  # held-out splits (by note id / by file)
    test_fraction: float = 0.1
    min_duration_s: float = 0.05  # shorter inputs are skipped as too short
    silence_peak: float = 1.0e-4  # inputs quieter than this peak are skipped as silent
    store_dir: str = "${oc.env:WAVEGAN_DATA_DIR,.cache/wavegan}"


@dataclass
class BuiltinData(DataConfig):
    """NSynth-like notes synthesised with numpy (wavegan/data/sources/builtin): the default data set."""

    source: str = "builtin"
    num_samples: int | None = 2048
    seed: int = 1234  # the data set's own seed: training seeds do not change the data
    families: list[str] | None = None  # null: every built-in family; or e.g. [organ, guitar]
    pitch_range: list[int] = field(default_factory=lambda: [36, 84])  # MIDI notes


@dataclass
class NSynthColumns:
    """The data set's column for each NSynth field; null or missing columns are left unknown."""

    audio: str | None = "audios"
    sample_rate: str | None = "sample_rate"
    note: str | None = "note"
    pitch: str | None = "pitch"
    velocity: str | None = "velocity"
    instrument: str | None = "instrument"
    instrument_family: str | None = "instrument_family"
    instrument_family_str: str | None = "instrument_family_str"
    instrument_source: str | None = "instrument_source"
    instrument_source_str: str | None = "instrument_source_str"
    qualities: str | None = "qualities"


@dataclass
class NSynthData(DataConfig):
    """NSynth (Engel et al. 2017) through deeplake: a hub URL (needs the network) or a local data set."""

    source: str = "nsynth"
    split: str = "train"
    path: str = "hub://activeloop/nsynth-${data.split}"
    token: str | None = "${oc.env:ACTIVELOOP_TOKEN,null}"  # secret: masked in everything MLflow gets
    num_samples: int | None = 1000
    offset: int = 0  # the first num_samples notes from here
    test_fraction: float = 0.0
    columns: NSynthColumns = field(default_factory=NSynthColumns)


@dataclass
class AudioDirData(DataConfig):
    """Any folder of audio files, read recursively; sub-folder names are labels."""

    source: str = "audio_dir"
    path: str = MISSING  # required: data.path=/path/to/folder
    slice_overlap: float = 0.0  # fraction of a slice shared by consecutive slices of a long file
    max_slices_per_file: int | None = None
    peak_normalize: bool = True
    peak_level: float = 0.95
    label_from_subfolder: bool = True
    extensions: list[str] = field(default_factory=lambda: ["wav", "flac", "ogg", "oga", "aiff", "aif", "mp3"])
    test_fraction: float = 0.0
    min_duration_s: float = 0.1


# ---------------------------------------------------------------------------------------------------
# preprocessing: the representation a model trains on (wavegan/representations/)
# ---------------------------------------------------------------------------------------------------


@dataclass
class WaveformPreprocessing:
    """Raw audio, [slice_len, 1] in [-1, 1]; the inverse is the identity."""

    name: str = "waveform"


@dataclass
class StftPreprocessing:
    """Log-magnitude STFT, [time, freq, 1]: 16384 samples give 128 x 128 at the defaults."""

    name: str = MISSING
    n_fft: int = 256  # n_fft // 2 + 1 = 129 bins
    hop_length: int = 128
    win_length: int = 256
    window: str = "hann"  # any window scipy.signal.get_window knows
    center: bool = False  # no reflection padding: every frame is real audio
    drop_nyquist: bool = True  # 129 -> 128 bins (a power of two for strided convs); zeros on inverse
    n_frames: int = 128  # padded with the log floor, or cropped, to this many frames
    log_eps: float = 1.0e-6  # log(|X| + log_eps)
    griffin_lim_iters: int = 32  # phase-retrieval iterations on inverse


@dataclass
class SpectrogramPreprocessing(StftPreprocessing):
    """Scaled to [-1, 1] per frequency bin by scikit-learn's MinMaxScaler (the seed notes)."""

    name: str = "spectrogram"


@dataclass
class SpecGANPreprocessing(StftPreprocessing):
    """Per-frequency mean/std, divided by clip_stds and clipped to [-1, 1] (SpecGAN)."""

    name: str = "specgan"
    clip_stds: float = 3.0
    griffin_lim_iters: int = 16  # the reference's


# ---------------------------------------------------------------------------------------------------
# model: generator and discriminator (wavegan/models/)
# ---------------------------------------------------------------------------------------------------


class Upsample(StrEnum):
    zeros = "zeros"  # transposed convolution (the reference's default)
    nn = "nn"  # nearest-neighbour repeat, then convolution (Odena et al. 2016)
    linear = "linear"  # linear interpolation, then convolution (this project's: weaker spectral images)


class GInit(StrEnum):
    stride_aware = "stride_aware"  # He scaling on the taps that meet each output sample
    glorot = "glorot"  # the reference's TensorFlow default


@dataclass
class ModelConfig:
    name: str = MISSING
    dim: int = 64  # model size d (64 in the papers)
    latent_dim: int = 100  # z ~ U[-1, 1]^latent_dim
    # Normalisation, one key per concept for every model. G: none | batch. D: none | batch | layer |
    # spectral (Miyato et al. 2018). Batch norm in D mixes the examples of a batch, so it is refused with
    # a per-example gradient penalty (wavegan/config/checks.py).
    g_norm: str = "none"
    d_norm: str = "none"
    g_init: GInit = GInit.stride_aware


@dataclass
class WaveGANModel(ModelConfig):
    name: str = "wavegan"
    kernel_len: int = 25
    upsample: Upsample = Upsample.zeros
    phase_shuffle: int = 2  # D's phase-shuffle radius n (0 = off): one shift per batch and layer
    post_proc_filt_len: int = 0  # 0 = off; 512 = the paper's learned post-processing filter


@dataclass
class DCGANModel(ModelConfig):
    name: str = "dcgan"
    kernel_size: int = 5
    upsample: Upsample = Upsample.zeros


@dataclass
class AudioSynthModel(ModelConfig):
    name: str = "audiosynth"
    kernel_size: int = 4
    leaky_relu_slope: float = 0.2


# ---------------------------------------------------------------------------------------------------
# loss and penalty (wavegan/training/losses.py, penalties.py)
# ---------------------------------------------------------------------------------------------------


@dataclass
class AdamDefaults:
    lr: float = 1.0e-4
    beta1: float = 0.5
    beta2: float = 0.999


@dataclass
class RMSPropDefaults:
    lr: float = 1.0e-4


@dataclass
class OptimDefaults:
    """The reference's optimizer settings for a loss: optimizer/*.yaml and experiment configs read them."""

    adam: AdamDefaults = field(default_factory=AdamDefaults)
    rmsprop: RMSPropDefaults = field(default_factory=RMSPropDefaults)


@dataclass
class LossConfig:
    name: str = MISSING  # bce | wasserstein | hinge | lsgan
    label_smoothing: float = 0.0  # BCE only: one-sided, real labels become 1 - s (Salimans et al. 2016)
    optim_defaults: OptimDefaults = field(default_factory=OptimDefaults)


@dataclass
class PenaltyConfig:
    name: str = "none"  # none | wgan_gp | dragan | r1 | r2
    weight: float = 0.0  # lambda (wgan_gp, dragan) or gamma (r1, r2)
    every: int = 1  # lazy regularisation: applied every k-th D step, scaled by k (StyleGAN2)
    dragan_scale: float = 0.5  # DRAGAN: perturbation of std(x) * this * U[0, 1] (Kodali et al. 2017)


# ---------------------------------------------------------------------------------------------------
# optimizer (wavegan/training/optimizers.py)
# ---------------------------------------------------------------------------------------------------


def keras_optimizer(target: str, **arguments: str) -> Any:
    """The `keras` field of an optimizer: `target`'s keyword arguments read from the option's own keys."""
    interpolated = {name: f"${{..{key}}}" for name, key in arguments.items()}
    return field(default_factory=lambda: {"_target_": target, **interpolated})


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = 1.0e-3
    g_lr: float | None = None  # generator learning rate; null: lr
    d_lr: float | None = None  # discriminator learning rate; null: lr (TTUR: set them apart)
    # Linear decay: both rates constant for this fraction of trainer.max_steps, then linearly to 0 at the
    # end (0.5: the second half decays, as pix2pix/CycleGAN); null = constant, the reference's schedule.
    lr_decay_start: float | None = None
    # The Keras optimizer, instantiated with learning_rate= for each network (hydra.utils.instantiate);
    # its other arguments read the canonical keys above.
    keras: Any = MISSING


@dataclass
class AdamOptimizer(OptimizerConfig):
    name: str = "adam"
    beta1: float = "${loss.optim_defaults.adam.beta1}"  # type: ignore[assignment]
    beta2: float = "${loss.optim_defaults.adam.beta2}"  # type: ignore[assignment]
    epsilon: float = 1.0e-8
    keras: Any = keras_optimizer("keras.optimizers.Adam", beta_1="beta1", beta_2="beta2", epsilon="epsilon")


@dataclass
class RMSPropOptimizer(OptimizerConfig):
    name: str = "rmsprop"
    lr: float = "${loss.optim_defaults.rmsprop.lr}"  # type: ignore[assignment]
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1.0e-7
    keras: Any = keras_optimizer(
        "keras.optimizers.RMSprop", rho="rho", momentum="momentum", epsilon="epsilon"
    )


# ---------------------------------------------------------------------------------------------------
# trainer (wavegan/training/trainer.py, run.py)
# ---------------------------------------------------------------------------------------------------


@dataclass
class TrainerConfig:
    """CPU-sized defaults: the default run finishes in a few minutes on 2 cores (paper: experiment=)."""

    max_steps: int = 300  # generator updates; each has n_critic discriminator updates first
    batch_size: int = 16
    n_critic: int = 5  # D steps per G step: the reference's 5 for EVERY loss (equal D budget)
    log_every: int = 10  # steps between train/ metrics
    preview_every: int = 100  # steps between preview images and audio (one fixed latent batch)
    checkpoint_every: int = 100  # steps between checkpoints (and always at the end)
    num_previews: int = 8  # examples in each preview grid / audio set
    resume: bool = False  # continue this config's run from its last checkpoint, same MLflow run
    checkpoint_dir: str = "${oc.env:WAVEGAN_CHECKPOINT_DIR,checkpoints}"
    mixed_precision: bool = False  # float16 compute with loss scaling (GPUs with tensor cores)
    xla: bool = False  # jit-compile the train steps with XLA (slower on the CPU)
    deterministic: bool = True  # TF op determinism: same seed, config and machine give the same losses
    # TensorFlow's threads (0: its choice, all cores). inter_op_threads=1 runs one op at a time: with two at
    # once a run's values now and then differ from one step on (measured, trainer.py set_op_threads), so
    # it is what makes `deterministic` hold on a busy machine; each op still uses intra_op_threads cores.
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    # |D's adversarial loss| (WGAN: the Wasserstein estimate), and |G loss| for bce/lsgan, beyond this
    # count as divergence; a WGAN/hinge critic's drifting offset does not (losses.py).
    loss_bound: float = 1.0e6
    progress: bool = True  # progress bar on the console
    # Generator EMA (Karras et al. 2018; Yazici et al. 2019): decay of an exponential moving average of
    # G's weights, evaluated beside G under eval_ema/...; 0 = off.
    g_ema: float = 0.0
    # Instance noise (Sonderby et al. 2016): Gaussian noise of this std added to D's real and fake inputs,
    # annealed linearly to 0 over instance_noise_steps generator steps (null: max_steps); 0 = off.
    instance_noise: float = 0.0
    instance_noise_steps: int | None = None


# ---------------------------------------------------------------------------------------------------
# tracking (wavegan/tracking.py) and eval (wavegan/metrics/)
# ---------------------------------------------------------------------------------------------------


@dataclass
class TrackingConfig:
    """MLflow: metadata in sqlite:///mlflow.db and artifacts in mlruns/ unless MLFLOW_TRACKING_URI is set."""

    experiment: str = "wavegan"
    run_name: str | None = None  # null: <model>-<loss>-seed<seed>
    log_model: bool = True  # log the final generator (Keras format) as an artifact


@dataclass
class FeatureConfig:
    """The log-mel spectrograms every metric is computed on (wavegan/metrics/features.py)."""

    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 64
    time_segments: int = 16  # NDB and nearest-neighbour vectors: log-mel averaged over this many stretches
    align_onset: bool = True  # shift each clip so its onset starts it: a sound is the same wherever it starts


@dataclass
class SummaryConfig:
    """The small-data model's clip summary (wavegan/metrics/discriminant.py: ClipSummary)."""

    patch_frames: int = 32  # onset patch: the first 32 aligned frames (0.5 s at hop 256) ...
    patch_pool: int = 2  # ... averaged over 2 x 2 (frames x bands) cells
    n_mfcc: int = 20  # cepstral coefficients, summarised over time with the band statistics


@dataclass
class CnnConfig:
    """The larger data sets' model: 4 stride-2 3x3 convolutions + global average pooling
    (wavegan/metrics/cnn.py)."""

    epochs: int = 20  # at most; early stopping keeps the best epoch (ties: lower loss)
    patience: int = 3
    batch_size: int = 64
    learning_rate: float = 5.0e-3  # AdamW
    weight_decay: float = 0.0
    embedding_dim: int = 128  # the penultimate layer: the Fréchet distance's feature space
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 64])


@dataclass
class ClassifierConfig:
    """The quality classifier trained on the data set's labels (wavegan/metrics/classifier.py); feeds IS,
    FD, class coverage and entropy."""

    # Unfit below this held-out accuracy (info.json: classifier_accuracy with a Wilson 95 % interval): IS,
    # FD, coverage and entropy are then marked unreliable. Not part of the cache key: changing it
    # re-judges the cached classifier.
    min_accuracy: float = 0.8
    # Up to this many labelled training clips a data set is small: shrinkage LDA on a summary of each clip
    # (`summary`), its accuracy by k-fold cross-validation on the training split plus the held-out clips.
    # Above: the CNN (`cnn`), fitted on train, early-stopped on valid, scored on test. Measured crossover
    # (benchmarks/classifier_small_data.py --crossover, 5-fold): on 605 built-in notes the LDA is ahead
    # (0.979 vs 0.959), on 1001 and 2046 the two are level (0.989 vs 0.991, 0.996 vs 0.998).
    small_data_max_clips: int = 600
    cv_folds: int = 5  # 0: small data scored on the held-out clips alone
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    cnn: CnnConfig = field(default_factory=CnnConfig)


@dataclass
class EvalConfig:
    """Sample-quality metrics against held-out real data (wavegan/metrics/)."""

    enabled: bool = True
    every: int = 25  # training steps between evaluations; 0 = only at the end of the run
    num_samples: int = (
        256  # clips per evaluation, generated and held-out real alike (N = min(this, held-out))
    )
    is_splits: int = 10  # Inception Score: mean and std over up to this many splits of >= 50 clips
    bootstrap: int = 200  # resamples for the 95 % intervals (eval/<name>_ci_low/high)
    ndb_k: int = 50  # NDB's k-means bins (Richardson & Weiss 2018)
    quality_key: str = "eval/frechet_distance"  # the run's headline quality figure
    samples: str | None = None  # `wavegan evaluate samples=<folder | MLflow run id>`
    features: FeatureConfig = field(default_factory=FeatureConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


# ---------------------------------------------------------------------------------------------------
# the root config
# ---------------------------------------------------------------------------------------------------


@dataclass
class Config:
    data: Any = MISSING
    preprocessing: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    optimizer: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0


SCHEMAS: dict[str, dict[str, type]] = {
    "data": {"builtin": BuiltinData, "nsynth": NSynthData, "audio_dir": AudioDirData},
    "preprocessing": {
        "waveform": WaveformPreprocessing,
        "spectrogram": SpectrogramPreprocessing,
        "specgan": SpecGANPreprocessing,
    },
    "model": {"wavegan": WaveGANModel, "dcgan": DCGANModel, "audiosynth": AudioSynthModel},
    "loss": {"loss": LossConfig},
    "penalty": {"penalty": PenaltyConfig},
    "optimizer": {"adam": AdamOptimizer, "rmsprop": RMSPropOptimizer},
    "trainer": {"trainer": TrainerConfig},
    "tracking": {"tracking": TrackingConfig},
    "eval": {"eval": EvalConfig},
}


def register() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent): `schema/<group>/<name>`, and the root
    `config_schema` that conf/config.yaml starts from."""
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    # The root stays open to top-level keys other apps add on top of the training config (`wavegan sweep`
    # composes it with its `sweep` group); Hydra still refuses unknown keys on the command line.
    root = OmegaConf.structured(Config)
    OmegaConf.set_struct(root, False)
    store.store(name="config_schema", node=root)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def typed(group: str, cfg: Any, option: str | None = None) -> Any:
    """`cfg` (a DictConfig or a plain dict, possibly partial) merged into its schema, so every key is present
    with its type: what model builders and tests that build a part directly get. The schema is the option's
    (`option`, or `cfg.name` / `cfg.source`) or the group's only one. Wrong types and unknown keys raise
    ConfigError naming `<group>.<key>`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from wavegan.errors import ConfigError

    schemas = SCHEMAS[group]
    if option is None:
        option = next(iter(schemas)) if len(schemas) == 1 else (cfg.get("name") or cfg.get("source"))
    if option not in schemas:
        raise ConfigError(f"{group}={option!r} is not an option. Fix: use one of {', '.join(schemas)}.")
    try:
        return OmegaConf.merge(OmegaConf.structured(schemas[option]), cfg)
    except OmegaConfBaseException as exc:
        key = f"{group}.{exc.full_key}" if getattr(exc, "full_key", None) else group
        problem = str(exc.msg if hasattr(exc, "msg") else exc).splitlines()[0]
        raise ConfigError(
            f"{key}: {problem}. Fix: correct or remove it (the keys of {group}={option} and their types: "
            f"{schemas[option].__name__} in wavegan/config/schema.py)."
        ) from None
