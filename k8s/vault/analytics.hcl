# analytics: no broker keys. It may read only its own folder (empty today; for secrets it may need later).
path "secret/data/trading/analytics" {
  capabilities = ["read"]
}

# Its Kafka principal (SCRAM-SHA-512): username and password, read at start-up.
path "secret/data/trading/analytics/kafka" {
  capabilities = ["read"]
}

# The gateway's public JWKS, to verify the access tokens user calls carry (its gRPC port serves health only).
path "secret/data/trading/gateway/jwks" {
  capabilities = ["read"]
}

# Its own gRPC certificate (mTLS), issued by the platform's intermediate CA under its own role and renewed before
# expiry; the role allows only the name analytics.
path "pki_int/issue/analytics" {
  capabilities = ["update"]
}
