"""Alerts: a Slack incoming webhook, a generic webhook, or the log.

A run queues its alerts in the journal (`queue`) and delivers them in one batch when it ends
(`deliver`), within a time budget for the whole batch; each post has its target's total
deadline. A target that fails is backed off across runs (1 minute after the first failure,
doubling up to an hour) and keeps its queue, which it gets when it answers again; a healthy
target's failing post is retried twice at once, a target already failing is tried once per run.
A failure to deliver never fails the pipeline; every delivery is recorded in the journal.
A command that could not open the warehouse (held by another process) sends its failure
straight away instead, once per target, without the journal (`send_without_journal`).
Webhook URLs carry secrets (a Slack URL is its own token), so targets are named by their kind
and position, never by their URL, and every text sent is redacted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from anchorflow.config.project import AlertTarget, Project
from anchorflow.deadline import LIMITS, Deadline, describe
from anchorflow.journal.alerts import (
    QueuedAlert,
    drop_queues_except,
    queue_alert,
    queued_alerts,
    record_delivery,
    record_target,
    remove_queued,
    target_backoff,
)
from anchorflow.journal.schema import utcnow
from anchorflow.redact import redact, redact_value
from anchorflow.warehouse import Warehouse

log = logging.getLogger(__name__)
ATTEMPTS = 3  # posts of one alert to a healthy target, within the batch's budget
BATCH_SECONDS = 60.0  # the whole batch, every target
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_LONGEST = timedelta(hours=1)


@dataclass(frozen=True)
class Alert:
    kind: str  # what happened, e.g. run_failed
    subject: str  # one line
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    target: str
    delivered: bool
    attempts: int
    error: str | None
    kind: str = ""


@dataclass(frozen=True)
class _Target:
    name: str  # slack#0: how messages and the journal name it
    key: str  # a hash of kind and URL: its queue and backoff survive a reordering
    config: AlertTarget


class AlertSender:
    """Queues alerts for every target of the project and delivers the queue in a batch."""

    def __init__(
        self,
        project: Project,
        warehouse: Warehouse,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
        budget: float = BATCH_SECONDS,
    ) -> None:
        self.project = project
        self.warehouse = warehouse
        self._sleep = sleep
        self._clock = clock
        self._budget = budget
        self._targets = [_target(index, t) for index, t in enumerate(project.alerts)]

    def queue(self, alert: Alert) -> None:
        """Keep the alert for every target until `deliver` gets it through."""
        targets = [(t.name, t.key) for t in self._targets]
        queue_alert(self.warehouse, alert.kind, alert.subject, alert.details, targets,
                    self._clock())  # fmt: skip

    def send(self, alert: Alert) -> list[Delivery]:
        """Queue the alert and deliver the queue now (outside a run)."""
        self.queue(alert)
        return self.deliver()

    def deliver(self) -> list[Delivery]:
        """One batch: each target gets its queue, in order, unless it is backed off; a failed
        post ends that target's batch (the rest stays queued). Returns what was attempted."""
        ends = time.monotonic() + self._budget
        drop_queues_except(self.warehouse, [t.key for t in self._targets])
        deliveries: list[Delivery] = []
        for target in self._targets:
            queued = queued_alerts(self.warehouse, target.key)
            failures, next_attempt_at = target_backoff(self.warehouse, target.key)
            if not queued or (next_attempt_at is not None and self._clock() < next_attempt_at):
                continue  # nothing to send, or backing off: the queue waits
            deliveries += self._deliver_queue(target, queued, failures, ends)
        return deliveries

    def _deliver_queue(
        self, target: _Target, queued: list[QueuedAlert], failures: int, ends: float
    ) -> list[Delivery]:
        deliveries = []
        for alert in queued:
            if time.monotonic() >= ends:
                break  # out of budget: the rest waits for the next run
            delivery = self._deliver(alert, target, ATTEMPTS if failures == 0 else 1, ends)
            deliveries.append(delivery)
            with contextlib.suppress(Exception):  # a journal we cannot write must not stop us
                self._record(alert, delivery)
            if not delivery.delivered:
                failures += 1
                wait = min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_LONGEST)
                record_target(self.warehouse, target.key, target.name, failures,
                              self._clock() + wait, delivery.error)  # fmt: skip
                log.warning(
                    "alert %s could not be delivered to %s (%s); %d alert(s) kept for it, "
                    "next attempt in %s", alert.kind, target.name, delivery.error,
                    len(queued) - len(deliveries) + 1, describe(wait.total_seconds()),
                )  # fmt: skip
                return deliveries
            remove_queued(self.warehouse, alert.alert_id, target.key)
            if failures:
                failures = 0
                record_target(self.warehouse, target.key, target.name, 0, None, None)
        return deliveries

    def _deliver(self, alert: QueuedAlert, target: _Target, tries: int, ends: float) -> Delivery:
        return _deliver(self.project.name, alert, target, tries, ends, self._sleep)

    def _record(self, alert: QueuedAlert, delivery: Delivery) -> None:
        record_delivery(
            self.warehouse, alert.kind, alert.subject, alert.details, delivery.target,
            delivery.delivered, delivery.attempts, delivery.error,
        )  # fmt: skip


def send_without_journal(project: Project, alert: Alert) -> list[Delivery]:
    """Post one alert to every target now, once each, each within its own timeout, without the
    journal: for a command that could not open the warehouse (its outbox and the targets'
    backoffs are in there). Nothing is queued for later; a failure is logged."""
    ends = time.monotonic() + BATCH_SECONDS
    queued = QueuedAlert(0, alert.kind, alert.subject, alert.details)
    deliveries = []
    for index, config in enumerate(project.alerts):
        delivery = _deliver(project.name, queued, _target(index, config), 1, ends, time.sleep)
        if not delivery.delivered:
            log.warning("alert %s could not be delivered to %s (%s)", alert.kind,
                        delivery.target, delivery.error)  # fmt: skip
        deliveries.append(delivery)
    return deliveries


def _deliver(
    project: str,
    alert: QueuedAlert,
    target: _Target,
    tries: int,
    ends: float,
    sleep: Callable[[float], None],
) -> Delivery:
    if target.config.kind == "log":
        details = json.dumps(redact_value(alert.details))
        log.warning("alert %s: %s %s", alert.kind, redact(alert.subject), details)
        return Delivery(target.name, True, 1, None, alert.kind)
    payload = _payload(project, alert, target.config)
    error: str | None = "out of time"
    attempt = 0
    for attempt in range(1, tries + 1):
        seconds = min(target.config.timeout.total_seconds(), ends - time.monotonic())
        if seconds <= 0:
            break
        error = _post(target.config, payload, seconds)
        if error is None:
            return Delivery(target.name, True, attempt, None, alert.kind)
        delay = 0.5 * 2 ** (attempt - 1)
        if attempt < tries and time.monotonic() + delay < ends:
            sleep(delay)
        else:
            break
    return Delivery(target.name, False, attempt, error, alert.kind)


def _payload(project: str, alert: QueuedAlert, target: AlertTarget) -> dict[str, Any]:
    subject, details = redact(alert.subject), redact_value(alert.details)
    if target.kind == "slack":
        lines = [f"*{project}*: {subject}"]
        lines += [f"• {key}: {value}" for key, value in details.items()]
        return {"text": "\n".join(lines)}
    return {"project": project, "kind": alert.kind, "subject": subject, "details": details}


def _target(index: int, config: AlertTarget) -> _Target:
    url = config.url.get_secret_value() if config.url else ""
    key = hashlib.sha256(f"{config.kind}\n{url}\n{'' if url else index}".encode()).hexdigest()
    return _Target(f"{config.kind}#{index}", key[:16], config)


def _post(target: AlertTarget, payload: dict[str, Any], seconds: float) -> str | None:
    """None when delivered, else why not (without the URL, which may hold a secret)."""
    url = target.url.get_secret_value() if target.url else ""
    deadline = Deadline(seconds)
    try:
        with deadline, httpx.Client(limits=LIMITS) as client:
            response = client.post(url, json=payload, timeout=deadline.timeout(seconds, seconds),
                                   extensions=deadline.extensions)  # fmt: skip
    except Exception as error:  # only the error's name: its text may hold the URL
        if deadline.ended:
            return f"no answer within the {describe(seconds)} deadline"
        return type(error).__name__
    if response.status_code >= 300:
        return f"HTTP {response.status_code}"
    return None
