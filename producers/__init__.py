"""Getting events into Kafka: the producer client, the device simulator, the CSV importer."""
