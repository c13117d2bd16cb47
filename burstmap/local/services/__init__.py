"""burstmap.local.services."""
