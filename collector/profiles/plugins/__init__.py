"""Vendor device-profile plug-ins shipped with flarewatch (loaded only when configured)."""
