"""``Module``: the base of layers and models, with PyTorch's registration, traversal and state-dict API."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterator, NamedTuple

from nerve import backend
from nerve.autograd.grad_mode import is_grad_enabled, no_grad
from nerve.backend import xp
from nerve.nn import hooks
from nerve.nn.parameter import Parameter
from nerve.tensor import RemovableHandle, Tensor, to_arguments


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: the keys it did not find and the keys it did not use."""

    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of every layer and model.

    Parameters, buffers and submodules are registered when assigned as attributes; ``forward``
    defines the computation and calling the module runs it (with any forward hooks).
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers"] = set()
        d["_modules"] = {}
        d["_forward_hooks"] = {}
        d["_forward_pre_hooks"] = {}
        d["_hooks_with_kwargs"] = set()
        d["_backward_hooks"] = {}
        d["_backward_pre_hooks"] = {}
        d["_state_dict_pre_hooks"] = {}
        d["_load_state_dict_post_hooks"] = {}

    def forward(self, *args, **kwargs):
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_hooks or self._forward_pre_hooks or self._backward_hooks or self._backward_pre_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        for key, hook in list(self._forward_pre_hooks.items()):
            if key in self._hooks_with_kwargs:
                replaced = hook(self, args, kwargs)
                if replaced is not None:
                    args, kwargs = replaced
            else:
                replaced = hook(self, args)
                if replaced is not None:
                    args = replaced if isinstance(replaced, tuple) else (replaced,)
        backward = (self._backward_hooks or self._backward_pre_hooks) and is_grad_enabled()
        if backward:
            args, call = hooks.wrap_inputs(self, args)
        out = self.forward(*args, **kwargs)
        for key, hook in list(self._forward_hooks.items()):
            replaced = hook(self, args, kwargs, out) if key in self._hooks_with_kwargs else hook(self, args, out)
            if replaced is not None:
                out = replaced
        return hooks.wrap_outputs(call, out) if backward else out

    def _add_hook(self, table: dict, hook: Callable, prepend: bool, with_kwargs: bool) -> RemovableHandle:
        handle = RemovableHandle.add(table, hook)
        if prepend:
            items = list(table.items())
            table.clear()
            table.update(items[-1:] + items[:-1])
        if with_kwargs:
            self._hooks_with_kwargs.add(handle._key)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward (``hook(module, args, kwargs, output)`` with
        ``with_kwargs``); a returned value replaces the output."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward (``hook(module, args, kwargs)`` returning ``(args,
        kwargs)`` with ``with_kwargs``); a returned value replaces the arguments."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when backward has computed the gradients with respect
        to this call's inputs; a returned tuple replaces ``grad_input`` (see ``nerve.nn.hooks``)."""
        return self._add_hook(self._backward_hooks, hook, prepend, False)

    register_backward_hook = register_full_backward_hook

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradient of this call's output arrives; a returned tuple
        replaces ``grad_output``."""
        return self._add_hook(self._backward_pre_hooks, hook, prepend, False)

    def register_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(module, prefix, keep_vars)`` before ``state_dict`` collects this module's entries."""
        return RemovableHandle.add(self._state_dict_pre_hooks, hook)

    def register_load_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(module, incompatible_keys)`` after ``load_state_dict``."""
        return RemovableHandle.add(self._load_state_dict_post_hooks, hook)

    # --- registration ------------------------------------------------------------------------
    # NOTE: registered values also live in the instance __dict__ (unless that would hide a class
    # attribute such as a method), so reading self.weight is a plain attribute lookup; __setattr__
    # and __delattr__ keep both places in step.
    def _check_init(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")

    def _mirror(self, name: str, value) -> None:
        if not hasattr(type(self), name):
            self.__dict__[name] = value

    def _forget(self, name: str, keep: str | None = None) -> None:
        """Drop ``name`` from the tables other than ``keep`` (so a replaced entry keeps its place)."""
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table != keep:
                d[table].pop(name, None)
        d["_non_persistent_buffers"].discard(name)

    @staticmethod
    def _check_name(kind: str, name) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name must be non-empty and contain no '.', got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a Parameter, or None for an absent one such as ``bias=False``) as ``name``."""
        self._check_init("parameters")
        self._check_name("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot register a {type(param).__name__} as parameter {name!r} "
                            "(nerve.nn.Parameter or None expected)")
        if name not in self._parameters and name in self.__dict__:
            raise KeyError(f"attribute {name!r} already exists")
        self._forget(name, "_parameters")
        self._parameters[name] = param
        self._mirror(name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not a parameter (running statistics); ``persistent``
        buffers are part of ``state_dict``."""
        self._check_init("buffers")
        self._check_name("buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot register a {type(tensor).__name__} as buffer {name!r} "
                            "(Tensor or None expected)")
        if name not in self._buffers and name in self.__dict__:
            raise KeyError(f"attribute {name!r} already exists")
        self._forget(name, "_buffers")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)
        self._mirror(name, tensor)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register ``module`` as the child ``name``."""
        self._check_init("modules")
        self._check_name("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if name not in self._modules and name in self.__dict__:
            raise KeyError(f"attribute {name!r} already exists")
        self._forget(name, "_modules")
        self._modules[name] = module
        self._mirror(name, module)

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._forget(name, "_parameters")
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            self._check_init("modules")
            self._forget(name, "_modules")
            d["_modules"][name] = value
        elif "_parameters" in d:
            if name in d["_parameters"]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                    "(nerve.nn.Parameter or None expected)")
                d["_parameters"][name] = None
            elif name in d["_modules"]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                    "(Module or None expected)")
                d["_modules"][name] = None
            elif name in d["_buffers"]:
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                    "(Tensor or None expected)")
                d["_buffers"][name] = value
            else:
                object.__setattr__(self, name, value)
                return
        else:
            object.__setattr__(self, name, value)
            return
        self._mirror(name, value)

    def __getattr__(self, name: str):
        # NOTE: reached only for registered names that are not mirrored in __dict__ (see above).
        d = self.__dict__
        if "_parameters" in d:
            for table in ("_parameters", "_buffers", "_modules"):
                if name in d[table]:
                    return d[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if "_parameters" in self.__dict__:
            self._forget(name)
        if name in self.__dict__:
            object.__delattr__(self, name)

    # --- traversal -----------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """(qualified name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                child_prefix = prefix + ("." if prefix else "") + name
                yield from child.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for the direct children."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator["Module"]:
        """The direct children."""
        for _, child in self.named_children():
            yield child

    def _named_members(self, table: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [
            (prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(qualified name, parameter), each shared parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (what an optimiser updates), each shared parameter once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(qualified name, buffer)."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer (running statistics and other non-learned state)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The descendant at a dotted path such as ``"encoder.0"`` ("" is this module)."""
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            module = child
        return module

    def get_parameter(self, target: str) -> "Parameter":
        """The parameter at a dotted path such as ``"encoder.0.weight"``."""
        return self._get_registered(target, "_parameters", "parameter")

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path such as ``"bn.running_mean"``."""
        return self._get_registered(target, "_buffers", "buffer")

    def _get_registered(self, target: str, table: str, what: str):
        path, _, name = target.rpartition(".")
        owner = self.get_submodule(path)
        if name not in owner.__dict__[table]:
            raise AttributeError(f"{type(owner).__name__} has no {what} {name!r} (looking up {target!r})")
        return owner.__dict__[table][name]

    # --- state -----------------------------------------------------------------------------------
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by qualified name, detached (sharing memory with the model)."""
        out = OrderedDict() if destination is None else destination
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self, prefix, keep_vars)
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = b if keep_vars else b.detach()
        extra = type(self).get_extra_state is not Module.get_extra_state
        if extra:
            out[prefix + "_extra_state"] = self.get_extra_state()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def get_extra_state(self):
        """State beyond parameters and buffers, saved in ``state_dict`` under ``_extra_state`` when a module
        overrides this (and ``set_extra_state``)."""
        raise RuntimeError(f"{type(self).__name__}.get_extra_state: override it to save extra state")

    def set_extra_state(self, state) -> None:
        """Restore what ``get_extra_state`` returned."""
        raise RuntimeError(f"{type(self).__name__}.set_extra_state: override it together with get_extra_state")

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy values into the parameters and buffers in place (optimisers keep working); with ``assign`` the
        parameters take the given arrays themselves (no copy).

        Mis-shaped keys always fail, and with ``strict`` missing or unexpected keys too; every problem
        is listed in one error and nothing is changed.
        """
        own = self.state_dict(keep_vars=True)
        extras = {k: v for k, v in own.items() if k.endswith("_extra_state")}
        own = {k: v for k, v in own.items() if k not in extras}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own and k not in extras]
        mismatched = []
        for key, target in own.items():
            if key in state_dict:
                shape = tuple(xp.shape(_array_of(state_dict[key])))
                if shape != tuple(target.shape):
                    mismatched.append(f"{key}: checkpoint {shape} vs model {tuple(target.shape)}")
        problems = []
        if strict and missing:
            problems.append(f"missing {missing}")
        if strict and unexpected:
            problems.append(f"unexpected {unexpected}")
        if mismatched:
            problems.append("shape mismatch " + ", ".join(mismatched))
        if problems:
            raise RuntimeError(f"{type(self).__name__} weights do not match: " + "; ".join(problems))
        with no_grad():
            for key, target in own.items():
                if key in state_dict:
                    value = _array_of(state_dict[key])
                    if target.device != "cpu":
                        value = backend.to_device(xp.asarray(value), target.device)
                    if assign:
                        target.data = xp.asarray(value, dtype=target.data.dtype)
                    else:
                        target.copy_(value)
        for key in extras:
            if key in state_dict:
                path = key[:-len("_extra_state")].rstrip(".")
                self.get_submodule(path).set_extra_state(state_dict[key])
        result = IncompatibleKeys(missing, unexpected)
        for hook in list(self._load_state_dict_post_hooks.values()):
            hook(self, result)
        return result

    def get_config(self) -> dict:
        """The constructor arguments as a JSON-able dict, where the module knows them ({} otherwise)."""
        return {}

    # --- modes, gradients, devices -----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active, batch statistics) on this module and its descendants; layers frozen
        by ``nerve.nn.freeze`` (their ``frozen_eval`` flag) stay in eval mode."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode and not m.__dict__.get("frozen_eval", False)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Switch gradient tracking of every parameter on or off (freeze a part of a model)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the parameters' gradients: to None (default), or to zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            elif p.grad.requires_grad:
                p.grad = Tensor._make(xp.zeros_like(p.grad.data), None)
            else:
                p.grad.data[...] = 0

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every descendant, then on this module (custom initialisation)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, device=None, dtype=None, non_blocking: bool = False) -> "Module":
        """Move parameters and buffers to a device and/or cast the floating ones to ``dtype``, in place.

        Accepts ``to("cuda")``, ``to(nerve.device("cpu"))``, ``to(nerve.float64)``, ``to(device, dtype)`` and
        ``to(tensor)``; the Parameter objects stay the same, so an optimiser built before keeps working.
        """
        device, dtype = to_arguments("Module.to", args, device, dtype)
        if device is not None:
            device = str(device)
        if dtype is not None:
            if dtype.kind not in "fc":
                raise TypeError(f"Module.to: only floating dtypes are allowed, got {dtype}")

        def convert(array):
            if dtype is not None and array.dtype.kind in "fc" and array.dtype != dtype:
                array = array.astype(dtype)
            if device is not None:
                array = backend.to_device(array, device)
            return array

        for t in list(self.parameters()) + list(self.buffers()):
            t.data = convert(t.data)
            if t.grad is not None:
                t.grad.data = convert(t.grad.data)
        return self

    def float(self) -> "Module":
        """Cast floating parameters and buffers to float32."""
        return self.to(dtype=xp.float32)

    def double(self) -> "Module":
        """Cast floating parameters and buffers to float64 (gradient checks)."""
        return self.to(dtype=xp.float64)

    def half(self) -> "Module":
        """Cast floating parameters and buffers to float16."""
        return self.to(dtype=xp.float16)

    def bfloat16(self) -> "Module":
        raise TypeError(f"{type(self).__name__}.bfloat16: NumPy (nerve's array library) has no bfloat16 type; use "
                        "half() or float()")

    def type(self, dst_type) -> "Module":
        """Cast floating parameters and buffers to ``dst_type``."""
        return self.to(dtype=dst_type)

    def to_empty(self, *, device=None, recurse: bool = True) -> "Module":
        """Move to ``device`` (nerve's parameters always hold values, so this is ``to(device)``)."""
        return self.to(device) if device is not None else self

    def share_memory(self) -> "Module":
        """Accepted: worker processes get their data through the DataLoader's own channels."""
        return self

    def compile(self, *args, **kwargs) -> None:
        """Accepted (``torch.compile`` in place): nerve runs eagerly."""

    def set_submodule(self, target: str, module: "Module") -> None:
        """Replace the descendant at a dotted path (``"encoder.0"``)."""
        path, _, name = target.rpartition(".")
        owner = self.get_submodule(path)
        if name not in owner._modules:
            raise AttributeError(f"{type(owner).__name__} has no submodule {name!r} (setting {target!r})")
        setattr(owner, name, module)

    def cpu(self) -> "Module":
        """Move everything to the CPU."""
        return self.to("cpu")

    def cuda(self) -> "Module":
        """Move everything to the GPU (needs CuPy)."""
        return self.to("cuda")

    # --- display -----------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The module's own settings, shown inside its repr; layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, child in self._modules.items():
            lines.append(f"({name}): " + repr(child).replace("\n", "\n  "))
        if not self._modules and len(lines) <= 1:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _array_of(value):
    """The array behind a state-dict value (Tensor, array or nested list)."""
    return value.data if isinstance(value, Tensor) else value
