"""Cluster mode: repositories sharded across gitstore nodes, with PostgreSQL as the control plane
(issue 23). Entered through gitstore.cluster.api; nothing here runs, or imports psycopg, unless
the service is configured for a cluster."""
