"""Ray actors: tenant runtimes, provider state, projections; and the registry that finds them."""
