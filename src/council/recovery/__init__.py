"""Recovery: error signatures, the known-error catalogue, deterministic recoveries, the command
policy and the memory of fixes — the deterministic half of `council heal`."""
