"""Labels from the field: every prediction the API makes, kept so a later label can join it.

The API stores each prediction under its id (the 64 inputs, the digit, the model version, the
client mark); `POST /feedback` adds the true digit. A real database through SQLAlchemy Core, the
same code on SQLite (a file in the stack's state folder, the default) and PostgreSQL
(compose/scale.yml, where replicas share it). Predictions leave the request path: `record`
queues a request's arrays as they are and one writer thread turns them into rows and inserts
them in batches; `flush` writes what is queued at once (a label for a prediction still queued,
and the API's shutdown, call it). The inputs are stored as 64 float32 (`pixels_of` reads them).

Unlabelled predictions are kept for `keep_hours` and at most `max_unlabelled` of them; a label
makes a prediction field data, kept until a data version takes it (`app.data field`).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from app.config import Settings
from app.ids import random_hex

log = logging.getLogger("app.feedback")
FLUSH_SECONDS = 0.05  # the writer's batch interval: what a crash (not a restart) could lose
# PostgreSQL's advisory lock that replicas starting together take to create the tables one at a
# time: a number the database's other users do not take ("feedback" as 8 bytes).
CREATE_LOCK = int.from_bytes(b"feedback")


def new_batch_id() -> str:
    """A request's predictions' id: 32 hex digits laid out like a UUIDv7, 48 bits of Unix
    milliseconds then 80 random bits. Time-ordered, a new row lands at the end of the primary
    key's index rather than anywhere in it: the writer's cost a row halves on a table of 100,000
    (uuid4: 32 us a row; this: 17 us). The random part keeps an id unguessable."""
    return f"{time.time_ns() // 1_000_000:012x}{random_hex(20)}"


def utcnow() -> datetime:
    """Now in UTC, without a zone: how both databases store a timestamp here."""
    return datetime.now(UTC).replace(tzinfo=None)


metadata = MetaData()
predictions = Table(
    "predictions",
    metadata,
    Column("id", String(40), primary_key=True),  # `<request batch>-<row>`
    Column("made_at", DateTime, nullable=False, index=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(20), nullable=False),
    Column("client", String(20), nullable=False),
    Column("digit", SmallInteger, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("pixels", LargeBinary, nullable=False),  # 64 float32, little-endian: `pixels_of`
)
labels = Table(
    "labels",
    metadata,
    Column("prediction_id", ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True),
    Column("digit", SmallInteger, nullable=False),
    Column("labelled_at", DateTime, nullable=False),
    Column("client", String(20), nullable=False),
)
Index("labels_by_time", labels.c.labelled_at)


PIXELS = np.dtype("<f4")


def pixels_of(stored: bytes) -> np.ndarray:
    """The 64 inputs of a stored prediction, on the 0..16 scale."""
    return np.frombuffer(stored, dtype=PIXELS)


@dataclass(frozen=True)
class Made:
    """One request's predictions as the API made them: arrays, so the request path does no
    per-row work. Prediction i is `<batch>-<i>`."""

    batch: str
    made_at: datetime
    model_name: str
    model_version: str
    client: str
    digits: np.ndarray
    confidences: np.ndarray
    features: np.ndarray  # n x 64

    def ids(self) -> list[str]:
        """The predictions' ids, in row order."""
        return [f"{self.batch}-{i}" for i in range(len(self.digits))]

    def rows(self) -> list[dict]:
        """The `predictions` rows."""
        pixels = self.features.astype(PIXELS)
        common = {
            "made_at": self.made_at,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "client": self.client,
        }
        return [
            common | {"id": i, "digit": int(d), "confidence": float(c), "pixels": p.tobytes()}
            for i, d, c, p in zip(self.ids(), self.digits, self.confidences, pixels, strict=True)
        ]


@dataclass(frozen=True)
class Labelled:
    """What a label did: `created` False when the same label was already there."""

    prediction_id: str
    digit: int
    predicted: int
    model_version: str
    client: str
    created: bool

    @property
    def correct(self) -> bool:
        """The model predicted the digit the label says."""
        return self.digit == self.predicted


class UnknownPrediction(LookupError):
    """No stored prediction has this id: never made, or older than the store keeps."""


class AlreadyLabelled(ValueError):
    """The prediction has another label: a label is final."""

    def __init__(self, prediction_id: str, digit: int):
        super().__init__(
            f"prediction {prediction_id} is already labelled {digit}: a label is final, the "
            "first one counts (a second, different answer would make its accuracy depend on "
            "who clicked last)"
        )
        self.digit = digit


def database_url(settings: Settings) -> str:
    """The store's URL: the setting, or else a SQLite file in the stack's state folder."""
    return settings.feedback_database_url or f"sqlite:///{settings.state_dir / 'feedback.db'}"


def connect(url: str) -> Engine:
    """An engine on the store, its tables created if missing. SQLite runs in WAL mode: readers
    never wait for the writer, and a commit need not reach the disk before the API goes on.
    On PostgreSQL, replicas that start together create the tables one after another."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        Path(engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Two replicas that both find no table both CREATE it, and one fails. The lock is
            # held until this transaction commits the tables, so the next one finds them.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
        metadata.create_all(connection)
    return engine


class FeedbackStore:
    """Predictions and their labels in one database; thread-safe."""

    def __init__(self, url: str, keep_hours: float, max_unlabelled: int):
        self.engine = connect(url)
        self.keep = timedelta(hours=keep_hours)
        self.max_unlabelled = max_unlabelled
        self._queue: queue.SimpleQueue[Made] = queue.SimpleQueue()
        self._writing = threading.Lock()
        self._closed = threading.Event()
        self._writer = threading.Thread(target=self._write_forever, name="feedback", daemon=True)
        self._writer.start()

    def record(self, made: Made) -> None:
        """Queue a request's predictions; the writer stores them."""
        self._queue.put(made)

    def flush(self) -> int:
        """Write every queued prediction now; how many."""
        with self._writing:
            rows = []
            while True:
                try:
                    rows += self._queue.get_nowait().rows()
                except queue.Empty:
                    break
            if rows:
                with self.engine.begin() as connection:
                    connection.execute(insert(predictions), rows)
            return len(rows)

    def _write_forever(self) -> None:
        pruned_at = utcnow()
        while not self._closed.wait(FLUSH_SECONDS):
            try:
                self.flush()
                if utcnow() - pruned_at > timedelta(minutes=1):
                    self.prune()
                    pruned_at = utcnow()
            except Exception as error:  # noqa: BLE001 (a database hiccup must not end the writer)
                log.warning("storing predictions failed", extra={"error": str(error)})

    def close(self) -> None:
        """Write what is queued and stop the writer (the API's shutdown)."""
        self._closed.set()
        self._writer.join(timeout=10)
        self.flush()
        self.engine.dispose()

    def label(self, prediction_id: str, digit: int, client: str) -> Labelled:
        """Store the true digit of a prediction. UnknownPrediction, or AlreadyLabelled when it
        has another label; the same label twice is stored once (`created` False)."""
        found = self._prediction(prediction_id)
        if found is None:  # still queued, or being written by the writer: in the database after
            self.flush()
            found = self._prediction(prediction_id)
        if found is None:
            raise UnknownPrediction(prediction_id)
        predicted, version, given = found
        if given is not None and given != digit:
            raise AlreadyLabelled(prediction_id, given)
        if given is None:
            row = {
                "prediction_id": prediction_id,
                "digit": digit,
                "labelled_at": utcnow(),
                "client": client,
            }
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(labels), row)
            except IntegrityError:  # labelled meanwhile (another replica, a second click),
                return self.label(prediction_id, digit, client)  # or pruned: read it again
        return Labelled(prediction_id, digit, predicted, version, client, given is None)

    def _prediction(self, prediction_id: str) -> tuple[int, str, int | None] | None:
        query = (
            select(predictions.c.digit, predictions.c.model_version, labels.c.digit)
            .outerjoin(labels, labels.c.prediction_id == predictions.c.id)
            .where(predictions.c.id == prediction_id)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (row[0], row[1], row[2])

    def live_accuracy(self, name: str, version: str, last: int, minimum: int) -> tuple[int, float]:
        """Over the last `last` labelled predictions of a model version: how many there are, and
        the share the model got right (NaN below `minimum`: a few clicks are not an accuracy)."""
        recent = (
            select(case((labels.c.digit == predictions.c.digit, 1), else_=0).label("right"))
            .join(predictions, labels.c.prediction_id == predictions.c.id)
            .where(predictions.c.model_name == name, predictions.c.model_version == version)
            .order_by(labels.c.labelled_at.desc())
            .limit(last)
            .subquery()
        )
        query = select(func.count(), func.sum(recent.c.right)).select_from(recent)
        with self.engine.connect() as connection:
            count, right = connection.execute(query).one()
        return count, math.nan if count < minimum else (right or 0) / count

    def prune(self, now: datetime | None = None) -> int:
        """Delete unlabelled predictions past `keep`, then the oldest beyond `max_unlabelled`."""
        now = now or utcnow()
        unlabelled = ~predictions.c.id.in_(select(labels.c.prediction_id))
        with self.engine.begin() as connection:
            old = connection.execute(
                delete(predictions).where(unlabelled, predictions.c.made_at < now - self.keep)
            ).rowcount
            newest = (
                select(predictions.c.id)
                .where(unlabelled)
                .order_by(predictions.c.made_at.desc(), predictions.c.id.desc())
                .limit(self.max_unlabelled)
            )
            many = connection.execute(
                delete(predictions).where(unlabelled, predictions.c.id.not_in(newest))
            ).rowcount
        return old + many


@dataclass(frozen=True)
class LabelledInput:
    """A labelled prediction as data: its inputs, what the model said and what it really was."""

    prediction_id: str
    model_version: str
    predicted: int
    label: int
    client: str  # who labelled it
    labelled_at: datetime
    pixels: np.ndarray  # 64 values, 0..16


def labelled_inputs(
    engine: Engine, model_name: str, after: str = "", limit: int | None = None
) -> list[LabelledInput]:
    """The labelled predictions of a model, by prediction id, from just after `after` (a page
    of `limit` at most): what `python -m app.data field` makes data of."""
    query = (
        select(
            predictions.c.id,
            predictions.c.model_version,
            predictions.c.digit,
            labels.c.digit,
            labels.c.client,
            labels.c.labelled_at,
            predictions.c.pixels,
        )
        .join(labels, labels.c.prediction_id == predictions.c.id)
        .where(predictions.c.model_name == model_name, predictions.c.id > after)
        .order_by(predictions.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [LabelledInput(*row[:6], pixels_of(row[6])) for row in rows]
