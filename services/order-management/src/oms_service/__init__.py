"""trading-order-management service."""
