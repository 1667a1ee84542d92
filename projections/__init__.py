"""Read models folded from the event store: execution history and the key directory."""
