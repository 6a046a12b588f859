"""Student fusion networks (one module per paper)."""
