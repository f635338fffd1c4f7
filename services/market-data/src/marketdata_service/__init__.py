"""trading-market-data service."""
