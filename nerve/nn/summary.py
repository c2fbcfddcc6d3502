"""``summary(model, input_shape)``: a table of each layer's output shape, parameter count and whether they train."""
from __future__ import annotations

from typing import Callable

from nerve import backend
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn.module import Module
from nerve.tensor import Tensor


def _shape_text(out) -> str:
    if isinstance(out, Tensor):
        return str([-1] + list(out.shape[1:]))
    if isinstance(out, (tuple, list)):
        return ", ".join(_shape_text(o) for o in out)
    return type(out).__name__


def summary(model: Module, input_shape, dtype=None, batch_size: int = 2,
            print_fn: Callable[[str], None] | None = print) -> str:
    """Run a zero batch of ``batch_size`` samples of ``input_shape`` (one sample, without the batch dim)
    through ``model`` and tabulate each layer's output shape (batch shown as -1), parameter count and
    whether its parameters train (yes, no, partly; blank without parameters).

    Layers are the modules without children plus any module holding parameters of its own. The
    model's mode is restored afterwards; the table is printed with ``print_fn`` and returned.
    """
    input_shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if dtype is None:
        floating = (p.dtype for p in model.parameters() if p.dtype.kind == "f")
        dtype = next(floating, backend.get_default_dtype())
    rows: list[tuple[str, str, int, str]] = []
    handles = []

    def record(name: str):
        def hook(module, args, out):
            params = list(module.parameters(recurse=False))
            flags = {p.requires_grad for p in params}
            trains = "" if not params else "yes" if flags == {True} else "no" if flags == {False} else "partly"
            rows.append((f"{name or 'model'} ({type(module).__name__})", _shape_text(out),
                         sum(p.numel() for p in params), trains))
        return hook

    for name, module in model.named_modules():
        if not module._modules or any(p is not None for p in module._parameters.values()):
            handles.append(module.register_forward_hook(record(name)))
    modes = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        with no_grad():
            model(Tensor(xp.zeros((batch_size,) + input_shape, dtype=dtype)))
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            m.__dict__["training"] = modes[id(m)]
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    header = ("Layer (type)", "Output Shape", "Param #", "Trainable")
    width = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(2)]
    width.append(max(len(header[2]), len(f"{total:,}")))
    width.append(len(header[3]))
    rule = "=" * (sum(width) + 6)

    def line(a, b, c, d) -> str:
        return f"{a:<{width[0]}}  {b:<{width[1]}}  {c:>{width[2]}}  {d:>{width[3]}}"

    lines = [rule, line(*header), rule]
    lines += [line(name, shape, f"{count:,}", trains) for name, shape, count, trains in rows]
    lines += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", rule]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
