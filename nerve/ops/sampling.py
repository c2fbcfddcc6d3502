"""Random sampling with PyTorch's names: multinomial, bernoulli, normal (tensor mean/std forms), and the
in-place fills ``bernoulli_``, ``normal_``, ``uniform_``, ``random_``, ``exponential_``, ``geometric_``,
``cauchy_``, ``log_normal_``.

Draws come from ``generator=`` (a ``nerve.Generator`` or NumPy Generator) or the shared seeded one. The
results carry no gradient (PyTorch's gradients of these samples are zero).
"""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor


def _gen(generator, op: str):
    if generator is None:
        return backend.default_generator()
    if not hasattr(generator, "bit_generator"):
        raise TypeError(f"{op}: generator must be a nerve.Generator or a NumPy Generator, got "
                        f"{type(generator).__name__}")
    return generator


def _on(array, like):
    """A NumPy draw moved to the device of ``like`` (an array)."""
    return backend.to_device(array, backend.device_of(like))


def _host(x):
    """The values of a tensor or number as a NumPy array (draws are made on the host)."""
    data = x.data if isinstance(x, Tensor) else x
    return data.get() if backend.device_of(data) != "cpu" and hasattr(data, "get") else xp.asarray(data)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Category indices drawn with probabilities proportional to the rows of ``input`` (1-D or 2-D weights).

    Without replacement a category is drawn at most once per row (sequential draws, each renormalised).
    """
    w = _host(input)
    if w.ndim not in (1, 2) or w.shape[-1] == 0:
        raise RuntimeError(f"multinomial: expected a 1-D or 2-D tensor of weights with at least one category, got "
                           f"shape {tuple(w.shape)}")
    if w.dtype.kind not in "fiu":
        raise TypeError(f"multinomial: weights must be numbers, got dtype {w.dtype}")
    rows = w.reshape(-1, w.shape[-1]).astype(xp.float64)
    if not xp.isfinite(rows).all() or (rows < 0).any():
        raise RuntimeError("multinomial: weights must be finite and non-negative")
    if (rows.sum(axis=1) == 0).any():
        raise RuntimeError("multinomial: a row of weights sums to 0")
    n = int(num_samples)
    if n <= 0:
        raise RuntimeError(f"multinomial: num_samples must be positive, got {num_samples}")
    positive = int((rows > 0).sum(axis=1).min())
    if not replacement and n > positive:
        raise RuntimeError(f"multinomial: cannot draw {n} samples without replacement from a row with {positive} "
                           "categories of nonzero weight")
    rng = _gen(generator, "multinomial")
    out = xp.empty((rows.shape[0], n), dtype=xp.int64)
    for r, row in enumerate(rows):
        if replacement:  # inverse CDF: category k covers [cdf[k-1], cdf[k]); empty for zero weights
            cdf = xp.cumsum(row)
            cdf /= cdf[-1]
            out[r] = xp.searchsorted(cdf, rng.random(n), side="right")
        else:  # exponential race: the n smallest E_k / w_k are sequential draws without replacement
            with xp.errstate(divide="ignore"):
                keys = rng.standard_exponential(row.shape[0]) / row
            out[r] = xp.argsort(keys, kind="stable")[:n]
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    return Tensor._make(_on(out.reshape(w.shape[:-1] + (n,)), data), None)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``), else 0, in input's dtype."""
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    probs = _host(input if p is None else p)
    if (probs < 0).any() or (probs > 1).any() or xp.isnan(probs).any():
        raise RuntimeError("bernoulli: probabilities must lie in [0, 1]")
    dtype = data.dtype if data.dtype.kind == "f" else backend.get_default_dtype()
    u = _gen(generator, "bernoulli").random(data.shape)
    return Tensor._make(_on((u < probs).astype(dtype), data), None)


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Samples of N(mean, std^2): mean and std tensors or numbers, broadcast together (or of ``size``);
    ``device`` and ``requires_grad`` as in PyTorch's creation form ``normal(0.0, 1.0, size)``."""
    m, s = _host(mean), _host(std)
    if (s < 0).any():
        raise RuntimeError("normal: std must be non-negative")
    tensors = [x for x in (mean, std) if isinstance(x, Tensor)]
    if size is not None:
        shape = (int(size),) if isinstance(size, int) else tuple(size)
        if tensors and xp.broadcast_shapes(m.shape, s.shape) not in ((), shape):
            raise RuntimeError(f"normal: size {shape} given with mean/std of shapes {tuple(m.shape)} and "
                               f"{tuple(s.shape)}")
    else:
        shape = xp.broadcast_shapes(m.shape, s.shape)
    floats = [x.dtype for x in tensors if x.dtype.kind == "f"]
    dtype = xp.dtype(dtype) if dtype is not None else (floats[0] if floats else backend.get_default_dtype())
    draw = m + s * _gen(generator, "normal").standard_normal(shape)
    like = tensors[0].data if tensors else xp.empty(0)
    out = Tensor._make(_on(draw.astype(dtype), like), None)
    if device is not None:
        out = Tensor._make(backend.to_device(out.data, str(device)), None)
    return out.requires_grad_(True) if requires_grad else out


def _fill(tensor: Tensor, op: str, values) -> Tensor:
    """Write ``values`` (drawn on the host) into ``tensor`` in place."""
    tensor._check_inplace(op)
    tensor.data[...] = _on(values.astype(tensor.dtype), tensor.data)
    return tensor


def bernoulli_(tensor: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill with 1 (probability ``p``) or 0, in place."""
    return _fill(tensor, "bernoulli_", _host(bernoulli(tensor.detach(), p, generator=generator)))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2), in place."""
    return _fill(tensor, "normal_", mean + std * _gen(generator, "normal_").standard_normal(tensor.shape))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of U[a, b), in place."""
    return _fill(tensor, "uniform_", _gen(generator, "uniform_").uniform(a, b, tensor.shape))


def random_(tensor: Tensor, from_: int = 0, to: int | None = None, *, generator=None) -> Tensor:
    """Fill with integers drawn uniformly from [from_, to) (``random_(to)`` means [0, to)), in place."""
    if to is None:
        from_, to = 0, from_
    if to <= from_:
        raise ValueError(f"random_: expects from_ < to, got from_={from_}, to={to}")
    return _fill(tensor, "random_", _gen(generator, "random_").integers(from_, to, tensor.shape))


def exponential_(tensor: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of the exponential distribution of rate ``lambd``, in place."""
    return _fill(tensor, "exponential_", _gen(generator, "exponential_").exponential(1.0 / lambd, tensor.shape))


def geometric_(tensor: Tensor, p: float, *, generator=None) -> Tensor:
    """Fill with the number of Bernoulli(p) trials up to the first success (1, 2, ...), in place."""
    return _fill(tensor, "geometric_", _gen(generator, "geometric_").geometric(p, tensor.shape))


def cauchy_(tensor: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of the Cauchy distribution, in place."""
    return _fill(tensor, "cauchy_", median + sigma * _gen(generator, "cauchy_").standard_cauchy(tensor.shape))


def log_normal_(tensor: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    """Fill with exp of N(mean, std^2) samples, in place."""
    return _fill(tensor, "log_normal_", _gen(generator, "log_normal_").lognormal(mean, std, tensor.shape))


__all__ = ["bernoulli", "multinomial", "normal"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["bernoulli", "bernoulli_", "multinomial", "normal_", "uniform_", "random_", "exponential_", "geometric_",
           "cauchy_", "log_normal_"]
