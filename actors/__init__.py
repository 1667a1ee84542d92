"""Ray actors: tenant runtimes, provider state, projections, config; `names` names them."""
