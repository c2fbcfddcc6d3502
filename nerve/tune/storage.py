"""Where a study lives: in memory, a SQLite file or Optuna's journal file (one machine), PostgreSQL (many
machines); URLs are checked and unreachable servers named; creating a study is race-free."""
from __future__ import annotations

import os
import re
import time

from nerve.tune.space import _optuna

__all__ = ["open_storage", "open_study", "hide_password"]

_SQL = ("sqlite", "postgresql", "mysql")


def hide_password(url: str) -> str:
    """The URL with any password replaced by ***, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(url: str | None):
    """An Optuna storage for ``url``: None (in memory), ``sqlite:///FILE``, ``journal:FILE`` (or a path ending in
    .log/.journal: Optuna's journal file, safe for processes on one machine), ``postgresql://USER:PASS@HOST:PORT/DB``
    (many machines; checked by connecting) or ``mysql://...``."""
    _optuna()
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        raise ValueError(f"storage: expected a URL string, got {url!r}")
    if url.startswith("journal:") or url.endswith((".log", ".journal")):
        path = url[len("journal:"):] if url.startswith("journal:") else url
        if not path:
            raise ValueError("storage: journal: needs a file path, e.g. journal:runs/study.log")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ValueError(f"storage {url!r}: the folder {parent} does not exist")
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in _SQL or "://" not in url:
        raise ValueError(f"storage {hide_password(url)!r}: unknown kind; use sqlite:///FILE.db, journal:FILE.log, "
                         "postgresql://USER:PASSWORD@HOST:PORT/DB or mysql://...")
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise ValueError(f"storage {url!r}: the folder {parent} does not exist")
        # NOTE: several processes on one SQLite file wait for its lock instead of failing at once.
        return _rdb(url, {"connect_args": {"timeout": 60}})
    _check_server(_with_driver(url), scheme, url)
    return _rdb(_with_driver(url), {"pool_pre_ping": True})


def _with_driver(url: str) -> str:
    """A plain postgresql:// URL names psycopg2 when only it is installed (SQLAlchemy 2.1 defaults to psycopg 3)."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _rdb(url: str, engine_kwargs: dict, retries: int = 10):
    """Optuna's RDBStorage; workers that start at once on a fresh database race to create its tables, and the
    losers retry (the tables exist by then)."""
    import sqlalchemy.exc

    optuna = _optuna()
    for attempt in range(retries):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.ProgrammingError) as exc:
            if attempt == retries - 1:
                raise RuntimeError(f"storage {hide_password(url)!r}: could not set up its tables: {exc}") from exc
            time.sleep(0.1 * (attempt + 1))


def _check_server(url: str, scheme: str, given: str) -> None:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
    except (ImportError, ModuleNotFoundError) as exc:
        extra = "pip install 'nerve[postgres]'" if scheme == "postgresql" else "install its driver (pymysql)"
        raise ValueError(f"storage {hide_password(given)!r}: no database driver ({exc}); {extra}") from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise ValueError(f"storage {hide_password(given)!r} is not a valid URL: {exc}") from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        how = ("start one, e.g. 'pg_ctlcluster 15 main start' (Debian), 'docker run -p 5432:5432 -e "
               "POSTGRES_PASSWORD=... postgres', then 'createdb' the database" if scheme == "postgresql"
               else "start the server and create the database")
        raise ValueError(f"storage {hide_password(given)!r}: cannot reach the database server ({first}); {how}") \
            from None
    finally:
        engine.dispose()


def open_study(storage, study_name: str | None, direction: str, sampler, pruner, retries: int = 10):
    """Create the study or join it if it exists (several workers may start at once); its direction must match."""
    optuna = _optuna()
    for attempt in range(retries):
        try:
            study = optuna.create_study(storage=storage, study_name=study_name, direction=direction,
                                        sampler=sampler, pruner=pruner, load_if_exists=True)
            break
        except (optuna.exceptions.DuplicatedStudyError, optuna.exceptions.StorageInternalError) as exc:
            # NOTE: another worker created it between our look-up and our insert; look again.
            if attempt == retries - 1:
                raise RuntimeError(f"open_study: could not create or load study {study_name!r}: {exc}") from exc
            time.sleep(0.05 * (attempt + 1))
    if study.direction.name.lower() != direction:
        raise ValueError(f"study {study_name!r} exists with direction {study.direction.name.lower()}, not "
                         f"{direction}; use another --study name or direction")
    return study
