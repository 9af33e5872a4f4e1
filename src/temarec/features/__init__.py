"""Feature stage: frozen encoders and the features built from them (text, tags, images)."""
