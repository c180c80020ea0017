"""The attribution stages: pure, keyed classes that the stream and replay drivers wire together."""
