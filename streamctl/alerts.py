"""The alert desk: every Alert on the bus stored once per failure (repeats count up), closed by its recovery.

Anyone publishes `events.Alert(level, source, message, code=..., params=..., resolved=...)`; the desk keeps one
open alert per (code, source) in the event database, so a reload or a restart loses none, and publishes
`AlertStored` with the sentence for each language, read from the catalogue keys `alert.<code>` and
`alert.<code>.resolved` (web/i18n), `{source}` and the params filled in.
"""

from __future__ import annotations

import logging

from .console.i18n import LANGS, catalogue
from .events import Alert, AlertStored, Bus
from .reasons import reason_key
from .redact import redact
from .store import Store

log = logging.getLogger(__name__)

LEVELS = ("info", "warning", "error")
# The codes of DESIGN.md "Alerts"; each has both catalogue sentences in every language (tests/test_alerts.py).
CODES = (
    "ingest.refused", "ingest.lost", "ingest.backup", "slate.on",
    "destination.backoff", "destination.failed", "destination.rules", "platform.health",
    "audience.failing", "audience.blocked", "audience.polling", "audience.ended", "credential.expiring", "quota.low",
    "program.silent", "program.black", "program.frozen", "disk.low", "archive.failed", "destination.slow",
    "snapshot.failed",
)


def reason_phrase(error: str, lang: str) -> str:
    """An error text as the catalogue's reason for it, shaped to sit inside a sentence ("…: không kết nối được…")."""
    sentence = catalogue(lang).get(f"reason.{reason_key(error)}", error).rstrip(".")
    return sentence[:1].lower() + sentence[1:]


def alert_text(alert: dict, lang: str) -> str:
    """The alert's sentence in `lang`; its English log message when the code has none (or the params do not fit)."""
    key = f"alert.{alert['code']}" + (".resolved" if alert.get("recovery") else "")
    template = catalogue(lang).get(key)
    if template is None:
        return redact(alert["message"])
    params = {name: redact(str(value)) for name, value in (alert.get("params") or {}).items()}
    for name in ("error", "reason"):  # the page says why in words; the raw text stays in the log and the API
        if name in params:
            params[name] = reason_phrase(params[name], lang)
    try:
        return template.format(**{**params, "source": redact(alert["source"])})
    except (KeyError, IndexError, ValueError):
        return redact(alert["message"])


def api_view(alert: dict, lang: str) -> dict:
    """One alert as `GET /api/alerts` shows it, its text in the reader's language."""
    return {
        "id": alert["id"], "at": alert["at"], "last_at": alert["last_at"], "level": alert["level"],
        "code": alert["code"], "source": redact(alert["source"]), "text": alert_text(alert, lang),
        "count": alert["count"], "recovery": alert["recovery"], "resolved_at": alert["resolved_at"],
        "acknowledged_by": alert["acknowledged_by"], "acknowledged_at": alert["acknowledged_at"],
        "params": {name: redact(str(value)) for name, value in (alert.get("params") or {}).items()},
    }


def page_view(alert: dict) -> dict:
    """One alert for the pages' socket: the API shape with the text of every language (`texts`)."""
    view = api_view(alert, LANGS[0])
    del view["text"]
    return {**view, "texts": {lang: alert_text(alert, lang) for lang in LANGS}}


class AlertDesk:
    """Stores the bus's alerts (one per failure, not per retry) and tells the pages about each change."""

    def __init__(self, store: Store, bus: Bus):
        self.store = store
        self.bus = bus
        # Lossless: an alert dropped is an operator not told. Publishers wait (briefly) instead.
        self._sub = bus.subscribe(Alert, maxsize=1000, lossless=True, name="alerts")

    async def run(self) -> None:
        try:
            async for event in self._sub:
                try:
                    await self.take(event)
                except Exception:
                    log.exception("could not store alert %s for %s", event.code, event.source)
        finally:
            self._sub.close()

    async def drain(self) -> None:
        """Store the alerts still queued (on shutdown); nobody is listening any more."""
        while not self._sub.queue.empty():
            event = self._sub.get_nowait()
            self._store(event, redact(event.message))

    async def take(self, event: Alert) -> list[dict]:
        """Store one Alert event: open or count up its alert, or close it with a recovery; publish what changed."""
        message = redact(event.message)
        changed, fresh = self._store(event, message)
        if fresh and event.resolved:
            log.info("alert %s for %s resolved: %s", event.code, event.source, message)
        elif fresh:
            log.log(logging.ERROR if _level(event) == "error" else logging.WARNING, "alert %s for %s: %s",
                    event.code, event.source, message)
        await self._tell(changed)
        return changed

    def _store(self, event: Alert, message: str) -> tuple[list[dict], bool]:
        """(the alerts one event changed, whether it opened or closed one rather than counting a repeat)."""
        if event.resolved:
            changed = self.store.resolve_alert(event.at, event.code, event.source, message, event.params)
            return changed, bool(changed)
        alert, new = self.store.raise_alert(event.at, _level(event), event.code, event.source, message, event.params)
        return [alert], new

    def acknowledge(self, alert_id: int, by: str) -> dict | None:
        """Acknowledge one alert; None when there is no such alert."""
        return self.store.acknowledge_alert(alert_id, by)

    async def acknowledged(self, alert: dict) -> None:
        await self._tell([alert])

    async def _tell(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        unacknowledged = self.store.unacknowledged_alerts()
        for alert in alerts:
            await self.bus.publish(AlertStored(page_view(alert), unacknowledged))

    def alerts(self, lang: str, after: int = 0, limit: int = 200) -> list[dict]:
        return [api_view(a, lang) for a in self.store.alerts(after, limit)]


def _level(event: Alert) -> str:
    """The event's level, or warning when it names none we know."""
    return event.level if event.level in LEVELS else "warning"
