"""Cluster mode (issue 23): repositories sharded across nodes, PostgreSQL as the control plane."""
