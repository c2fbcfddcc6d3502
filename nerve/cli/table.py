"""CSV tables for the command line, read by header names: a header is required (or ``--no-header``, columns
by position), names are unique, a UTF-8 BOM is dropped, empty cells are reported as missing values, and a
run's columns are matched by name at predict/evaluate time (reordered columns work, missing or extra ones are
named). Text columns are one-hot encoded with the categories seen in training."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from nerve.cli.common import CLIError

IMPUTE = ("fill them in first (e.g. scikit-learn's SimpleImputer(strategy='median') for numbers, "
          "strategy='most_frequent' for text) or drop those rows")


@dataclass
class Table:
    """A CSV file's column names (positions "1".."N" without a header) and its rows of stripped cells."""
    path: str
    names: list
    rows: list
    lines: list  # the file line of each row, for messages
    header: bool

    def column(self, name: str) -> list:
        j = self.names.index(name)
        return [row[j] for row in self.rows]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path: str, no_header: bool = False, who: str = "csv") -> Table:
    """Read ``path``; the first line must name the columns unless ``no_header``."""
    if not os.path.exists(path):
        raise CLIError(f"{who}: no file {path!r}")
    if os.path.isdir(path):
        raise CLIError(f"{who}: {path} is a directory, not a CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows, lines = [], []
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines are skipped
                    rows.append([cell.strip() for cell in row])
                    lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise CLIError(f"{who}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 "
                       "CSV") from None
    except csv.Error as exc:
        raise CLIError(f"{who}: {path} is not a readable CSV file: {exc}") from None
    if not rows:
        raise CLIError(f"{who}: {path} is empty")
    if no_header:
        names, body, body_lines = [str(j + 1) for j in range(len(rows[0]))], rows, lines
    else:
        first = rows[0]
        if all(_is_number(c) for c in first):
            raise CLIError(f"{who}: {path} has no header: its first line ({','.join(first)[:60]}) is all numbers. "
                           "Add a first line naming the columns, or pass --no-header to take columns by position")
        names, body, body_lines = first, rows[1:], lines[1:]
        unnamed = [j + 1 for j, n in enumerate(names) if not n]
        if unnamed:
            raise CLIError(f"{who}: {path}: column {unnamed[0]} of the header has no name; name every column")
        seen, duplicates = set(), []
        for n in names:
            if n in seen and n not in duplicates:
                duplicates.append(n)
            seen.add(n)
        if duplicates:
            raise CLIError(f"{who}: {path}: the header names {duplicates} more than once; column names must be "
                           "unique")
    if not body:
        raise CLIError(f"{who}: {path} has a header but no rows")
    for row, line in zip(body, body_lines):
        if len(row) != len(names):
            raise CLIError(f"{who}: {path} line {line} has {len(row)} fields, the "
                           f"{'header' if not no_header else 'first line'} has {len(names)}")
    return Table(path, names, body, body_lines, not no_header)


def check_missing(table: Table, names: list, who: str = "csv") -> None:
    """Empty cells in the columns ``names`` are missing values: say where and how to fill them."""
    where = [(line, name) for row, line in zip(table.rows, table.lines)
             for name, j in ((n, table.names.index(n)) for n in names) if row[j] == ""]
    if where:
        shown = ", ".join(f"line {line} column {name!r}" for line, name in where[:3])
        raise CLIError(f"{who}: {table.path} has {len(where)} missing value{'s' * (len(where) > 1)} (empty cells: "
                       f"{shown}{', ...' if len(where) > 3 else ''}); {IMPUTE}")


def column_spec(table: Table, features: list) -> list:
    """For each feature, ``[name, categories]``: categories None for a numeric column, else its sorted texts.

    A column mixing numbers and text is refused (a mistyped number would otherwise become a category)."""
    spec = []
    for name in features:
        values = table.column(name)
        numeric = [_is_number(v) for v in values]
        if all(numeric):
            spec.append([name, None])
        elif not any(numeric):
            spec.append([name, sorted(set(values))])
        else:
            i = numeric.index(False) if sum(numeric) > len(numeric) / 2 else numeric.index(True)
            raise CLIError(f"csv: {table.path} column {name!r} mixes numbers and text (line {table.lines[i]}: "
                           f"{values[i]!r}); correct the cell, or make the column text throughout")
    return spec


def encode(table: Table, spec: list, who: str = "csv") -> np.ndarray:
    """The features of ``spec`` as a float32 matrix: numbers as they are, text one-hot by the known categories."""
    check_missing(table, [name for name, _ in spec], who)
    blocks = []
    for name, categories in spec:
        values = table.column(name)
        if categories is None:
            column = np.empty(len(values), np.float64)
            for i, v in enumerate(values):
                try:
                    column[i] = float(v)
                except ValueError:
                    raise CLIError(f"{who}: {table.path} line {table.lines[i]}, column {name!r}: {v!r} is not a "
                                   "number (the column was numeric in training)") from None
            bad = ~np.isfinite(column)
            if bad.any():
                i = int(np.argmax(bad))
                raise CLIError(f"{who}: {table.path} line {table.lines[i]}, column {name!r} is NaN or infinite "
                               f"({int(bad.sum())} such values); {IMPUTE}")
            blocks.append(column[:, None])
        else:
            index = {c: k for k, c in enumerate(categories)}
            unknown = sorted(set(values) - set(index))
            if unknown:
                i = values.index(unknown[0])
                raise CLIError(f"{who}: {table.path} line {table.lines[i]}, column {name!r}: {unknown[0]!r} is not "
                               f"a category seen in training ({', '.join(categories[:10])}"
                               f"{', ...' if len(categories) > 10 else ''})")
            onehot = np.zeros((len(values), len(categories)))
            onehot[np.arange(len(values)), [index[v] for v in values]] = 1.0
            blocks.append(onehot)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def encoded_names(spec: list) -> list:
    """The model's input names: a numeric column's name, ``name=category`` for each one-hot column."""
    return [n for name, cats in spec for n in ([name] if cats is None else [f"{name}={c}" for c in cats])]


def match_columns(table: Table, features: list, columns: list | None, target: str | None, need_target: bool,
                  who: str) -> Table:
    """``table`` with its columns named as the run's: by header name, or by position without a header.

    Columns may come in any order; a missing feature (or target, when ``need_target``) or an unknown column is
    an error naming them. Without a header the file must hold the features in training order (or, for
    evaluate, all the training file's columns)."""
    if not table.header:
        width = len(table.names)
        if not need_target and width == len(features):
            names = list(features)
        elif columns is not None and width == len(columns) and (need_target or target is not None):
            names = list(columns)
        else:
            want = columns if need_target else features
            raise CLIError(f"{who}: {table.path} has {width} columns and no header; the run takes {len(want)}, "
                           f"in this order: {', '.join(want)}")
        return Table(table.path, names, table.rows, table.lines, False)
    known = set(features) | ({target} if target else set())
    missing = [f for f in features if f not in table.names]
    if need_target and target not in table.names:
        missing.append(target)
    extra = [n for n in table.names if n not in known]
    if missing or extra:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unknown {extra}"] if extra else [])
        raise CLIError(f"{who}: {table.path}'s columns do not match the run's: {'; '.join(parts)}. The run takes "
                       f"{features}" + (f" (and target {target!r})" if target else ""))
    return table


def target_values(table: Table, target: str):
    """Class indices and names for a categorical (or small-integer) target, else float values (regression)."""
    values = table.column(target)
    if all(_is_number(v) for v in values):
        numbers = np.array([float(v) for v in values])
        if not np.isfinite(numbers).all():
            i = int(np.argmax(~np.isfinite(numbers)))
            raise CLIError(f"csv: {table.path} line {table.lines[i]}: the target {target!r} is {values[i]!r}; "
                           f"{IMPUTE}")
        if np.all(numbers == np.round(numbers)) and len(np.unique(numbers)) <= 20:
            classes, idx = np.unique(numbers, return_inverse=True)
            return idx.astype(np.int64), [str(int(c)) for c in classes]
        return numbers.astype(np.float32).reshape(-1, 1), None
    if any(_is_number(v) for v in values) and sum(_is_number(v) for v in values) > len(values) / 2:
        i = [_is_number(v) for v in values].index(False)
        raise CLIError(f"csv: {table.path} line {table.lines[i]}: the target {target!r} is {values[i]!r} among "
                       "numbers; correct the cell")
    classes, idx = np.unique(np.array(values), return_inverse=True)
    return idx.astype(np.int64), [str(c) for c in classes]
