"""Placeholder while the family moves here."""
__all__: list = []
METHODS: list = []
