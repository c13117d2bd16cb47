"""burstmap.runtime."""
