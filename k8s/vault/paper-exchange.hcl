# paper-exchange (dev, staging): the Vault Secrets Operator reads the keys clients must present and the admin key and
# syncs them into the Secrets paper-exchange-keys and paper-exchange-admin (paper-exchange-secret.yaml). The exchange
# itself never talks to Vault.
path "secret/data/trading/alpaca" {
  capabilities = ["read"]
}
path "secret/data/trading/paper-exchange" {
  capabilities = ["read"]
}
