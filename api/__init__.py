"""The HTTP surface: thin translation from HTTP to actor calls and back."""
