"""The local web UI: a page served on 127.0.0.1, drawn from a Python view model.

Modules: ``viewmodel`` (pure: facts in, view out), ``state`` (overlays fed by runtime
events), ``host`` (the runtime, restartable in process), ``security`` (who may use
the UI), ``server`` (the aiohttp app, its API and stream). Import from them directly:
this package stays import-light so the pure view model loads without the runtime.
"""
