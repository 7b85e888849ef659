"""The pure core: rules, state machines and decisions, with no I/O, clock or sockets."""
