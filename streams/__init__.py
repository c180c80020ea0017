"""Kafka adapters: the faust-streaming app, topics and the embedded broker launcher."""
