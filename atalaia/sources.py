"""Reading one interval's raw rows from a monitor's source (files or a SQL database).

Rows come back untyped where the source allows it (CSV values stay strings), so validation
can quarantine a bad value with what was actually written. Each row carries its origin:
``_source`` (the file, or ``sql``) and ``_row`` (its 0-based data row number there).
"""

from __future__ import annotations

import glob
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import MetaData, Table, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from atalaia.config import FileSource, Monitor, SqlSource, as_utc
from atalaia.errors import NoSourceFilesError, SourceError
from storage.engine import DEFAULT_CONNECT_TIMEOUT, connect_args, first_line, redact

SOURCE = "_source"
ROW = "_row"


def read_interval(
    monitor: Monitor,
    start: datetime,
    end: datetime,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> pd.DataFrame:
    """All source rows of ``monitor`` that may fall in ``[start, end)``, with their origin.

    File sources return the rows of every matching file (timestamps are parsed and filtered
    later, so unparsable ones can be quarantined), except that a Parquet file's row groups
    whose typed timestamps all lie outside the interval (by the file's own statistics, and
    with none missing) are not read at all, so a backfill reads each row group about once;
    SQL sources filter in the query; their server gets ``connect_timeout`` seconds to answer.
    """
    if isinstance(monitor.source, FileSource):
        return _read_files(monitor.source, monitor.timestamp, start, end)
    return _read_sql(monitor, monitor.source, start, end, connect_timeout)


def _read_files(source: FileSource, timestamp: str, start: datetime, end: datetime) -> pd.DataFrame:
    paths = sorted(glob.glob(source.path, recursive=True))
    if not paths:
        raise NoSourceFilesError(f"no file matches source path {source.path}")
    frames = [_read_file(Path(path), timestamp, start, end) for path in paths]
    return pd.concat(frames, ignore_index=True)


def _read_file(path: Path, timestamp: str, start: datetime, end: datetime) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return _read_parquet(path, timestamp, start, end)
        if path.suffix.lower() in (".csv", ".gz"):
            frame = _read_csv(path)
        else:
            raise SourceError(f"{path}: unsupported file type (use .csv or .parquet)")
    except (OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from exc
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    frame[SOURCE] = str(path)
    frame[ROW] = range(len(frame))
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV file's values as text; a row with more fields than the header refuses the file
    (pandas would otherwise shift a first such row's columns, or drop its extra fields)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[""], index_col=False
            )
        except pd.errors.ParserWarning as exc:
            raise pd.errors.ParserError(f"a row has more fields than the header ({exc})") from exc


def _read_parquet(path: Path, timestamp: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The row groups of a Parquet file that may hold rows of ``[start, end)``, with their
    rows' numbers in the file."""
    file = pq.ParquetFile(path)
    groups, numbers, first = [], [], 0
    for index in range(file.metadata.num_row_groups):
        group = file.metadata.row_group(index)
        if _may_hold(group, timestamp, start, end):
            groups.append(index)
            numbers.append(np.arange(first, first + group.num_rows))
        first += group.num_rows
    table = file.read_row_groups(groups) if groups else file.schema_arrow.empty_table()
    frame = table.to_pandas()
    frame[SOURCE] = str(path)
    frame[ROW] = np.concatenate(numbers) if numbers else np.empty(0, dtype=np.int64)
    return frame


def _may_hold(group: pq.RowGroupMetaData, timestamp: str, start: datetime, end: datetime) -> bool:
    """False only when the group's statistics show every timestamp present, typed, and
    outside ``[start, end)`` (a naive timestamp is UTC, as validation reads it)."""
    for index in range(group.num_columns):
        column = group.column(index)
        if column.path_in_schema != timestamp:
            continue
        stats = column.statistics
        if stats is None or not stats.has_min_max or stats.null_count != 0:
            return True
        low, high = stats.min, stats.max
        if not isinstance(low, datetime) or not isinstance(high, datetime):
            return True
        low, high = (as_utc(value) for value in (low, high))
        return high >= start and low < end
    return True


def _read_sql(
    monitor: Monitor, source: SqlSource, start: datetime, end: datetime, timeout: float
) -> pd.DataFrame:
    engine = create_engine(source.url, connect_args=connect_args(source.url, timeout))
    try:
        with engine.connect() as connection:
            if source.query is not None:
                statement = text(source.query).bindparams(start=start, end=end)
            else:
                table = Table(source.table, MetaData(), autoload_with=connection)
                if monitor.timestamp not in table.c:
                    raise SourceError(
                        f"table {source.table} in {redact(source.url)} has no column "
                        f"{monitor.timestamp!r}"
                    )
                stamp = table.c[monitor.timestamp]
                statement = select(table).where(stamp >= start, stamp < end)
            frame = pd.read_sql(statement, connection)
    except NoSuchTableError as exc:
        raise SourceError(f"no table {source.table} in {redact(source.url)}") from exc
    except SQLAlchemyError as exc:
        reason = first_line(exc, make_url(source.url).password)
        if "timeout expired" in reason:
            reason = f"no answer within {max(1, round(timeout))} s (ATALAIA_STORE_CONNECT_TIMEOUT)"
        raise SourceError(f"cannot read source {redact(source.url)}: {reason}") from exc
    finally:
        engine.dispose()
    frame[SOURCE] = "sql"
    frame[ROW] = range(len(frame))
    return frame
