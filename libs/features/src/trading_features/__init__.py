"""trading_features: not built yet (issue 5, the RL agent). Importing it works; it has no API yet."""
