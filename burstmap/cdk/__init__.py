"""burstmap.cdk."""
