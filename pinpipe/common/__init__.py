"""What every stage shares: settings, the source schema, Kafka record format, logging."""
