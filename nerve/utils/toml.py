"""Reading TOML files (tomllib, or tomli before Python 3.11) with one-line errors that name the file."""
from __future__ import annotations

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

__all__ = ["read_toml"]


def read_toml(path: str, who: str, table: str | None = None) -> dict:
    """The file's contents (its ``[table]`` when it has one, else the top level); ``ValueError`` prefixed with
    ``who`` for a missing, unreadable or malformed file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"{who}: no file {path!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{who} {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{who} {path} is not valid TOML: {exc}") from None
    data = data.get(table, data) if table else data
    if not isinstance(data, dict):
        raise ValueError(f"{who} {path}: [{table}] must be a table")
    return data
