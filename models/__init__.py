"""Per-patient detectors of flushing and anaphylaxis, and their evaluation; pure computation."""
