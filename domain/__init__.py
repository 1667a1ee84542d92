"""Pure domain: aggregates, schemas, catalog, routing, codecs, pricing. No Ray, no I/O."""
