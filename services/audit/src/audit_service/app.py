"""Audit wiring: every registered topic (and its dead letters) into the ledger; query and verify over gRPC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from trading.audit.v1 import audit_pb2, audit_pb2_grpc
from trading_platform.envelope import new_envelope
from trading_platform.messaging import ConsumedMessage, Consumer, Publisher, ensure_topics
from trading_platform.observability import get_logger
from trading_platform.rpc import Servicer
from trading_platform.service import ServiceParts
from trading_platform.topics import DLQ_SUFFIX, TOPICS

from audit_service.config import AuditSettings
from audit_service.ledger import Ledger, verify

log = get_logger("audit")
# Audit's own outputs are not fed back into the ledger (a checkpoint of a checkpoint would never end).
RECORDED = [name for name in TOPICS if not name.startswith("audit.")]
RECORDED += [name + DLQ_SUFFIX for name in RECORDED]


def entry_for(message: ConsumedMessage, physical_topic: str) -> audit_pb2.LedgerEntry:
    value: Any = message.value
    envelope = message.envelope
    fields = value.DESCRIPTOR.fields_by_name
    client_order_id = value.client_order_id if "client_order_id" in fields else ""
    if not client_order_id and "order" in fields:
        client_order_id = value.order.client_order_id
    if not client_order_id and value.DESCRIPTOR.name == "OrderCommand":
        inner = getattr(value, value.WhichOneof("command") or "submit_order")
        client_order_id = getattr(inner, "client_order_id", "")
    symbol = value.symbol if "symbol" in fields else ""
    return audit_pb2.LedgerEntry(
        topic=physical_topic,
        partition=message.partition,
        offset=message.offset,
        key=(message.key or "").encode(),
        message_type=value.DESCRIPTOR.full_name,
        payload=value.SerializeToString(deterministic=True),
        recorded_at=time.time_ns(),
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        client_order_id=client_order_id,
        symbol=symbol,
        ts_event=envelope.ts_event,
    )


class AuditApp(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, settings: AuditSettings) -> None:
        self.settings = settings
        kafka = settings.kafka
        config = settings.audit
        self.ledger = Ledger(config.ledger_dir, config.entries_per_segment, config.keep_segments)
        self.publisher = Publisher(
            kafka.connection(), "audit", namespace=kafka.namespace, shadow=settings.deployment.shadow
        )
        self.consumer = Consumer(
            kafka.connection(),
            "audit",
            RECORDED,
            self.on_message,
            publisher=self.publisher,
            namespace=kafka.namespace,
            group_options=kafka.group_options(),
            shadow=settings.deployment.shadow,
            # Without offsets, from the beginning: the ledger records everything, and a message id seen twice is
            # recorded once.
            auto_offset_reset="earliest",
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        kafka = self.settings.kafka
        await ensure_topics(
            kafka.connection(),
            [*RECORDED, "audit.checkpoints.v1", "audit.verifications.v1"],
            namespace=kafka.namespace,
        )
        await self.publisher.start()
        await self.consumer.start()
        self.task = asyncio.create_task(self.consumer.run())
        log.info("ledger open", directory=str(self.settings.audit.ledger_dir), sequence=self.ledger.sequence)

    async def stop(self) -> None:
        await self.consumer.stop()
        if self.task:
            await self.task
        await self.consumer.close()
        await self.publisher.stop()
        self.ledger.close()

    async def on_message(self, message: ConsumedMessage) -> None:
        # The offset is committed by the consumer only after this returns, i.e. after the fsync.
        physical = self.settings.kafka.namespace + message.topic
        self.ledger.append(entry_for(message, physical))
        seal = self.ledger.roll_if_full()
        if seal is not None:
            await self.publisher.publish(
                "audit.checkpoints.v1",
                audit_pb2.CheckpointSealed(
                    envelope=new_envelope("audit"),
                    segment=str(seal["segment"]),
                    first_sequence=int(seal["first_sequence"]),  # type: ignore[call-overload]
                    last_sequence=int(seal["last_sequence"]),  # type: ignore[call-overload]
                    last_hash=str(seal["last_hash"]),
                    checkpoint_hash=str(seal["checkpoint_hash"]),
                ),
                key=str(seal["segment"]),
            )

    async def Query(self, request: audit_pb2.QueryRequest, context: Any) -> audit_pb2.QueryResponse:
        return audit_pb2.QueryResponse(entries=query(self.ledger.entries(), request))

    async def Verify(self, request: Any, context: Any) -> audit_pb2.VerificationCompleted:
        result = await asyncio.to_thread(verify, self.settings.audit.ledger_dir)
        completed = audit_pb2.VerificationCompleted(
            envelope=new_envelope("audit"),
            ok=result.ok,
            entries_checked=result.entries_checked,
            first_error=result.first_error,
            errors=result.errors[:100],
        )
        await self.publisher.publish("audit.verifications.v1", completed, key="_ledger")
        return completed


def query(entries: Iterable[audit_pb2.LedgerEntry], request: audit_pb2.QueryRequest) -> list[audit_pb2.LedgerEntry]:
    matches = []
    for entry in entries:
        if request.client_order_id and entry.client_order_id != request.client_order_id:
            continue
        if request.correlation_id and entry.correlation_id != request.correlation_id:
            continue
        if request.symbol and entry.symbol != request.symbol:
            continue
        if request.topic and not entry.topic.endswith(request.topic):
            continue
        if (request.start and entry.ts_event < request.start) or (request.end and entry.ts_event >= request.end):
            continue
        matches.append(entry)
        if request.limit and len(matches) >= request.limit:
            break
    return matches


async def build(settings: AuditSettings) -> ServiceParts:
    app = AuditApp(settings)
    return ServiceParts(
        components=[app],
        servicers=[Servicer(audit_pb2_grpc.add_AuditServiceServicer_to_server, app, "trading.audit.v1.AuditService")],
    )
