"""Progressive delivery: the challenger in shadow, then on a canary share, rolled back by rule.

The registry holds the handles. `@challenger` names the model; tags on its version say how it
serves (the MLflow UI, a notebook or `MlflowClient.set_model_version_tag` set them):
- `rollout.mode`: `shadow` (the default) or `canary`;
- `rollout.share`: in canary, the share of clients it answers (0 to 1; `rollout.share` in
  params.yaml when the tag is missing);
- `rollout.stopped`: written by the API when the canary was rolled back: why. A stopped
  challenger serves in no role until another version becomes `@challenger`.
Tags rather than API settings: every replica reads the same registry, so one change reaches
them all without a restart, and the decision is kept on the version beside the gate's.

**Shadow.** Every request the champion answers is also scored by the challenger, in a thread of
its own after the answer has gone out (`Shadow`): a bounded queue, so a slow challenger drops
work (counted) instead of slowing anyone down. Its answers are counted as agreeing with the
champion's or not, and kept beside the champion's prediction in the feedback store, so a label
scores both.

**Canary.** A client (the `X-Client-Id` header: the playground sends one per browser) lands on
the challenger when its hash, salted with the challenger's version, falls below the share: the
same client always gets the same model (sticky), and another challenger draws other clients.
Without the header a request goes to the champion: nothing to stick to. A challenger that fails
on a request is answered by the champion (no failed request), and the failure counts against it.

**Rollback by rule** (`CanaryJudge`, the `rollout_*` settings): over the last `rollout_window`
requests of each role, once the canary has `rollout_min_requests` of them, the canary stops when
its error share exceeds the champion's by more than `rollout_max_error_gap`, when its median
model latency is more than `rollout_max_latency_ratio` times the champion's, or, once each role
has `rollout_min_labels` labels, when its accuracy is more than `rollout_max_accuracy_gap` below
the champion's. The API then tags the version `rollout.stopped` with the reason, counts it
(`api_canary_rollbacks_total`: the `CanaryRolledBack` alert) and answers every client with the
champion from the next request on.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import statistics
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.config import Settings

if TYPE_CHECKING:
    from app.serving.model_store import ServedModel
    from app.serving.telemetry import Metrics

log = logging.getLogger("app.serving.rollout")
MODE, SHARE, STOPPED = "rollout.mode", "rollout.share", "rollout.stopped"
SHADOW, CANARY = "shadow", "canary"
CHAMPION_ROLE, CHALLENGER_ROLE = "champion", "challenger"
CLIENT_ID_HEADER = "x-client-id"
BATCH = 256  # requests the shadow scores in one model call, when that many are waiting
INTERVAL = 0.2  # seconds between the shadow's rounds


@dataclass(frozen=True)
class Rollout:
    """How the challenger serves, read from its version's tags."""

    mode: str
    share: float
    stopped: str | None

    @classmethod
    def from_tags(cls, tags: dict[str, str], default_share: float) -> Rollout:
        """The tags as they are; a mode or share that makes no sense means shadow (and says so
        in the log), never an error that would stop the champion from serving."""
        mode = tags.get(MODE, SHADOW)
        try:
            share = float(tags.get(SHARE, default_share))
        except ValueError:
            share = -1.0
        if mode not in (SHADOW, CANARY) or not 0 <= share <= 1:
            log.warning("rollout tags not understood: shadow only", extra={"tags": tags})
            mode, share = SHADOW, 0.0
        return cls(mode, share, tags.get(STOPPED))


def bucket(client_id: str, version: str) -> float:
    """A client's place in [0, 1): fixed for a client and a challenger version."""
    digest = hashlib.sha256(f"{version}:{client_id}".encode()).digest()
    return int.from_bytes(digest[:8]) / 2**64


def canary_serves(rollout: Rollout, client_id: str | None, version: str) -> bool:
    """Whether this client's requests go to the challenger."""
    if rollout.mode != CANARY or rollout.stopped or not client_id:
        return False
    return bucket(client_id, version) < rollout.share


@dataclass(frozen=True)
class ShadowJob:
    """One answered request for the challenger to score: the champion's digits and the ids."""

    features: np.ndarray
    digits: np.ndarray
    prediction_ids: list[str]


class Shadow:
    """The challenger scores what the champion answered, off the answer's path.

    `submit` only appends the request to a bounded list (dropped, and counted, when it is
    full): no lock, no wake-up. Every `INTERVAL` one thread, at the lowest CPU priority, takes
    what has gathered and scores it with the challenger `current()` returns, up to `BATCH`
    requests per model call (one row costs a CNN nearly as much as a few hundred), counts whether it
    agreed with the champion, and remembers its answers (the last `remember`) so that a label
    can score the challenger too (`label`).
    """

    def __init__(
        self,
        current: Callable[[], ServedModel | None],
        metrics: Metrics,
        capacity: int,
        remember: int = 10_000,
    ):
        self.current, self.metrics = current, metrics
        self.capacity, self.remember = capacity, remember
        self.answers: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._pending: deque[ShadowJob] = deque()
        self._scoring = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._work, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, job: ShadowJob) -> None:
        if len(self._pending) >= self.capacity:
            self.metrics.shadow_dropped.inc()
        else:
            self._pending.append(job)  # deque.append is atomic: the request takes no lock

    def label(self, prediction_id: str, digit: int) -> None:
        """A label arrived: count whether the challenger, in shadow, was right too."""
        found = self.answers.get(prediction_id)
        if found:
            version, said = found
            outcome = "correct" if said == digit else "wrong"
            self.metrics.shadow_labels.labels(version, outcome).inc()

    def drain(self) -> None:
        """Score everything submitted so far, now (tests; the thread does it every INTERVAL)."""
        self._score_pending()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)

    def _work(self) -> None:
        # The lowest CPU priority (Linux schedules threads apart): under load the answers get
        # the cores, and the shadow what they leave; its list fills and drops, counted.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while not self._closed.wait(INTERVAL):
            self._score_pending()

    def _score_pending(self) -> None:
        with self._scoring:
            while self._pending:
                jobs = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                try:
                    challenger = self.current()
                    if challenger is not None:
                        self._score(challenger, jobs)
                except Exception as error:  # noqa: BLE001 (a broken challenger must not stop it)
                    log.warning("shadow scoring failed", extra={"error": str(error)})

    def _score(self, challenger: ServedModel, jobs: list[ShadowJob]) -> None:
        features = np.concatenate([job.features for job in jobs])
        digits = challenger.classifier.predict_proba(features).argmax(axis=1)
        champion = np.concatenate([job.digits for job in jobs])
        agree = int((digits == champion).sum())
        counter = self.metrics.shadow
        counter.labels(challenger.version, "agree").inc(agree)
        counter.labels(challenger.version, "disagree").inc(len(digits) - agree)
        ids = [prediction_id for job in jobs for prediction_id in job.prediction_ids]
        for prediction_id, digit in zip(ids, digits, strict=True):
            self.answers[prediction_id] = (challenger.version, int(digit))
        while len(self.answers) > self.remember:
            self.answers.popitem(last=False)


@dataclass
class Outcome:
    """One request a role answered: whether its model answered, and how long the model took."""

    ok: bool
    seconds: float


class CanaryJudge:
    """The rollback rule, over the last `window` requests and labels of each role."""

    def __init__(self, rule: Settings):
        self.rule = rule
        roles, window = (CHAMPION_ROLE, CHALLENGER_ROLE), rule.rollout_window
        self.requests: dict[str, deque[Outcome]] = {r: deque(maxlen=window) for r in roles}
        self.labels: dict[str, deque[bool]] = {r: deque(maxlen=window) for r in roles}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """A new challenger: nothing observed yet."""
        with self._lock:
            for windows in (self.requests, self.labels):
                for window in windows.values():
                    window.clear()

    def observe(self, role: str, ok: bool, seconds: float) -> str | None:
        """Count one request; the reason to roll back, if the rule now says so."""
        with self._lock:
            self.requests[role].append(Outcome(ok, seconds))
            return self._verdict()

    def observe_label(self, role: str, correct: bool) -> str | None:
        with self._lock:
            self.labels[role].append(correct)
            return self._verdict()

    def _verdict(self) -> str | None:
        rule = self.rule
        canary, champion = self.requests[CHALLENGER_ROLE], self.requests[CHAMPION_ROLE]
        if len(canary) >= rule.rollout_min_requests and champion:
            errors = [1 - np.mean([o.ok for o in window]) for window in (canary, champion)]
            if errors[0] - errors[1] > rule.rollout_max_error_gap:
                return f"error share {errors[0]:.1%} against the champion's {errors[1]:.1%}"
            latency = [
                statistics.median(o.seconds for o in window if o.ok) if any(o.ok for o in window)
                else 0.0
                for window in (canary, champion)
            ]  # fmt: skip
            if latency[1] and latency[0] > rule.rollout_max_latency_ratio * latency[1]:
                return (
                    f"median model latency {latency[0] * 1000:.2f} ms against the champion's "
                    f"{latency[1] * 1000:.2f} ms"
                )
        mine, theirs = self.labels[CHALLENGER_ROLE], self.labels[CHAMPION_ROLE]
        if min(len(mine), len(theirs)) >= rule.rollout_min_labels:
            accuracy = float(np.mean(mine)), float(np.mean(theirs))
            if accuracy[1] - accuracy[0] > rule.rollout_max_accuracy_gap:
                return f"accuracy {accuracy[0]:.1%} on labels, the champion's {accuracy[1]:.1%}"
        return None
