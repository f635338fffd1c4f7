# risk: no broker keys. It may read only its own folder (empty today; for secrets it may need later).
path "secret/data/trading/risk" {
  capabilities = ["read"]
}
