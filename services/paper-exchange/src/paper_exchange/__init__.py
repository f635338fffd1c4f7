"""paper-exchange service."""
