"""trading-signal service."""
