"""``nerve.utils``: the home of ``nerve.utils.data``, so ``torch.utils.data`` imports map over unchanged."""
from nerve.utils import data

__all__ = ["data"]
