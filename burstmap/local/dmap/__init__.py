"""burstmap.local.dmap."""
