"""``nerve.tune.search``: grids, seeds, pruned and failed trials, Ctrl-C, trials in fresh processes, several
workers on one SQLite, journal or PostgreSQL storage, and the errors for bad input."""
import functools
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

import nerve
from nerve import nn
from nerve.train import fit
from nerve.tune import PruningCallback, open_storage, choice, intrange, loguniform, search, uniform, worker_seed
from nerve.tune.process import run_in_process
from tests.tune import objectives

ROOT = Path(__file__).resolve().parents[2]
COMPLETE, FAIL, PRUNED = "COMPLETE", "FAIL", "PRUNED"


def test_grid_covers_its_grid_exactly():
    space = {"lr": loguniform(1e-3, 1e-1), "n": intrange(1, 3), "act": choice(["relu", "tanh"])}
    result = search(lambda p, t: p["lr"] * p["n"], space, n_trials=100, sampler="grid", grid_points=3, verbose=0)
    seen = sorted((round(math.log10(r["params_lr"])), r["params_n"], r["params_act"]) for r in result.trials)
    assert seen == sorted((e, n, a) for e in (-3, -2, -1) for n in (1, 2, 3) for a in ("relu", "tanh"))
    assert result.best_params["n"] == 1 and result.best_params["lr"] == pytest.approx(1e-3)


def test_a_seeded_study_is_reproducible_and_tpe_finds_the_minimum():
    runs = [search(objectives.quadratic, n_trials=25, sampler="tpe", seed=7, verbose=0) for _ in range(2)]
    assert [r["params_x"] for r in runs[0].trials] == [r["params_x"] for r in runs[1].trials]
    other = search(objectives.quadratic, n_trials=3, sampler="tpe", seed=8, verbose=0)
    assert other.trials[0]["params_x"] != runs[0].trials[0]["params_x"]
    assert runs[0].best_params["n"] == 2 and runs[0].best_value < 0.02  # minimum 0 at x=0.3, n=2
    assert {"number", "state", "value", "duration_s", "params_x", "params_n"} <= set(runs[0].trials[0])


def test_worker_seeds_differ_and_worker_zero_keeps_the_seed():
    assert worker_seed(5, 0) == 5 and worker_seed(None, 3) is None
    assert len({worker_seed(5, w) for w in range(1, 50)}) == 49


def test_failed_trials_are_recorded_with_their_reason_and_the_study_goes_on(capsys):
    def objective(params, trial):
        if trial.number == 1:
            raise ValueError(f"x={params['x']:.2f} breaks it")
        return float("nan") if trial.number == 2 else params["x"]

    result = search(objective, {"x": uniform(0, 1)}, n_trials=4, sampler="random", seed=0)
    states = [r["state"] for r in result.trials]
    assert states == [COMPLETE, FAIL, FAIL, COMPLETE]
    assert result.trials[1]["fail_reason"].startswith("ValueError: x=")
    assert result.trials[1]["fail_reason"].endswith("breaks it")
    assert result.trials[2]["fail_reason"] == "the objective returned nan"
    assert "trial 1: fail" in capsys.readouterr().out


def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return X, (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def test_pruning_callback_stops_fit_and_records_a_pruned_trial():
    X, y = _regression()

    def objective(params, trial):
        nerve.manual_seed(0)
        model = nn.Linear(3, 1)
        history = fit(model, (X, y), loss="mse", optimizer=nerve.optim.SGD(model.parameters(), lr=params["lr"]),
                      epochs=5, batch_size=16, validation_split=0.25, verbose=0,
                      callbacks=[PruningCallback(trial, "val_loss")])
        return history.history["val_loss"][-1]

    # NOTE: lr 5 diverges (val_loss ~4e5 after one epoch); a pruner that prunes any val_loss above 1e3 stops it
    result = search(objective, {"lr": choice([0.3, 5.0])}, n_trials=2, sampler="grid",
                    pruner=optuna.pruners.ThresholdPruner(upper=1e3), verbose=0)
    trials = {t.params["lr"]: t for t in result.study.trials}
    assert trials[5.0].state.name == PRUNED and list(trials[5.0].intermediate_values) == [0]
    assert trials[0.3].state.name == COMPLETE and list(trials[0.3].intermediate_values) == [0, 1, 2, 3, 4]
    assert trials[0.3].value < 1e-3 and result.best_params == {"lr": 0.3}


def test_median_pruner_prunes_a_trial_worse_than_the_median():
    def objective(trial):
        bad = trial.number == 5
        for step in range(3):
            trial.report(10.0 + step if bad else 1.0 - 0.1 * step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 1.0

    result = search(objective, n_trials=6, pruner="median", verbose=0)  # prunes from the 6th trial on
    assert [r["state"] for r in result.trials] == [COMPLETE] * 5 + [PRUNED]
    assert list(result.study.trials[5].intermediate_values) == [0, 1]  # one warm-up step


def test_ctrl_c_fails_the_running_trial_and_keeps_finished_ones(capsys):
    def objective(params, trial):
        if trial.number == 2:
            raise KeyboardInterrupt
        return params["x"]

    result = search(objective, {"x": uniform(0, 1)}, n_trials=10, sampler="random", seed=0, verbose=0)
    assert result.interrupted
    assert [r["state"] for r in result.trials] == [COMPLETE, COMPLETE, FAIL]
    assert result.trials[2]["fail_reason"] == "interrupted (Ctrl-C)"
    assert result.best_value == min(r["value"] for r in result.trials[:2])
    assert "interrupted" in capsys.readouterr().err


def test_sigint_fails_the_running_fresh_process_trial_and_keeps_the_finished_ones(tmp_path):
    storage = f"sqlite:///{tmp_path}/int.db"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.tune.objectives", storage, "int", "100", "0", "slow"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    study = None
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            # nerve's opener, as a second worker would: the test and the worker race to create the tables
            study = optuna.load_study(study_name="int", storage=open_storage(storage))
        except KeyError:
            continue
        states = [t.state.name for t in study.get_trials()]
        if states.count(COMPLETE) >= 1 and states[-1] == "RUNNING":
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    trials = optuna.load_study(study_name="int", storage=storage).get_trials()
    states = [t.state.name for t in trials]
    assert states.count(COMPLETE) >= 1 and "RUNNING" not in states
    assert states[-1] == FAIL and trials[-1].user_attrs["fail_reason"] == "interrupted (Ctrl-C)"
    assert "interrupted" in err


def test_trials_in_fresh_processes():
    result = search(objectives.quadratic, n_trials=1, sampler="random", seed=0, fresh_process=True, verbose=0)
    direct = search(objectives.quadratic, n_trials=1, sampler="random", seed=0, verbose=0)
    assert [r["value"] for r in result.trials] == [r["value"] for r in direct.trials]
    # a module global that grows (a leak) starts empty in each fresh process
    fresh = search(objectives.leaky, n_trials=2, fresh_process=True, verbose=0)
    assert [r["value"] for r in fresh.trials] == [1.0, 1.0]
    here = search(objectives.leaky, n_trials=2, verbose=0)
    assert [r["value"] for r in here.trials] == [1.0, 2.0]


def test_fresh_process_failures_pruning_and_death_are_recorded():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.ThresholdPruner(upper=0.7))
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="pruned at step 0"):
        run_in_process(trial, objectives.reports)
    assert trial.should_prune() and 0 in study.trials[0].intermediate_values
    with pytest.raises(RuntimeError, match="ValueError: bad configuration x"):
        run_in_process(study.ask(), objectives.raises)
    nan = search(functools.partial(objectives.returns, value=float("nan")), n_trials=1, fresh_process=True,
                 verbose=0)
    assert nan.trials[0]["state"] == FAIL and nan.trials[0]["fail_reason"] == "the objective returned nan"
    died = search(objectives.dies, n_trials=1, fresh_process=True, verbose=0)
    assert [r["fail_reason"] for r in died.trials] == ["the trial's process died (exit code 3)"]


def _workers(storage: str, study: str, n: int, seed: int = 0) -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.tune.objectives", storage, study, str(n), str(seed)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"worker failed:\n{out}\n{err[-3000:]}"


def _check_study(storage: str, study: str, n: int) -> None:
    loaded = optuna.load_study(study_name=study, storage=open_storage(storage))
    trials = loaded.get_trials()
    assert len(trials) == 2 * n and all(t.state.name == COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    # same seed on both workers, yet no configuration drawn twice
    assert len({(t.params["x"], t.params["n"]) for t in trials}) == 2 * n
    assert sorted(t.number for t in trials) == list(range(2 * n))


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_study(tmp_path, kind):
    storage = f"sqlite:///{tmp_path}/study.db" if kind == "sqlite" else f"journal:{tmp_path}/study.log"
    _workers(storage, "shared", 4)
    _check_study(storage, "shared", 4)


def test_two_workers_on_postgresql(postgres_url):
    study = f"pg-{os.getpid()}"
    _workers(postgres_url, study, 4)
    _check_study(postgres_url, study, 4)
    optuna.delete_study(study_name=study, storage=open_storage(postgres_url))


def test_a_config_search_trains_nerve_train_models():
    space = {"lr": loguniform(1e-3, 3e-2), "hidden": choice([16, 32]), "layers": intrange(1, 2)}
    result = search({"data": "digits", "epochs": 2}, space, n_trials=2, sampler="random", seed=0, verbose=0)
    assert [r["state"] for r in result.trials] == [COMPLETE, COMPLETE]
    assert result.study.direction.name == "MAXIMIZE" and 0.5 < result.best_value <= 1.0  # validation accuracy
    assert list(result.study.best_trial.intermediate_values) == [0, 1]  # reported by PruningCallback each epoch


def test_the_study_resumes_where_it_stopped(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    search(objectives.quadratic, n_trials=3, storage=storage, study_name="s", seed=0, verbose=0)
    again = search(objectives.quadratic, n_trials=2, storage=storage, study_name="s", seed=0, verbose=0)
    assert [r["number"] for r in again.trials] == [0, 1, 2, 3, 4]


def test_bad_input_is_refused(tmp_path):
    f = objectives.quadratic
    with pytest.raises(ValueError, match="unknown sampler 'anneal'"):
        search(f, n_trials=1, sampler="anneal")
    with pytest.raises(ValueError, match="unknown pruner 'asha'"):
        search(f, n_trials=1, pruner="asha")
    with pytest.raises(ValueError, match="n_trials must be a positive int, got 0"):
        search(f, n_trials=0)
    with pytest.raises(ValueError, match="grid' needs space="):
        search(f, n_trials=1, sampler="grid")
    with pytest.raises(ValueError, match="direction must be"):
        search(f, n_trials=1, direction="up")
    with pytest.raises(ValueError, match="the space is empty"):
        search(lambda p, t: 0.0, {}, n_trials=1)
    with pytest.raises(ValueError, match="storage 'redis://x': unknown kind"):
        search(f, n_trials=1, storage="redis://x")
    with pytest.raises(ValueError, match="the folder .*nowhere does not exist"):
        search(f, n_trials=1, storage=f"sqlite:///{tmp_path}/nowhere/s.db")
    storage = f"sqlite:///{tmp_path}/d.db"
    search(f, n_trials=1, storage=storage, study_name="dir", verbose=0)
    with pytest.raises(ValueError, match="exists with direction minimize, not maximize"):
        search(f, n_trials=1, storage=storage, study_name="dir", direction="maximize", verbose=0)
    with pytest.raises(ValueError, match="space names \\['depth'\\], which are not options of nerve train"):
        search({"data": "digits"}, {"depth": intrange(1, 2)}, n_trials=1)
    with pytest.raises(ValueError, match="unknown options \\['epoch'\\]"):
        search({"data": "digits", "epoch": 3}, {"lr": loguniform(1e-3, 1e-2)}, n_trials=1)


def test_an_unreachable_postgresql_server_is_named_with_how_to_start_one():
    url = "postgresql://me:secret@127.0.0.1:1/nerve"
    with pytest.raises(ValueError) as info:
        search(objectives.quadratic, n_trials=1, storage=url, study_name="x")
    message = str(info.value)
    assert "postgresql://me:***@127.0.0.1:1/nerve" in message and "secret" not in message
    assert "cannot reach the database server" in message and "pg_ctlcluster" in message
