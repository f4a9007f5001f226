"""kith.messaging: one-to-one and small-group conversations, messages and receipts."""
