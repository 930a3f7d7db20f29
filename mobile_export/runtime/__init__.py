"""Running exported models the way a phone would."""
