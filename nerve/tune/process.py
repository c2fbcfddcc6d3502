"""Run one trial's objective in a fresh process (spawned, so memory never grows across trials).

The child gets a stand-in trial whose ``suggest_*``, ``report``, ``should_prune`` and ``set_user_attr`` calls
travel over a pipe to the real Optuna trial in the parent; the child answers with the value, a prune, or the
error it raised. A child that dies (killed, out of memory) fails its trial with its exit code.
"""
from __future__ import annotations

import multiprocessing
import traceback
from typing import Callable

__all__ = ["run_in_process", "TrialProcessError"]

_CALLS = ("suggest_float", "suggest_int", "suggest_categorical", "report", "should_prune", "set_user_attr")


class TrialProcessError(RuntimeError):
    """The objective raised in its process, or the process died; the message says which and why."""


class _RemoteTrial:
    """What the objective sees in the child: the Optuna trial's methods, run by the parent."""

    def __init__(self, conn, number: int) -> None:
        self._conn, self.number = conn, number
        self.params: dict = {}

    def __getattr__(self, name: str) -> Callable:
        if name not in _CALLS:
            raise AttributeError(f"a trial run in its own process offers {list(_CALLS)}, not {name!r}")

        def call(*args, **kwargs):
            self._conn.send(("call", name, args, kwargs))
            kind, value = self._conn.recv()
            if kind == "raise":
                raise ValueError(value)
            if name.startswith("suggest_"):
                self.params[args[0] if args else kwargs["name"]] = value
            return value
        return call


def _child(conn, objective: Callable, args: tuple, number: int) -> None:
    import optuna

    try:
        value = objective(_RemoteTrial(conn, number), *args)
        conn.send(("value", float(value)))
    except optuna.TrialPruned as exc:
        conn.send(("pruned", str(exc)))
    except KeyboardInterrupt:
        conn.send(("error", "interrupted (Ctrl-C)"))
    except Exception as exc:  # NOTE: every failure goes back to the parent, which records it on the trial
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"))
    finally:
        conn.close()


def run_in_process(trial, objective: Callable, args: tuple = (), poll: float = 0.2) -> float:
    """``objective(trial, *args)`` in a spawned process (both must pickle: module-level functions)."""
    import optuna

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, objective, args, trial.number), daemon=True)
    proc.start()
    child.close()
    try:
        while True:
            if not parent.poll(poll):
                if not proc.is_alive() and not parent.poll(0):
                    raise TrialProcessError(f"the trial's process died (exit code {proc.exitcode})")
                continue
            try:
                message = parent.recv()
            except EOFError:
                proc.join(5)
                raise TrialProcessError(f"the trial's process died (exit code {proc.exitcode})") from None
            kind = message[0]
            if kind == "call":
                _, name, call_args, kwargs = message
                try:
                    parent.send(("ok", getattr(trial, name)(*call_args, **kwargs)))
                except Exception as exc:  # NOTE: a bad suggest_* call is the objective's error, raised there
                    parent.send(("raise", f"{type(exc).__name__}: {exc}"))
            elif kind == "value":
                return message[1]
            elif kind == "pruned":
                raise optuna.TrialPruned(message[1])
            else:
                raise TrialProcessError(message[1])
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
        parent.close()

