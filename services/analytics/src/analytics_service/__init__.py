"""analytics: faust-streaming apps that fold the order, execution and market-data topics into windowed tables
(transaction-cost analysis, P&L by day, data quality, dead letters), publish each row's latest value to the
analytics.* topics, and evaluate the alert rules onto analytics.alerts.v1 and an Alertmanager webhook."""
