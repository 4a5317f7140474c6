"""The fault-injection harness behind benchmarks/faults.py and tests/faults/ (issue 13).

A *fault* is one row of the table: a name, and a `trial(rng, workspace)` that injects the fault once at a
point drawn from `rng`, lets the product recover the way a user would (the same command again, or
`trainer.resume=true`), and checks the invariants, returning a `Trial` (survived, data lost, wrong
results, what happened). `harness.run_faults` runs N trials of each fault and builds the table.

Rows without a server: kill -9 of training (fault 1) and of cache builds (2), a full disk (4), a corrupt
checkpoint (5), hostile inputs (8). Rows with real servers (tests/servers.py: PostgreSQL, `mlflow server`,
started on first use by server_faults.Servers, or the test session's): kill -9 of sweep workers (3), a
tracking server lost mid-run (6); and concurrent use of one SQLite store (7).

Modules: harness (Trial, Fault, the table), processes (isolated workspaces, running and killing
`wavegan` commands), mlflow_checks (comparing a run with the uninterrupted reference), small_disk
(a tmpfs of a given size), training_faults (1, 4, 5), cache_faults (2), sweep_faults (3),
server_faults (6), concurrency_faults (7), input_faults (8).
"""
