"""The shared library every service uses: settings and secrets, messaging, gRPC, observability, clocks,
the topic registry, ids and exact decimals, and the embedded dev stack with its pytest plugin."""
