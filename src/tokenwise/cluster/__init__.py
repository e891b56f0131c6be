"""A local cluster on one machine, for `tokenwise cluster` (`make cluster`).

PostgreSQL and Redis from the Debian packages, the auth service, N API processes and M workers from this
interpreter's `tokenwise`, and nginx in front as a round-robin load balancer with no affinity:

- `engines.py`: PostgreSQL (initdb once, run unprivileged when root) and Redis;
- `nginx.py`: the load balancer's configuration and process;
- `processes.py`: a child process (spawn, readiness, stop) and the stop order;
- `state.py`: the state file through which another shell finds and stops the cluster;
- `launcher.py`: the order of it all, supervision and restarts.
"""

from tokenwise.cluster.launcher import Launcher, Plan
from tokenwise.cluster.state import stop_cluster

__all__ = ["Launcher", "Plan", "stop_cluster"]
