# Vault Secrets Operator in the kafka namespace: syncs each principal's Kafka password into the Secret its Strimzi
# KafkaUser reads (k8s/kafka-users/kafkausers.yaml). Read only, and only the kafka folders.
path "secret/data/trading/+/kafka" {
  capabilities = ["read"]
}
