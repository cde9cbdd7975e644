"""Pinterest-style streaming-to-batch pipeline: PostgreSQL -> FastAPI -> Kafka -> CSV batches -> Spark."""
