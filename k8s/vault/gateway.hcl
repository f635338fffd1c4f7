# gateway: the only policy that writes. It keeps its own subtree and nothing else: the signing keys it rotates
# (secret/trading/gateway/signing), the JWKS it publishes for every verifier (.../jwks), the one-time bootstrap secret
# it consumes (.../bootstrap) and its Kafka principal (.../kafka, read at start-up). It reads nothing outside it.
path "secret/data/trading/gateway/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Consuming the bootstrap secret destroys all its versions (metadata delete); check-and-set reads the version.
path "secret/metadata/trading/gateway/*" {
  capabilities = ["read", "delete"]
}

# Its own gRPC certificate (mTLS), issued by the platform's intermediate CA under its own role and renewed before
# expiry; the role allows only the name gateway.
path "pki_int/issue/gateway" {
  capabilities = ["update"]
}
