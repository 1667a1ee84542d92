"""Pure domain: aggregates, schemas, config, routing, codecs, pricing. No Ray, no I/O."""
