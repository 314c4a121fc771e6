"""Daily OHLC(V) markets: loading, checking, slicing, synthetic markets for tests.

A :class:`Market` holds ``T`` trading days of ``m`` assets on common dates: ``open``,
``high``, ``low``, ``close`` (and optional ``volume``) as ``(T, m)`` float arrays. Every
market is checked when built: dates strictly increasing (no duplicates), no gap longer than
``max_gap_days`` calendar days, prices finite and positive, and
``high >= max(open, close) >= min(open, close) >= low`` (to a relative 1e-9, for prices
rounded in the files). Where a source has closes only (skfolio's stocks), open, high and low
are set to the close: a decision at day t's close then fills at day t+1's open = day t's close,
and high/low features carry no information.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scifm._checks import UserError

FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Market:
    """``T`` days of ``m`` assets: dates (``datetime64[D]``), OHLC arrays ``(T, m)``."""

    dates: np.ndarray
    assets: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    name: str = ""

    def __post_init__(self):
        check(self)

    def __len__(self) -> int:
        return len(self.dates)

    def until(self, t: int) -> Market:
        """The market as known at day ``t``'s close: days ``0..t`` (what a policy may see)."""
        return self._rows(slice(0, t + 1))

    def between(self, start: str | None, end: str | None) -> tuple[int, int]:
        """Indices of the first day on or after ``start`` and the last on or before ``end``.

        Raises:
            ValueError: dates outside the data, or a window of fewer than two days.
        """
        first, last = self.dates[0], self.dates[-1]
        lo = 0 if start is None else int(np.searchsorted(self.dates, _date(start, "start")))
        hi = len(self) - 1 if end is None else int(
            np.searchsorted(self.dates, _date(end, "end"), side="right") - 1
        )
        if start is not None and _date(start, "start") > last or end is not None and _date(end, "end") < first:
            raise UserError(
                f"{self.name or 'the data'} covers {first} .. {last}; the window {start} .. {end} "
                "lies outside it"
            )
        if hi - lo < 1:
            raise UserError(
                f"the window {start} .. {end} holds {max(hi - lo + 1, 0)} trading day(s) of "
                f"{self.name or 'the data'} ({first} .. {last}); it needs at least two"
            )
        return lo, hi

    def select(self, assets: Sequence[str]) -> Market:
        """The market of ``assets`` only (in that order)."""
        unknown = [a for a in assets if a not in self.assets]
        if unknown:
            raise UserError(
                f"unknown asset {unknown[0]!r} in {self.name or 'the data'}; its assets: "
                f"{', '.join(self.assets)}"
            )
        index = [self.assets.index(a) for a in assets]
        arrays = {f: getattr(self, f)[:, index] for f in FIELDS}
        volume = None if self.volume is None else self.volume[:, index]
        return Market(self.dates, tuple(assets), **arrays, volume=volume, name=self.name)

    def _rows(self, rows: slice) -> Market:
        """Days ``rows`` (views, not copies; a slice of a checked market needs no check)."""
        part = object.__new__(Market)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            sliced = f.name in (*FIELDS, "dates", "volume") and value is not None
            object.__setattr__(part, f.name, value[rows] if sliced else value)
        return part


def _date(text: str, what: str) -> np.datetime64:
    try:
        return np.datetime64(str(text), "D")
    except ValueError:
        raise UserError(f"{what} date {text!r} is not a date (YYYY-MM-DD)") from None


def check(market: Market, max_gap_days: int = 10) -> None:
    """Refuse a malformed market in one line (see the module docstring)."""
    label = market.name or "market"
    dates = market.dates
    t, m = len(dates), len(market.assets)
    if t < 1 or m < 1:
        raise UserError(f"{label}: no prices ({t} days, {m} assets)")
    if len(set(market.assets)) != m:
        raise UserError(f"{label}: an asset is named twice: {list(market.assets)}")
    for field in FIELDS:
        values = getattr(market, field)
        if np.shape(values) != (t, m):
            raise UserError(f"{label}: {field} has shape {np.shape(values)}, expected {(t, m)}")
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise UserError(
                f"{label}: {market.assets[j]} has a missing or non-positive {field} price "
                f"({values[i, j]}) on {dates[i]}; prices must be positive"
            )
    steps = np.diff(dates).astype(np.int64)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        what = "a duplicate" if steps[i] == 0 else "out of order"
        raise UserError(f"{label}: dates must increase; {dates[i + 1]} after {dates[i]} is {what}")
    if (steps > max_gap_days).any():
        i = int(np.flatnonzero(steps > max_gap_days)[0])
        raise UserError(
            f"{label}: a gap of {steps[i]} days between {dates[i]} and {dates[i + 1]} "
            f"(at most {max_gap_days} allowed: missing data?)"
        )
    tol = 1e-9 * market.close
    o, h, lo, c = market.open, market.high, market.low, market.close
    for ok, rule in (
        (h >= np.maximum(o, c) - tol, "high >= max(open, close)"),
        (np.minimum(o, c) >= lo - tol, "min(open, close) >= low"),
    ):
        if not ok.all():
            i, j = np.argwhere(~ok)[0]
            raise UserError(
                f"{label}: {market.assets[j]} on {dates[i]} breaks {rule} (open {o[i, j]}, high "
                f"{h[i, j]}, low {lo[i, j]}, close {c[i, j]})"
            )


# ------------------------------------------------------------------ CSV files


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise UserError(f"no such file {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(x.strip() for x in r)]
    if len(rows) < 2:
        raise UserError(f"{path}: no data rows")
    return [h.strip().lower() for h in rows[0]], rows[1:]


def _parse_dates(path: Path, column: list[str]) -> np.ndarray:
    out = []
    for i, text in enumerate(column):
        text = text.strip()
        try:
            if "/" in text:  # M/D/YYYY, as arch's files and spreadsheet exports write
                month, day, year = (int(x) for x in text.split("/"))
                text = f"{year:04d}-{month:02d}-{day:02d}"
            out.append(np.datetime64(text[:10], "D"))
        except ValueError:
            raise UserError(f"{path}: row {i + 2}: {text!r} is not a date (YYYY-MM-DD)") from None
    return np.array(out, dtype="datetime64[D]")


def _numbers(path: Path, header: list[str], rows: list[list[str]], name: str) -> np.ndarray:
    j = header.index(name)
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        text = row[j].strip() if j < len(row) else ""
        try:
            out[i] = float(text) if text else np.nan
        except ValueError:
            raise UserError(f"{path}: row {i + 2}: {name} {text!r} is not a number") from None
    return out


def _series(path: Path, header, rows, dates) -> dict[str, np.ndarray]:
    missing = [f for f in ("date", *FIELDS) if f not in header]
    if "close" in header and missing == [f for f in ("open", "high", "low") if f in missing]:
        missing = []  # closes only: open = high = low = close
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; expected a header "
            "date,open,high,low,close[,volume] (or date,close)"
        )
    close = _numbers(path, header, rows, "close")
    out = {f: (_numbers(path, header, rows, f) if f in header else close) for f in FIELDS}
    if "volume" in header:
        out["volume"] = _numbers(path, header, rows, "volume")
    out["dates"] = dates
    return out


def load_csv(paths: Sequence[str | Path], *, name: str | None = None) -> Market:
    """A market from CSV files (``.csv`` or ``.csv.gz``): one file per asset named after it
    (``date,open,high,low,close[,volume]``, or ``date,close``), or one long table with an
    ``asset`` column; or a folder of such files. Assets are aligned on the dates they all
    have.

    Raises:
        ValueError: a missing file or column, an unparsable date or number, or a market that
            fails :func:`check` (order, duplicates, gaps, non-positive prices, high < low).
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.name.endswith((".csv", ".csv.gz")))
            if not found:
                raise UserError(f"{p} holds no .csv files")
            files += found
        else:
            files.append(p)
    per_asset: dict[str, dict[str, np.ndarray]] = {}
    for path in files:
        header, rows = _read_table(path)
        if "asset" in header:
            j = header.index("asset")
            for asset in sorted({r[j].strip() for r in rows}):
                mine = [r for r in rows if r[j].strip() == asset]
                dates = _parse_dates(path, [r[header.index("date")] for r in mine]) if "date" in header else None
                per_asset[asset] = _series(path, header, mine, dates)
        else:
            asset = path.name.removesuffix(".gz").removesuffix(".csv")
            if asset in per_asset:
                raise UserError(f"asset {asset} is given twice ({path})")
            dates = _parse_dates(path, [r[header.index("date")] for r in rows]) if "date" in header else None
            per_asset[asset] = _series(path, header, rows, dates)
    return _align(per_asset, name or ", ".join(str(p) for p in paths))


def _align(per_asset: dict[str, dict[str, np.ndarray]], name: str) -> Market:
    for asset, s in per_asset.items():  # a duplicate or unordered date within one asset
        Market(s["dates"], (asset,), *(s[f][:, None] for f in FIELDS), name=f"{name}: {asset}")
    common = None
    for s in per_asset.values():
        common = s["dates"] if common is None else np.intersect1d(common, s["dates"])
    if common is None or len(common) < 2:
        raise UserError(f"{name}: the assets share fewer than two dates")
    arrays = {f: [] for f in (*FIELDS, "volume")}
    for s in per_asset.values():
        index = np.searchsorted(s["dates"], common)
        for f in FIELDS:
            arrays[f].append(s[f][index])
        arrays["volume"].append(s["volume"][index] if "volume" in s else None)
    volume = None
    if all(v is not None for v in arrays["volume"]):
        volume = np.stack(arrays["volume"], axis=1)
    return Market(
        common, tuple(per_asset), *(np.stack(arrays[f], axis=1) for f in FIELDS),
        volume=volume, name=name,
    )  # fmt: skip


# ------------------------------------------------------------------ built-in datasets

# name -> (package, file inside it, description); read from the installed package's data
DATASETS = {
    "sp500-index": ("arch", "data/sp500/sp500.csv.gz", "S&P 500 index OHLC, 1999-2018 (arch)"),
    "nasdaq-index": ("arch", "data/nasdaq/nasdaq.csv.gz", "NASDAQ composite OHLC, 1999-2018 (arch)"),
    "sp500-stocks": (
        "skfolio", "datasets/data/sp500_dataset.csv.gz",
        "20 S&P 500 stocks, adjusted closes only, 1990-2022 (skfolio)",
    ),
}


def load_dataset(name: str) -> Market:
    """A real dataset shipped inside a PyPI package (the ``portfolio`` extra): read from the
    installed package's files, without importing it, never downloaded.

    Raises:
        ValueError: an unknown name (the valid ones are listed), or its package missing.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; built-in datasets: {', '.join(DATASETS)}")
    package, inside, _ = DATASETS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(f"dataset {name} ships with {package}: pip install 'scifm[portfolio]'")
    path = Path(spec.origin).parent / inside
    if package == "arch":  # one index: Date,Open,High,Low,Close,Adj Close,Volume
        header, rows = _read_table(path)
        s = _series(path, header, rows, _parse_dates(path, [r[0] for r in rows]))
        return _align({name.removesuffix("-index").upper(): s}, name)
    with gzip.open(path, "rt") as fh:  # wide closes: Date,AAPL,AMD,...
        reader = list(csv.reader(io.StringIO(fh.read())))
    header, rows = reader[0], [r for r in reader[1:] if r]
    dates = _parse_dates(path, [r[0] for r in rows])
    per_asset = {}
    for j, asset in enumerate(header[1:], start=1):
        close = np.array([float(r[j]) if r[j] else np.nan for r in rows])
        keep = np.isfinite(close)
        per_asset[asset] = {
            "dates": dates[keep], **{f: close[keep] for f in FIELDS},
        }
    return _align(per_asset, name)


# ------------------------------------------------------------------ synthetic markets


def _business_days(n: int, start: str = "2000-01-03") -> np.ndarray:
    days = np.busday_offset(np.datetime64(start, "D"), np.arange(n), roll="forward")
    return days.astype("datetime64[D]")


def gbm_market(
    n_days: int, n_assets: int, *, drift: float = 0.05, volatility: float = 0.2, seed: int = 0
) -> Market:
    """Geometric Brownian motion closes (annual ``drift`` and ``volatility``, 252 days a
    year); each open is the previous close (no overnight move), high/low the larger/smaller
    of open and close, so a decision at a close fills at that price."""
    rng = np.random.default_rng(seed)
    dt = 1 / 252
    steps = (drift - volatility**2 / 2) * dt + volatility * np.sqrt(dt) * rng.standard_normal(
        (n_days, n_assets)
    )
    close = 100 * np.exp(np.cumsum(steps, axis=0))
    opened = np.vstack([np.full((1, n_assets), 100.0), close[:-1]])
    return Market(
        _business_days(n_days), tuple(f"A{i}" for i in range(n_assets)), opened,
        np.maximum(opened, close), np.minimum(opened, close), close, name="gbm",
    )  # fmt: skip


def winner_market(
    n_days: int, n_assets: int = 3, *, winner: int = 0, gain: float = 0.01, loss: float = 0.0
) -> Market:
    """A market where asset ``winner`` rises by ``gain`` every day and the others fall by
    ``loss`` (default: they stay flat, as cash does): holding the winner is the best policy,
    what a learning agent must find."""
    factor = np.full(n_assets, 1 - loss)
    factor[winner] = 1 + gain
    close = 100 * factor[None, :] ** np.arange(1, n_days + 1)[:, None]
    opened = np.vstack([np.full((1, n_assets), 100.0), close[:-1]])
    return Market(
        _business_days(n_days), tuple(f"A{i}" for i in range(n_assets)), opened,
        np.maximum(opened, close), np.minimum(opened, close), close, name="winner",
    )  # fmt: skip
