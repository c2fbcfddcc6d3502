"""Checkpoints resume exactly: after SIGKILL in another process, and after Ctrl-C in this one."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nerve
from nerve.train import Callback, Checkpoint, load_checkpoint

# One training setup, run here and in the child process: shuffling, dropout (nerve's generator), Adam,
# a scheduler, early stopping's state, a CSV log and running metrics all have to continue exactly.
SETUP = textwrap.dedent("""
    import numpy as np
    import nerve
    import nerve.nn as nn
    import nerve.optim as optim
    from nerve.train import CSVLogger, EarlyStopping, fit

    def run(csv_path, **kw):
        nerve.manual_seed(0)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((96, 4)).astype(np.float32)
        y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
        opt = optim.Adam(model.parameters(), lr=0.01)
        history = fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=4, batch_size=16,
                      validation_split=0.25, metrics=["accuracy", "f1"], verbose=0,
                      scheduler=optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
                      callbacks=[EarlyStopping(patience=10), CSVLogger(csv_path)] + kw.pop("callbacks", []), **kw)
        return model, opt, history
""")

CHILD = SETUP + textwrap.dedent("""
    import sys, time
    from nerve.train import Callback, Checkpoint

    class HangAfterStep(Callback):
        '''Stops making progress after 8 batches (5 per epoch), so the kill lands mid-epoch 2.'''

        def on_batch_begin(self, batch, logs=None):
            if self.trainer.global_step == 8:
                print("hanging", flush=True)
                time.sleep(60)

    run(sys.argv[2], checkpoint=Checkpoint(sys.argv[1], every_n_batches=3, verbose=True),
        callbacks=[HangAfterStep()])
""")


def _namespace():
    ns = {}
    exec(SETUP, ns)
    return ns


def _assert_same_run(a, b):
    (model_a, opt_a, hist_a), (model_b, opt_b, hist_b) = a, b
    for (k, va), (_, vb) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert np.array_equal(va.numpy(), vb.numpy()), k
    for sa, sb in zip(opt_a.state.values(), opt_b.state.values()):
        for key in sa:
            assert np.array_equal(np.asarray(sa[key]), np.asarray(sb[key])), key
    assert hist_a.history == hist_b.history and hist_a.epoch == hist_b.epoch


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    ckpt, csv_killed, script = tmp_path / "run.ckpt", tmp_path / "killed.csv", tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(script), str(ckpt), str(csv_killed)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("hanging"):
                break
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate()
    assert lines[-1] == "hanging", err
    # saves after batch 3, at the end of epoch 1 (batch 5) and after batch 6 (epoch 2, batch 1)
    assert [line.split("(")[1] for line in lines[:-1]] == ["epoch 1, batch 3)", "epoch 2, batch 0)",
                                                           "epoch 2, batch 1)"]
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["batch"], state["global_step"]) == (1, 1, 6)

    ns = _namespace()
    resumed = ns["run"](csv_killed, checkpoint=Checkpoint(ckpt, every_n_batches=3), resume=ckpt)
    reference = ns["run"](tmp_path / "reference.csv")
    _assert_same_run(resumed, reference)
    assert csv_killed.read_text() == (tmp_path / "reference.csv").read_text()


def test_ctrl_c_saves_at_a_batch_boundary_and_resumes_exactly(tmp_path):
    ckpt = tmp_path / "run.ckpt"

    class CtrlC(Callback):
        """Delivers a real SIGINT in the middle of a batch (between forward and optimiser step)."""

        def on_batch_begin(self, batch, logs=None):
            if self.trainer.global_step == 7:
                os.kill(os.getpid(), signal.SIGINT)

    ns = _namespace()
    with pytest.raises(KeyboardInterrupt):
        ns["run"](tmp_path / "a.csv", checkpoint=ckpt, callbacks=[CtrlC()])
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["batch"], state["global_step"]) == (1, 3, 8)  # the batch was finished
    resumed = ns["run"](tmp_path / "a.csv", checkpoint=ckpt, resume=True)
    reference = ns["run"](tmp_path / "b.csv")
    _assert_same_run(resumed, reference)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_resume_true_without_a_file_starts_fresh_and_weights_files_are_refused(tmp_path):
    ns = _namespace()
    ckpt = tmp_path / "run.ckpt"
    fresh = ns["run"](tmp_path / "a.csv", checkpoint=ckpt, resume=True)
    _assert_same_run(fresh, ns["run"](tmp_path / "b.csv"))
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["batch"]) == (4, 0)
    nerve.save(fresh[0], tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        ns["run"](tmp_path / "c.csv", resume=tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="every_n_batches must be a positive int"):
        Checkpoint(ckpt, every_n_batches=0)
