"""accesstrail: the daemon side. Provider clients, the HTTP layer, the CLI and the scheduler;
it reads providers and hands plain snapshots to ``store``, never the other way round."""
