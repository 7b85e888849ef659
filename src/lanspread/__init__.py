"""lanspread: peer-to-peer game sharing for LAN parties."""

__version__ = "0.1.0"
