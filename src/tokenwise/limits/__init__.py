"""Limits per user and per client address (connections, runs a minute, sign-in throttles), counted in
this process or across every process in Redis. Below the services and the usage layer, beside `bus/`:
it imports only `errors`."""
