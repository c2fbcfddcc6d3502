"""PyTorch's ``nn.utils.parametrize``: a tensor of a module computed from stored originals by modules.

``register_parametrization(m, "weight", p)`` moves ``m.weight`` to ``m.parametrizations.weight.original``
(or ``original0``, ``original1``, ... when ``p.right_inverse`` returns several tensors) and makes ``m.weight``
a property that runs the parametrizations on every read; assigning to it runs their ``right_inverse``.
The module's class becomes a subclass made for it (``Parametrized<Class>``), as in PyTorch.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from nerve.autograd.grad_mode import no_grad
from nerve.nn.containers import ModuleDict, ModuleList
from nerve.nn.module import Module
from nerve.nn.parameter import Parameter
from nerve.tensor import Tensor

__all__ = ["ParametrizationList", "register_parametrization", "remove_parametrizations", "is_parametrized",
           "cached", "type_before_parametrizations"]

_cache: dict | None = None


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and its originals (``original`` or
    ``original0``, ``original1``, ...)."""

    def __init__(self, modules: list, original: Parameter, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        first = modules[0]
        with no_grad():
            new = first.right_inverse(original) if hasattr(first, "right_inverse") else original
        if isinstance(new, (tuple, list)):
            self.is_tensor = False
            self.ntensors = len(new)
            for i, value in enumerate(new):
                value = value if isinstance(value, Tensor) else Tensor(value)
                self.register_parameter(f"original{i}", Parameter(value.detach().clone(),
                                                                 requires_grad=original.requires_grad))
        else:
            self.is_tensor, self.ntensors = True, 1
            if new is not original:
                if not unsafe and (new.shape != original.shape or new.dtype != original.dtype):
                    raise ValueError(f"register_parametrization: right_inverse returned shape {tuple(new.shape)} "
                                     f"{new.dtype} for an original of {tuple(original.shape)} {original.dtype}; "
                                     "pass unsafe=True to allow it")
                original.data = new.detach().data
            self.register_parameter("original", original)

    def right_inverse(self, value: Tensor) -> None:
        """Set the originals so that the parametrized tensor becomes ``value`` (each ``right_inverse`` in reverse)."""
        with no_grad():
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    value = module.right_inverse(value)
                elif not self.is_tensor and module is self[0]:
                    raise RuntimeError(f"{type(module).__name__}: assigning needs a right_inverse that returns the "
                                       f"{self.ntensors} originals")
            if self.is_tensor:
                self.original.data = (value if isinstance(value, Tensor) else Tensor(value)).detach().data.copy()
            else:
                for i, part in enumerate(value):
                    getattr(self, f"original{i}").data = part.detach().data.copy()

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x


def _property(name: str) -> property:
    def get(self) -> Tensor:
        if _cache is not None:
            key = (id(self), name)
            if key not in _cache:
                _cache[key] = self.parametrizations[name]()
            return _cache[key]
        return self.parametrizations[name]()

    def set(self, value) -> None:
        self.parametrizations[name].right_inverse(value)
    return property(get, set, doc=f"``{name}`` computed by its parametrizations.")


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has parametrizations (on ``tensor_name``, when given)."""
    table = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(table, ModuleDict):
        return False
    return tensor_name is None or tensor_name in table


def type_before_parametrizations(module: Module) -> type:
    """The module's class before ``register_parametrization`` swapped it."""
    return type(module).__bases__[0] if is_parametrized(module) else type(module)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` the output of ``parametrization`` on stored originals; a second call on
    the same name appends to its list (applied after the first). Returns the module."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be a Module, got "
                        f"{type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            with no_grad():
                current = plist()
                out = parametrization(current)
            if out.shape != current.shape or out.dtype != current.dtype:
                raise ValueError(f"register_parametrization: {type(parametrization).__name__} changes "
                                 f"{tensor_name}'s shape or dtype ({tuple(current.shape)} {current.dtype} -> "
                                 f"{tuple(out.shape)} {out.dtype}); pass unsafe=True to allow it")
        plist.append(parametrization)
        return module
    original = module._parameters.get(tensor_name)
    if not isinstance(original, Parameter):
        raise ValueError(f"register_parametrization: {type(module).__name__} has no parameter {tensor_name!r} "
                         f"(its parameters: {sorted(k for k, v in module._parameters.items() if v is not None)})")
    plist = ParametrizationList([parametrization], original, unsafe)
    del module._parameters[tensor_name]
    module.__dict__.pop(tensor_name, None)
    if not is_parametrized(module):
        cls = type(module)
        module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})
        module.parametrizations = ModuleDict()
    setattr(type(module), tensor_name, _property(tensor_name))
    module.parametrizations[tensor_name] = plist
    if not unsafe:
        with no_grad():
            value = plist()
        if value.shape != original.shape or value.dtype != original.dtype:
            raise ValueError(f"register_parametrization: {type(parametrization).__name__} gives shape "
                             f"{tuple(value.shape)} {value.dtype} for {tensor_name} of {tuple(original.shape)} "
                             f"{original.dtype}; pass unsafe=True to allow it")
    return module


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo ``register_parametrization`` on ``tensor_name``: it becomes a plain parameter again, holding the
    parametrized value (``leave_parametrized=True``) or the original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: {type(module).__name__} has no parametrization on "
                         f"{tensor_name!r}")
    plist = module.parametrizations[tensor_name]
    if leave_parametrized:
        with no_grad():
            value = plist().detach()
        keep = plist.original if plist.is_tensor else plist.original0
        if plist.is_tensor and value.shape == keep.shape:
            param = keep
            param.data = value.data.copy()
        else:
            param = Parameter(value.clone(), requires_grad=keep.requires_grad)
    elif plist.is_tensor:
        param = plist.original
    else:
        raise ValueError(f"remove_parametrizations: {tensor_name!r} is stored as {plist.ntensors} originals, so it "
                         "can only be removed with leave_parametrized=True")
    del module.parametrizations[tensor_name]
    delattr(type(module), tensor_name)
    module.register_parameter(tensor_name, param)
    if not len(module.parametrizations):
        del module.parametrizations
        module.__class__ = type(module).__bases__[0]
    return module


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Inside this context each parametrized tensor is computed once and reused (e.g. a weight used at every
    step of a recurrent loop)."""
    global _cache
    outer = _cache
    _cache = {} if outer is None else outer
    try:
        yield
    finally:
        _cache = outer
