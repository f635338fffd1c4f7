#!/usr/bin/env bash
# Vault's Kubernetes auth for the trading platform: one policy and one role per service, each bound to that
# service's ServiceAccount (<release>-<service>, the charts' default) in the trading namespace. Run once per cluster
# with VAULT_ADDR and an admin VAULT_TOKEN set:  RELEASE=trading ./k8s/vault/roles.sh
set -euo pipefail
cd "$(dirname "$0")"
RELEASE="${RELEASE:-trading}"
NAMESPACE="${NAMESPACE:-trading}"

vault auth list -format=json | grep -q '"kubernetes/"' || vault auth enable kubernetes
# Vault runs in the cluster: it validates tokens with its own service account (TokenReview).
vault write auth/kubernetes/config kubernetes_host="https://kubernetes.default.svc:443"
vault secrets list -format=json | grep -q '"secret/"' || vault secrets enable -path=secret kv-v2

# The platform's PKI (root CA, intermediate, one issuing role per service): every gRPC service issues its own mTLS
# certificate at start (its policy allows pki_int/issue/<service> only). Same code as the dev stack's.
tradectl k8s pki

for service in market-data signal order-management risk execution audit paper-exchange gateway analytics; do
  vault policy write "$service" "$service.hcl"
  vault write "auth/kubernetes/role/$service" \
    bound_service_account_names="$RELEASE-$service" \
    bound_service_account_namespaces="$NAMESPACE" \
    policies="$service" \
    ttl=1h
done

# The Kafka principals' passwords, synced into the kafka namespace for the Strimzi KafkaUsers (one Secret each).
KAFKA_NAMESPACE="${KAFKA_NAMESPACE:-kafka}"
vault policy write kafka-users kafka-users.hcl
vault write auth/kubernetes/role/kafka-users \
  bound_service_account_names=trading-kafka-users \
  bound_service_account_namespaces="$KAFKA_NAMESPACE" \
  policies=kafka-users \
  ttl=1h
