"""burstmap.client."""
