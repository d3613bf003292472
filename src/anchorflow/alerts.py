"""Alerts: a Slack incoming webhook, a generic webhook, or the log.

Delivery is retried; a failure to deliver never fails the pipeline, it is recorded in
the journal like every delivery. Webhook URLs carry secrets (a Slack URL is its own token),
so targets are named by their kind and position, never by their URL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from anchorflow.config.project import AlertTarget, Project
from anchorflow.journal.alerts import record_delivery
from anchorflow.warehouse import Warehouse

log = logging.getLogger(__name__)
ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0


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


class AlertSender:
    """Sends an alert to every target of the project and records each delivery."""

    def __init__(
        self,
        project: Project,
        warehouse: Warehouse,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.project = project
        self.warehouse = warehouse
        self._sleep = sleep

    def send(self, alert: Alert) -> list[Delivery]:
        """Each target on its own: one that fails cannot keep the others from their alert."""
        deliveries = []
        for index, target in enumerate(self.project.alerts):
            delivery = self._deliver(alert, target, f"{target.kind}#{index}")
            with contextlib.suppress(Exception):  # a journal we cannot write must not stop us
                self._record(alert, delivery)
            deliveries.append(delivery)
        return deliveries

    def _deliver(self, alert: Alert, target: AlertTarget, name: str) -> Delivery:
        if target.kind == "log":
            log.warning("alert %s: %s %s", alert.kind, alert.subject, json.dumps(alert.details))
            return Delivery(name, True, 1, None)
        payload = self._payload(alert, target)
        error = None
        for attempt in range(1, ATTEMPTS + 1):
            error = self._post(target, payload)
            if error is None:
                return Delivery(name, True, attempt, None)
            if attempt < ATTEMPTS:
                self._sleep(0.5 * 2 ** (attempt - 1))
        log.warning("alert %s could not be delivered to %s: %s", alert.kind, name, error)
        return Delivery(name, False, ATTEMPTS, error)

    def _payload(self, alert: Alert, target: AlertTarget) -> dict[str, Any]:
        if target.kind == "slack":
            lines = [f"*{self.project.name}*: {alert.subject}"]
            lines += [f"• {key}: {value}" for key, value in alert.details.items()]
            return {"text": "\n".join(lines)}
        return {"project": self.project.name, "kind": alert.kind, "subject": alert.subject,
                "details": alert.details}  # fmt: skip

    @staticmethod
    def _post(target: AlertTarget, payload: dict[str, Any]) -> str | None:
        """None when delivered, else why not (without the URL, which may hold a secret)."""
        url = target.url.get_secret_value() if target.url else ""
        try:
            response = httpx.post(url, json=payload, timeout=TIMEOUT_SECONDS)
        except Exception as error:  # only the error's name: its text may hold the URL
            return type(error).__name__
        if response.status_code >= 300:
            return f"HTTP {response.status_code}"
        return None

    def _record(self, alert: Alert, delivery: Delivery) -> None:
        record_delivery(
            self.warehouse, alert.kind, alert.subject, alert.details, delivery.target,
            delivery.delivered, delivery.attempts, delivery.error,
        )  # fmt: skip
