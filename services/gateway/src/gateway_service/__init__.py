"""trading-gateway: users, sessions, roles and API keys; the platform's front door over HTTP."""
