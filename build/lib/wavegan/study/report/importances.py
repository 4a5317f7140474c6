"""fANOVA importances of the searched parameters, for the objective and for stability (the trials'
divergence rate), reported only where the trial count supports them; otherwise the reason, as a sentence."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
from optuna.trial import TrialState

from wavegan.study.report.tables import result_trials, searched_distributions

# fANOVA importances (Hutter et al. 2014, Optuna's default evaluator) fit a random forest from parameters
# to the objective and split its variance; Optuna's docs say they are only as reliable as that forest's
# fit and need the search space covered widely, and give no interval. With a handful of trials the forest
# interpolates between a few points and the split reflects seed noise as much as the parameters. We ask
# for the regression rule of thumb of 10 observations per predictor (Peduzzi et al. 1996; Harrell,
# "Regression Modeling Strategies"): 10 completed trials per searched parameter, and never fewer than 20.
# A 2 x 2 grid (4 trials) therefore gets no importances; its per-setting comparisons are the evidence.
MIN_TRIALS_PER_PARAMETER = 10
MIN_TRIALS_FOR_IMPORTANCE = 20


def importance_threshold(study: optuna.Study) -> int:
    """Completed trials needed before importances are reported (see MIN_TRIALS_PER_PARAMETER)."""
    return max(MIN_TRIALS_FOR_IMPORTANCE, MIN_TRIALS_PER_PARAMETER * len(searched_distributions(study)))


def too_few(study: optuna.Study, n: int, what: str) -> str:
    """Why importances are not reported for `n` `what` ("complete", "trained") trials."""
    needed = importance_threshold(study)
    text = (
        f"not reported: {n} {what} trial(s) is too few for importances (fANOVA needs about "
        f"{MIN_TRIALS_PER_PARAMETER} per searched parameter, here {needed})"
    )
    if (study.user_attrs.get("sweep", {}).get("sampler") or {}).get("name") == "grid":
        text += "; a grid study runs every combination once, so compare its settings above instead"
    return text


def _importances(study: optuna.Study, target=None) -> dict[str, float]:
    """Optuna's fANOVA importances, seeded (the forest is random) and without its experimental warnings."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), target=target)


def objective_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """fANOVA of the (first) objective over the complete trials; (None, why not) below the threshold."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < importance_threshold(study):
        return None, too_few(study, len(complete), "complete")
    values = [t.values[0] for t in complete]
    if np.ptp(values) == 0:
        return None, "every complete trial has the same objective value: no importances"
    try:
        return _importances(study, target=lambda t: t.values[0]), ""
    except Exception as exc:  # e.g. a parameter that never varied
        return None, f"importances unavailable ({exc.__class__.__name__}: {exc})"


def stability_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """fANOVA of the divergence rate over every trial that trained (diverged trials included: Optuna's
    own importances see only COMPLETE trials, so they are copied into a scratch study)."""
    trained = [
        t
        for t in result_trials(study)
        if t.user_attrs.get("outcome") in ("completed", "diverged") and "divergence_rate" in t.user_attrs
    ]
    rates = [float(t.user_attrs["divergence_rate"]) for t in trained]
    if len(trained) < importance_threshold(study):
        return None, too_few(study, len(trained), "trained")
    if np.ptp(rates) == 0:
        return None, f"every trial has divergence rate {rates[0]:.0%}: nothing to attribute"
    scratch = optuna.create_study(direction="minimize")
    for t, rate in zip(trained, rates, strict=True):
        scratch.add_trial(
            optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=rate)
        )
    try:
        return _importances(scratch), ""
    except Exception as exc:
        return None, f"stability importances unavailable ({exc.__class__.__name__}: {exc})"
