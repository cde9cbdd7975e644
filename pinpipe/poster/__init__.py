"""The poster stage: the FastAPI produce API, its Kafka producers and the service that runs it."""
