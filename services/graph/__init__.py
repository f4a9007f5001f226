"""kith.graph: niches, memberships and roles, invites, removals, blocks between users."""
