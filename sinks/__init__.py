"""ClickHouse: schema migrations, row mappers, the batch writer and report queries."""
