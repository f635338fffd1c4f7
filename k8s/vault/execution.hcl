# execution: holds the one broker connection, so it reads the Alpaca keys (vault:secret/trading/alpaca#api_key_id and
# #api_secret_key in its chart's config.broker). Nothing else.
path "secret/data/trading/alpaca" {
  capabilities = ["read"]
}

# Its Kafka principal (SCRAM-SHA-512): username and password, read at start-up.
path "secret/data/trading/execution/kafka" {
  capabilities = ["read"]
}
