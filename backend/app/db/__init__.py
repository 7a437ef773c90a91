"""Database access: one engine per node, and the routing of each unit of work to a node."""
