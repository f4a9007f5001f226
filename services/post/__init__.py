"""post: posts into a niche, edits, deletions, comments and reactions (``kith post serve``)."""
