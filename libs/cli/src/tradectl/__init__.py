"""tradectl: the platform's command line (dev stack, topics, services, risk, agent, audit)."""
