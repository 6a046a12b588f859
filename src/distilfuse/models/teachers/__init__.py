"""Teacher fusion networks (one module per paper)."""
