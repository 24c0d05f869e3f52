"""Featurisation workers that die at named points (data.faults) or are killed at random moments: no run hangs,
loses or duplicates a complex, or changes a number. On the bundled examples: no reference folder needed.

Each run is a fresh process in a session of its own, ended by force after a deadline (a hang fails the test
instead of stalling the suite); the harness is bench/stress_kill.py's, which does the same with 200+ kills.
"""

from __future__ import annotations

import random
import re

import pytest

from bench.stress_kill import DIED, arrays_digest, featurise_run, kill_plan, problems
from data.dssp import mkdssp_available
from data.featurize import featurize_one
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(not mkdssp_available(), reason="mkdssp not installed (scripts/setup.sh installs it)")

EXAMPLES = [REPO_ROOT / "examples" / name for name in ("1HVR.pdb", "4E43.pdb")]
DEADLINE_SECONDS = 120
POINTS = ("complex-start", "after-dssp-start", "after-topology", "complex-end")


@pytest.fixture(scope="module")
def undisturbed() -> dict[str, str]:
    """Digests of the examples' graphs featurised in this process (no pool, no fault)."""
    results = [featurize_one(path) for path in EXAMPLES]
    assert all(result.arrays is not None for result in results), [result.reason for result in results]
    return {result.name: arrays_digest(result.arrays) for result in results}


def run(tmp_path, fault: str | None = None, settings: dict | None = None, plan: list | None = None, seed: int = 0):
    rng = random.Random(seed)
    outcome = featurise_run(EXAMPLES, settings or {"jobs": 2}, plan or [], rng, DEADLINE_SECONDS, tmp_path / "run",
                            fault)
    assert not outcome.hung, "the run did not end"
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert sorted(o["name"] for o in outcome.outcomes) == ["1HVR", "4E43"], outcome.outcomes
    assert outcome.strays == [] and outcome.leftovers == []  # no process, no temporary file left behind
    return outcome, {o["name"]: o for o in outcome.outcomes}


@pytest.mark.parametrize("point", POINTS)
def test_a_worker_killed_once_at_any_point_costs_no_complex(tmp_path, undisturbed, point):
    outcome, by_name = run(tmp_path, f"{point}@4E43:die-once")
    assert (tmp_path / "run" / "fault-marker").exists()  # a worker did die there
    assert {name: o["digest"] for name, o in by_name.items()} == undisturbed


def test_a_complex_that_kills_every_process_it_runs_in_is_skipped_alone(tmp_path, undisturbed):
    outcome, by_name = run(tmp_path, "after-topology@4E43:die")
    assert by_name["1HVR"]["digest"] == undisturbed["1HVR"]
    reason = by_name["4E43"]["reason"]
    assert reason.startswith(DIED) and by_name["4E43"]["digest"] is None
    # Killed in the pool, then in each of its two processes of its own, which the reason names.
    assert len(re.findall(r"pid \d+ killed by SIGKILL", reason)) == 2, reason


def test_a_lost_complex_whose_first_own_process_dies_gets_a_second(tmp_path, undisturbed):
    outcome, by_name = run(tmp_path, "complex-start@4E43:die-once,alone-start@4E43 attempt 1:die")
    assert (tmp_path / "run" / "fault-marker").exists()
    assert {name: o["digest"] for name, o in by_name.items()} == undisturbed


@pytest.mark.parametrize("settings", [{"jobs": 2}, {"jobs": 1, "background": True}], ids=["pool", "background"])
def test_workers_that_die_at_start_up_end_the_run(tmp_path, settings):
    outcome, by_name = run(tmp_path, "worker-start:die", settings)
    for name, o in by_name.items():
        assert o["reason"].startswith(DIED), (name, o["reason"])


def test_a_background_worker_that_dies_is_replaced(tmp_path, undisturbed):
    # One background worker: 4E43 (the larger file, first) takes it down; 1HVR goes to the next pool, 4E43 alone.
    outcome, by_name = run(tmp_path, "after-dssp-start@4E43:die-once", {"jobs": 1, "background": True})
    assert {name: o["digest"] for name, o in by_name.items()} == undisturbed


@pytest.mark.parametrize("seed", [1, 2])
def test_random_kills_change_nothing_but_the_time(tmp_path, undisturbed, seed):
    # Up to 5 SIGKILLs: the first at a process's start-up (so one lands however fast the machine), the others
    # at random delays (random picks, start-ups included). Whatever they hit, each complex comes back once, with
    # the undisturbed numbers or skipped after its own processes were killed.
    rng = random.Random(seed)
    plan = [None] + [value if value is None else value / 5 for value in kill_plan(rng, 4)]
    outcome, _ = run(tmp_path, settings={"jobs": 2}, plan=plan, seed=seed)
    assert outcome.killed, "no kill landed"
    found = problems(outcome, undisturbed)
    assert not any(found.values()), found
