"""Migration from the legacy Circuit Breaker: client tools (check-ops, code) and data import."""
