"""Command notifications: in-process on the event bus, and optionally to SNS and AppSync.

After the synchronizer commits (or fails) a command version, a
:class:`CommandStatusEvent` is published on the app's
:class:`~cqrs.events.bus.EventBus` and, when a topic is configured
(``CQRS_SNS_TOPIC_ARN`` or ``Notifier(topic_arn=...)``), to SNS as MBC CQRS
Serverless's notification JSON::

    {"action": "command-status", "pk": "ORDER#acme", "sk": "ORDER#1@3",
     "table": "dev-shop-order-command", "id": "dev-shop-order-command#ORDER#acme#ORDER#1@3",
     "tenantCode": "acme", "content": {"status": "finish:FINISHED"}}

with the message attribute ``action=command-status`` (for subscription filter
policies). The status sent is MBC's (``status.enum.ts``: ``<step>:FINISHED`` /
``<step>:FAILED``): ``finish:FINISHED`` once a version is applied, ``sync_data:FAILED``
when its projection failed; on the bus, :attr:`CommandStatusEvent.status` keeps our
word (``applied`` / ``failed``) and :attr:`CommandStatusEvent.mbc_status` gives MBC's.

With an AppSync endpoint (``CQRS_APPSYNC_ENDPOINT``, optionally ``CQRS_APPSYNC_API_KEY``)
command statuses are also sent there as MBC sends them (:mod:`cqrs.events.appsync`).
When nobody subscribed and no destination is configured, nothing is built or sent.

When sync gives up on a poison command (:mod:`cqrs.sync.failures`), the alarm
:class:`EntityStuckEvent` (``action=entity-stuck``) goes the same ways, and is
always logged at ERROR; so does :class:`RecordRejectedEvent`
(``action=record-rejected``) when a stream record is not a command at all.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, Literal

from pydantic import ConfigDict, JsonValue, model_validator
from pydantic.alias_generators import to_camel

from ..core.errors import CqrsError, OperationalError
from ..core.keys import tenant_of, version_of
from .types import Event

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

    from ..core.settings import Settings
    from .appsync import AppSyncClient
    from .bus import EventBus

logger = logging.getLogger("cqrs.events.notifications")

#: The environment variable naming the SNS topic notifications go to.
TOPIC_ENV = "CQRS_SNS_TOPIC_ARN"
#: The environment variable naming the AppSync endpoint (read when there are no settings).
APPSYNC_ENDPOINT_ENV = "CQRS_APPSYNC_ENDPOINT"
#: MBC's command status strings (``getCommandStatus(stepName, status)``).
STATUS_FINISHED: Final = "finish:FINISHED"
STATUS_FAILED: Final = "sync_data:FAILED"
_MBC_STATUS = {"applied": STATUS_FINISHED, "failed": STATUS_FAILED}
COMMAND_STATUS: Final = "command-status"
ENTITY_STUCK: Final = "entity-stuck"
RECORD_REJECTED: Final = "record-rejected"
_SNS_BATCH = 10  # PublishBatch's limit


class Notification(Event):
    """An event about one command (``sk`` carries ``@version``), sent as MBC's notification JSON.

    ``id`` defaults to the command's ``request_id`` if given, else ``<table>#<pk>#<sk>``,
    and ``tenant_code`` to the tenant of ``pk``, as MBC derives them. Subclasses fix
    ``action`` and say what goes into ``content``.
    """

    model_config = ConfigDict(alias_generator=to_camel)

    action: str
    pk: str
    sk: str
    table: str
    tenant_code: str
    id: str

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        pk, sk, table = data.get("pk"), data.get("sk"), data.get("table")
        if not isinstance(pk, str):
            return data
        data = {k: v for k, v in data.items() if v is not None}
        if "tenantCode" not in data and "tenant_code" not in data:
            data["tenantCode"] = tenant_of(pk)
        if "id" not in data and isinstance(sk, str) and isinstance(table, str):
            request_id = data.get("requestId") or data.get("request_id")  # MBC's notifyId
            data["id"] = request_id or f"{table}#{pk}#{sk}"
        return data

    @property
    def version(self) -> int | None:
        """The command version, from ``sk``."""
        return version_of(self.sk)

    def content(self) -> dict[str, JsonValue]:
        """The ``content`` of the notification."""
        return {}

    def to_notification(self) -> dict[str, JsonValue]:
        """MBC's notification shape (what is sent to SNS)."""
        return {
            "action": self.action,
            "pk": self.pk,
            "sk": self.sk,
            "table": self.table,
            "id": self.id,
            "tenantCode": self.tenant_code,
            "content": self.content(),
        }


class CommandStatusEvent(Notification):
    """The status of one command version: ``applied`` or ``failed`` (with ``error``), or
    one of MBC's status strings as it is (``finish:FINISHED``, ``publish_sync:FAILED`` ...)."""

    action: Literal["command-status"] = COMMAND_STATUS
    status: str
    error: str | None = None
    source: str | None = None
    request_id: str | None = None  # the command's: MBC's notification ``id`` when set

    @property
    def mbc_status(self) -> str:
        """The status as MBC writes it: ``applied`` is ``finish:FINISHED``, ``failed`` is
        ``sync_data:FAILED`` (the step that projects); MBC's own strings are kept."""
        return _MBC_STATUS.get(self.status, self.status)

    def content(self) -> dict[str, JsonValue]:
        """``status`` (MBC's string), and ``error`` / ``source`` when set."""
        content: dict[str, JsonValue] = {"status": self.mbc_status}
        if self.error is not None:
            content["error"] = self.error
        if self.source is not None:
            content["source"] = self.source
        return content


class EntityStuckEvent(Notification):
    """Alarm: an entity's command failed ``attempts`` times and sync gave up retrying it.

    ``sk`` names the failed command version; versions after it up to
    ``waiting_through`` wait behind it until it is redriven
    (:meth:`cqrs.sync.failures.SyncFailures.redrive`, ``cqrs redrive``).
    """

    action: Literal["entity-stuck"] = ENTITY_STUCK
    entity: str
    failed_version: int
    waiting_through: int
    attempts: int
    error: str

    def content(self) -> dict[str, JsonValue]:
        """The failure: entity, versions, attempts and error."""
        return {
            "entity": self.entity,
            "failedVersion": self.failed_version,
            "waitingThrough": self.waiting_through,
            "attempts": self.attempts,
            "error": self.error,
        }


class RecordRejectedEvent(Notification):
    """Alarm: a stream record could not be processed (not parseable, or not a valid command
    image). It was acknowledged and kept in ``sync-failures`` with its reason and raw text
    (``cqrs stuck`` lists it). ``pk``/``sk``/``table`` are ``-`` when the record lacked them."""

    action: Literal["record-rejected"] = RECORD_REJECTED
    sequence_number: str | None = None
    reason: str

    def content(self) -> dict[str, JsonValue]:
        """``sequenceNumber`` and ``reason``."""
        return {"sequenceNumber": self.sequence_number, "reason": self.reason}


def make_sns_client(settings: Settings | None) -> SNSClient:
    """An SNS client for the app's region and endpoint (``AWS_ENDPOINT_URL_SNS`` wins)."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_SNS") or None
    if settings is None:
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        return boto3.session.Session().client("sns", endpoint_url=endpoint, config=config)
    from ..store.clients import client_options

    session = boto3.session.Session(region_name=settings.region)
    return session.client("sns", **client_options(settings, endpoint))


def _error_text(error: BaseException | str | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}"


class Notifier:
    """Publishes :class:`CommandStatusEvent` to the bus and, if configured, to SNS and AppSync.

    - ``bus``: the in-process bus (``app.events``); ``None`` for SNS only.
    - ``settings``: region and endpoint of the SNS client, created on first use.
    - ``topic_arn``: the SNS topic; defaults to ``CQRS_SNS_TOPIC_ARN`` (unset: no SNS).
    - ``sns``: a boto3 SNS client to use instead (your retries, credentials …).
    - ``appsync``: an :class:`~cqrs.events.appsync.AppSyncClient` command statuses also go
      to; default: one for ``settings.appsync_endpoint`` (``CQRS_APPSYNC_ENDPOINT``) with
      ``settings.appsync_api_key`` (``CQRS_APPSYNC_API_KEY``; unset: SigV4), created on
      first use. Alarms (stuck entities, rejected records) do not go to AppSync.
    - ``raise_errors``: raise failures (SNS errors as
      :class:`~cqrs.core.errors.OperationalError`, handler exceptions as they are)
      instead of logging them. Off by default: a notification must not fail the
      batch whose commands are already committed.
    """

    def __init__(
        self,
        bus: EventBus | None = None,
        settings: Settings | None = None,
        *,
        topic_arn: str | None = None,
        sns: SNSClient | None = None,
        appsync: AppSyncClient | None = None,
        raise_errors: bool = False,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.topic_arn = topic_arn or os.environ.get(TOPIC_ENV) or None
        self._sns = sns
        self._appsync = appsync
        self.appsync_endpoint = (
            appsync.endpoint
            if appsync is not None
            else (settings.appsync_endpoint if settings else os.environ.get(APPSYNC_ENDPOINT_ENV))
            or None
        )
        self.raise_errors = raise_errors

    @property
    def enabled(self) -> bool:
        """Whether a notification would go anywhere (a topic, AppSync, a subscriber)."""
        return (
            self.topic_arn is not None
            or self.appsync_endpoint is not None
            or (self.bus is not None and self.bus.has_subscribers(CommandStatusEvent))
        )

    @property
    def appsync(self) -> AppSyncClient | None:
        """The AppSync client (created on first use), or ``None`` without an endpoint."""
        if self._appsync is None and self.appsync_endpoint is not None:
            from .appsync import client_for

            self._appsync = client_for(self.appsync_endpoint, self.settings)
        return self._appsync

    @property
    def sns(self) -> SNSClient:
        """The SNS client (created on first use)."""
        if self._sns is None:
            self._sns = make_sns_client(self.settings)
        return self._sns

    def command_status(
        self,
        pk: str,
        sk: str,
        table: str,
        status: str,
        *,
        error: BaseException | str | None = None,
        tenant_code: str | None = None,
        source: str | None = None,
    ) -> CommandStatusEvent | None:
        """Notify the status of command ``pk``/``sk`` (``sk`` with ``@version``) of ``table``.

        Returns the event, or ``None`` if nothing was sent because nothing listens.
        """
        if not self.enabled:
            return None
        event = CommandStatusEvent(
            pk=pk,
            sk=sk,
            table=table,
            status=status,
            error=_error_text(error),
            tenant_code=tenant_code,
            source=source,
        )
        self._send([event])
        return event

    def command_statuses(self, events: Iterable[CommandStatusEvent]) -> int:
        """Notify many statuses at once (SNS: ``PublishBatch``, 10 per request).

        ``events`` is not iterated when nothing listens, so pass a generator to
        build events only when needed. Returns how many were notified.
        """
        if not self.enabled:
            return 0
        batch = list(events)
        if batch:
            self._send(batch)
        return len(batch)

    def entity_stuck(self, event: EntityStuckEvent) -> None:
        """Raise the alarm that an entity is stuck: always logged at ERROR (so a log metric
        filter can alarm on it), published on the bus, and sent to SNS when configured."""
        logger.error(
            "ALARM entity-stuck: %s %s / %s stuck at version %d after %d attempts "
            "(versions up to %d wait behind it): %s",
            event.entity,
            event.pk,
            event.sk,
            event.failed_version,
            event.attempts,
            event.waiting_through,
            event.error,
        )
        self._send([event])

    def record_rejected(self, event: RecordRejectedEvent) -> None:
        """Raise the alarm that a stream record was rejected: logged at ERROR, published on
        the bus, and sent to SNS when configured."""
        logger.error(
            "ALARM record-rejected: record %s of %s (%s / %s): %s",
            event.sequence_number,
            event.table,
            event.pk,
            event.sk,
            event.reason,
        )
        self._send([event])

    def _send(self, events: Sequence[Notification]) -> None:
        if self.bus is not None:
            for event in events:
                try:
                    self.bus.publish(event)
                except Exception:
                    if self.raise_errors:
                        raise
                    logger.exception("%s handler failed on %s %s", event.action, event.pk, event.sk)
        if self.topic_arn is not None:
            for start in range(0, len(events), _SNS_BATCH):
                self._publish_sns(self.topic_arn, events[start : start + _SNS_BATCH])
        if (appsync := self.appsync) is not None:
            for event in (e for e in events if isinstance(e, CommandStatusEvent)):
                try:
                    appsync.send(event.to_notification())
                except CqrsError as exc:  # classified by the client
                    self._fail(exc)

    def _publish_sns(self, topic_arn: str, events: Sequence[Notification]) -> None:
        entries: list[PublishBatchRequestEntryTypeDef] = [
            {
                "Id": str(i),
                "Message": json.dumps(e.to_notification(), ensure_ascii=False),
                "MessageAttributes": {"action": {"DataType": "String", "StringValue": e.action}},
            }
            for i, e in enumerate(events)
        ]
        try:
            response = self.sns.publish_batch(
                TopicArn=topic_arn, PublishBatchRequestEntries=entries
            )
        except Exception as exc:
            from ..store.classify import classify

            self._fail(classify(exc, f"SNS publish to {topic_arn} failed"))
            return
        failed = response.get("Failed") or []
        if failed:
            detail = ", ".join(
                f"{events[int(f['Id'])].sk}: {f.get('Code')} {f.get('Message', '')}".strip()
                for f in failed
            )
            self._fail(OperationalError(f"SNS publish to {topic_arn} failed for {detail}"))

    def _fail(self, error: CqrsError) -> None:
        if self.raise_errors:
            raise error
        logger.error("%s", error, exc_info=error.cause)
