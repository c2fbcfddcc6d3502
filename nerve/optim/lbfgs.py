"""``LBFGS``: limited-memory BFGS with PyTorch's signature, iterates and state (two-loop recursion, optional
strong-Wolfe line search with cubic interpolation, after minFunc), plus the reason each ``step`` stopped.

All parameters are seen as one flat vector; ``step(closure)`` runs up to ``max_iter`` iterations, each
re-evaluating the loss and gradient through ``closure`` (which zeroes the gradients, computes the loss,
calls ``backward`` and returns the loss).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from nerve.autograd.grad_mode import enable_grad
from nerve.backend import xp
from nerve.optim.optimizer import Optimizer
from nerve.tensor import Tensor


def _cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                       bounds: tuple[float, float] | None = None) -> float:
    """Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clipped to ``bounds`` (default: [x1, x2])."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square ** 0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def _strong_wolfe(obj_func: Callable, x: list, t: float, d, f: float, g, gtd: float, c1: float = 1e-4,
                  c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25) -> tuple:
    """Line search along ``d`` from loss ``f`` (gradient ``g``, slope ``gtd``) for a step meeting the strong
    Wolfe conditions (bracketing, then zoom by cubic interpolation). Returns (f_new, g_new, t, evaluations)."""
    d_norm = float(xp.abs(d).max())
    f_new, g_new = obj_func(x, t, d)
    evals = 1
    gtd_new = float(xp.dot(g_new, d))
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], \
                [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], \
                [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        previous = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = previous, f_new, g_new, gtd_new
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = float(xp.dot(g_new, d))
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point meets the strong Wolfe conditions
    insuf_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # NOTE: a point too close to the bracket's ends makes little progress; move it inside by 10% (minFunc).
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = float(xp.dot(g_new, d))
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


class LBFGS(Optimizer):
    """L-BFGS (PyTorch's ``torch.optim.LBFGS``): ``step(closure)`` runs up to ``max_iter`` quasi-Newton
    iterations and returns the loss of the closure's first evaluation.

    After each step ``stop_reason`` says why it stopped and ``state`` holds PyTorch's entries (``func_evals`` and
    ``n_iter`` counted over all steps, the curvature pairs, the last direction ``d`` and step ``t``).
    One parameter group only, as in PyTorch.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1.0, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None) -> None:
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(f"LBFGS doesn't support per-parameter options (parameter groups): got "
                             f"{len(self.param_groups)} groups; pass one list of parameters (as in PyTorch)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict) -> None:
        """Only the first group is accepted: L-BFGS sees all parameters as one vector."""
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): it already has "
                             "its one group")
        super().add_param_group(param_group)

    def _validate(self, group: dict, index: int) -> None:
        self._check_range("lr", group["lr"], index)
        for key in ("max_iter", "max_eval", "history_size"):
            value = group[key]
            self._check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, key, value,
                        "an int >= 1", index)
        self._check_range("tolerance_grad", group["tolerance_grad"], index)
        self._check_range("tolerance_change", group["tolerance_change"], index)
        self._check(group["line_search_fn"] in (None, "strong_wolfe"), "line_search_fn", group["line_search_fn"],
                    "None or 'strong_wolfe'", index)

    @property
    def stop_reason(self) -> str | None:
        """Why the last ``step`` stopped (None before the first step)."""
        return self.state[self._params[0]].get("stop_reason")

    # --- flat views of the parameters ----------------------------------------------------------------
    def _gather_flat_grad(self):
        parts = [xp.zeros(p.data.size, dtype=p.data.dtype) if p.grad is None else p.grad.data.reshape(-1)
                 for p in self._params]
        return xp.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def _add_grad(self, t: float, d) -> None:
        offset = 0
        for p in self._params:
            n = p.data.size
            p.data += (t * d[offset:offset + n]).reshape(p.data.shape).astype(p.data.dtype, copy=False)
            p._version += 1
            offset += n

    def _clone_param(self) -> list:
        return [p.data.copy() for p in self._params]

    def _set_param(self, values: list) -> None:
        for p, v in zip(self._params, values):
            p.data[...] = v
            p._version += 1

    def _evaluate(self, closure: Callable) -> float:
        with enable_grad():
            return _loss_value(closure())

    def _directional_evaluate(self, closure: Callable, x: list, t: float, d) -> tuple:
        self._add_grad(t, d)
        loss = self._evaluate(closure)
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # --- the step ---------------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Up to ``max_iter`` iterations; ``closure`` zeroes grads, computes the loss, backpropagates, returns it."""
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step needs a closure that zeroes the gradients, computes the loss, calls "
                            f"backward() and returns the loss; got {type(closure).__name__}")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            orig_loss = closure()
        loss = _loss_value(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if float(xp.abs(flat_grad).max()) <= tolerance_grad:
            state["stop_reason"] = f"converged: max |grad| <= tolerance_grad ({tolerance_grad:g}) at the start"
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        reason = f"max_iter ({max_iter}) iterations done"
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1.0
            else:
                # update the curvature pairs (skipped when y's = s'y is not safely positive)
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(xp.dot(y, s))
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(xp.dot(y, y))
                # two-loop recursion: d = -H g
                al = [0.0] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = float(xp.dot(old_stps[i], q)) * ro[i]
                    q -= al[i] * old_dirs[i]
                d = r = q * h_diag
                for i in range(len(old_dirs)):
                    be_i = float(xp.dot(old_dirs[i], r)) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            # first iteration ever: a step scaled so that it moves by at most lr in the 1-norm
            t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(xp.dot(flat_grad, d))
            if gtd > -tolerance_change:
                reason = f"directional derivative {gtd:.3g} > -tolerance_change: no descent direction left"
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    lambda x, step, direction: self._directional_evaluate(closure, x, step, direction),
                    x_init, t, d, loss, flat_grad, gtd)
                self._add_grad(t, d)
                opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    loss = self._evaluate(closure)
                    flat_grad = self._gather_flat_grad()
                    opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                reason = f"max_eval ({max_eval}) function evaluations done"
                break
            if opt_cond:
                reason = f"converged: max |grad| <= tolerance_grad ({tolerance_grad:g})"
                break
            if float(xp.abs(d * t).max()) <= tolerance_change:
                reason = f"step changed no parameter by more than tolerance_change ({tolerance_change:g})"
                break
            if abs(loss - prev_loss) < tolerance_change:
                reason = f"loss changed by less than tolerance_change ({tolerance_change:g})"
                break
        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss, stop_reason=reason)
        return orig_loss

    # --- state dicts --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """PyTorch's layout: the state of the first parameter holds everything (flat arrays as Tensors)."""
        saved = super().state_dict()
        for values in saved["state"].values():
            for key in ("old_dirs", "old_stps"):
                if key in values:
                    values[key] = [Tensor(a.copy()) for a in values[key]]
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by ``state_dict``: the next ``step`` continues exactly where it left off."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != 1 or len(saved_groups[0]["params"]) != len(self._params):
            raise ValueError(f"LBFGS.load_state_dict: expected one group of {len(self._params)} parameters, got "
                             f"{[len(g['params']) for g in saved_groups]}")
        group = {k: v for k, v in saved_groups[0].items() if k != "params"}
        group["params"] = self._params
        self._validate(group, 0)
        values = state_dict["state"].get(0, state_dict["state"].get("0", {}))
        dtype = self._params[0].data.dtype

        def array(a):
            return xp.asarray(a.data if isinstance(a, Tensor) else a, dtype=dtype).copy()

        restored = {}
        for key, value in values.items():
            if key in ("d", "prev_flat_grad"):
                value = array(value)
            elif key in ("old_dirs", "old_stps"):
                value = [array(a) for a in value]
            elif key in ("ro",):
                value = [float(v) for v in value]
            elif key in ("func_evals", "n_iter"):
                value = int(value.item() if hasattr(value, "item") else value)
            elif key in ("t", "H_diag", "prev_loss") and value is not None:
                value = float(value.item() if hasattr(value, "item") else value)
            restored[key] = value
        self.param_groups = [group]
        self.state.clear()
        self.state[self._params[0]] = restored


def _loss_value(loss: Any) -> float:
    """The closure's loss as a float; anything but a scalar Tensor or number is an error."""
    if isinstance(loss, Tensor):
        if loss.data.size != 1:
            raise ValueError(f"LBFGS.step: the closure must return a scalar loss, got a Tensor of shape "
                             f"{tuple(loss.shape)}")
        return float(loss.data.reshape(()))
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return float(loss)
    raise TypeError(f"LBFGS.step: the closure must return the loss (a scalar Tensor or float) after calling "
                    f"backward(), got {type(loss).__name__}")


def closure_step(loss_fn: Callable) -> Callable:
    """A ``train_step`` for ``fit`` that drives a closure-based optimiser (LBFGS): each batch is one
    ``optimizer.step(closure)``; the logged loss is the closure's first evaluation on the batch."""
    def train_step(model, batch, optimizer) -> dict:
        # fit's convention: the last field of a tuple batch is the target; a lone tensor or 1-tuple has none
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            inputs, target = tuple(batch[:-1]), batch[-1]
        else:
            inputs, target = (batch[0] if isinstance(batch, (tuple, list)) else batch,), None

        def closure():
            optimizer.zero_grad()
            output = model(*inputs)
            loss = loss_fn(output) if target is None else loss_fn(output, target)
            loss.backward()
            return loss
        return {"loss": optimizer.step(closure)}
    return train_step
