"""The fault-injection harness (benchmarks/faults.py, issue 13) at reduced counts: every fault row with
3 trials at random points (a fixed seed), each expected to survive with nothing lost and nothing wrong.
The benchmark runs the same rows with 20 trials each. The server rows use the session's PostgreSQL and
MLflow servers (tests/conftest.py); the lost-server row stops that MLflow server and starts it again."""

import random

import pytest

from benchmarks.faultlib import (
    cache_faults,
    concurrency_faults,
    input_faults,
    server_faults,
    sweep_faults,
    training_faults,
)
from benchmarks.faultlib.harness import run_fault

TRIALS = 3
# The server rows cost about a minute a trial on 2 cores (several `wavegan` processes each); CI runs 3 of
# each too (about 10 minutes together): kill -9 of sweep workers on PostgreSQL (SQLite:
# tests/study/test_sweep.py), the tracking server lost mid-run (the trials alternate between the server
# coming back within MLflow's retries and staying down until the run stops and resumes), and concurrent use.
SERVER_TRIALS = 3
CONCURRENT_TRIALS = 3
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def reference(root):
    return training_faults.Reference(root)


@pytest.fixture
def servers(postgres_server, mlflow_tracking_server, root):
    return server_faults.Servers(root, postgres_server, mlflow_tracking_server)


def check(fault, root, seed: int, trials: int = TRIALS) -> None:
    if fault.unavailable:
        pytest.skip(fault.unavailable)
    row = run_fault(fault, trials, random.Random(seed), root)
    assert (row["trials"], row["survived"], row["data_lost"], row["wrong"]) == (trials, trials, 0, 0), row


def test_kill_9_of_training_anywhere_resumes_to_the_uninterrupted_result(reference, root):
    check(training_faults.KillTraining(reference), root, seed=1)


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(reference, root):
    check(training_faults.CorruptCheckpoint(reference), root, seed=2)


def test_a_full_disk_is_one_message_and_the_run_resumes_after_space_is_freed(reference, root):
    check(training_faults.DiskFull(reference), root, seed=3)


def test_kill_9_of_cache_builds_never_leaves_a_half_cache_in_use(root):
    check(cache_faults.KillCaching(), root, seed=4)


HOSTILE = [input_faults.HostileAudio, input_faults.HostileConfig, input_faults.HostileStudy]


@pytest.mark.parametrize("fault", HOSTILE, ids=lambda f: f.__name__)
def test_hostile_inputs_end_in_one_clear_message(root, fault):
    made = fault()
    try:
        check(made, root, seed=5)
    finally:
        input_faults.stop_workers([made])


def test_kill_9_of_sweep_workers_ends_with_exactly_n_trials_and_one_parent_run(servers, root):
    check(sweep_faults.KillSweepWorkers(servers), root, seed=6, trials=SERVER_TRIALS)


def test_a_tracking_server_lost_mid_run_loses_nothing_and_the_run_finishes(reference, servers, root):
    check(server_faults.LostTrackingServer(reference, servers), root, seed=7, trials=SERVER_TRIALS)


def test_concurrent_runs_and_sweeps_share_one_sqlite_store_and_one_data_store(reference, root):
    check(concurrency_faults.ConcurrentUse(reference), root, seed=8, trials=CONCURRENT_TRIALS)
