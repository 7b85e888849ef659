"""Durable file operations and the proofs of what lanspread wrote, one home for every shell.

* :mod:`~lanspread.files.entries`: what stands at a path (``lstat``, links never followed).
* :mod:`~lanspread.files.atomic`: synced writes, renames, unlinks and folders; bounded reads.
* :mod:`~lanspread.files.records`: the game-folder JSON records and their crash-left temps.
* :mod:`~lanspread.files.ownership`: the download's ownership record and its sweep.
* :mod:`~lanspread.files.sentinel`: the ``version.ini`` commit of a download.
* :mod:`~lanspread.files.version_ini`: reading ``version.ini``.
* :mod:`~lanspread.files.hashing`: hashing payload files and chunks.

Imports only :mod:`lanspread.core` and :mod:`lanspread.platform` (and the errors).
"""
