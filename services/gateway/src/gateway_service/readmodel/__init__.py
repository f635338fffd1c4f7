"""The gateway's read model: the bus folded into bounded in-memory tables (model), kept current by one consumer
(feed), fanned out to live subscribers (fanout); JSON conversion (convert), tables and paging (tables), cursors
(cursor)."""

from gateway_service.readmodel.cursor import Cursors, InvalidCursor
from gateway_service.readmodel.fanout import DROPPED, Fanout, Subscription
from gateway_service.readmodel.feed import Feed
from gateway_service.readmodel.model import CHANNELS, TOPICS, Caps, ReadModel

__all__ = [
    "CHANNELS",
    "DROPPED",
    "TOPICS",
    "Caps",
    "Cursors",
    "Fanout",
    "Feed",
    "InvalidCursor",
    "ReadModel",
    "Subscription",
]
