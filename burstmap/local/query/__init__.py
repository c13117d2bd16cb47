"""burstmap.local.query."""
