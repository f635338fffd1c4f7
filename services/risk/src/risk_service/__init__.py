"""trading-risk service."""
