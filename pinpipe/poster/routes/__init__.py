"""The API's routes, one module per group: produce (Kafka writes) and operations (health, stats)."""
