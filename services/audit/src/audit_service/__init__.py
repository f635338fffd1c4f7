"""trading-audit service."""
