# audit: no broker keys. It may read only its own folder (empty today; for secrets it may need later).
path "secret/data/trading/audit" {
  capabilities = ["read"]
}

# Its Kafka principal (SCRAM-SHA-512): username and password, read at start-up.
path "secret/data/trading/audit/kafka" {
  capabilities = ["read"]
}

# The S3 archive's access key (TRADING_AUDIT__ARCHIVE_S3_*), read by `tradectl compliance report` run in the pod when
# TRADING_AUDIT__ARCHIVE_TARGET=s3.
path "secret/data/trading/audit/s3" {
  capabilities = ["read"]
}

# The gateway's public JWKS, to verify the access tokens user calls carry.
path "secret/data/trading/gateway/jwks" {
  capabilities = ["read"]
}

# Its own gRPC certificate (mTLS), issued by the platform's intermediate CA under its own role and renewed before
# expiry; the role allows only the name audit.
path "pki_int/issue/audit" {
  capabilities = ["update"]
}
