"""burstmap.local.core."""
