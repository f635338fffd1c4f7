"""The service: settings -> the faust app, its publisher, the webhook and the lag reader, as the platform's runner
starts them (trading_platform.service). Health is the runner's: the broker probe and the gRPC health port."""

from __future__ import annotations

import ssl

import faust
from trading_platform.messaging.producer import Publisher
from trading_platform.service import ServiceParts

from analytics_service.config import AnalyticsSettings
from analytics_service.lag import LagReader
from analytics_service.rules import load_rules
from analytics_service.streams import Analytics, Broker
from analytics_service.webhook import AlertmanagerWebhook


def broker_of(settings: AnalyticsSettings) -> Broker:
    """faust's view of the service's Kafka connection: the same bootstrap servers and SCRAM principal."""
    kafka = settings.kafka
    credentials = None
    if kafka.security_protocol != "PLAINTEXT":
        credentials = faust.SASLCredentials(
            username=kafka.username,
            password=kafka.password.get_secret_value() if kafka.password else None,
            mechanism="SCRAM-SHA-512",
            ssl_context=ssl.create_default_context() if kafka.security_protocol == "SASL_SSL" else None,
        )
    url = ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(","))
    return Broker(
        url,
        credentials,
        namespace=kafka.namespace,
        shadow=settings.deployment.shadow,
        replicas=settings.analytics.changelog_replicas,
    )


async def build(settings: AnalyticsSettings) -> ServiceParts:
    config = settings.analytics
    rules = load_rules(config.rules_file)
    connection = settings.kafka.connection()
    publisher = Publisher(
        connection, settings.service_name, namespace=settings.kafka.namespace, shadow=settings.deployment.shadow
    )
    webhook = (
        AlertmanagerWebhook(
            config.alertmanager_url,
            timeout_s=config.alertmanager_timeout_s,
            attempts=config.alertmanager_attempts,
            backoff_s=config.alertmanager_backoff_s,
            queue_size=config.alertmanager_queue,
            generator_url=config.generator_url,
        )
        if config.alertmanager_url and not settings.deployment.shadow  # the idle colour's alerts stay on its topics
        else None
    )
    lag = LagReader(connection, config.lag_groups, settings.kafka.namespace) if config.lag_groups else None
    analytics = Analytics(config, rules, publisher, broker_of(settings), webhook=webhook, lag=lag)
    return ServiceParts(
        components=[publisher, analytics],
        health_checks={"streams": analytics.healthy},
        ready_info={
            "app_id": analytics.app.conf.id,
            "rules_version": rules.version,
            "windows_s": list(config.windows_s),
            "alertmanager": webhook.endpoint if webhook else None,
        },
    )
