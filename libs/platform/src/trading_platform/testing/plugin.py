"""pytest plugin `trading`: endpoints for Kafka, Redis and Vault, and per-test topic isolation.

(Being built under issue 2; fixtures land here.)
"""
