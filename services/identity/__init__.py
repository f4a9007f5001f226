"""identity: accounts, argon2id credentials, JWT sessions with rotating refresh tokens,
profiles and account deletion by crypto-shredding (see ``docs/identity.md``)."""
