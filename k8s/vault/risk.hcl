# risk: no broker keys. It may read only its own folder (empty today; for secrets it may need later).
path "secret/data/trading/risk" {
  capabilities = ["read"]
}

# Its Kafka principal (SCRAM-SHA-512): username and password, read at start-up.
path "secret/data/trading/risk/kafka" {
  capabilities = ["read"]
}
