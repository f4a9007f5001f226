"""The graph's pure domain: niches (members, roles, invites, cap) and block lists. No I/O."""
