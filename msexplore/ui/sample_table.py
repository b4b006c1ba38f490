"""SampleTable: a table of samples (or records) sorted by clicking a column header, selected by clicking rows.

Shared by ``TraceExplorer`` and ``DecisionInspector``. The frame's index labels are the row keys (positions in
the ``SampleSet``), so a selection survives sorting and filtering. Sorting happens here, on the frame's values
(tiles compare factor by factor, missing values last); the browser only draws ``rows`` in ``order``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import anywidget
import numpy as np
import pandas as pd
from traitlets import Bool, Int, List, TraitError, Unicode, observe, validate

from msexplore.common import error_line
from msexplore.figures import value_label
from msexplore.widgets import asset

__all__ = ["SampleTable", "cell_text"]

HIDDEN_COLUMNS = ("trace",)  # a record's trace (JSON) is for replaying, not reading
STATIC_ROWS = 50  # rows of a static copy (a saved notebook's), in the order drawn


class SampleTable(anywidget.AnyWidget):
    """A sortable, selectable table of a DataFrame's rows; ``selected`` holds index labels (sample positions)."""

    _esm = asset("sample_table.js")
    _css = asset("sample_table.css")

    columns = List(Unicode(), help="the columns shown").tag(sync=True)
    rows = List(List(), help="the cells as text, in the frame's order").tag(sync=True)
    row_keys = List(Int(), help="per row, the frame's index label (the sample's position)").tag(sync=True)
    numeric = List(Unicode(), help="columns drawn right-aligned").tag(sync=True)
    order = List(Int(), help="row positions in display order (computed here from sort_by)").tag(sync=True)
    sort_by = Unicode("", help="the column sorted by ('' for the frame's order); set by a header click").tag(sync=True)
    sort_ascending = Bool(True).tag(sync=True)
    selected = List(Int(), help="index labels of the selected rows, in the order they were selected").tag(sync=True)
    max_selected = Int(2, help="how many rows a ctrl/shift-click selection keeps (the oldest is dropped)").tag(
        sync=True
    )
    caption = Unicode("", help="a line above the table").tag(sync=True)

    def __init__(self, df: pd.DataFrame | None = None, **kwargs: Any) -> None:
        self._df = pd.DataFrame()
        super().__init__(**kwargs)
        self.add_class("msx-sample-table")
        if df is not None:
            self.df = df

    @property
    def df(self) -> pd.DataFrame:
        """The frame shown (as given: filtered, unsorted)."""
        return self._df

    @df.setter
    def df(self, df: pd.DataFrame) -> None:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"SampleTable shows a DataFrame, got {type(df).__name__}")
        columns = [str(c) for c in df.columns if c not in HIDDEN_COLUMNS]
        keys = [int(k) for k in df.index]
        rows = [[cell_text(v) for v in values] for values in df[columns].itertuples(index=False, name=None)]
        numeric = [c for c in columns if _is_numeric(df[c])]
        self._df = df
        with self.hold_sync():
            self.columns, self.numeric, self.rows, self.row_keys = columns, numeric, rows, keys
            if self.sort_by not in ("", *columns):
                self.sort_by = ""
            self.order = self._sorted_order()
            kept = [k for k in self.selected if k in set(keys)]
            if kept != list(self.selected):
                self.selected = kept

    @property
    def displayed_keys(self) -> list[int]:
        """The index labels of the rows, top to bottom as drawn."""
        return [self.row_keys[i] for i in self.order]

    @validate("sort_by")
    def _check_sort_by(self, proposal: Any) -> str:
        column = proposal["value"]
        if column and column not in self.columns:
            raise TraitError(f"sort_by must be one of the columns {list(self.columns)} or '', got {column!r}")
        return column

    @validate("selected")
    def _check_selected(self, proposal: Any) -> list[int]:
        keys = set(self.row_keys)
        unknown = [k for k in proposal["value"] if k not in keys]
        if unknown:
            raise TraitError(f"selected rows {unknown} are not in the table (its keys: sample positions)")
        return list(dict.fromkeys(proposal["value"]))

    @observe("sort_by", "sort_ascending")
    def _on_sort(self, change: Any) -> None:
        self.order = self._sorted_order()

    def _static_body(self, max_rows: int = STATIC_ROWS) -> str:
        """The table as drawn (sorted, selected rows marked), its first ``max_rows`` rows, for a static copy."""
        from ._html import esc, table

        shown = self.order[:max_rows]
        selected = set(self.selected)
        cells = [[("▶ " if self.row_keys[i] in selected else "") + str(self.rows[i][0]), *self.rows[i][1:]]
                 if self.rows[i] else [] for i in shown]
        caption = f'<div class="msx-note">{esc(self.caption)}</div>' if self.caption else ""
        more = (f'<div class="msx-note">… {len(self.order) - len(shown)} more rows</div>'
                if len(self.order) > len(shown) else "")
        return caption + table(cells, list(self.columns), numeric=list(self.numeric)) + more

    def _sorted_order(self) -> list[int]:
        n = len(self.row_keys)
        if not self.sort_by or self.sort_by not in self._df.columns:
            return list(range(n))
        values = self._df[self.sort_by].tolist()
        present = [i for i in range(n) if not _missing(values[i])]
        missing = [i for i in range(n) if _missing(values[i])]
        present.sort(key=lambda i: _sort_key(values[i]), reverse=not self.sort_ascending)
        return present + missing  # missing values last, whichever the direction


def cell_text(value: Any) -> str:
    """A cell as people read it: tiles ``8×64``, floats to 4 significant digits, errors by their message line."""
    if isinstance(value, np.generic):
        value = value.item()
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return error_line(value, limit=100)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%H:%M:%S")
    return value_label(value)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _sort_key(value: Any) -> tuple:
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (bool, numbers.Number)):
        return (0, float(value), ())
    if isinstance(value, (list, tuple)):
        return (1, 0.0, tuple(_sort_key(v) for v in value))
    return (2, 0.0, (str(value),))


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
