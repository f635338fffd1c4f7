# paper-exchange (dev, staging): the Vault Secrets Operator reads the keys clients must present and syncs them into
# the Secret paper-exchange-keys (paper-exchange-secret.yaml). The exchange itself never talks to Vault.
path "secret/data/trading/alpaca" {
  capabilities = ["read"]
}
