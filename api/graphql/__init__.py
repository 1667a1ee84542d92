"""GraphQL: agent management, a superset of the legacy schema."""
