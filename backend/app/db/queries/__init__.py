"""The SQL of each table: keyword-only functions over the connection a unit of work holds."""
