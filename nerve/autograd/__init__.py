"""Reverse-mode automatic differentiation: Function, the backward engine, grad modes, gradcheck, and
``functional`` (Jacobians, Hessians and their vector products)."""
from nerve.autograd.engine import backward, grad
from nerve.autograd.function import Function, ShapeError
from nerve.autograd.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from nerve.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from nerve.autograd import functional  # noqa: E402  (torch.autograd.functional: jacobian, hessian, vjp, ...)

__all__ = ["Function", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "inference_mode", "gradcheck", "gradgradcheck", "GradcheckError", "ShapeError"]
