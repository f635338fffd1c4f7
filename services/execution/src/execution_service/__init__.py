"""trading-execution service."""
