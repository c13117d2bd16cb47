"""burstmap.local.app."""
