# execution: holds the one broker connection, so it reads the Alpaca keys (vault:secret/trading/alpaca#api_key_id and
# #api_secret_key in its chart's config.broker). Nothing else.
path "secret/data/trading/alpaca" {
  capabilities = ["read"]
}

# Its Kafka principal (SCRAM-SHA-512): username and password, read at start-up.
path "secret/data/trading/execution/kafka" {
  capabilities = ["read"]
}

# The gateway's public JWKS, to verify the access tokens user calls carry.
path "secret/data/trading/gateway/jwks" {
  capabilities = ["read"]
}

# Its own gRPC certificate (mTLS), issued by the platform's intermediate CA under its own role and renewed before
# expiry; the role allows only the name execution.
path "pki_int/issue/execution" {
  capabilities = ["update"]
}
