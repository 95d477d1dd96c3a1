"""HTTP controllers of the usage service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Parameter
from litestar.response import Stream

from services.usage import export, repository, service
from services.usage.errors import AuditEntryNotFound, ServiceCallerRequired
from services.usage.models import (
    AuditEntry,
    AuditPage,
    ExportFormat,
    Granularity,
    GroupBy,
    UsageReport,
    UsageSummary,
)
from services.usage.settings import UsageSettings
from shared.auth.assertion import Caller
from shared.db import Connection
from shared.http.app import Resources

From = Annotated[str | None, Parameter(query="from", description="ISO 8601 date or date-time (UTC)")]
To = Annotated[str | None, Parameter(query="to", description="ISO 8601, exclusive (default: now)")]
# Postgres text cannot hold NUL: refused here (400) rather than failing the query (500) or, in the
# export, breaking a stream already under way.
_NO_NUL = r"^[^\x00]*$"
_ACTOR = "actor id (user or API key) or kind (system, stripe)"
Actor = Annotated[str | None, Parameter(description=_ACTOR, pattern=_NO_NUL, max_length=200)]
Action = Annotated[
    str | None, Parameter(description="event type, or a prefix ending in *", pattern=_NO_NUL, max_length=200)
]


@dataclass
class _ExportOperation(Operation):
    """The export streams NDJSON or CSV (by `format`); say so instead of the inferred JSON."""

    def __post_init__(self) -> None:
        text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        content = {media.split(";")[0]: text for media in export.MEDIA_TYPES.values()}
        self.responses = {
            "200": OpenAPIResponse(description="The audit log, one entry per line", content=content)
        }


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]

    @get("/")
    async def usage(
        self,
        member: Caller,
        tx: Connection,
        start: From = None,
        end: To = None,
        granularity: Granularity = "day",
        group_by: GroupBy | None = None,
    ) -> UsageReport:
        assert member.tenant_id is not None
        return await service.usage_report(tx, member.tenant_id, start, end, granularity, group_by)

    @get("/summary")
    async def summary(self, member: Caller, tx: Connection, resources: Resources) -> UsageSummary:
        assert member.tenant_id is not None
        return await service.usage_summary(tx, resources.redis, member.tenant_id, member.plan)


class AuditController(Controller):
    path = "/audit-logs"
    tags = ["audit"]

    @get("/")
    async def audit_logs(
        self,
        admin: Caller,
        tx: Connection,
        actor: Actor = None,
        action: Action = None,
        start: From = None,
        end: To = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AuditPage:
        assert admin.tenant_id is not None
        where = service.audit_filter(actor, action, start, end)
        return await service.audit_page(tx, admin.tenant_id, where, cursor, limit)

    @get("/export", operation_class=_ExportOperation)
    async def export_audit_logs(
        self,
        admin: Caller,
        resources: Resources,
        format: ExportFormat = "ndjson",
        actor: Actor = None,
        action: Action = None,
        start: From = None,
        end: To = None,
    ) -> Stream:
        assert admin.tenant_id is not None and resources.pool is not None
        assert isinstance(resources.settings, UsageSettings)
        where = service.audit_filter(actor, action, start, end)
        rows = export.export_audit(
            resources.pool, admin.tenant_id, where, format, resources.settings.export_batch_rows
        )
        disposition = f'attachment; filename="{export.filename(admin.tenant_id, format)}"'
        headers = {"content-disposition": disposition}
        return Stream(rows, media_type=export.MEDIA_TYPES[format], headers=headers)


class PlatformController(Controller):
    """Operator and platform checks; not for tenants (the gateway never routes /internal)."""

    path = "/internal"
    tags = ["platform"]
    include_in_schema = False

    @get("/audit/{event_id:uuid}")
    async def audit_entry(self, caller: Caller, event_id: UUID, tx: Connection) -> AuditEntry:
        if caller.kind != "service":
            raise ServiceCallerRequired()
        entry = await repository.get_audit(tx, event_id)
        if entry is None:
            raise AuditEntryNotFound(f"no audit entry for event {event_id}")
        return entry
