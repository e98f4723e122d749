"""What Datasette shows over the database: descriptions and the audit questions as queries."""
